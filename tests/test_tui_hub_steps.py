"""The incident screen (the hub) on its steps, through Textual's pilot: a notify step's message,
two-person approval from another terminal, a run that moves the cursor on, steps not reached
yet, a closed incident's clocks, every key findable, titles whole on a wide screen, and a
rotation told credential by credential."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from textual.pilot import Pilot

from irtool.engine.session import IncidentSession
from irtool.journal import Event, Journal
from irtool.model.context import load_context
from irtool.tui.app import IrtoolApp
from irtool.tui.screens.calltree import CallTreeScreen
from irtool.tui.screens.confirm import ConfirmAction
from irtool.tui.screens.incident import IncidentScreen
from irtool.tui.screens.keys import KeysScreen
from irtool.tui.screens.prompts import ChoicePrompt, Prompt, TextPrompt
from irtool.tui.screens.run import RunScreen
from irtool.tui.widgets.steps import StepList
from tests.support.clock import Clock
from tests.support.drill import CONTACTS
from tests.support.tui import notifications, opened, screen_text, wait_for

T0 = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
LONG_TITLE = "Preserve volatile evidence from every affected host"  # 51 columns

RUNBOOK = f"""\
id: hub
title: Hub drill
summary: Every kind of step the hub's tests need.
version: "1"
severity: high
applies_to: [iis]
triggers: [A web shell is found]
activation: {{may_activate: [security]}}
roles: [security, server-management]
parameters:
  attacker_ip: {{type: ip, description: Where the attack comes from}}
phases:
  - id: start
    title: Start
    steps:
      - id: call-team
        type: notify
        title: Call the team
        roles: [security]
        message: "Web shell on web01: join the bridge at +1 555 0199, PIN 4471."
      - id: is-compromise
        type: decision
        title: Is it a compromise?
        question: Is the host compromised?
        options:
          - {{id: confirmed, label: Confirmed}}
          - {{id: false-positive, label: False positive}}
  - id: triage
    title: Triage
    steps:
      - id: collect-state
        type: collect
        title: Processes
        shell: sh
        timeout: 20
        targets: [group:fleet]
        command: echo collected-on-{{{{ host.name }}}}
      - id: block
        type: action
        title: Block the attacker
        strict: true
        shell: sh
        timeout: 20
        approvals: 2
        targets: [group:fleet]
        command: "echo {{{{ attacker_ip }}}} > {{{{ host.vars.marker }}}}"
        rollback: "rm {{{{ host.vars.marker }}}}"
      - id: preserve
        type: manual
        title: {LONG_TITLE}
  - id: recover
    title: Recover
    steps:
      - id: rotate
        type: rotate
        title: Rotate the credentials
        items:
          - {{id: pool, kind: app-pool, title: App pool identity}}
          - {{id: machine-key, kind: machine-key, title: ASP.NET machine key}}
      - id: lessons
        type: postmortem
        title: Lessons learned
