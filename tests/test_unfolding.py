"""What the team learns as the incident unfolds: parameters set late, indicators, scope that
changes, ad-hoc commands, steps started early, and a close that checks what is still open.

Engine tests run in process on real SQLite journals with the local transport (real
processes on this machine); the CLI tests run `irtool` as a scribe at a second terminal would.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from irtool.engine.closing import open_items
from irtool.engine.runner import Runner
from irtool.engine.session import IncidentSession, Refused
from irtool.evidence.store import EvidenceStore
from irtool.journal.incidents import EVIDENCE_DIR, incident_dir
from irtool.model.loader import load_inventory, load_runbook
from irtool.remote.local import LocalTransport
from tests.support.cli import irtool
from tests.support.runbooks import runbook

STEPS = """\
- id: triage
  type: collect
  title: Triage
  shell: sh
  timeout: 20
  targets: [group:affected]
  command: echo {{ host.name }} {{ attacker_ip }}
- id: contain
  type: action
  title: Block the attacker
  shell: sh
  timeout: 20
  targets: [group:affected]
  command: echo block {{ iocs.ip }}
  rollback: echo unblock
- id: compromised
  type: decision
  title: Is this a compromise?
  question: Is this a compromise?
  options:
    - {id: "yes", label: "Yes"}
    - {id: "no", label: "No"}
- id: rotate
  type: rotate
  title: Rotate
  items:
    - {id: deploy, kind: deployment, title: Deployment account}
    - {id: machinekey, kind: service-account, title: Machine key}
- id: lessons
  type: postmortem
  title: Lessons
  questions: [What happened?, What would we change?]
- id: sealed
  type: manual
  title: Sealed
  strict: true
"""

PARAMETERS = """\
parameters:
  attacker_ip: {type: ip, description: The attacker, list: true}
  case: {type: string, description: Case number, at_open: true}
