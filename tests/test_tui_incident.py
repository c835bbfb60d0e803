"""A whole incident through the terminal UI (Textual's pilot), with collect and containment run
against real sshd hosts on 127.0.0.1 and a second responder writing from another terminal."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from irtool.engine.session import IncidentSession
from irtool.journal import Journal
from irtool.model.context import load_context
from irtool.tui.app import IrtoolApp
from irtool.tui.screens.calltree import CallTreeScreen
from irtool.tui.screens.confirm import ConfirmAction
from irtool.tui.screens.evidence import EvidenceScreen
from irtool.tui.screens.incident import IncidentScreen
from irtool.tui.screens.run import RunScreen
from tests.support.cli import irtool
from tests.support.drill import CONTACTS, RUNBOOK
from tests.support.sshd import SshdFarm
from tests.support.tui import notifications, screen_text, wait_for


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdFarm]:
    with SshdFarm(tmp_path_factory.mktemp("sshd"), count=2) as started:
        yield started


@pytest.fixture
def drill(farm: SshdFarm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("IRTOOL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("IRTOOL_KEYMAP", str(tmp_path / "no-keymap.yaml"))
    hosts = {
        f"web0{i + 1}": {
            "address": "127.0.0.1",
            "port": farm[i].port,
            "transport": "ssh",
            "user": farm.user,
            "auth": "key",
            "identity_file": str(farm.client_key),
            "host_key": farm[i].fingerprint,
            "connect_timeout": 5,
            "groups": ["fleet"],
            "vars": {"marker": str(tmp_path / f"blocked-web0{i + 1}")},
        }
        for i in range(2)
    }
    (tmp_path / "drill.yaml").write_text(RUNBOOK)
    (tmp_path / "contacts.yaml").write_text(CONTACTS)
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump({"hosts": hosts}))
    context, _ = load_context(
        tmp_path / "drill.yaml", tmp_path / "contacts.yaml", tmp_path / "inventory.yaml"
    )
    return {"context": context, "dir": tmp_path, "env": {**os.environ}}


def journal_events(app: IrtoolApp) -> list[Any]:
    incident = next(s for s in app.screen_stack if isinstance(s, IncidentScreen))
    with Journal(incident.session.journal.path, incident.session.state.id) as journal:
        return list(journal.events())


async def test_a_whole_incident_from_start_to_close(drill: dict[str, Any]) -> None:
    app = IrtoolApp(actor="ann", context=drill["context"])
    async with app.run_test(size=(100, 32)) as pilot:
        # Start: the attacker's address is not known yet, and need not be to open.
        await wait_for(pilot, lambda: isinstance(app.screen, IncidentScreen), what="incident")
        screen = app.screen
        assert isinstance(screen, IncidentScreen)
        incident = screen.session.state.id
        text = screen_text(app)
        assert " LIVE " in text and incident in text and "drill v3" in text and "IC ann" in text
        assert "Write down what was seen." in text  # the selected step's instructions

        # Complete the first step, ticking one checklist item.
        await pilot.press("c")
        await pilot.press("tab", "space")  # from the note to the checklist: tick the first item
        await pilot.click("#ok")
        await pilot.pause()
        done = journal_events(app)[-1]
        assert done.kind == "step.completed" and done.step == "assess"
        assert done.data["checklist"] == ["Trigger written down"]
        assert "✓ Record the trigger" in screen_text(app)

        # Call tree: Ann does not answer, Ben is reached; Ben leaves no answer for servers,
        # a message is left and the role escalates to Ann, who answers.
        await pilot.press("p")
        assert isinstance(app.screen, CallTreeScreen)
        assert "call ann" in screen_text(app)
        await pilot.press("n")
        assert "call ben" in screen_text(app)
        await pilot.press("r")
        assert "reached ben" in screen_text(app)
        await pilot.press("down", "m", "u")
        await pilot.press(*"no call back in 10 min", "enter")
        await pilot.pause()
        assert "call ann" in screen_text(app).split("server-management", 1)[1]
        await pilot.press("r", "escape")
        calls = [(e.kind, e.data.get("person") or e.data.get("from")) for e in journal_events(app)
                 if e.kind.startswith("contact.")]  # fmt: skip
        assert calls == [
            ("contact.attempted", "ann"),
            ("contact.attempted", "ben"),
            ("contact.attempted", "ben"),
            ("contact.escalated", "ben"),
            ("contact.attempted", "ann"),
        ]
        await pilot.press("c")
        await pilot.click("#ok")

        # Decide.
        await pilot.press("d")
        await pilot.press("down", "enter")  # nothing is preselected: down to the first option
        await pilot.click("#ok")
        await pilot.pause()
        decided = journal_events(app)[-1]
        assert decided.kind == "decision.made" and decided.data["option"] == "confirmed"

        # A note, back-dated, and one a second responder adds from another terminal.
        await pilot.press("n")
        await pilot.press(*"w3wp spawned cmd.exe", "tab", *"2026-11-21T01:55")
        await pilot.click("#ok")
        await pilot.pause()
        note = journal_events(app)[-1]
        assert note.kind == "note.added" and note.occurred_at.startswith("2026-11-21T01:55")
        scribe = irtool(
            drill["env"], "incident", "note", incident, "EDR alert closed", "--as", "ben"
        )
        assert scribe.returncode == 0, scribe.stderr
        await wait_for(pilot, lambda: "EDR alert closed" in screen_text(app), what="scribe note")

        # Collect against the sshd hosts: live status, output, evidence.
        await pilot.press("r")
        assert isinstance(app.screen, RunScreen)
        run = app.screen
        await wait_for(pilot, lambda: run.report is not None, what="the collect run")
        await pilot.pause(0.2)
        assert "collected-on-web01" in screen_text(app)
        assert "2 of 2 host(s)" in screen_text(app) or "ok on 2 of 2" in screen_text(app)
        await pilot.press("escape")
        assert isinstance(app.screen, IncidentScreen)
        assert "✓ Processes and listeners" in screen_text(app)
        await pilot.press("e")
        assert isinstance(app.screen, EvidenceScreen)
        evidence = screen_text(app)
        assert evidence.count("web01") >= 2 and evidence.count("web02") >= 2
        await pilot.press("escape")

        # Triage found the attacker's address: set from another terminal, the plan follows.
        other = IncidentSession.open(incident)
        other.set_parameter("attacker_ip", ["203.0.113.7"], "ben", "seen in the IIS logs")
        other.close_journal()
        await wait_for(
            pilot,
            lambda: screen.state.parameters.get("attacker_ip") == "203.0.113.7",
            what="the parameter",
        )

        # Containment: the confirmation shows the exact command per host and wants the host
        # count, a reason and a second responder; then it runs; then it is rolled back.
        assert screen.selected == "block"  # the collect step is done: the cursor moved on
        await pilot.press("r")
        assert isinstance(app.screen, ConfirmAction), (notifications(app), screen_text(app))
        text = screen_text(app)
        assert "echo '203.0.113.7' >" in text and f"'{drill['dir']}/blocked-web02'" in text
        await pilot.press(*"1", "tab", *"web shell", "tab", *"ann", "enter")
        assert "type the number of hosts, 2" in screen_text(app)
        app.screen.query_one("#assent").value = "2"  # type: ignore[attr-defined]
        await pilot.press("enter")
        assert "ann requested it: a second responder must approve" in screen_text(app)
        app.screen.query_one("#approver").value = "ben"  # type: ignore[attr-defined]
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen), what="the action run")
        applied = app.screen
        await wait_for(pilot, lambda: applied.report is not None, what="the action to finish")
        assert (drill["dir"] / "blocked-web01").read_text() == "203.0.113.7\n"
        assert (drill["dir"] / "blocked-web02").exists()
        await pilot.press("escape")
        assert screen.selected == "wrap-up"  # applied: the cursor moved on; back up to roll back
        await pilot.press("up", "b")
        assert isinstance(app.screen, ConfirmAction)
        assert f"rm '{drill['dir']}/blocked-web02'" in screen_text(app)
        await pilot.press(*"2", "tab", *"false alarm after all", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen), what="the rollback")
        rollback = app.screen
        await wait_for(pilot, lambda: rollback.report is not None, what="the rollback to end")
        await pilot.press("escape")
        assert not (drill["dir"] / "blocked-web01").exists()
        assert "action.rolled_back" in [e.kind for e in journal_events(app)]
        approvals = [(e.kind, e.actor) for e in journal_events(app) if e.kind.startswith("action.")]
        assert approvals[:2] == [("action.requested", "ann"), ("action.approved", "ben")]

        # Close the incident.
        await pilot.press("X")
        await pilot.press(*"contained, rebuilt", "enter")
        await pilot.pause()
        assert journal_events(app)[-1].kind == "incident.closed"
        assert "CLOSED" in screen_text(app)
        assert not [n for n in notifications(app) if "Internal error" in n]
