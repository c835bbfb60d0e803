"""Two recorded incidents that hold every kind of event, built the same way every time.

A live one (every command, a warning, an unreachable host, a fetched file, the agenda, the
two-person rule, a rollback, a correction, a handover) and an exercise (injects, the clock
paused, observations). Fixed clock, fixed ids, relative paths and the local transport printing
fixed text: the same journal, byte for byte, on every run, for the exports' golden files.
Call with the working directory set to an empty folder (pytest's monkeypatch.chdir).
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from irtool.analysis.hunts import FindingDraft
from irtool.engine.findings import judge_finding, raise_findings, record_analysis
from irtool.engine.runner import Runner
from irtool.engine.session import IncidentSession
from irtool.evidence.store import EvidenceStore
from irtool.exercise import director
from irtool.exercise.setup import load_exercise, open_exercise
from irtool.exercise.transports import transports_for
from irtool.journal.incidents import EVIDENCE_DIR, incident_dir
from irtool.model.context import load_context
from irtool.model.inventory import ResolvedHost
from irtool.remote.base import Deadline, Failure, HostFailure
from irtool.remote.local import LocalConnection, LocalTransport
from tests.support.clock import Clock
from tests.support.drill import CONTACTS, RUNBOOK, drill_scenario
from tests.support.remote import NamelessLocal

T0 = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
# Markup in a note (a pasted log line, an attacker's file name): every report shows it as text
# and loads nothing.
HOSTILE_NOTE = (
    '<img src="http://canary.invalid/note.png"> & ![x](http://canary.invalid/x.png) '
    "\\<img src=http://canary.invalid/escaped.png> `a` <http://canary.invalid/auto> | C:\\inetpub"
)

FULL_RUNBOOK = """\
id: full
title: Web shell on the shop
summary: Every kind of step, for the export tests.
version: "2"
severity: high
applies_to: [iis]
triggers: [A web shell is found]
activation:
  may_activate: [security]
roles: [security, server-management]
parameters:
  attacker_ip: {type: ip, description: Where the attack comes from}
phases:
  - id: activate
    title: Activate
    steps:
      - {id: assess, type: manual, title: Record the trigger, checklist: [Written down]}
      - {id: call-team, type: notify, title: Call the team, roles: [security, server-management]}
      - id: kickoff
        type: agenda
        title: First meeting
  - id: triage
    title: Triage
    steps:
      - id: is-compromise
        type: decision
        title: Is it a compromise?
        question: Is the host compromised?
        options:
          - {id: confirmed, label: Confirmed}
          - {id: false-positive, label: False positive, next: lessons}
      - id: collect-state
        type: collect
        title: Processes and listeners
        shell: sh
        timeout: 20
        targets: [group:fleet]
        commands:
          - {id: name, title: Name, command: "echo collected-on-{{ host.name }}"}
          - {id: listen, title: Listeners, command: "echo 'tcp LISTEN 0.0.0.0:443 | w3wp'"}
      - id: block
        type: action
        title: Block the attacker
        shell: sh
        timeout: 20
        approvals: 2
        targets: [host:web01]
        command: "echo {{ attacker_ip }} > {{ host.vars.marker }}"
        rollback: "rm {{ host.vars.marker }}"
      - id: rotate-creds
        type: rotate
        title: Rotate what the host held
        items:
          - {id: deploy, kind: deployment, title: Web Deploy publishing user}
          - {id: db, kind: database, title: Shop database login}
      - {id: legacy-check, type: manual, title: Check the legacy host}
  - id: learn
    title: Learn
    steps:
      - id: lessons
        type: postmortem
        title: Lessons learned
        questions: ["What happened, and when?", "What would we do differently?"]
"""

CAST = """\
team: Shop team
people:
  ann: {name: Ann, timezone: UTC, phone: "+1 555 0100"}
  ben: {name: Ben, timezone: Europe/London, email: ben@example.org}
  cy: {name: Cy, timezone: UTC, phone: "+1 555 0102"}
roles:
  security: {title: Security, primary: ann, backups: [ben, cy]}
  server-management: {title: Servers, primary: ben, backups: [cy]}
