"""A runbook's analyze step: the hunts and Sigma rules over the web logs its sources
collected, each hit a finding tied to the step, each analysis recorded; the compromise
runbook's tabletop finds its own web shell; what a step names is checked before it runs; the
exports carry the findings (Timesketch at the first matching request)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from irtool.engine import kinds
from irtool.engine.findings import analyze_incident
from irtool.engine.runner import Runner
from irtool.engine.session import IncidentSession
from irtool.evidence.store import EvidenceStore
from irtool.exercise.setup import ExerciseContext, load_exercise, open_exercise
from irtool.exercise.transports import transports_for
from irtool.journal.incidents import EVIDENCE_DIR, incident_dir
from irtool.model.loader import Loaded, load_inventory, load_runbook
from irtool.model.plan import resolve_parameters
from irtool.remote.local import LocalTransport
from irtool.tui.app import IrtoolApp
from tests.support.cli import irtool
from tests.support.runbooks import runbook
from tests.support.tui import notifications, opened, screen_text, select_step, wait_for
from tests.support.weblog import write_log

ROOT = Path(__file__).resolve().parent.parent
SHELL = "/aspnet_client/system_web/4_0_30319/errors.aspx"
ATTACKER = "203.0.113.47"


def tabletop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[IncidentSession, Path]:
    """The shipped compromise exercise with triage-copies run on web01: its W3SVC logs (the
    scenario's, behind the load balancer) are evidence."""
    monkeypatch.setenv("IRTOOL_HOME", str(tmp_path / "home"))
    exercise, _ = load_exercise(ROOT / "runbooks" / "iis-compromise.yaml")
    loaded = exercise.scenario
    assert isinstance(loaded, Loaded)
    quick = loaded.model.model_copy(update={"speed": 120.0})
    exercise = ExerciseContext(
        exercise.context, Loaded(loaded.kind, quick, loaded.doc), exercise.inventory
    )
    values = resolve_parameters(exercise.context.runbook.model, exercise.parameters({}))
    session = open_exercise(exercise, values, "fiona")
    evidence = incident_dir(session.state.id) / EVIDENCE_DIR
    runner = Runner(
        session,
        transports_for(session.state, lambda: pytest.fail("an exercise reached for a host")),
        EvidenceStore(evidence),
        "fiona",
    )
    report = runner.run("triage-copies", ["web01"])
    assert not report.failed
    return session, evidence


def test_the_tabletop_finds_its_web_shell_behind_the_load_balancer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, evidence = tabletop(tmp_path, monkeypatch)
    done = analyze_incident(session, EvidenceStore(evidence), "fiona", step="triage-review")
    findings = {e.data["hunt"]: e for e in done.raised}
    shell = findings["iis-webshell"]
    assert shell.data["step"] == "triage-review"
    assert shell.data["severity"] == "critical"
    # Every request reached the server from the load balancer (c-ip 10.20.1.5): the client
    # is the X-Forwarded-For address, and the portal's own pages, reached by many clients
    # through the same balancer, are not web shells.
    assert SHELL in shell.data["summary"] and ATTACKER in shell.data["summary"]
    assert not [
        e for e in done.raised if e.data["hunt"] == "iis-webshell" and "login.aspx" in str(e.data)
    ]
    store = EvidenceStore(evidence)
    for ref in shell.data["refs"]:
        line = store.path(ref["sha256"]).read_text().splitlines()[ref["line"] - 1]
        assert SHELL in line and ATTACKER in line
    assert shell.data["first_seen"].startswith("2026-11-12T02:16:43")

    ran = session.state.analyses[-1]
    assert ran.step == "triage-review" and len(ran.evidence) == 2
    assert ran.findings == [e.seq for e in done.raised]
    logs = [store.path(sha).read_text().splitlines() for sha in ran.evidence]
    assert ran.requests == sum(not line.startswith("#") for lines in logs for line in lines)
    assert ran.hunts and ran.rules, "every hunt and every shipped Sigma rule by default"

    again = analyze_incident(session, EvidenceStore(evidence), "fiona", step="triage-review")
    assert again.raised == []
    assert session.state.analyses[-1].findings == []
    kinds_written = [e.kind for e in session.journal.events()]
    assert kinds_written.count(kinds.ANALYSIS_RAN) == 2


def test_the_tabletop_stacks_the_farm_and_finds_its_backdoor_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The scenario's story: a malicious native module and a scheduled task on two of the
    # three farm members. Stacking the triage's records shows both without reading any JSON.
    session, evidence = tabletop(tmp_path, monkeypatch)
    runner = Runner(
        session,
        transports_for(session.state, lambda: pytest.fail("an exercise reached for a host")),
        EvidenceStore(evidence),
        "fiona",
    )
    for step in ("triage-iis-config", "triage-persistence"):
        assert not runner.run(step, None).failed
    done = analyze_incident(session, EvidenceStore(evidence), "fiona", step="triage-review")
    rare = {(e.data["hunt"], tuple(e.data["hosts"])): e.data["summary"] for e in done.raised}
    module = rare[("stack:global-module", ("web01", "web02"))]
    assert "CacheHelperModule" in module and "2 of 3 hosts" in module
    assert "WebCacheRefresh" in rare[("stack:scheduled-task", ("web01", "web02"))]
    # UriCacheModule is on every member (its hash differs by patch level): not rare
    assert not [s for s in rare.values() if "UriCacheModule" in s]
    assert session.state.analyses[-1].records_from == ["web01", "web02", "web03", "web04"]


def two_logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[IncidentSession, Path]:
    """An incident whose collect step kept two web logs, by collectors `front` and `back`;
    the analyze step reads only `front`'s."""
    monkeypatch.setenv("IRTOOL_HOME", str(tmp_path / "home"))
    tmp_path.mkdir(exist_ok=True)
    front, back = tmp_path / "front.log", tmp_path / "back.log"
    write_log(front, lines=3_000, seed=1)
    write_log(back, lines=3_000, seed=2)
    steps = f"""\
- id: logs
  type: collect
  title: Logs
  shell: sh
  timeout: 20
  targets: [all]
  commands:
    - id: front
      title: The front's log
      command: cat {front}
    - id: back
      title: The back's log
      command: cat {back}
- id: read-front
  type: analyze
  title: Read the front's findings
  sources: [logs/front]
  hunts: [iis-webshell]
  rules: []
"""
    (tmp_path / "book.yaml").write_text(runbook("two", "Two logs", steps))
    hosts = {"web01": {"address": "127.0.0.1", "transport": "local"}}
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump({"hosts": hosts}))
    session = IncidentSession.new(
        load_runbook(tmp_path / "book.yaml"),
        {},
        actor="ann",
        inventory=load_inventory(tmp_path / "inventory.yaml"),
    )
    evidence = incident_dir(session.state.id) / EVIDENCE_DIR
    report = Runner(session, {"local": LocalTransport()}, EvidenceStore(evidence), "ann").run(
        "logs"
    )
    assert not report.failed
    return session, evidence


