"""What a host is (OS, PowerShell, IIS) chooses the form of each command it gets.

The probe's output is parsed as a Windows host writes it; the plan shows the form per host;
a real sshd host says what it is on first contact, once; a host that cannot say gets no
form that was only assumed for it; an eradication's rollback asks twice.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from irtool.cli import cli
from irtool.engine.custody import check_evidence
from irtool.engine.runner import Runner
from irtool.engine.session import IncidentSession, Refused
from irtool.evidence.store import EvidenceStore
from irtool.journal import EventDraft, Journal
from irtool.journal.incidents import EVIDENCE_DIR, incident_dir
from irtool.model.facts import WINDOWS_PROBE, HostFacts, When, parse_windows_probe
from irtool.model.inventory import Inventory
from irtool.model.lint import lint_runbook
from irtool.model.loader import load_inventory, load_runbook
from irtool.model.plan import PlanError, build_plan, resolve_parameters
from irtool.model.quoting import cmd_literal
from irtool.remote.cmdline import cmd_line
from irtool.remote.ssh import SshTransport
from irtool.remote.winrm import WinrmTransport
from irtool.secrets.run import RunSecrets
from tests.support.cli import irtool
from tests.support.runbooks import runbook
from tests.support.sshd import SshdFarm, closed_port
from tests.support.wsman import DEFAULT_PASSWORD, DEFAULT_USER, WsmanServer

# What `ver` and `reg query` print, as each server writes it (values as Microsoft ships them).
PROBE_2008 = """\
Microsoft Windows [Version 6.0.6002]

HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion
    ProductName    REG_SZ    Windows Server (R) 2008 Standard

HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion
    CurrentBuildNumber    REG_SZ    6002

ERROR: The system was unable to find the specified registry key or value.
ERROR: The system was unable to find the specified registry key or value.

HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\InetStp
    VersionString    REG_SZ    Version 7.0
"""
PROBE_2008_R2 = """\
Microsoft Windows [Version 6.1.7601]

HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion
    ProductName    REG_SZ    Windows Server 2008 R2 Enterprise

HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion
    CurrentBuildNumber    REG_SZ    7601

HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\PowerShell\\1\\PowerShellEngine
    PowerShellVersion    REG_SZ    2.0

ERROR: The system was unable to find the specified registry key or value.

HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\InetStp
    VersionString    REG_SZ    Version 7.5
"""
PROBE_2012_R2 = """\
\r
Microsoft Windows [Version 6.3.9600]\r
\r
HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\r
    ProductName    REG_SZ    Windows Server 2012 R2 Standard\r
\r
HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\r
    CurrentBuildNumber    REG_SZ    9600\r
\r
HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\PowerShell\\1\\PowerShellEngine\r
    PowerShellVersion    REG_SZ    2.0\r
\r
HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\PowerShell\\3\\PowerShellEngine\r
    PowerShellVersion    REG_SZ    4.0\r
\r
HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\InetStp\r
    VersionString    REG_SZ    Version 8.5\r
"""
PROBE_2019 = """\
Microsoft Windows [Version 10.0.17763.5458]

HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion
    ProductName    REG_SZ    Windows Server 2019 Datacenter

HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion
    CurrentBuildNumber    REG_SZ    17763

HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\PowerShell\\1\\PowerShellEngine
    PowerShellVersion    REG_SZ    2.0

HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\PowerShell\\3\\PowerShellEngine
    PowerShellVersion    REG_SZ    5.1.17763.1

HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\InetStp
    VersionString    REG_SZ    Version 10.0
