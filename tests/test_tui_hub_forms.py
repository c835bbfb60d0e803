"""The incident screen's forms, through Textual's pilot: enter moves through a form of several
fields and submits it once; a long form opens at its top with its labels whole; a decision
starts with nothing chosen; letters typed as a form opens land in it; times are typed and
shown as people say them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from textual import events

from irtool.engine import kinds
from irtool.model.steps import NIST_LESSONS_LEARNED
from irtool.tui.app import IrtoolApp
from irtool.tui.screens.incident import IncidentScreen
from irtool.tui.screens.prompts import ChoicePrompt, FieldsPrompt, NotePrompt, TextPrompt
from tests.support.clock import Clock
from tests.support.tui import notifications, screen_text, wait_for
from tests.test_tui_hub_steps import open_hub, reach_triage, ready, select, written

T0 = datetime(2026, 11, 21, 18, 0, tzinfo=UTC)  # 19:00 in Paris


def in_the_form(screen: str) -> str:
    """The words inside the form's frame, its lines joined as they read on."""
    lines = [line[line.find("█") + 1 : line.rfind("█")] for line in screen.splitlines()]
    return " ".join(" ".join(lines).split())


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRTOOL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("IRTOOL_KEYMAP", str(tmp_path / "no-keymap.yaml"))
    monkeypatch.setenv("IRTOOL_TZ", "Europe/Paris")


async def test_enter_moves_through_a_form_and_submits_it_once(tmp_path: Path) -> None:
    session = open_hub(tmp_path)
    app = IrtoolApp(actor="ann", incident=session.state.id)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await ready(pilot)
        await pilot.press("i")
        await wait_for(pilot, lambda: isinstance(app.screen, FieldsPrompt), what="the form")
        form = app.screen
        await pilot.press(*"patch the upload handler", "enter")
        await pilot.press(*"ben", "enter")  # from the owner to the due date: not submitted
        assert app.screen is form and "is needed" not in screen_text(app)
        assert not written(session, kinds.ACTION_ITEM_ASSIGNED)
        await pilot.press(*"2026-11-28", "enter")  # the last field: submitted, once
        await wait_for(pilot, lambda: written(session, kinds.ACTION_ITEM_ASSIGNED), what="item")
        await pilot.pause()
        assert app.screen is screen  # the incident screen, not a blank one under it
        await pilot.press("n")  # and it still takes keys
        await wait_for(pilot, lambda: isinstance(app.screen, NotePrompt), what="the note form")
    (item,) = written(session, kinds.ACTION_ITEM_ASSIGNED)
    assert item.data == {"text": "patch the upload handler", "owner": "ben", "due": "2026-11-28"}


async def test_the_post_mortem_opens_at_its_first_question_with_every_label_whole(
    tmp_path: Path,
) -> None:
    session = open_hub(tmp_path)
    app = IrtoolApp(actor="ann", incident=session.state.id)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        select(app, "lessons")
        await pilot.press("c")  # the post-mortem, held ahead of the flow
        await wait_for(pilot, lambda: isinstance(app.screen, TextPrompt), what="start early?")
        await pilot.press(*"a first pass while it is fresh", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, FieldsPrompt), what="the questions")
        await pilot.pause()
        text = in_the_form(screen_text(app))
        assert "1. Exactly what happened, and at what times?" in text
        long = NIST_LESSONS_LEARNED[1]  # 120 characters: wrapped, not cut at the form's edge
        assert f"2. {long}" in text


async def test_a_decision_starts_with_nothing_chosen(tmp_path: Path) -> None:
    session = open_hub(tmp_path)
    session.complete("call-team", "ann")
    app = IrtoolApp(actor="ann", incident=session.state.id)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoicePrompt), what="the decision")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "choose an option first" in screen_text(app), what="refusal")
        assert not written(session, kinds.DECISION_MADE)
        await pilot.press("down", "enter", *"web shell found", "ctrl+s")
        await wait_for(pilot, lambda: written(session, kinds.DECISION_MADE), what="the decision")
    (decided,) = written(session, kinds.DECISION_MADE)
    assert decided.data["option"] == "confirmed" and decided.data["note"] == "web shell found"


