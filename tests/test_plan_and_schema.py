"""`irtool plan`, `irtool schema`, and includes, from the command line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from irtool.cli import cli
from irtool.cli.schema import json_schema
from irtool.model.loader import Kind, load_runbook
from tests.conftest import ROOT

VALID = ROOT / "tests" / "corpus" / "valid"
RUNBOOK = str(VALID / "every-kind.yaml")
PARAMS = ["--param", "attacker_ip=203.0.113.7", "--param", "account=CORP\\mallory"]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_plan_json_has_a_row_per_step_and_host() -> None:
    code, out, _ = run(
        "plan", RUNBOOK, *PARAMS, "--inventory", str(VALID / "inventory.yaml"), "--json"
    )
    assert code == 0
    rows = json.loads(out)
    assert {"step", "kind", "host", "shell", "command", "rollback"} <= set(rows[0])
    block = [r for r in rows if r["step"] == "block"]
    assert [r["host"] for r in block] == ["web01", "web02"]
    # The hosts have not said what they are: the first form, marked as assumed; a plan made
    # without an incident names things with an example incident id.
    assert block[0]["command"] == (
        "New-NetFirewallRule -Name IR-Block-ir-00000000-000000-0000 -Direction Inbound "
        "-RemoteAddress '203.0.113.7' -Action Block"
    )
    assert (block[0]["variant"], block[0]["assumed"]) == ("ps3", True)
    assert block[0]["rollback"] == "Remove-NetFirewallRule -Name IR-Block-ir-00000000-000000-0000"
    user = [r for r in rows if r["item"] == "user"]
    assert user[0]["command"] == "Get-LocalUser -Name 'CORP\\mallory'"
    routes = {r["item"]: r["next"] for r in rows if r["step"] == "ongoing"}
    assert routes == {"yes": "block", "no": "evidence"}
    assert [r["step"] for r in rows if r["host"] is None][:3] == ["assemble", "meet", "scope"]


def test_plan_without_inventory_shows_selectors() -> None:
    code, out, _ = run("plan", RUNBOOK, *PARAMS)
    assert code == 0
    assert "group:affected (powershell, variant ps3 for windows >= 6.2, powershell >= 3.0)" in out
    assert "group:affected (cmd, variant cmd for any host)" in out
    assert "| Remove-NetFirewallRule -Name IR-Block-ir-00000000-000000-0000" in out


def test_plan_refuses_a_hostile_typed_parameter() -> None:
    code, out, err = run(
        "plan", RUNBOOK, "--param", "attacker_ip=1.2.3.4; calc", "--param", "account=x"
    )
    assert code == 2
    assert out == ""
    assert "parameter 'attacker_ip' (ip): '1.2.3.4; calc' is not an IP address" in err


def test_plan_lists_every_unknown_parameter() -> None:
    code, _, err = run("plan", RUNBOOK, "--param", "bogus=1", "--param", "attacker_ip=nope")
    assert code == 2
    assert "parameter 'bogus' is not declared" in err
    assert "parameter 'attacker_ip' (ip): 'nope' is not an IP address" in err


def test_plan_shows_a_parameter_not_yet_known_as_such() -> None:
    """Only `at_open` parameters are needed to open: the rest are learned during the incident,
    and the plan says which commands wait for them."""
    code, out, _ = run("plan", RUNBOOK)
    assert code == 0
    assert "-RemoteAddress <attacker_ip: not set>" in out
    assert "Get-LocalUser -Name <account: not set>" in out


def test_plan_of_a_broken_runbook_is_located() -> None:
    code, _, err = run("plan", str(ROOT / "tests/corpus/broken/dangling-route.yaml"))
    assert code == 2
    assert "dangling-route.yaml:19:39: option 'go' leads to step 'nowhere'" in err


def test_plan_rejects_a_malformed_param() -> None:
    code, _, err = run("plan", RUNBOOK, "--param", "novalue")
    assert code == 2
    assert "'novalue' is not NAME=VALUE" in err


@pytest.mark.parametrize("kind", list(Kind))
def test_shipped_schema_files_match_the_models(kind: Kind) -> None:
    code, out, _ = run("schema", kind.value)
    assert code == 0
    assert json.loads(out) == json_schema(kind)
    shipped = ROOT / "schema" / f"{kind.value}.schema.json"
    assert json.loads(shipped.read_text()) == json_schema(kind), (
        f"{shipped} is stale: irtool schema {kind.value} > {shipped.relative_to(ROOT)}"
    )


def test_shipped_yaml_points_editors_at_the_schema() -> None:
    files = [
        *sorted((ROOT / "runbooks").glob("*.yaml")),
        *sorted((ROOT / "runbooks" / "fragments").glob("*.yaml")),
        ROOT / "contacts.example.yaml",
        ROOT / "inventory.example.yaml",
    ]
    for path in files:
        first = path.read_text().splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema="), path
        target = (path.parent / first.split("$schema=", 1)[1]).resolve()
        assert target.is_file(), f"{path}: {target} missing"


def test_runbook_schema_knows_every_step_kind() -> None:
    schema = json_schema(Kind.RUNBOOK)
    text = json.dumps(schema)
    for kind in (
        "manual",
        "notify",
        "decision",
        "collect",
        "action",
        "rotate",
        "agenda",
        "postmortem",
    ):
        assert f'"const": "{kind}"' in text


def test_includes_splice_steps_and_keep_their_own_positions(tmp_path: Path) -> None:
    code, _, err = run("validate", str(ROOT / "tests/corpus/includes/main.yaml"))
    assert code == 2
    # The error sits in the nested fragment, reported in that file at its own line.
    assert err.startswith(
        f"{ROOT / 'tests/corpus/includes/fragments/nested.yaml'}:8:5: unknown key 'timout'"
    )
    fixed = tmp_path / "includes"
    shutil.copytree(ROOT / "tests/corpus/includes", fixed)
    nested = fixed / "fragments" / "nested.yaml"
    nested.write_text(nested.read_text().replace("timout", "timeout"))
    loaded = load_runbook(fixed / "main.yaml")
    assert [s.id for _, s in loaded.model.steps()] == ["first", "one", "two", "last"]
    # Marks follow the splice: 'last' is step 3 of the runbook, still on its own line.
    assert loaded.doc.mark(("phases", 0, "steps", 3, "id")).line == 15
    assert loaded.doc.mark(("phases", 0, "steps", 2, "id")).path.endswith("nested.yaml")


def test_version_and_help() -> None:
    code, out, _ = run("--version")
    assert code == 0
    assert out.startswith("irtool, version")
    code, out, _ = run("--help")
    assert code == 0
    assert "validate" in out
    assert "plan" in out
    assert "schema" in out


def test_plan_examples_fill_in_parameters_not_given() -> None:
    code, out, _ = run(
        "plan", RUNBOOK, "--examples", "--param", "attacker_ip=198.51.100.1", "--json"
    )
    assert code == 0
    rows = json.loads(out)
    block = next(r for r in rows if r["step"] == "block")
    user = next(r for r in rows if r["item"] == "user")
    assert "'198.51.100.1'" in block["command"]  # given on the command line wins
    assert user["command"] == "Get-LocalUser -Name 'CORP\\mallory'"  # the example


def test_plan_shows_warnings_and_checks_contacts(tmp_path: Path) -> None:
    contacts = tmp_path / "c.yaml"
    contacts.write_text(
        "team: T\npeople:\n  ann: {name: Ann, timezone: UTC, phone: '1'}\n"
        "roles:\n  security: {title: S, primary: ann}\n"
    )
    code, _, err = run("plan", RUNBOOK, *PARAMS, "--contacts", str(contacts))
    assert code == 2
    assert "role 'server-management' is not in the contacts file" in err
    inventory = ROOT / "inventory.example.yaml"
    code, _, err = run("plan", RUNBOOK, *PARAMS, "--inventory", str(inventory))
    assert code == 0
    assert "warning: legacy-iis7: marked insecure" in err