"""


@pytest.mark.parametrize(
    ("said", "windows", "build", "powershell", "iis"),
    [
        (PROBE_2008, "6.0", 6002, None, "7.0"),
        (PROBE_2008_R2, "6.1", 7601, "2.0", "7.5"),
        (PROBE_2012_R2, "6.3", 9600, "4.0", "8.5"),
        (PROBE_2019, "10.0", 17763, "5.1.17763.1", "10.0"),
        # A French Server 2008 with PowerShell 1.0: too old for irtool's PowerShell forms.
        (
            PROBE_2008.replace("[Version", "[version").replace(
                "ERROR: The system was unable to find the specified registry key or value.\n",
                "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\PowerShell\\1\\PowerShellEngine\n"
                "    PowerShellVersion    REG_SZ    1.0\n",
                1,
            ),
            "6.0",
            6002,
            "1.0",
            "7.0",
        ),
    ],
)
def test_the_probe_reads_what_each_windows_server_says(
    said: str, windows: str, build: int, powershell: str | None, iis: str
) -> None:
    facts = parse_windows_probe(said)
    assert (facts.os, facts.windows, facts.build, facts.powershell, facts.iis) == (
        "windows",
        windows,
        build,
        powershell,
        iis,
    )
    assert facts.name and "Windows Server" in facts.name
    if powershell == "1.0":
        assert not facts.fits(When(powershell="2.0"))


def test_minimums_are_compared_as_versions_not_text() -> None:
    r2 = parse_windows_probe(PROBE_2008_R2)
    newer = parse_windows_probe(PROBE_2019)
    assert not r2.fits(When(powershell="3.0"))
    assert r2.fits(When(powershell="2.0", windows="6.1"))
    assert newer.fits(When(powershell="5.1", windows="10.0", build=14393))
    # "10.0" is above "6.3" though it sorts below it as text.
    assert newer.fits(When(windows="6.3")) and not r2.fits(When(windows="6.3"))
    # A host without PowerShell never meets a PowerShell minimum.
    assert not parse_windows_probe(PROBE_2008).fits(When(powershell="1.0"))
    assert "powershell none (needs 3.0)" in parse_windows_probe(PROBE_2008).why_not(
        When(powershell="3.0")
    )


# -- the plan: the form of the command each host gets -----------------------------------

FORMS = """\
- id: connections
  type: collect
  title: TCP connections with their process
  targets: [all]
  variants:
    - id: ps3
      when: {powershell: "3.0", windows: "6.2"}
      command: Get-NetTCPConnection -State Listen
    - id: ps2
      when: {powershell: "2.0"}
      command: netstat -ano | Select-String LISTENING
    - id: cmd
      shell: cmd
      command: netstat -ano
- id: tasks
  type: collect
  title: Scheduled tasks (PowerShell 3 only)
  targets: [all]
  variants:
    - id: ps3
      when: {powershell: "3.0", windows: "6.2"}
      command: Get-ScheduledTask | Format-List *
- id: block
  type: action
  title: Block inbound web ports
  targets: [all]
  variants:
    - id: ps3
      when: {powershell: "3.0", windows: "6.2"}
      command: >-
        New-NetFirewallRule -Name 'irtool-web-{{ incident.id }}' -Direction Inbound
        -Protocol TCP -LocalPort 80 -Action Block
      rollback: Remove-NetFirewallRule -Name 'irtool-web-{{ incident.id }}'
    - id: cmd
      shell: cmd
      command: >-
        netsh advfirewall firewall add rule name="irtool-web-{{ incident.id }}"
        dir=in action=block protocol=TCP localport=80
      rollback: netsh advfirewall firewall delete rule name="irtool-web-{{ incident.id }}"