"""

HOSTS = {
    "web01": {"address": "localhost", "transport": "local", "groups": ["affected"]},
    "web02": {"address": "localhost", "transport": "local"},
}


def _files(tmp_path: Path) -> tuple[Path, Path]:
    text = runbook("unfold", "Unfolding", STEPS).replace("phases:", PARAMETERS + "phases:")
    (tmp_path / "unfold.yaml").write_text(text)
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump({"hosts": HOSTS}))
    return tmp_path / "unfold.yaml", tmp_path / "inventory.yaml"


@pytest.fixture
def incident(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> IncidentSession:
    monkeypatch.setenv("IRTOOL_HOME", str(tmp_path / "home"))
    book, inventory = _files(tmp_path)
    return IncidentSession.new(
        load_runbook(book), {"case": "IR-7"}, actor="ann", inventory=load_inventory(inventory)
    )


def runner(session: IncidentSession) -> Runner:
    store = EvidenceStore(incident_dir(session.state.id) / EVIDENCE_DIR)
    return Runner(session, {"local": LocalTransport()}, store, "ann")


def ran(session: IncidentSession) -> list[dict[str, Any]]:
    return [
        {"host": e.host, "step": e.step, **e.data}
        for e in session.journal.events()
        if e.kind == "command.ran"
    ]


def output(session: IncidentSession, record: dict[str, Any]) -> bytes:
    path = incident_dir(session.state.id) / EVIDENCE_DIR / record["stdout"]["sha256"]
    return path.read_bytes()


def refused(command: Any, message: str) -> None:
    with pytest.raises(Refused, match=message):
        command()


# -- parameters ---------------------------------------------------------------------------


def test_a_parameter_learned_later_is_asked_for_then_set_and_commands_keep_what_they_ran_with(
    incident: IncidentSession,
) -> None:
    run = runner(incident)
    refused(lambda: run.run("triage"), "needs parameter 'attacker_ip' \\(ip\\), not set yet")
    assert [name for name, _ in run.missing_parameters("triage")] == ["attacker_ip"]
    refused(
        lambda: incident.set_parameter("attacker_ip", ["999.1.1.1"], "ann", "triage"),
        "value 1: '999.1.1.1' is not an IP address",
    )
    refused(lambda: incident.set_parameter("attacker_ip", ["203.0.113.7"], "ann", " "), "reason")
    refused(lambda: incident.set_parameter("nope", ["x"], "ann", "r"), "no parameter 'nope'")
    refused(
        lambda: incident.set_parameter("case", ["IR-1", "IR-2"], "ann", "r"),
        "takes one value, not 2",
    )
    incident.set_parameter("attacker_ip", ["203.0.113.7"], "ann", "the IIS log's c-ip")
    assert run.run("triage").completed_step
    first = ran(incident)[0]
    assert first["command"] == "echo 'web01' '203.0.113.7'"
    assert output(incident, first) == b"web01 203.0.113.7\n"

    # A second address, an hour later: each element typed and quoted; the old record stays.
    incident.set_parameter(
        "attacker_ip", ["203.0.113.7", "2001:DB8::1"], "ben", "a second source in the EDR"
    )
    again = IncidentSession.open(incident.state.id)
    assert again.state.parameters["attacker_ip"] == ["203.0.113.7", "2001:db8::1"]
    change = again.state.parameter_changes[-1]
    assert (change.by, change.previous, change.reason) == (
        "ben",
        ["203.0.113.7"],
        "a second source in the EDR",
    )
    rows = runner(again).commands("triage")["web01"]
    assert rows[0].command == "echo 'web01' '203.0.113.7' '2001:db8::1'"
    assert ran(again)[0]["command"] == "echo 'web01' '203.0.113.7'"


def test_only_an_at_open_parameter_is_needed_to_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IRTOOL_HOME", str(tmp_path / "home"))
    book, _ = _files(tmp_path)
    env = {**os.environ, "IRTOOL_HOME": str(tmp_path / "home")}
    missing = irtool(env, "incident", "new", str(book))
    assert missing.returncode == 2
    assert "parameter 'case' (string) is required" in missing.stderr
    assert "attacker_ip" not in missing.stderr
    opened = irtool(env, "incident", "new", str(book), "--param", "case=IR-9", "--json")
    assert opened.returncode == 0, opened.stderr
    several = irtool(
        env,
        "incident",
        "new",
        str(book),
        "--param",
        "case=IR-9",
        "--param",
        "attacker_ip=203.0.113.7",
        "--param",
        "attacker_ip=198.51.100.2",
        "--json",
    )
    assert several.returncode == 0, several.stderr
    shown = irtool(env, "incident", "show", json.loads(several.stdout)["id"], "--json")
    assert json.loads(shown.stdout)["parameters"]["attacker_ip"] == [
        "203.0.113.7",
        "198.51.100.2",
    ]


# -- indicators -----------------------------------------------------------------------------


def test_indicators_are_kept_as_events_checked_and_used_by_commands_as_a_quoted_list(
    incident: IncidentSession,
) -> None:
    refused(lambda: incident.change_ioc("add", "ip", "not-an-ip", "ann", "r"), "not an IP")
    refused(lambda: incident.change_ioc("add", "colour", "red", "ann", "r"), "not a kind")
    refused(lambda: incident.change_ioc("add", "sha256", "abc", "ann", "r"), "64 hex")
    incident.change_ioc("add", "ip", "203.0.113.7", "ann", "c-ip of the POST")
    incident.change_ioc("add", "ip", "198.51.100.9", "ann", "second address")
    incident.change_ioc("add", "file name", "x'; rm -rf ~; '.aspx", "ann", "the web shell")
    refused(lambda: incident.change_ioc("add", "ip", "203.0.113.7", "ann", "r"), "already")
    incident.change_ioc("remove", "ip", "198.51.100.9", "ben", "a proxy of ours")
    refused(lambda: incident.change_ioc("remove", "ip", "10.0.0.1", "ann", "r"), "is not")
    state = IncidentSession.open(incident.state.id).state
    assert state.iocs == {"ip": ["203.0.113.7"], "file": ["x'; rm -rf ~; '.aspx"]}
    assert [(c.change, c.value) for c in state.ioc_changes][-1] == ("remove", "198.51.100.9")
    rows = runner(incident).commands("contain")
    assert rows["web01"][0].command == "echo block '203.0.113.7'"


# -- scope ----------------------------------------------------------------------------------


def test_scope_grows_as_hosts_are_found_and_later_runs_target_it(
    incident: IncidentSession,
) -> None:
    incident.set_parameter("attacker_ip", ["203.0.113.7"], "ann", "found")
    run = runner(incident)
    assert list(run.commands("triage")) == ["web01"]
    refused(lambda: incident.change_scope("web01", "affected", True, "ann", "r"), "already in")
    refused(lambda: incident.change_scope("web09", "affected", True, "ann", "r"), "--address")
    refused(
        lambda: incident.change_scope(
            "web03", "affected", True, "ann", "r", {"address": "localhost", "port": 70000}
        ),
        "hosts.web03.port: Input should be less than or equal to 65535",
    )
    # A group name the inventory file would refuse is refused here: the fold rebuilds the
    # inventory from the event, so one bad name would break every later opening.
    refused(
        lambda: incident.change_scope("web02", "web servers!", True, "ann", "r"),
        "group: 'web servers!' is not a valid group name",
    )
    incident.change_scope("web02", "affected", True, "ann", "shares the app pool")
    incident.change_scope(
        "web03",
        "affected",
        True,
        "ben",
        "found in the proxy logs",
        {"address": "localhost", "transport": "local"},
    )
    reopened = IncidentSession.open(incident.state.id)
    assert list(runner(reopened).commands("triage")) == ["web01", "web02", "web03"]
    report = runner(reopened).run("triage")
    assert sorted(report.results) == ["web01", "web02", "web03"]
    assert report.completed_step
    assert reopened.state.steps["triage"].note == "collected from 3 host(s)"
    reopened.change_scope("web02", "affected", False, "ann", "a false positive")
    assert list(runner(reopened).commands("triage")) == ["web01", "web03"]
    assert [(c.host, c.change, c.new_host) for c in reopened.state.scope_changes] == [
        ("web02", "add", False),
        ("web03", "add", True),
        ("web02", "remove", False),
    ]


# -- ad-hoc commands --------------------------------------------------------------------------


def test_an_ad_hoc_command_is_kept_with_the_same_custody_marked_ad_hoc(
    incident: IncidentSession,
) -> None:
    run = runner(incident)
    refused(lambda: run.collect_ad_hoc(["web07"], "id", "sh"), "no host web07")
    refused(lambda: run.collect_ad_hoc(["web01"], "id", "cmd"), "cmd runs on Windows hosts")
    refused(lambda: run.collect_ad_hoc(["web01"], " ", "sh"), "needs the command")
    report = run.collect_ad_hoc(["web01", "web02"], "printf 'looked at %s\\n' now", "sh", "look")
    assert not report.failed
    records = ran(incident)
    assert {r["host"] for r in records} == {"web01", "web02"}
    assert all(r["ad_hoc"] and r["step"] is None for r in records)
    assert records[0]["command"] == "printf 'looked at %s\\n' now"
    assert output(incident, records[0]) == b"looked at now\n"
    state = IncidentSession.open(incident.state.id).state
    assert [e.ad_hoc for e in state.evidence] == [True, True]
    assert all(s.status.value == "pending" for s in state.steps.values())


def test_an_ad_hoc_change_needs_a_way_back_stays_listed_until_rolled_back(
    incident: IncidentSession,
) -> None:
    run = runner(incident)
    refused(
        lambda: run.collect_ad_hoc(["web01"], "echo disable", "sh", "stop it", changes=True),
        "needs its rollback",
    )
    refused(
        lambda: run.collect_ad_hoc(["web01"], "echo x", "sh", "", changes=True, rollback="x"),
        "needs a reason",
    )
    report = run.collect_ad_hoc(
        ["web01"], "echo disable", "sh", "stop the handler", changes=True, rollback="echo enable"
    )
    assert not report.failed
    seq = next(r for r in incident.state.runs.values() if r.ad_hoc).seq
    assert report.step == f"ad-hoc-{seq}"
    assert (
        open_items(incident.state)[0] == f"ad-hoc change 'ad-hoc-{seq}' is still applied on web01"
    )
    undone = run.rollback_ad_hoc(seq, reason="handler back")
    assert not undone.failed
    assert [r["command"] for r in ran(incident)] == ["echo disable", "echo enable"]
    assert not any("ad-hoc" in item for item in open_items(incident.state))


# -- not forced into busywork ----------------------------------------------------------------


def test_a_step_started_early_is_worked_and_a_strict_one_waits(incident: IncidentSession) -> None:
    refused(lambda: incident.decide("compromised", "yes", "ann"), "not reachable yet")
    refused(lambda: incident.start_early("compromised", "ann", ""), "needs a reason")
    refused(lambda: incident.start_early("sealed", "ann", "why not"), "is strict")
    refused(lambda: incident.start_early("triage", "ann", "r"), "reachable already")
    refused(lambda: incident.start_early("compromized", "ann", "r"), "did you mean 'compromised'")
    event = incident.start_early("compromised", "ann", "the web shell answered: no need to wait")
    assert event.data["ahead"] == ["triage", "contain"]
    incident.decide("compromised", "yes", "ann")
    state = IncidentSession.open(incident.state.id).state
    assert state.steps["compromised"].early == "the web shell answered: no need to wait"
    assert state.steps["compromised"].status.value == "done"
    assert "rotate" in state.available() and "triage" in state.available()


def test_a_typo_in_a_step_id_says_what_was_meant(incident: IncidentSession) -> None:
    run = runner(incident)
    refused(lambda: run.run("triag"), "no step 'triag' in runbook unfold \\(did you mean 'triage'")
    refused(lambda: run.rollback("contian"), "did you mean 'contain'")
    refused(lambda: incident.complete("lesons", "ann"), "did you mean 'lessons'")


# -- close and after ---------------------------------------------------------------------------


def test_close_lists_what_is_open_and_what_comes_after_is_marked(
    incident: IncidentSession,
) -> None:
    incident.change_ioc("add", "ip", "203.0.113.7", "ann", "c-ip")
    incident.start_early("contain", "ann", "block now, collect after")
    run = runner(incident)
    assert run.run("contain", reason="active attacker").completed_step
    incident.assign_action_item("Patch the upload form", "ben", "ann")
    with pytest.raises(Refused) as refusal:
        incident.close("ann", "contained")
    said = str(refusal.value)
    assert "containment 'contain' is still applied on web01" in said
    assert "action item" in said and "Patch the upload form (ben)" in said
    assert "2 post-mortem question(s) of 'lessons' unanswered" in said
    assert "--over" in said
    closed = incident.close("ann", "contained", over="the block stays until the patch")
    assert closed.data["open_items"][0] == "containment 'contain' is still applied on web01"
    # After close: the post-mortem goes on; nothing runs.
    note = incident.note("review booked for the 14th", "ann")
    answer = incident.answer("lessons", {"1": "a web shell in /uploads"}, "ann")
    item = incident.assign_action_item("Scan all uploads folders", "carol", "ann")
    assert note.data["after_close"] and answer.data["after_close"] and item.data["after_close"]
    refused(lambda: incident.skip("triage", "ann", "late"), "is closed")
    refused(lambda: run.collect_ad_hoc(["web01"], "id", "sh"), "is closed")
    state = IncidentSession.open(incident.state.id).state
    assert state.steps["lessons"].answers == {"What happened?": "a web shell in /uploads"}
    assert state.close_over == "the block stays until the patch"


def test_rotation_items_are_said_one_by_one(incident: IncidentSession) -> None:
    incident.start_early("rotate", "ann", "credentials first")
    refused(
        lambda: incident.complete("rotate", "ann", rotations={"machinekey": (False, " ")}),
        "'machinekey' was not rotated: say why",
    )
    refused(lambda: incident.complete("rotate", "ann", rotations={"x": (True, "")}), "no rotation")
    incident.complete(
        "rotate", "ann", rotations={"deploy": (True, ""), "machinekey": (False, "pending")}
    )
    state = IncidentSession.open(incident.state.id).state
    assert state.steps["rotate"].rotations == {
        "deploy": (True, ""),
        "machinekey": (False, "pending"),
    }


# -- the same from the command line ------------------------------------------------------------


def test_the_cli_sets_learns_scopes_collects_and_closes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    book, inventory = _files(tmp_path)
    env = {**os.environ, "IRTOOL_HOME": str(tmp_path / "home"), "IRTOOL_RESPONDER": "ann"}
    opened = irtool(
        env, "incident", "new", str(book), "--param", "case=IR-1",
        "--inventory", str(inventory), "--json",
    )  # fmt: skip
    assert opened.returncode == 0, opened.stderr
    incident = json.loads(opened.stdout)["id"]
    # A unique prefix is enough, with or without the ir-; one no incident has is refused.
    assert irtool(env, "incident", "show", incident[:-3]).returncode == 0
    assert irtool(env, "incident", "show", incident.removeprefix("ir-")[:-2]).returncode == 0
    unknown = irtool(env, "incident", "show", "ir-1999")
    assert unknown.returncode == 2 and "no incident ir-1999" in unknown.stderr

    waiting = irtool(env, "incident", "run", incident, "triage")
    assert waiting.returncode == 2
    assert f"irtool incident set {incident} attacker_ip VALUE" in waiting.stderr
    done = irtool(
        env, "incident", "set", incident, "attacker_ip", "203.0.113.7", "198.51.100.2",
        "--reason", "two sources",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    added = irtool(
        env, "incident", "scope", incident, "--add", "web04", "--group", "affected",
        "--address", "localhost", "--transport", "local", "--reason", "same pool",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    bad = irtool(
        env, "incident", "scope", incident, "--add", "web05", "--group", "affected",
        "--address", "localhost", "--port", "0", "--reason", "r",
    )  # fmt: skip
    assert bad.returncode == 2 and "hosts.web05.port" in bad.stderr
    ioc = irtool(
        env, "incident", "ioc", incident, "add", "user agent", "sqlmap/1.7", "--reason", "r"
    )
    assert ioc.returncode == 0, ioc.stderr
    run = irtool(env, "incident", "run", incident, "triage")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "ok on 2 of 2 host(s)" in run.stdout
    collected = irtool(
        env, "incident", "collect", incident, "--host", "web04", "--", "echo", "seen",
    )  # fmt: skip
    assert collected.returncode == 0, collected.stderr
    early = irtool(env, "incident", "start", incident, "lessons", "--reason", "write it now")
    assert early.returncode == 0, early.stderr
    shown = json.loads(irtool(env, "incident", "show", incident, "--json").stdout)
    assert shown["parameters"]["attacker_ip"] == ["203.0.113.7", "198.51.100.2"]
    closing = irtool(env, "incident", "close", incident)
    assert closing.returncode == 2 and "unanswered" in closing.stderr
    assert irtool(env, "incident", "close", incident, "--over", "review Monday").returncode == 0
    after = irtool(env, "incident", "answer", incident, "lessons", "--answer", "1=a web shell")
    assert after.returncode == 0, after.stderr


def test_open_without_an_id_takes_the_latest_open_incident_or_says_there_is_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from irtool.cli.tui import _latest_open

    book, _ = _files(tmp_path)
    env = {**os.environ, "IRTOOL_HOME": str(tmp_path / "home"), "IRTOOL_RESPONDER": "ann"}
    none = irtool(env, "open")
    assert none.returncode == 2 and "no incident yet" in none.stderr

    def opened() -> str:
        made = irtool(env, "incident", "new", str(book), "--param", "case=IR-1", "--json")
        assert made.returncode == 0, made.stderr
        return str(json.loads(made.stdout)["id"])

    first, second = opened(), opened()
    over = ["--over", "a test"]
    assert irtool(env, "incident", "close", second, *over).returncode == 0
    monkeypatch.setenv("IRTOOL_HOME", env["IRTOOL_HOME"])
    assert _latest_open() == first  # the later one is closed
    assert irtool(env, "incident", "close", first, *over).returncode == 0
    closed = irtool(env, "open")
    assert closed.returncode == 2
    assert "no open incident" in closed.stderr and second in closed.stderr


def test_a_step_finished_over_two_runs_says_so_and_a_rerun_of_a_done_step_adds_evidence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bug 10: after a partial run and a --host re-run the step said "collected from 1
    host(s)"; a re-run of a done step said it "stays open"."""
    from tests.support.runbooks import open_collect_incident

    flag = tmp_path / "web02-ready"
    hosts = {
        "web01": {"address": "localhost", "transport": "local", "vars": {"flag": str(tmp_path)}},
        "web02": {"address": "localhost", "transport": "local", "vars": {"flag": str(flag)}},
    }
    session = open_collect_incident(
        tmp_path, monkeypatch, hosts, command="test -e {{ host.vars.flag }}"
    )
    run = runner(session)
    first = run.run("collect")
    assert sorted(first.failed) == ["web02"] and not first.completed_step
    assert run.failed_hosts("collect") == ["web02"]
    flag.touch()
    again = run.run("collect", ["web02"])
    assert again.completed_step
    assert session.state.steps["collect"].note == "collected from 2 host(s) over 2 runs"
    assert run.failed_hosts("collect") == []
    flag.unlink()
    third = run.run("collect", ["web02"])
    assert third.failed and not third.completed_step
    assert third.outcome() == (
        "step 'collect' was already done: this run adds evidence; what arrived is kept as evidence"
    )
    assert "stays open" not in third.outcome()