def test_an_analyze_step_reads_only_its_sources_even_when_the_store_holds_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, evidence = two_logs(tmp_path, monkeypatch)
    kept = {e.item: e.files["stdout"]["sha256"] for e in session.state.evidence}
    whole = analyze_incident(session, EvidenceStore(evidence), "ann", only=["iis-webshell"])
    assert whole.requests == 6_000
    shells = [e for e in whole.raised if e.data["hunt"] == "iis-webshell"]
    assert {r["sha256"] for e in shells for r in e.data["refs"]} == set(kept.values())

    step = analyze_incident(session, EvidenceStore(evidence), "ann", step="read-front")
    ran = session.state.analyses[-1]
    assert (ran.step, ran.requests, ran.evidence) == ("read-front", 3_000, [kept["front"]])
    assert [h.split("@")[0] for h in ran.hunts] == ["iis-webshell"] and ran.rules == []
    # Its findings stand on the front's lines only (the whole analysis's shell stood on both
    # logs: on other evidence, so the step's is a finding of its own), and once.
    assert step.raised
    assert {r["sha256"] for e in step.raised for r in e.data["refs"]} == {kept["front"]}
    assert all(e.data["step"] == "read-front" for e in step.raised)
    again = analyze_incident(session, EvidenceStore(evidence), "ann", step="read-front")
    assert again.raised == []

    # Another incident with the same logs, analysed by the step alone: the front's shell is
    # raised, never the back's.
    alone, _ = two_logs(tmp_path / "again", monkeypatch)
    kept = {e.item: e.files["stdout"]["sha256"] for e in alone.state.evidence}
    raised = analyze_incident(
        alone, EvidenceStore(incident_dir(alone.state.id) / EVIDENCE_DIR), "ann", step="read-front"
    ).raised
    assert raised and {r["sha256"] for e in raised for r in e.data["refs"]} == {kept["front"]}