"""

FOUR_HOSTS = {
    "hosts": {
        "web2008": {"address": "10.0.0.8", "facts": parse_windows_probe(PROBE_2008).model_dump()},
        "web2008r2": {
            "address": "10.0.0.9",
            "facts": parse_windows_probe(PROBE_2008_R2).model_dump(),
        },
        "web2012r2": {
            "address": "10.0.0.12",
            "facts": parse_windows_probe(PROBE_2012_R2).model_dump(),
        },
        "web2019": {"address": "10.0.0.19", "facts": parse_windows_probe(PROBE_2019).model_dump()},
    }
}


@pytest.fixture
def forms(tmp_path: Path) -> tuple[Path, Path]:
    book = tmp_path / "forms.yaml"
    book.write_text(runbook("forms", "Forms", FORMS))
    hosts = tmp_path / "inventory.yaml"
    hosts.write_text(yaml.safe_dump(FOUR_HOSTS))
    return book, hosts


def test_plan_gives_each_host_the_form_its_facts_choose(forms: tuple[Path, Path]) -> None:
    book, hosts = forms
    loaded = load_runbook(book)
    rows = build_plan(
        loaded.model,
        resolve_parameters(loaded.model, {}),
        load_inventory(hosts).model,
        incident="ir-20261207-010000-ab12",
    )
    chosen = {(r.step, r.host): (r.variant, r.shell, r.unfit is not None) for r in rows}
    assert chosen[("connections", "web2008")] == ("cmd", "cmd", False)
    assert chosen[("connections", "web2008r2")] == ("ps2", "powershell", False)
    assert chosen[("connections", "web2012r2")] == ("ps3", "powershell", False)
    assert chosen[("connections", "web2019")] == ("ps3", "powershell", False)
    # No form for PowerShell 2 or none: those hosts are not run, and the plan says why.
    assert chosen[("tasks", "web2008")] == (None, None, True)
    assert chosen[("tasks", "web2008r2")] == (None, None, True)
    unfit = next(r.unfit for r in rows if (r.step, r.host) == ("tasks", "web2008r2"))
    assert (
        unfit
        and "PowerShell 2.0" in unfit
        and "ps3 needs windows >= 6.2, powershell >= 3.0" in unfit
    )
    # The action's names carry the incident: two incidents' rules never coincide.
    block = {r.host: r for r in rows if r.step == "block"}
    assert block["web2008"].command == (
        'netsh advfirewall firewall add rule name="irtool-web-ir-20261207-010000-ab12" '
        "dir=in action=block protocol=TCP localport=80"
    )
    assert block["web2019"].rollback == (
        "Remove-NetFirewallRule -Name 'irtool-web-ir-20261207-010000-ab12'"
    )


def test_plan_command_shows_the_variant_per_host(forms: tuple[Path, Path]) -> None:
    book, hosts = forms
    said = CliRunner().invoke(cli, ["plan", str(book), "--inventory", str(hosts)])
    code, out = said.exit_code, said.output
    assert code == 0, out
    assert "web2008 (cmd, variant cmd for any host)" in out
    assert "web2008r2 (powershell, variant ps2 for powershell >= 2.0)" in out
    assert "web2012r2 (powershell, variant ps3 for windows >= 6.2, powershell >= 3.0)" in out
    assert "web2008r2: NOT RUN: no form of this step fits" in out
    out = CliRunner().invoke(cli, ["plan", str(book), "--inventory", str(hosts), "--json"]).stdout
    assert {(r["step"], r["host"], r["variant"]) for r in json.loads(out)} >= {
        ("connections", "web2019", "ps3"),
        ("connections", "web2008", "cmd"),
    }


def test_validate_knows_a_cmd_script_goes_as_one_line(tmp_path: Path) -> None:
    steps = """\
- id: quoted
  type: collect
  title: Quoted by hand
  shell: cmd
  targets: [all]
  command: |
    dir "{{ host.vars.root }}"
    if exist C:\\x (
      echo yes
    )
    echo "irtool-{{ incident.id }}"
    for %i in (C:\\inetpub\\logs\\*) do echo %i
    for %i in (C:\\inetpub\\temp\\*) do (echo %i)
"""
    book = tmp_path / "cmd.yaml"
    book.write_text(runbook("cmd", "Cmd", steps))
    loaded = load_runbook(book)
    said = [p.message for p in lint_runbook(loaded.model, loaded.doc)]
    assert any("inside double quotes written in the template" in m for m in said), said
    assert any("ends in '('" in m for m in said), said
    # The incident id is [a-z0-9-]: inside quotes is fine.
    assert not any("incident.id" in m for m in said), said


def test_a_value_cmd_cannot_carry_is_refused_not_bent() -> None:
    assert cmd_literal(r"C:\inetpub\wwwroot") == '"C:\\inetpub\\wwwroot"'
    assert cmd_literal("a & b | c") == '"a & b | c"'  # plain text inside the quotes
    for bad in ('say "hi"', "%COMSPEC%", "!x!", "a^b", "two\nlines"):
        with pytest.raises(ValueError, match=r"cannot be put in a cmd\.exe command"):
            cmd_literal(bad)


# -- first contact: a real host says what it is, once -------------------------------------

SSH_FORMS = """\
- id: who
  type: collect
  title: Who is there
  shell: sh
  targets: [all]
  timeout: 20
  variants:
    - id: windows
      when: {os: windows}
      shell: cmd
      command: whoami
    - id: linux
      when: {os: linux}
      command: echo linux form on {{ host.name }}
