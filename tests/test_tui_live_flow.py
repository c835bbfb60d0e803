"""Not forced into busywork, and closing with eyes open, from the incident screen: a step is
started before the steps ahead of it with a reason (never a strict one); closing lists what is
still open and needs a reason to close over it; a note can still follow."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input

from irtool.engine.runner import Runner
from irtool.engine.session import IncidentSession
from irtool.evidence.store import EvidenceStore
from irtool.journal.incidents import EVIDENCE_DIR, incident_dir
from irtool.remote.local import LocalTransport
from irtool.tui.app import IrtoolApp
from irtool.tui.commands.closing import ClosePrompt
from irtool.tui.screens.incident import IncidentScreen
from irtool.tui.screens.prompts import ChoicePrompt, CompletePrompt, TextPrompt
from irtool.tui.screens.run import RunScreen
from tests.support.live import live_incident, live_journal
from tests.support.tui import notifications, opened, screen_text, select_step, wait_for

pytestmark = pytest.mark.usefixtures("live_home")


async def test_a_step_is_started_before_the_steps_ahead_with_a_reason(tmp_path: Path) -> None:
    incident = live_incident(tmp_path)
    session = IncidentSession.open(incident)
    session.set_parameter("attacker_ip", ["203.0.113.7"], "ann", "from the alert")
    session.close_journal()
    app = IrtoolApp(actor="ann", incident=incident)
    async with app.run_test(size=(110, 34)) as pilot:
        await opened(pilot)
        # The decision, while the trigger is not yet written down.
        await select_step(pilot, "is-compromise")
        await pilot.press("d")
        assert isinstance(app.screen, TextPrompt)
        assert "Start 'Is it a compromise?' before 'Record the trigger'?" in screen_text(app)
        await pilot.press(*"the web shell answers", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoicePrompt), what="the decision")
        await pilot.press("escape")
        # A collector, run before the decision: asked once, then the run.
        await select_step(pilot, "sweep")
        await pilot.press("r")
        text = screen_text(app)
        assert "Start 'Look for the attacker' before 'Record the trigger', 'Is it a" in text
        await pilot.press(*"two collectors still run", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen), what="the run")
        run = app.screen
        assert isinstance(run, RunScreen)
        await wait_for(pilot, lambda: run.report is not None, what="the run's end")
        await pilot.press("escape")
        # A strict step is not started early: it says so, and nothing opens.
        screen = await select_step(pilot, "late")
        await pilot.press("c")
        await pilot.pause()
        assert app.screen is screen
        assert any("'Only after all the rest' is strict" in n for n in notifications(app))
        # Done early, by hand: asked, then the usual form.
        await select_step(pilot, "wrap-up")
        await pilot.press("c")
        assert "Start 'Wrap up' before" in screen_text(app)
        await pilot.press(*"nothing else to do tonight", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, CompletePrompt), what="done form")
    with live_journal(tmp_path, incident) as j:
        early = [(e.step, e.data["reason"], e.data["ahead"]) for e in j.events()
                 if e.kind == "step.started_early"]  # fmt: skip
    assert early[:2] == [
        ("is-compromise", "the web shell answers", ["assess"]),
        ("sweep", "two collectors still run", ["assess", "is-compromise"]),
    ]
    assert [step for step, _, _ in early] == ["is-compromise", "sweep", "wrap-up"]


async def test_closing_lists_what_is_open_and_needs_a_reason_over_it(tmp_path: Path) -> None:
    incident = live_incident(tmp_path)
    session = IncidentSession.open(incident)
    session.complete("assess", "ann")
    session.decide("is-compromise", "confirmed", "ann")
    session.start_early("block", "ann", "contain first")
    store = EvidenceStore(incident_dir(incident) / EVIDENCE_DIR, create=True)
    Runner(session, {"local": LocalTransport()}, store, "ann").run("block", ["web01"], "contain")
    session.assign_action_item("Patch the upload handler", "ben", "ann")
    session.close_journal()
    app = IrtoolApp(actor="ann", incident=incident)
    async with app.run_test(size=(110, 34)) as pilot:
        await opened(pilot)
        await pilot.press("X")
        form = app.screen
        assert isinstance(form, ClosePrompt)
        text = screen_text(app)
        assert "containment 'block' is still applied on web01" in text
        assert "Patch the upload handler" in text
        await pilot.press(*"contained; web01 rebuilt tomorrow", "enter", "enter")
        assert "say why the incident closes with these still open" in screen_text(app)
        form.query_one("#over", Input).value = "ben owns the rebuild and the patch"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, IncidentScreen), what="closed")
        screen = app.screen
        assert isinstance(screen, IncidentScreen)
        await wait_for(pilot, lambda: screen.state.closed, what="the close")
        # After close, a note still goes in: marked as written after closing.
        await pilot.press("n")
        await pilot.press(*"the rebuild is booked for 09:00", "ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, IncidentScreen), what="the note")
    with live_journal(tmp_path, incident) as j:
        events = list(j.events())
    closed = next(e for e in events if e.kind == "incident.closed")
    assert closed.data["summary"] == "contained; web01 rebuilt tomorrow"
    assert closed.data["over"] == "ben owns the rebuild and the patch"
    assert any("web01" in item for item in closed.data["open_items"])
    note = events[-1]
    assert note.kind == "note.added" and note.data.get("after_close") is True