"""


def open_hub(tmp_path: Path, clock: Clock | None = None, **done: Any) -> IncidentSession:
    """A live incident of the hub runbook on one local host, web01, with the attacker's
    address set; `done` are the engine commands to run first, in order."""
    (tmp_path / "hub.yaml").write_text(RUNBOOK)
    (tmp_path / "contacts.yaml").write_text(CONTACTS)
    host = {
        "address": "127.0.0.1",
        "transport": "local",
        "groups": ["fleet"],
        "vars": {"marker": str(tmp_path / "web01.block")},
    }
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump({"hosts": {"web01": host}}))
    context, _ = load_context(
        tmp_path / "hub.yaml", tmp_path / "contacts.yaml", tmp_path / "inventory.yaml"
    )
    return IncidentSession.new(
        context.runbook,
        {"attacker_ip": "203.0.113.7"},
        actor="ann",
        contacts=context.contacts,
        inventory=context.inventory,
        clock=clock,
    )


def reach_triage(session: IncidentSession) -> None:
    session.complete("call-team", "ann")
    session.decide("is-compromise", "confirmed", "ann")


def written(session: IncidentSession, kind: str) -> list[Event]:
    with Journal(session.journal.path, session.state.id) as journal:
        return [e for e in journal.events() if e.kind == kind]


async def ready(pilot: Pilot[None]) -> IncidentScreen:
    """The incident screen, opened and drawn (its steps listed, the first frame composed)."""
    await opened(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, IncidentScreen)

    def listed() -> int:
        steps = list(screen.query(StepList).results(StepList))  # none until composed
        return steps[0].option_count if steps else 0

    await wait_for(pilot, listed, what="the steps")
    await wait_for(pilot, lambda: "  IC " in screen_text(pilot.app), what="the header")
    return screen


def select(app: IrtoolApp, step: str) -> None:
    steps = app.screen.query_one(StepList)
    steps.highlighted = steps.get_option_index(step)


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRTOOL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("IRTOOL_KEYMAP", str(tmp_path / "no-keymap.yaml"))
    monkeypatch.setenv("IRTOOL_TZ", "UTC")


async def test_a_notify_steps_message_shows_in_the_step_and_the_call_tree(tmp_path: Path) -> None:
    session = open_hub(tmp_path)
    app = IrtoolApp(actor="ann", incident=session.state.id)
    async with app.run_test(size=(120, 30)) as pilot:
        await ready(pilot)
        await wait_for(
            pilot, lambda: "join the bridge at +1 555 0199, PIN 4471" in screen_text(app)
        )
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, CallTreeScreen), what="call tree")
        text = screen_text(app)
        assert "Tell them (Call the team):" in text
        assert "join the bridge at +1 555 0199, PIN 4471" in text


async def test_a_two_person_action_is_requested_here_and_approved_from_another_terminal(
    tmp_path: Path,
) -> None:
    session = open_hub(tmp_path)
    reach_triage(session)
    session.complete("collect-state", "ann")
    incident = session.state.id
    app = IrtoolApp(actor="ann", incident=incident)
    async with app.run_test(size=(100, 32)) as pilot:
        await ready(pilot)
        select(app, "block")
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmAction), what="confirm")
        assert "irtool incident approve" in screen_text(app)
        # No second responder at this keyboard: ctrl+s (as the README says) requests it.
        await pilot.press(*"web01", "tab", *"web shell confirmed", "ctrl+s")
        await wait_for(pilot, lambda: written(session, "action.requested"), what="the request")
        assert isinstance(app.screen, ConfirmAction)
        shown = screen_text(app)
        assert f"irtool incident approve {incident} block" in shown, shown

        # Ben approves from his own terminal; the confirmation sees it, and it is applied.
        ben = IncidentSession.open(incident)
        ben.approve("block", "ben")
        ben.close_journal()
        await wait_for(pilot, lambda: "approved by ben" in screen_text(app), what="approval")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen), what="the action")
        run = app.screen
        await wait_for(pilot, lambda: run.report is not None, what="the action to finish")
    assert (tmp_path / "web01.block").read_text() == "203.0.113.7\n"
    (requested,) = written(session, "action.requested")
    assert requested.actor == "ann" and requested.data["reason"] == "web shell confirmed"
    assert [e.actor for e in written(session, "action.approved")] == ["ben"]


async def test_a_collect_run_that_finishes_its_step_moves_the_cursor_on(tmp_path: Path) -> None:
    session = open_hub(tmp_path)
    reach_triage(session)
    app = IrtoolApp(actor="ann", incident=session.state.id)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await ready(pilot)
        assert screen.selected == "collect-state"
        await pilot.press("r")
        run = app.screen
        assert isinstance(run, RunScreen)
        await wait_for(pilot, lambda: run.report is not None, what="the run")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen, what="back")
        # The next step is selected: r now opens its confirmation, it does not collect again.
        await wait_for(pilot, lambda: screen.selected == "block", what="the next step")
        await pilot.press("r")
        assert isinstance(app.screen, ConfirmAction)
    assert len(written(session, "run.started")) == 1


async def test_a_step_not_reached_offers_no_run_and_says_why_once(tmp_path: Path) -> None:
    session = open_hub(tmp_path)
    app = IrtoolApp(actor="ann", incident=session.state.id)
    async with app.run_test(size=(120, 30)) as pilot:
        await ready(pilot)
        select(app, "block")  # strict: it waits for the steps ahead of it
        await pilot.pause()
        footer = screen_text(app).splitlines()[-1]
        assert " r " not in footer and "Run" not in footer
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, IncidentScreen)  # no confirmation opened
        (said,) = notifications(app)
        assert said.startswith("'Block the attacker' is strict: it waits until the steps ahead")
        assert not written(session, "action.requested")

        select(app, "is-compromise")  # not strict: d offers to start it early, nothing else
        await pilot.pause()
        assert "Decide" not in screen_text(app).splitlines()[-1]
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, TextPrompt), what="start early?")
        assert "Start 'Is it a compromise?' before 'Call the team'?" in screen_text(app)
        await pilot.press(*"the EDR already says so", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoicePrompt), what="the decision")
        assert len(notifications(app)) == 1
    (early,) = written(session, "step.started_early")
    assert early.step == "is-compromise" and early.data["reason"] == "the EDR already says so"


async def test_a_closed_incident_stops_its_clock_and_the_reconvene_countdown(
    tmp_path: Path,
) -> None:
    clock = Clock(T0)
    session = open_hub(tmp_path, clock)
    clock.now = T0 + timedelta(minutes=5)
    session.set_reconvene(T0 + timedelta(minutes=30), "ann")
    clock.now = T0 + timedelta(minutes=10)
    session.close("ann", "false alarm", over="nothing was done")
    session.close_journal()
    clock.now = T0 + timedelta(hours=3)  # opened later: the clock must not have run on
    app = IrtoolApp(actor="ann", incident=session.state.id, clock=clock)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        header = "\n".join(screen_text(app).splitlines()[:2])
        assert "CLOSED" in header and "T+00:10:00" in header
        assert "reconvene" not in header


async def test_the_rarer_keys_show_in_a_key_bar_and_question_mark_lists_every_key(
    tmp_path: Path,
) -> None:
    session = open_hub(tmp_path)
    app = IrtoolApp(actor="ann", incident=session.state.id)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        bar = "\n".join(screen_text(app).splitlines()[-3:-1])  # above the footer
        for shown in ("g Reconvene", "h Hand over", "X Close", "i Action item"):
            assert shown in bar
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, KeysScreen), what="the keys")
        keys = screen_text(app)
        for shown in ("Mark the step done", "Hand over incident command", "Close the incident"):
            assert shown in keys
        assert "Run or apply" not in keys  # this step runs nothing: its key is not listed
        await pilot.press("escape")
        await pilot.press("p", "question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, KeysScreen), what="call tree keys")
        assert "Escalate to backup" in screen_text(app)


async def test_step_titles_are_whole_on_a_wide_screen(tmp_path: Path) -> None:
    session = open_hub(tmp_path)
    app = IrtoolApp(actor="ann", incident=session.state.id)
    async with app.run_test(size=(120, 30)) as pilot:
        await ready(pilot)
        assert LONG_TITLE in screen_text(app)
    app = IrtoolApp(actor="ann", incident=session.state.id)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        assert "Preserve volatile evidence" in screen_text(app)  # cut, with an ellipsis


async def test_a_rotation_is_told_credential_by_credential(tmp_path: Path) -> None:
    session = open_hub(tmp_path)
    reach_triage(session)
    session.complete("collect-state", "ann")
    session.skip("block", "ann", "rebuilt instead")
    session.complete("preserve", "ann")
    app = IrtoolApp(actor="ann", incident=session.state.id)
    async with app.run_test(size=(100, 32)) as pilot:
        await ready(pilot)
        select(app, "rotate")
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, Prompt), what="the rotation form")
        await wait_for(pilot, lambda: "ASP.NET machine key (machine-key" in screen_text(app))
        await pilot.press("space", "tab", *"new identity, password in the vault")
        await pilot.press("ctrl+s")  # the machine key is neither ticked nor explained
        await wait_for(pilot, lambda: "ASP.NET machine key: tick it" in screen_text(app))
        await pilot.press("tab", "tab", *"pending: the farm restarts tonight", "ctrl+s")
        await wait_for(pilot, lambda: written(session, "step.completed")[-1].step == "rotate")
        select(app, "rotate")
        await pilot.pause()
        assert "✗ NOT rotated: pending: the farm restarts tonight" in screen_text(app)
    done = written(session, "step.completed")[-1]
    assert done.data["rotations"] == {
        "pool": {"rotated": True, "note": "new identity, password in the vault"},
        "machine-key": {"rotated": False, "note": "pending: the farm restarts tonight"},
    }


async def test_a_closed_exercise_stops_its_exercise_clock(tmp_path: Path) -> None:
    from irtool.exercise.setup import load_exercise, open_exercise
    from tests.support.drill import RUNBOOK as DRILL
    from tests.support.drill import drill_scenario

    (tmp_path / "drill.yaml").write_text(DRILL)
    (tmp_path / "contacts.yaml").write_text(CONTACTS)
    (tmp_path / "scenario.yaml").write_text(drill_scenario(tmp_path))
    played, _ = load_exercise(
        tmp_path / "drill.yaml", tmp_path / "scenario.yaml", tmp_path / "contacts.yaml"
    )
    clock = Clock(T0)
    session = open_exercise(played, {"attacker_ip": "203.0.113.9"}, "fiona", clock)
    clock.now = T0 + timedelta(minutes=3)  # 30 exercise minutes at 10x
    session.close("fiona", "ended early", over="the drill ran out of time")
    session.close_journal()
    clock.now = T0 + timedelta(hours=2)
    app = IrtoolApp(actor="fiona", incident=session.state.id, clock=clock)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await wait_for(pilot, lambda: "CLOSED" in screen_text(app), what="the header")
        assert "T+00:30:00 10x" in screen_text(app).splitlines()[1]