- id: marker
  type: action
  title: Leave a marker (an eradication stand-in)
  shell: sh
  targets: [all]
  timeout: 20
  command: touch {{ host.vars.marker }}
  rollback: rm -f {{ host.vars.marker }}
  rollback_puts_back: the marker the attacker left
- id: pinned
  type: action
  title: An action in two forms
  shell: sh
  targets: [all]
  timeout: 20
  variants:
    - id: linux
      when: {os: linux}
      command: touch {{ host.vars.marker }}.linux
      rollback: rm {{ host.vars.marker }}.linux
    - id: other
      command: touch {{ host.vars.marker }}.other
      rollback: rm {{ host.vars.marker }}.other
"""


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdFarm]:
    with SshdFarm(tmp_path_factory.mktemp("sshd")) as started:
        yield started


def _ssh(farm: SshdFarm, marker: Path, port: int | None = None) -> dict[str, Any]:
    return {
        "address": "127.0.0.1",
        "port": port or farm[0].port,
        "transport": "ssh",
        "user": farm.user,
        "auth": "key",
        "identity_file": str(farm.client_key),
        "host_key": farm[0].fingerprint,
        "connect_timeout": 3,
        "vars": {"marker": str(marker)},
    }


@pytest.fixture
def ssh_incident(
    farm: SshdFarm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[IncidentSession, Runner, Path]:
    monkeypatch.setenv("IRTOOL_HOME", str(tmp_path / "home"))
    (tmp_path / "forms.yaml").write_text(runbook("forms", "Forms", SSH_FORMS))
    marker = tmp_path / "marker"
    hosts = {"lin01": _ssh(farm, marker), "gone": _ssh(farm, marker, port=closed_port())}
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump({"hosts": hosts}))
    session = IncidentSession.new(
        load_runbook(tmp_path / "forms.yaml"),
        {},
        actor="ann",
        inventory=load_inventory(tmp_path / "inventory.yaml"),
    )
    (tmp_path / "ssh_config").write_text("")
    (tmp_path / "known_hosts").write_text("")
    transport = SshTransport(
        RunSecrets(),
        config_file=tmp_path / "ssh_config",
        known_hosts_file=tmp_path / "known_hosts",
    )
    store = EvidenceStore(incident_dir(session.state.id) / EVIDENCE_DIR)
    return session, Runner(session, {"ssh": transport}, store, "ann"), marker


def _events(session: IncidentSession, kind: str) -> list[Any]:
    return [e for e in session.journal.events() if e.kind == kind]


def test_first_contact_asks_the_host_once_and_its_answer_chooses_the_form(
    ssh_incident: tuple[IncidentSession, Runner, Path],
) -> None:
    session, runner, _ = ssh_incident
    report = runner.run("who")
    facts = _events(session, "host.facts")
    assert [(e.host, e.data["facts"]["os"], e.data["source"]) for e in facts] == [
        ("lin01", "linux", "probe")
    ]
    assert facts[0].data["output"]["sha256"]  # what the host said is evidence
    ran = [e for e in _events(session, "command.ran") if e.host == "lin01"]
    assert [(e.data["variant"], e.data["shell"]) for e in ran] == [("linux", "sh")]
    out = EvidenceStore(incident_dir(session.state.id) / EVIDENCE_DIR).path(
        ran[0].data["stdout"]["sha256"]
    )
    assert out.read_text() == "linux form on lin01\n"
    # The host that cannot be reached is not sent a form that was only guessed for it.
    assert report.results["gone"].failure is not None
    assert "did not say what it is" in report.results["gone"].failure.reason
    assert [e.host for e in _events(session, "host.warning")] == ["gone"]
    assert session.state.host_facts()["lin01"].os == "linux"
    runner.run("who")  # asked once per incident
    assert len(_events(session, "host.facts")) == 1
    # What the host said is checked by verify like any other evidence.
    store = EvidenceStore(incident_dir(session.state.id) / EVIDENCE_DIR)
    said = store.path(facts[0].data["output"]["sha256"])
    said.chmod(0o644)
    said.write_bytes(b"Linux 0.0 (altered)\n")
    _, problems = check_evidence(session.journal.events(), store)
    assert [(p.seq, p.host) for p in problems] == [(facts[0].seq, "lin01")]


def test_a_rollback_that_puts_back_what_the_attacker_had_asks_twice(
    ssh_incident: tuple[IncidentSession, Runner, Path],
) -> None:
    session, runner, marker = ssh_incident
    session.complete("who", "ann", "not needed here")
    runner.run("marker", ["lin01"], reason="stand-in eradication")
    assert marker.exists()
    with pytest.raises(Refused, match="puts back the marker the attacker left"):
        runner.rollback("marker", ["lin01"], reason="undo")
    assert marker.exists() and not _events(session, "action.rolled_back")
    runner.rollback("marker", ["lin01"], reason="undo, knowingly", put_back=True)
    assert not marker.exists()


def test_a_rollback_uses_the_form_that_was_applied_whatever_the_facts_say_now(
    ssh_incident: tuple[IncidentSession, Runner, Path],
) -> None:
    session, runner, marker = ssh_incident
    session.start_early("pinned", "ann", "test")
    runner.run("pinned", ["lin01"], reason="apply")
    assert Path(f"{marker}.linux").exists()
    # The host is asked again and now says something else (a rebuilt image, a bad answer).
    session._write(
        lambda _state: EventDraft(
            "host.facts",
            "ann",
            {"facts": {"os": "windows", "windows": "10.0"}, "source": "probe"},
            host="lin01",
        )
    )
    assert runner.commands("pinned", ["lin01"])["lin01"][0].variant == "other"
    report = runner.rollback("pinned", ["lin01"], reason="undo")
    assert not report.failed, report.failed
    assert not Path(f"{marker}.linux").exists()
    undone = [e for e in _events(session, "command.ran") if e.data["purpose"] == "rollback"]
    assert [e.data["variant"] for e in undone] == ["linux"]


def test_inventory_facts_stand_until_the_host_speaks(tmp_path: Path) -> None:
    inventory = Inventory.model_validate(FOUR_HOSTS)
    stated = inventory.hosts["web2008r2"].facts
    assert stated == HostFacts(
        os="windows",
        windows="6.1",
        build=7601,
        powershell="2.0",
        iis="7.5",
        name="Windows Server 2008 R2 Enterprise",
    )


# -- the command line: asking on demand, and the second confirmation --------------------------


def test_cli_asks_hosts_on_demand_and_rollback_needs_put_back(
    farm: SshdFarm, tmp_path: Path
) -> None:
    env = {**os.environ, "IRTOOL_HOME": str(tmp_path / "home"), "IRTOOL_RESPONDER": "ann"}
    (tmp_path / "forms.yaml").write_text(runbook("forms", "Forms", SSH_FORMS))
    marker = tmp_path / "marker"
    hosts = {"lin01": _ssh(farm, marker), "gone": _ssh(farm, marker, port=closed_port())}
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump({"hosts": hosts}))
    opened = irtool(
        env, "incident", "new", str(tmp_path / "forms.yaml"),
        "--inventory", str(tmp_path / "inventory.yaml"), "--json",
    )  # fmt: skip
    incident = json.loads(opened.stdout)["id"]
    asked = irtool(env, "incident", "facts", incident)
    assert asked.returncode == 1  # one host could not be asked
    assert "lin01: " in asked.stdout and "(said by the host)" in asked.stdout
    assert "gone: could not ask: unreachable" in asked.stdout
    again = irtool(env, "incident", "facts", incident, "--host", "lin01", "--json")
    assert again.returncode == 0
    assert json.loads(again.stdout)["lin01"]["facts"]["os"] == "linux"
    # Not asked a second time without --again: still one host.facts for lin01.
    journal = Path(env["IRTOOL_HOME"]) / "incidents" / incident / "journal.sqlite"
    with Journal(journal, incident) as read:
        said = [e for e in read.events() if e.kind == "host.facts"]
    assert [e.host for e in said] == ["lin01"]

    assert irtool(env, "incident", "done", incident, "who").returncode == 0
    applied = irtool(
        env, "incident", "run", incident, "marker", "--host", "lin01", "--yes", "--reason", "x"
    )
    assert applied.returncode == 0, applied.stderr
    assert marker.exists()
    refused = irtool(env, "incident", "rollback", incident, "marker", "--yes", "--reason", "undo")
    assert refused.returncode == 2
    assert "puts back the marker the attacker left" in refused.stderr
    assert "--put-back" in refused.stderr
    assert marker.exists()
    undone = irtool(
        env, "incident", "rollback", incident, "marker", "--yes", "--reason", "undo",
        "--put-back",
    )  # fmt: skip
    assert undone.returncode == 0, undone.stderr
    assert not marker.exists()


# -- over WinRM: the probe is one cmd.exe line, and a 2008 R2 gets its PowerShell 2 form ------

WINRM_FORMS = """\
- id: who
  type: collect
  title: Which form
  targets: [all]
  timeout: 20
  variants:
    - id: ps3
      when: {powershell: "3.0"}
      command: echo ps3-form
    - id: ps2
      when: {powershell: "2.0"}
      command: echo ps2-form
    - id: cmd
      shell: cmd
      command: echo cmd-form