"""


def FixedLocal() -> NamelessLocal:
    """The local transport with an identity that does not name this machine, and a warning."""
    return NamelessLocal("local export-host", ("clock skew 2 s",))


class Unreachable(LocalTransport):
    def connect(self, host: ResolvedHost, deadline: Deadline) -> LocalConnection:
        raise HostFailure(Failure.UNREACHABLE, f"{host.address}:22: connection timed out")


def _finding(session: IncidentSession, hunt: str) -> int:
    return next(seq for seq, f in session.state.findings.items() if f.hunt == hunt)


def live_incident(folder: Path) -> str:
    """Every live event kind; returns the incident id."""
    hosts = {
        "web01": {"address": "127.0.0.1", "transport": "local", "groups": ["fleet"]},
        "web02": {"address": "192.0.2.12", "transport": "ssh", "groups": ["fleet"]},
    }
    hosts["web01"]["vars"] = {"marker": "web01.block"}
    (folder / "full.yaml").write_text(FULL_RUNBOOK)
    (folder / "cast.yaml").write_text(CAST)
    (folder / "hosts.yaml").write_text(yaml.safe_dump({"hosts": hosts}))
    (folder / "u_ex261121.log").write_text("2026-11-21 01:58:00 POST /aspnet_client/x.aspx 200\n")
    context, _ = load_context(Path("full.yaml"), Path("cast.yaml"), Path("hosts.yaml"))
    clock = Clock(T0)
    session = IncidentSession.new(
        context.runbook,
        {"attacker_ip": "203.0.113.7"},
        actor="ann",
        contacts=context.contacts,
        inventory=context.inventory,
        clock=clock,
    )
    store = EvidenceStore(incident_dir(session.state.id) / EVIDENCE_DIR)
    transports = {
        # An identity that does not name this machine, and a warning.
        "local": NamelessLocal("local export-host", ("clock skew 2 s",)),
        "ssh": Unreachable(),
    }
    runner = Runner(
        session, transports, store, "ann", clock=clock, pool=1, process=(4242, "export-host")
    )

    def fetched_and_hunted() -> None:
        """The log fetched, what the hunts raise over it (as `irtool analyze ID` would), and
        the team's verdicts: in one minute of the script, so the later times stand."""
        runner.fetch("web01", "u_ex261121.log", step="collect-state")
        found_in_the_log()
        judge_finding(
            session, _finding(session, "iis-webshell"), "confirmed", "cy", "the upload of x.aspx"
        )
        judge_finding(
            session, _finding(session, "iis-admin-paths"), "dismissed", "ben", "our own monitoring"
        )

    def found_in_the_log() -> None:
        fetched = next(e for e in session.state.evidence if e.purpose == "fetch")
        sha256 = str(fetched.files["file"]["sha256"])
        raised = raise_findings(
            session,
            "ann",
            [
                FindingDraft(
                    hunt="iis-webshell",
                    version="1",
                    severity="critical",
                    title="Web shell",
                    summary="198.51.100.23 POSTed 3 times to /uploads/x.aspx (200)",
                    hosts=("web01",),
                    first_seen="2026-11-21T01:10:00+00:00",
                    last_seen="2026-11-21T01:12:00+00:00",
                    count=3,
                    refs=((sha256, "web01:u_ex261121.log", 2),),
                    key="iis-webshell:/uploads/x.aspx",
                ),
                FindingDraft(
                    hunt="iis-admin-paths",
                    version="1",
                    severity="medium",
                    title="Administrative paths",
                    summary="10.0.0.5 asked for /admin 2 times (404)",
                    hosts=("web01",),
                    first_seen="2026-11-21T00:40:00+00:00",
                    last_seen="2026-11-21T00:41:00+00:00",
                    count=2,
                    refs=((sha256, "web01:u_ex261121.log", 3),),
                    key="iis-admin-paths:10.0.0.5",
                ),
            ],
        )
        record_analysis(
            session,
            "ann",
            step=None,
            evidence=[sha256],
            requests=4,
            hunts=["iis-webshell@1", "iis-admin-paths@1"],
            rules=["sigma:iis-webshell-command-words@2026-12-07"],
            unconvertible=["rules/count.yml:9:5: aggregations (| count()) are not supported"],
            findings=[e.seq for e in raised],
            warnings=0,
        )

    def from_a_slow_clock() -> None:
        """A scribe whose laptop's clock is three minutes behind: the journal says so."""
        clock.now -= timedelta(minutes=3)
        session.note("typed on a laptop whose clock is slow", "ben")

    script = [
        lambda: session.complete("assess", "ann", "help desk ticket 4711", ["Written down"]),
        lambda: session.note("w3wp.exe spawned cmd.exe", "ben", T0 - timedelta(minutes=50)),
        lambda: session.correct(3, "ben", "it was whoami", text="w3wp.exe spawned whoami.exe"),
        lambda: session.reach("security", "ann", "no-answer", "ann", "phone"),
        lambda: session.reach("security", "ben", "left-message", "ann", "email"),
        lambda: session.escalate("security", "ann", "no call back in 10 minutes"),
        lambda: session.reach("security", "cy", "reached", "ann", "phone"),
        lambda: session.reach("server-management", "ben", "reached", "ann", "email"),
        lambda: session.complete("call-team", "ann"),
        lambda: session.start_early("rotate-creds", "ben", "the deploy password sat in web.config"),
        lambda: session.set_parameter("attacker_ip", ["198.51.100.23"], "ben", "the proxy log"),
        lambda: session.change_ioc("add", "ip", "198.51.100.23", "ben", "c-ip of the upload"),
        lambda: session.change_ioc("add", "file", "x.aspx", "ben", "the web shell"),
        lambda: session.change_ioc("remove", "file", "x.aspx", "cy", "renamed: see the hash"),
        lambda: session.change_scope("web01", "affected", True, "ann", "the shell is there"),
        lambda: session.open_meeting("kickoff", "ann"),
        lambda: session.close_meeting(
            "ann",
            {"threat": "web shell on web01 | via upload", "strategy": "triage, then contain"},
            T0 + timedelta(hours=1),
        ),
        lambda: session.complete("kickoff", "ann"),
        lambda: session.decide("is-compromise", "confirmed", "cy", "shell found"),
        lambda: runner.run("collect-state"),
        fetched_and_hunted,
        lambda: runner.collect_ad_hoc(["web01"], "echo one more look", "sh", "a listener?"),
        lambda: session.complete("collect-state", "ann", "web02 unreachable: by hand"),
        lambda: session.request_action("block", "ann", "web shell confirmed"),
        lambda: session.approve("block", "cy"),
        lambda: runner.run("block"),
        lambda: runner.rollback("block", reason="false alarm on the address"),
        lambda: session.set_reconvene(T0 + timedelta(hours=2), "ann"),
        lambda: session.complete("rotate-creds", "ben", "both rotated", []),
        lambda: session.skip("legacy-check", "ann", "no legacy host in scope"),
        lambda: session.assign_action_item(
            "patch the upload handler", "ben", "ann", due=date(2026, 11, 28)
        ),
        lambda: session.handover("cy", "ann"),
        lambda: session.complete(
            "lessons",
            "cy",
            "held with the web team",
            answers={
                "1": "web shell uploaded 01:10, found 02:00, contained 02:19",
                "What would we do differently?": "patch the upload handler faster",
            },
        ),
        from_a_slow_clock,
        lambda: session.note(HOSTILE_NOTE, "ben"),
        lambda: session.close(
            "cy",
            "Web shell on web01 removed; no data taken.",
            over="the action item is the web team's; tracked in their backlog",
        ),
        lambda: session.answer(
            "lessons", {"2": "patch the upload handler faster; watch the upload folder"}, "cy"
        ),
    ]
    for minute, step in enumerate(script, start=1):
        clock.now = T0 + timedelta(minutes=minute)
        step()
    session.close_journal()
    return session.state.id


