"""Checks beyond the schema, each reported at the node that causes it."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from irtool.cli import cli
from irtool.model.lint import lint_contacts, lint_inventory, lint_runbook
from irtool.model.loader import load_contacts, load_inventory, load_runbook
from tests.conftest import ROOT

VALID = ROOT / "tests" / "corpus" / "valid"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def messages(problems: list) -> list[str]:  # type: ignore[type-arg]
    return [str(p) for p in problems]


def test_the_valid_fixture_is_clean() -> None:
    runbook = load_runbook(VALID / "every-kind.yaml")
    contacts = load_contacts(VALID / "contacts.yaml")
    inventory = load_inventory(VALID / "inventory.yaml")
    assert lint_runbook(runbook.model, runbook.doc, contacts.model, inventory.model) == []
    assert lint_contacts(contacts.model, contacts.doc) == []
    assert lint_inventory(inventory.model, inventory.doc) == []


def test_roles_missing_from_contacts(tmp_path: Path) -> None:
    contacts = write(
        tmp_path,
        "contacts.yaml",
        "team: T\npeople:\n  ann: {name: Ann, timezone: UTC, phone: '1'}\n"
        "roles:\n  security: {title: S, primary: ann, backups: [ann]}\n",
    )
    result = CliRunner().invoke(cli, ["validate", str(VALID / "every-kind.yaml"), str(contacts)])
    assert result.exit_code == 2
    assert (
        "every-kind.yaml:10:19: role 'server-management' is not in the contacts file"
        in result.output
    )
    assert "every-kind.yaml:10:38: role 'help-desk' is not in the contacts file" in result.output


def test_target_groups_missing_from_inventory(tmp_path: Path) -> None:
    inventory = write(
        tmp_path, "inventory.yaml", "hosts:\n  web09: {address: 192.0.2.9, groups: [other]}\n"
    )
    runbook = load_runbook(VALID / "every-kind.yaml")
    found = lint_runbook(runbook.model, runbook.doc, None, load_inventory(inventory).model)
    assert [m for m in messages(found) if "no group" in m] == [
        f"{VALID / 'every-kind.yaml'}:44:19: no group 'affected' in the inventory",
        f"{VALID / 'every-kind.yaml'}:58:19: no group 'affected' in the inventory",
    ]


def test_inventory_is_only_checked_when_given() -> None:
    runbook = load_runbook(VALID / "every-kind.yaml")
    assert lint_runbook(runbook.model, runbook.doc) == []


def test_role_without_backup_is_a_warning_not_an_error(tmp_path: Path) -> None:
    contacts = write(
        tmp_path,
        "c.yaml",
        "team: T\npeople:\n  ann: {name: Ann, timezone: UTC, phone: '1'}\n"
        "roles:\n  security: {title: S, primary: ann}\n",
    )
    result = CliRunner().invoke(cli, ["validate", str(contacts)])
    assert result.exit_code == 0
    assert f"{contacts}:5:3: warning: role 'security' has no backup" in result.output


def test_unused_parameter_and_raw_insertion_are_warned(tmp_path: Path) -> None:
    text = (VALID / "every-kind.yaml").read_text()
    text = text.replace(
        "  account: {type: username",
        "  spare: {type: string, description: unused}\n  account: {type: username",
    ).replace("Get-LocalUser -Name {{ account }}", "Get-LocalUser -Name {{ account | unquoted }}")
    path = write(tmp_path, "r.yaml", text)
    loaded = load_runbook(path)
    found = messages(lint_runbook(loaded.model, loaded.doc))
    assert f"{path}:13:3: warning: parameter 'spare' is declared but no command uses it" in found
    assert any("warning: template line 1 inserts a value unquoted" in m for m in found)


def test_both_rollback_and_irreversible_is_an_error(tmp_path: Path) -> None:
    text = (
        (VALID / "every-kind.yaml")
        .read_text()
        .replace(
            "        approvals: 2\n", "        approvals: 2\n        irreversible: cannot undo\n"
        )
    )
    loaded = load_runbook(write(tmp_path, "r.yaml", text))
    found = messages(lint_runbook(loaded.model, loaded.doc))
    assert any(
        ":55:9: action 'block' has a rollback, so it is not irreversible" in m for m in found
    ), found


def test_shell_mismatch_with_host_is_warned(tmp_path: Path) -> None:
    inventory = write(
        tmp_path,
        "i.yaml",
        "hosts:\n  gw: {address: 192.0.2.1, transport: ssh, groups: [affected]}\n",
    )
    runbook = load_runbook(VALID / "every-kind.yaml")
    found = messages(
        lint_runbook(runbook.model, runbook.doc, None, load_inventory(inventory).model)
    )
    assert any(
        "warning: commands are written for powershell but host 'gw' runs sh" in m for m in found
    )


def test_inventory_transport_rules(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "i.yaml",
        "defaults: {transport: winrm, auth: ntlm}\n"
        "hosts:\n"
        "  a: {address: 192.0.2.1}\n"
        "  b: {address: 192.0.2.2, transport: ssh, auth: password}\n"
        "  c: {address: 192.0.2.3, auth: basic, credential: c, insecure: true}\n"
        "  d: {address: 192.0.2.4, transport: ssh, auth: key}\n",
    )
    loaded = load_inventory(path)
    found = messages(lint_inventory(loaded.model, loaded.doc))
    # Not set on the host nor in defaults: reported at the host itself.
    assert f"{path}:3:3: a: ntlm auth needs a 'credential' (a keyring entry)" in found
    assert f"{path}:4:3: b: password auth needs a 'credential' (a keyring entry)" in found
    assert any("c: marked insecure" in m and "warning" in m for m in found)
    assert not any(m.split(": ", 2)[1].startswith("d:") for m in found), found


def test_validate_exit_codes_and_summary() -> None:
    result = CliRunner().invoke(cli, ["validate", str(VALID)])
    assert result.exit_code == 0
    assert result.output.strip() == "valid: 1 runbook, 1 contacts, 1 inventory"


def test_portless_inbound_blocks_are_found_in_every_spelling() -> None:
    from irtool.model.lint import portless_inbound_blocks

    assert portless_inbound_blocks("New-NetFirewallRule -Name x -Direction Inbound -Action Block")
    assert portless_inbound_blocks(
        "New-NetFirewallRule -Name x `\n    -Direction Inbound `\n    -Action Block"
    )
    assert portless_inbound_blocks("netsh advfirewall firewall add rule name=x dir=in action=block")
    assert not portless_inbound_blocks(
        "New-NetFirewallRule -Name x -Direction Inbound -Protocol TCP -LocalPort 80 -Action Block"
    )
    assert not portless_inbound_blocks(
        "New-NetFirewallRule -Name x -Direction Inbound -RemoteAddress $ip -Action Block"
    )
    assert not portless_inbound_blocks(
        "netsh advfirewall firewall add rule name=x dir=in action=block protocol=TCP localport=80"
    )
    assert not portless_inbound_blocks("New-NetFirewallRule -Direction Outbound -Action Block")


def test_optional_parameter_without_default_is_warned(tmp_path: Path) -> None:
    text = (
        (VALID / "every-kind.yaml")
        .read_text()
        .replace("account: {type: username,", "account: {type: username, required: false,")
    )
    loaded = load_runbook(write(tmp_path, "r.yaml", text))
    found = messages(lint_runbook(loaded.model, loaded.doc))
    assert any("warning: optional parameter 'account' has no default" in m for m in found), found


def test_powershell_string_check_catches_what_tree_sitter_misses() -> None:
    from tests.support.powershell import string_problems, syntax_problems

    script = 'Write-Output "$rule: added"'
    assert syntax_problems(script) == []  # tree-sitter alone lets it through
    assert string_problems(script)
    assert not string_problems('Write-Output "${rule}: added on $env:COMPUTERNAME"')