"""


class _Given:
    def secret(self, name: str) -> str:
        return DEFAULT_PASSWORD


def winrm_incident(
    tmp_path: Path, server: WsmanServer, steps: str, **vars_: str
) -> tuple[IncidentSession, Runner, EvidenceStore]:
    """An incident of `steps` over one host, web01, behind the test WS-Management endpoint."""
    host = {
        "address": "127.0.0.1",
        "port": server.port,
        "transport": "winrm",
        "auth": "ntlm",
        "user": DEFAULT_USER,
        "credential": "collect",
        "tls": {"ca_file": str(server.ca_file)},
        "connect_timeout": 5,
        **({"vars": vars_} if vars_ else {}),
    }
    (tmp_path / "book.yaml").write_text(runbook("book", "Book", steps))
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump({"hosts": {"web01": host}}))
    session = IncidentSession.new(
        load_runbook(tmp_path / "book.yaml"),
        {},
        actor="ann",
        inventory=load_inventory(tmp_path / "inventory.yaml"),
    )
    store = EvidenceStore(incident_dir(session.state.id) / EVIDENCE_DIR)
    return session, Runner(session, {"winrm": WinrmTransport(_Given())}, store, "ann"), store


@pytest.mark.parametrize(
    ("said", "form"), [(PROBE_2008_R2, "ps2"), (PROBE_2008, "cmd"), (PROBE_2019, "ps3")]
)
def test_over_winrm_the_host_says_what_it_is_and_gets_its_form(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, said: str, form: str
) -> None:
    monkeypatch.setenv("IRTOOL_HOME", str(tmp_path / "home"))
    with WsmanServer(tmp_path / "wsman", cmd_exe=True) as server:
        server.windows_said = said.replace("\n", "\r\n")
        session, runner, store = winrm_incident(tmp_path, server, WINRM_FORMS)
        report = runner.run("who")
        assert not report.failed, report.failed
        # The probe went as one cmd.exe line, before the step's command.
        assert server.command_lines[0] == cmd_line(WINDOWS_PROBE)
    facts = session.state.facts["web01"]
    assert facts == parse_windows_probe(said)
    ran = _events(session, "command.ran")
    assert [e.data["variant"] for e in ran] == [form]
    assert store.path(ran[0].data["stdout"]["sha256"]).read_bytes().strip() == (
        f"{form}-form".encode()
    )


MIXED = """\
- id: mixed
  type: collect
  title: Some collectors a Server 2008 without PowerShell can run
  targets: [all]
  timeout: 20
  commands:
    - id: needs-powershell
      title: Only with PowerShell
      variants:
        - {id: ps2, when: {powershell: "2.0"}, command: echo ps}
    - id: anywhere
      title: cmd.exe will do
      variants:
        - {id: cmd, shell: cmd, command: echo cmd-anywhere}
    - id: copies
      title: Copies (PowerShell on Windows)
      fetch:
        paths: ['%windir%\\Temp\\irtool-{{ incident.id }}\\{{ host.vars.folder }}\\*']
        reason: Exports.