@pytest.mark.parametrize(
    "line",
    [
        'dir "C:\\inetpub\\wwwroot" /s /b | findstr /i ".aspx"',
        "echo it's ' ; Remove-Item C:\\ -Recurse ; '",
        "echo \u2019); Stop-Computer; (\u2018 & ver",
        "type %SystemRoot%\\System32\\inetsrv\\config\\applicationHost.config",
    ],
)
def test_a_cmd_line_reaches_cmd_exe_as_typed_inside_powershell_that_parses(line: str) -> None:
    """There is no Windows host here: the wrapper is checked at the syntax level. The line is
    one PowerShell verbatim literal whose value is the line, and the script parses whole."""
    from irtool.engine.adhoc import cmd_script
    from tests.support.powershell import decode_verbatim, syntax_problems

    script = cmd_script(line)
    assert not syntax_problems(script), syntax_problems(script)
    first = script.splitlines()[0]
    assert first.startswith("$line = ")
    assert decode_verbatim(first.removeprefix("$line = ")) == line
    assert "'/d /s /c \"' + $line + '\"'" in script


def test_cmd_is_refused_for_a_linux_host_and_for_more_than_one_line(
    incident: IncidentSession,
) -> None:
    run = runner(incident)
    refused(lambda: run.ad_hoc_commands(["web01"], "ver", "cmd"), "cmd runs on Windows hosts")
    incident.change_scope(
        "iis01", "affected", True, "ann", "the Windows box",
        {"address": "192.0.2.10", "transport": "winrm"},
    )  # fmt: skip
    assert list(run.ad_hoc_commands(["iis01"], "ver", "cmd")) == ["iis01"]
    refused(lambda: run.ad_hoc_commands(["iis01"], "ver\nver", "cmd"), "one line")


