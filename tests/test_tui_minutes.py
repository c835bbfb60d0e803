"""Minutes from the incident screen (Textual's pilot): the post-mortem's answers (c), a meeting
opened and adjourned with its outcomes (m), an action item with its owner (i)."""

from __future__ import annotations

from pathlib import Path

import pytest

from irtool.engine import kinds
from irtool.journal import Event, Journal
from irtool.model.context import load_context
from irtool.tui.app import IrtoolApp
from irtool.tui.screens.incident import IncidentScreen
from irtool.tui.screens.prompts import FieldsPrompt
from irtool.tui.screens.start import StartScreen
from tests.support.drill import WRAP_UP_RUNBOOK
from tests.support.tui import screen_text, wait_for


def written(screen: IncidentScreen, kind: str) -> list[Event]:
    with Journal(screen.session.journal.path, screen.session.state.id) as journal:
        return [e for e in journal.events() if e.kind == kind]


def fill(app: IrtoolApp, *values: str) -> None:
    assert isinstance(app.screen, FieldsPrompt), type(app.screen)
    for n, value in enumerate(values):
        app.screen.query_one(f"#field-{n}").value = value  # type: ignore[attr-defined]


async def test_answers_a_meeting_and_an_action_item_from_the_keyboard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IRTOOL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("IRTOOL_KEYMAP", str(tmp_path / "no-keymap.yaml"))
    (tmp_path / "wrap-up.yaml").write_text(WRAP_UP_RUNBOOK)
    context, _ = load_context(tmp_path / "wrap-up.yaml")
    app = IrtoolApp(actor="ann", context=context)
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, StartScreen | IncidentScreen))
        if isinstance(app.screen, StartScreen):
            await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, IncidentScreen), what="incident")
        screen = app.screen
        assert isinstance(screen, IncidentScreen)

        # c on the post-mortem step asks each question.
        assert screen.selected == "lessons"
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, FieldsPrompt), what="questions")
        assert "1. What happened?" in screen_text(app)
        assert "2. What would we change?" in screen_text(app)
        fill(app, "a web shell, found in an hour", "", "held with the web team")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen is screen, what="the answers written")
        (done,) = written(screen, kinds.STEP_COMPLETED)
        assert done.data["answers"] == {"What happened?": "a web shell, found in an hour"}
        assert done.data["note"] == "held with the web team"

        # m on the agenda step opens its meeting; m again adjourns it with the minutes.
        await wait_for(pilot, lambda: screen.selected == "debrief", what="the next step")
        await pilot.press("m")
        await wait_for(pilot, lambda: written(screen, kinds.MEETING_OPENED), what="meeting")
        assert "meeting open: m adjourns it" in screen_text(app)
        await pilot.press("m")
        await wait_for(pilot, lambda: isinstance(app.screen, FieldsPrompt), what="minutes")
        assert "Threat and vulnerabilities identified:" in screen_text(app)
        fill(app, "web shell via the upload form", "block, then rebuild", "", "", "soon")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "'soon' is not a time" in screen_text(app), what="refusal")
        fill(app, "web shell via the upload form", "block, then rebuild", "", "", "30")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: written(screen, kinds.MEETING_CLOSED), what="adjourned")
        (closed,) = written(screen, kinds.MEETING_CLOSED)
        assert closed.data["outcomes"] == {
            "threat": "web shell via the upload form",
            "strategy": "block, then rebuild",
        }
        assert closed.data["reconvene_at"] is not None

        # i: an action item needs an owner, and a due date that is a date.
        await pilot.press("i")
        await wait_for(pilot, lambda: isinstance(app.screen, FieldsPrompt), what="action item")
        fill(app, "patch the upload handler", "", "")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "Owner is needed" in screen_text(app), what="owner")
        fill(app, "patch the upload handler", "ben", "next week")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "'next week' is not a date" in screen_text(app))
        fill(app, "patch the upload handler", "ben", "2026-11-28")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: written(screen, kinds.ACTION_ITEM_ASSIGNED), what="item")
        (item,) = written(screen, kinds.ACTION_ITEM_ASSIGNED)
        assert item.data == {
            "text": "patch the upload handler",
            "owner": "ben",
            "due": "2026-11-28",
        }
        assert item.actor == "ann"
