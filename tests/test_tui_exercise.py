"""An exercise in the terminal UI: marked as one, injects arrive on the exercise clock, the
simulated hosts answer a run, containment says it is not performed, and the facilitator
pauses the clock, fires an inject now, records an observation and reads the review."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from irtool.engine import kinds
from irtool.engine.session import IncidentSession
from irtool.exercise.setup import load_exercise
from irtool.journal import Journal
from irtool.journal.incidents import journal_path
from irtool.tui.app import IrtoolApp
from irtool.tui.screens.confirm import ConfirmAction
from irtool.tui.screens.facilitator import FacilitatorScreen, ReviewScreen
from irtool.tui.screens.incident import IncidentScreen
from irtool.tui.screens.prompts import TextPrompt
from irtool.tui.screens.run import RunScreen
from irtool.tui.widgets.steps import StepList
from tests.support.clock import Clock
from tests.support.drill import CONTACTS, RUNBOOK, drill_scenario
from tests.support.tui import notifications, screen_text, wait_for


def kinds_written(incident: str) -> list[str]:
    with Journal(journal_path(incident), incident) as journal:
        return [event.kind for event in journal.events()]


def select(screen: IncidentScreen, step: str) -> None:
    steps = screen.query_one(StepList)
    steps.highlighted = steps.get_option_index(step)


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRTOOL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("IRTOOL_KEYMAP", str(tmp_path / "keymap.yaml"))


async def test_an_exercise_in_the_ui_from_the_first_inject_to_the_review(tmp_path: Path) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    (tmp_path / "drill.yaml").write_text(RUNBOOK)
    (tmp_path / "contacts.yaml").write_text(CONTACTS)
    (tmp_path / "scenario.yaml").write_text(drill_scenario(markers))
    exercise, _ = load_exercise(
        tmp_path / "drill.yaml", tmp_path / "scenario.yaml", tmp_path / "contacts.yaml"
    )
    clock = Clock()
    app = IrtoolApp(actor="fiona", exercise=exercise, clock=clock)
    async with app.run_test(size=(120, 40)) as pilot:
        # A new exercise opens with its briefing, for the facilitator to read out.
        await wait_for(pilot, lambda: isinstance(app.screen, ReviewScreen), what="briefing")
        assert "A web shell was reported on web01." in screen_text(app)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, IncidentScreen), what="incident")
        screen = app.screen
        assert isinstance(screen, IncidentScreen)
        session: IncidentSession = screen.session
        incident = session.state.id
        text = screen_text(app)
        assert "EXERCISE" in text and "10x" in text and "LIVE" not in text

        # Ten exercise minutes (one wall minute at 10x): the help desk's inject arrives.
        clock.now += timedelta(seconds=61)
        await wait_for(
            pilot,
            lambda: any("home page defaced" in n for n in notifications(app)),
            what="the inject's notification",
        )
        assert "T+00:10:1" in screen_text(app)

        # Triage on the simulated hosts: the scenario's output shows, web02 hangs and fails.
        for step in ("assess", "call-team"):
            session.complete(step, "fiona")
        session.decide("is-compromise", "confirmed", "fiona")
        screen.poll()
        await pilot.pause()
        select(screen, "collect-state")
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen), what="run screen")
        run = app.screen
        assert isinstance(run, RunScreen)
        await wait_for(pilot, lambda: run.report is not None, timeout=20, what="the run")
        await wait_for(pilot, lambda: "cmd.exe" in screen_text(app), what="simulated output")
        assert run.report is not None and sorted(run.report.failed) == ["web02"]
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, IncidentScreen), what="back")

        # Containment: the confirmation says it is acknowledged, not performed.
        session.complete("collect-state", "fiona", note="web02 by hand")
        screen.poll()
        await pilot.pause()
        select(screen, "block")
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmAction), what="confirm")
        assert "acknowledged, not performed" in screen_text(app)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, IncidentScreen), what="back")

        # The facilitator: pause, fire an inject early, observe, mark one handled, review.
        await pilot.press("f")
        await wait_for(pilot, lambda: isinstance(app.screen, FacilitatorScreen), what="facilitator")
        facilitator = app.screen
        shown = screen_text(app)  # collect-state was done: the help desk's inject is handled
        assert re.search(r"handled +server-management +The help desk reports", shown)
        assert re.search(r"to come +security +The regulator calls", shown)
        await pilot.press("space")
        await wait_for(pilot, lambda: "PAUSED" in screen_text(app), what="paused")
        clock.now += timedelta(hours=1)  # paused: the regulator's 5h inject must not come
        await pilot.pause(1.2)
        assert kinds_written(incident).count(kinds.INJECT_FIRED) == 1

        table = facilitator.query_one("#injects")
        table.move_cursor(row=table.get_row_index("never"))
        await pilot.press("f")
        await wait_for(
            pilot, lambda: kinds_written(incident).count(kinds.INJECT_FIRED) == 2, what="fired"
        )
        await wait_for(pilot, lambda: "WAITING" in screen_text(app), what="waiting")
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, TextPrompt), what="prompt")
        await pilot.press(*"The IC never named a scribe", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, FacilitatorScreen), what="back")
        table.move_cursor(row=table.get_row_index("never"))
        await pilot.press("h")
        await wait_for(pilot, lambda: isinstance(app.screen, TextPrompt), what="prompt")
        await pilot.press(*"holding page up", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, FacilitatorScreen), what="back")
        await pilot.press("space")
        await pilot.press("v")
        await wait_for(pilot, lambda: isinstance(app.screen, ReviewScreen), what="review")
        shown = screen_text(app)
        assert "After-action review" in shown and "holding page up" in shown
        assert "step 'collect-state' finished" in shown
        assert isinstance(app.screen, ReviewScreen)
        assert "The IC never named a scribe" in app.screen.text  # further down: scrolled to

    written = kinds_written(incident)
    assert written.count(kinds.CLOCK_PAUSED) == written.count(kinds.CLOCK_RESUMED) == 1
    assert kinds.OBSERVATION_RECORDED in written and kinds.INJECT_HANDLED in written
    assert list(markers.iterdir()) == []


async def test_the_home_screen_rehearses_a_runbook_with_its_own_scenario(tmp_path: Path) -> None:
    books = tmp_path / "runbooks"
    (books / "scenarios").mkdir(parents=True)
    (books / "drill.yaml").write_text(RUNBOOK)
    (books / "scenarios" / "drill.yaml").write_text(drill_scenario(tmp_path))
    app = IrtoolApp(actor="fiona", runbook_dirs=[books])
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: "Web shell drill" in screen_text(app), what="runbooks")
        assert "Drill web shell" not in screen_text(app)  # a scenario is not listed as a runbook
        app.screen.query_one("#runbooks").focus()
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ReviewScreen), what="briefing")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, IncidentScreen), what="incident")
        state = app.screen.state
        assert state.mode == "exercise" and state.exercise is not None
        assert state.exercise.scenario.id == "drill-webshell"
        assert state.parameters["attacker_ip"] == "203.0.113.9"  # no form: the scenario's value
        assert " EXERCISE " in screen_text(app)