def _at_terminal(env: dict[str, str], args: list[str], answer: str) -> tuple[int, str, str]:
    """Run irtool with a pseudo-terminal for stdin and stderr (where the confirmation asks),
    answer its question once it is asked; (status, stdout, what the terminal showed)."""
    import pty
    import select
    import subprocess
    import sys
    import time

    master, slave = pty.openpty()
    command = [sys.executable, "-m", "irtool", *args]
    proc = subprocess.Popen(command, stdin=slave, stdout=subprocess.PIPE, stderr=slave, env=env)
    os.close(slave)
    shown = b""
    deadline = time.monotonic() + 60
    try:
        while b"to go on" not in shown:
            assert time.monotonic() < deadline, shown.decode(errors="replace")
            ready, _, _ = select.select([master], [], [], 1)
            if ready:
                shown += os.read(master, 4096)
        os.write(master, answer.encode() + b"\r")
        out, _ = proc.communicate(timeout=60)
        while select.select([master], [], [], 0.2)[0]:
            try:
                shown += os.read(master, 4096)
            except OSError:
                break
    finally:
        os.close(master)
    return proc.returncode, out.decode(), shown.decode(errors="replace")


def test_an_ad_hoc_change_is_shown_and_confirmed_at_a_terminal(tmp_path: Path) -> None:
    book, inventory = _files(tmp_path)
    env = {**os.environ, "IRTOOL_HOME": str(tmp_path / "home"), "IRTOOL_RESPONDER": "ann"}
    opened = irtool(
        env, "incident", "new", str(book), "--param", "case=IR-1",
        "--inventory", str(inventory), "--json",
    )  # fmt: skip
    incident = json.loads(opened.stdout)["id"]
    change = [
        "incident", "collect", incident, "--host", "web01", "--changes",
        "--rollback", "echo enable", "--reason", "stop the handler", "--", "echo", "disable",
    ]  # fmt: skip
    status, out, shown = _at_terminal(env, change, "web02")
    assert status == 1 and "expected 'web01'; nothing was run" in shown
    assert "--- on web01 (sh):\r\necho disable" in shown and "rollback: echo enable" in shown
    status, out, shown = _at_terminal(env, change, "web01")
    assert status == 0, shown
    assert "ok on 1 of 1 host(s)" in out
    listed = irtool(env, "incident", "show", incident, "--json")
    assert json.loads(listed.stdout)["open_items"][0].startswith("ad-hoc change 'ad-hoc-")


def test_re_applying_a_partly_applied_action_reaches_only_the_hosts_it_is_not_on(
    incident: IncidentSession,
) -> None:
    """Re-applying a partly failed action hit every host again; now a run without --host
    (and the confirmation that shows it) reaches the hosts it is not applied on yet."""
    incident.change_ioc("add", "ip", "203.0.113.7", "ann", "c-ip")
    incident.change_scope("web02", "affected", True, "ann", "same pool")
    incident.start_early("contain", "ann", "block first")
    run = runner(incident)
    assert run.unapplied_hosts("contain") is None  # applied nowhere: every host
    first = run.run("contain", ["web01"], reason="active attacker")
    assert not first.completed_step and first.outstanding == ["web02"]
    assert run.unapplied_hosts("contain") == ["web02"]
    again = run.run("contain", reason="the rest")
    assert list(again.results) == ["web02"] and again.completed_step
    applied = [r["host"] for r in ran(incident) if r["purpose"] == "action"]
    assert applied == ["web01", "web02"]  # web01 once, not twice