def exercise_incident(folder: Path) -> str:
    """Every exercise event kind, on the drill and its scenario; returns the incident id."""
    (folder / "drill.yaml").write_text(RUNBOOK)
    (folder / "contacts.yaml").write_text(CONTACTS)
    (folder / "scenario.yaml").write_text(drill_scenario(Path("/srv")))
    played, _ = load_exercise(Path("drill.yaml"), Path("scenario.yaml"), Path("contacts.yaml"))
    clock = Clock(T0)
    session = open_exercise(played, {"attacker_ip": "203.0.113.9"}, "fiona", clock)
    store = EvidenceStore(incident_dir(session.state.id) / EVIDENCE_DIR)
    simulated = transports_for(session.state, lambda: {})
    runner = Runner(
        session, simulated, store, "ann", clock=clock, pool=1, process=(4242, "export-host")
    )
    script = [
        (20, lambda: session.complete("assess", "ann")),
        (30, lambda: session.reach("security", "ann", "no-answer", "ann")),
        (35, lambda: session.reach("security", "ben", "reached", "ann")),
        (40, lambda: session.reach("server-management", "ben", "reached", "ann")),
        (45, lambda: session.complete("call-team", "ann")),
        (61, lambda: director.tick(session, "fiona", clock())),
        (70, lambda: session.pause_clock("fiona", "discussion")),
        (130, lambda: session.resume_clock("fiona")),
        (140, lambda: session.decide("is-compromise", "confirmed", "ann")),
        (150, lambda: runner.run("collect-state")),
        (160, lambda: session.handle_inject("defaced", "ben", "holding page up")),
        (
            165,
            lambda: session.fire_inject("press", "fiona", title="The press calls", to="security"),
        ),
        (170, lambda: session.observe("The IC never named a scribe.", "fiona")),
        (180, lambda: session.close("ann", "exercise over", over="an exercise: left as played")),
    ]
    for second, step in script:
        clock.now = T0 + timedelta(seconds=second)
        step()
    session.close_journal()
    return session.state.id


def record_both(folder: Path) -> dict[str, Any]:
    """Both incidents under `folder/home`: their ids ("live", "exercise"), the environment
    that finds them ("env") and the home directory ("home")."""
    home = folder / "home"
    patch = pytest.MonkeyPatch()
    patch.setenv("IRTOOL_HOME", str(home))
    patch.setattr("irtool.journal.incidents.secrets.token_hex", lambda n: "0e1f")
    patch.chdir(folder)
    try:
        live = live_incident(folder)
        patch.setattr("irtool.journal.incidents.secrets.token_hex", lambda n: "e7e7")
        exercise = exercise_incident(folder)
    finally:
        patch.undo()
    env = {**os.environ, "IRTOOL_HOME": str(home)}
    return {"live": live, "exercise": exercise, "env": env, "home": home}