def test_what_an_analyze_step_names_is_checked_with_its_place(tmp_path: Path) -> None:
    steps = """\
- id: logs
  type: collect
  title: Logs
  shell: sh
  targets: [all]
  commands:
    - id: front
      title: Front
      command: cat /var/log/front.log
- id: read
  type: analyze
  title: Read
  sources: [logs/front, logs/nope, nothing, later]
  hunts: [iis-webshell, iis-no-such-hunt]
- id: later
  type: collect
  title: Later
  shell: sh
  targets: [all]
  command: cat /var/log/later.log
"""
    book = tmp_path / "book.yaml"
    book.write_text(runbook("named", "Named", steps))
    checked = irtool({**os.environ}, "validate", str(book))
    assert checked.returncode == 2, checked.stdout
    said = checked.stderr.splitlines()
    text = book.read_text().splitlines()

    def at(problem: str) -> str:
        line = next(s for s in said if problem in s)
        number = int(line.split(":")[1])
        return text[number - 1]

    assert "logs/nope" in at("step 'logs' has no collector 'nope' (it has: front)")
    assert "nothing" in at("'nothing' is not a collect step")
    assert "later" in at("'later' comes after this step")
    assert "iis-no-such-hunt" in at("no hunt 'iis-no-such-hunt'")
    assert not any("no hunt 'iis-webshell'" in s for s in said)


def test_the_exports_carry_the_findings_and_timesketch_has_them_at_their_first_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, evidence = tabletop(tmp_path, monkeypatch)
    done = analyze_incident(session, EvidenceStore(evidence), "fiona", step="triage-review")
    shell = next(e for e in done.raised if e.data["hunt"] == "iis-webshell")
    session.close_journal()
    env = {**os.environ, "IRTOOL_RESPONDER": "fiona"}
    judged = irtool(env, "findings", session.state.id, "--confirm", str(shell.seq),
                    "--reason", "errors.aspx is ASPXSpy")  # fmt: skip
    assert judged.returncode == 0, judged.stderr

    exported = irtool(env, "export", session.state.id, "--format", "timesketch")
    assert exported.returncode == 0, exported.stderr
    rows = [json.loads(line) for line in exported.stdout.splitlines()]
    first = [r for r in rows if r["timestamp_desc"] == "First seen"]
    assert len(first) == len(done.raised)
    row = next(r for r in first if r["seq"] == shell.seq)
    assert row["datetime"].startswith("2026-11-12T02:16:43")
    assert SHELL in row["message"] and row["host"] == "web01"
    assert row["evidence_sha256"] == " ".join(
        dict.fromkeys(r["sha256"] for r in shell.data["refs"])
    )
    times = [r["timestamp"] for r in rows]
    assert times == sorted(times), "one timeline, in time order"
    raised_row = next(
        r for r in rows if r["seq"] == shell.seq and r["timestamp_desc"] != "First seen"
    )
    assert raised_row["timestamp"] > row["timestamp"]  # found days after it began

    document = json.loads(irtool(env, "export", session.state.id, "--format", "json").stdout)
    found = {f["seq"]: f for f in document["state"]["findings"]}
    assert set(found) == {e.seq for e in done.raised}
    assert found[shell.seq]["status"] == "confirmed"
    assert found[shell.seq]["reason"] == "errors.aspx is ASPXSpy"
    assert found[shell.seq]["refs"] == shell.data["refs"]

    report = irtool(env, "export", session.state.id, "--format", "markdown").stdout
    assert "errors.aspx is ASPXSpy" in report and SHELL in report


@pytest.mark.usefixtures("live_home")
async def test_the_ui_runs_an_analyze_step_and_shows_its_findings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, _ = tabletop(tmp_path, monkeypatch)
    session.start_early("triage-review", "fiona", "the logs are in: read them now")
    session.close_journal()
    app = IrtoolApp(actor="fiona", incident=session.state.id)
    async with app.run_test(size=(160, 50)) as pilot:
        await opened(pilot)
        await select_step(pilot, "triage-review")
        await wait_for(
            pilot, lambda: "r runs the analysis" in screen_text(app), what="the step's detail"
        )
        await pilot.press("r")
        await wait_for(
            pilot,
            lambda: any("new finding(s)" in n for n in notifications(app)),
            what="the analysis",
        )
        await wait_for(pilot, lambda: "Findings (" in screen_text(app), what="the findings")
        text = screen_text(app)
        assert "CRITICAL" in text and SHELL in text
        assert "analysed by fiona" in text