async def test_letters_typed_as_a_form_opens_go_into_it_not_to_the_screen_below(
    tmp_path: Path,
) -> None:
    session = open_hub(tmp_path)
    app = IrtoolApp(actor="ann", incident=session.state.id)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await ready(pilot)
        # A fast typist: every key is in before the first is handled (e is the evidence key,
        # s skip, h hand over).
        for key in "nweb shell seen":
            app.post_message(events.Key("space" if key == " " else key, key))
        await wait_for(pilot, lambda: isinstance(app.screen, NotePrompt), what="the note form")
        await wait_for(pilot, lambda: "web shell seen" in screen_text(app), what="the text")
        assert [type(s).__name__ for s in app.screen_stack[-2:]] == ["IncidentScreen", "NotePrompt"]
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is screen, what="the note written")
    (note,) = written(session, kinds.NOTE_ADDED)
    assert note.data["text"] == "web shell seen"
    assert not notifications(app)


async def test_times_are_typed_and_shown_as_people_say_them(tmp_path: Path) -> None:
    clock = Clock(T0)
    session = open_hub(tmp_path, clock)
    reach_triage(session)
    app = IrtoolApp(actor="ann", incident=session.state.id, clock=clock)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await ready(pilot)
        # A note back-dated "20m": seen twenty minutes ago.
        await pilot.press("n", *"w3wp spawned cmd.exe", "tab", *"20m", "enter")
        await wait_for(pilot, lambda: written(session, kinds.NOTE_ADDED), what="the note")
        # Reconvene at 19:30, the responder's time of day (Paris): 18:30 UTC.
        await pilot.press("g", *"19:30", "enter")
        await wait_for(pilot, lambda: screen.state.reconvene_at, what="the reconvene time")
        await wait_for(pilot, lambda: "reconvene in 00:30:00" in screen_text(app))
        # When a step was done, in one human format with its zone.
        select(app, "call-team")
        await wait_for(pilot, lambda: "2026-11-21 19:00:00 CET" in screen_text(app))
        assert "T18:00" not in screen_text(app)
    (note,) = written(session, kinds.NOTE_ADDED)
    assert note.occurred_at.startswith((T0 - timedelta(minutes=20)).strftime("%Y-%m-%dT%H:%M"))
    assert screen.state.reconvene_at.startswith("2026-11-21T18:30")


async def test_an_agenda_step_reconvenes_every_hour_not_every_1_00_00(tmp_path: Path) -> None:
    from irtool.model.context import load_context
    from tests.support.drill import WRAP_UP_RUNBOOK

    (tmp_path / "wrap-up.yaml").write_text(WRAP_UP_RUNBOOK)
    context, _ = load_context(tmp_path / "wrap-up.yaml")
    app = IrtoolApp(actor="ann", context=context)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, IncidentScreen), what="incident")
        screen = await ready(pilot)
        select(app, "debrief")
        await wait_for(pilot, lambda: "reconvene every 1h" in screen_text(app))
        assert "1:00:00" not in screen_text(app)
        assert screen.selected == "debrief"


async def test_enter_on_a_new_injects_role_keeps_its_message_and_fires_nothing(
    tmp_path: Path,
) -> None:
    from irtool.exercise.setup import load_exercise
    from irtool.tui.screens.facilitator import FacilitatorScreen, ReviewScreen
    from tests.support.drill import CONTACTS, RUNBOOK, drill_scenario

    (tmp_path / "drill.yaml").write_text(RUNBOOK)
    (tmp_path / "contacts.yaml").write_text(CONTACTS)
    (tmp_path / "scenario.yaml").write_text(drill_scenario(tmp_path))
    played, _ = load_exercise(
        tmp_path / "drill.yaml", tmp_path / "scenario.yaml", tmp_path / "contacts.yaml"
    )
    app = IrtoolApp(actor="fiona", exercise=played, clock=Clock(T0))
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ReviewScreen), what="briefing")
        await pilot.press("escape")
        screen = await ready(pilot)
        await pilot.press("f")
        await wait_for(pilot, lambda: isinstance(app.screen, FacilitatorScreen), what="facilitator")
        await pilot.press("i", *"A second web shell", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoicePrompt), what="the roles")
        await pilot.press("tab", *"found on web02 by the EDR", "shift+tab", "enter")
        await pilot.press("down", "enter")  # a role chosen: on to the message, nothing fired
        await pilot.pause()
        assert isinstance(app.screen, ChoicePrompt)
        assert "found on web02 by the EDR" in screen_text(app)
        assert not written(screen.session, kinds.INJECT_FIRED)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: written(screen.session, kinds.INJECT_FIRED), what="fired")
    (fired,) = written(screen.session, kinds.INJECT_FIRED)
    assert fired.data["title"] == "A second web shell"
    assert fired.data["to"] == "security" and fired.data["detail"] == "found on web02 by the EDR"