"""


def test_a_host_runs_the_collectors_it_can_and_is_told_which_it_cannot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IRTOOL_HOME", str(tmp_path / "home"))
    with WsmanServer(tmp_path / "wsman", cmd_exe=True) as server:
        server.windows_said = PROBE_2008.replace("\n", "\r\n")
        session, runner, _ = winrm_incident(tmp_path, server, MIXED, folder="evtx")
        # A fetch's paths are templates too, rendered as plain text for the host.
        rows = Runner(session, {}, EvidenceStore(tmp_path / "ev"), "ann").commands("mixed")
        copies = next(r for r in rows["web01"] if r.item == "copies")
        assert copies.fetch is not None
        assert copies.fetch.paths == [f"%windir%\\Temp\\irtool-{session.state.id}\\evtx\\*"]

        report = runner.run("mixed")
    assert not report.failed, report.failed
    assert [e.data["item"] for e in _events(session, "command.ran")] == ["anywhere"]
    warned = [e.data["warning"] for e in _events(session, "host.warning")]
    assert len(warned) == 2
    assert warned[0].startswith("needs-powershell not run here: no form of this step fits")
    assert warned[1].startswith("copies not run here: fetching files from")


def test_a_value_put_in_a_fetch_path_cannot_widen_its_glob(tmp_path: Path) -> None:
    (tmp_path / "mixed.yaml").write_text(runbook("mixed", "Mixed", MIXED))
    loaded = load_runbook(tmp_path / "mixed.yaml").model
    inventory = Inventory.model_validate(
        {"hosts": {"web01": {"address": "10.0.0.1", "vars": {"folder": "..\\**"}}}}
    )
    with pytest.raises(PlanError, match=r"'\*' would widen the pattern it is put in"):
        build_plan(loaded, {}, inventory)


def test_an_answer_that_is_not_one_is_not_taken_for_facts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Windows whose SSH default shell is PowerShell, a banner, a blocked reg.exe: no
    version line. Guessed facts would send a 2019 host its cmd.exe forms; none are recorded."""
    monkeypatch.setenv("IRTOOL_HOME", str(tmp_path / "home"))
    with WsmanServer(tmp_path / "wsman", cmd_exe=True) as server:
        server.windows_said = "The term 'ver' is not recognized as the name of a cmdlet\r\n"
        session, runner, store = winrm_incident(tmp_path, server, WINRM_FORMS)
        report = runner.run("who")
    assert not _events(session, "host.facts") and "web01" not in session.state.facts
    warning = _events(session, "host.warning")[0]
    assert "its answer to the facts probe could not be read" in warning.data["warning"]
    assert store.path(warning.data["output"]["sha256"]).read_bytes().startswith(b"The term")
    failure = report.results["web01"].failure
    assert failure is not None and "did not say what it is" in failure.reason
    assert not _events(session, "command.ran")  # no guessed form was sent


def test_what_a_host_calls_itself_cannot_drive_a_terminal() -> None:
    said = PROBE_2019.replace("Windows Server 2019 Datacenter", "\x1b[2J\x1b[1;1HAll clear\u202e")
    facts = parse_windows_probe(said)
    assert facts.name == "\\x1b[2J\\x1b[1;1HAll clear\\u202e"
    assert "\x1b" not in facts.summary()


@pytest.mark.parametrize(
    "facts",
    [
        parse_windows_probe(PROBE_2008),
        parse_windows_probe(PROBE_2008_R2),
        parse_windows_probe(PROBE_2019),
        HostFacts(os="windows", windows="6.1", powershell="2.0"),
        HostFacts(os="linux", name="Debian GNU/Linux 12 (bookworm)"),
        HostFacts(os="linux"),
    ],
)
def test_a_simulated_host_answers_the_probe_as_its_facts_say(facts: HostFacts) -> None:
    from irtool.model.facts import parse_linux_probe, probe_answer

    said = probe_answer(facts)
    read = parse_linux_probe(said) if facts.os == "linux" else parse_windows_probe(said)
    assert read == facts
