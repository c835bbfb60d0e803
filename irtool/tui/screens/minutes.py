"""What the team's meetings decide, from the incident screen: a meeting on the standing agenda
(m opens it, m again adjourns it with an outcome per topic and the time to reconvene), the
answers to a post-mortem's questions (c on its step), and action items with owners (i)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING

from irtool.model.steps import AgendaStep, PostmortemStep
from irtool.tui.screens.prompts import Field, FieldsPrompt

if TYPE_CHECKING:
    from irtool.tui.screens.incident import IncidentScreen

NOTE = "note"
RECONVENE = "reconvene in"
MAX_MINUTES = 7 * 24 * 60


def answer_postmortem(screen: IncidentScreen, spec: PostmortemStep) -> None:
    """Done on a post-mortem step: the team's answer to each question, and a note."""
    fields = [
        Field(str(n), f"{n}. {question}") for n, question in enumerate(spec.questions, start=1)
    ]
    fields.append(Field(NOTE, "Note (optional):", "who took part, what was left open"))

    def answered(values: dict[str, str] | None) -> None:
        if values is not None:
            note = values.pop(NOTE)
            screen.write(lambda s: s.complete(spec.id, screen.actor, note, [], values))

    screen.app.push_screen(FieldsPrompt(f"Done: {spec.title}", fields, ok="Done"), answered)


def meeting(screen: IncidentScreen) -> None:
    """Open the selected agenda step's meeting, or adjourn the open one with its minutes."""
    state = screen.state
    if state.meeting is None:
        step = screen.selected
        if step and isinstance(state.runbook.step(step), AgendaStep):
            screen.write(lambda s: s.open_meeting(step, screen.actor))
            if screen.state.meeting == step:  # a refusal has been said already
                screen.app.notify("Meeting open: m again adjourns it with its outcomes.")
        return
    spec = state.runbook.step(state.meeting)
    topics = spec.topics if isinstance(spec, AgendaStep) else []
    fields = [Field(t.id, f"{t.title}:", t.prompt) for t in topics]
    fields.append(Field(RECONVENE, "Reconvene in how many minutes (blank: not set):"))

    def minutes(values: dict[str, str]) -> str | None:
        given = values[RECONVENE]
        if not given or (given.isascii() and given.isdecimal() and int(given) <= MAX_MINUTES):
            return None
        return f"'{given}' is not a number of minutes up to {MAX_MINUTES} (a week)"

    def adjourned(values: dict[str, str] | None) -> None:
        if values is None:
            return
        wait = values.pop(RECONVENE)
        at = screen.clock() + timedelta(minutes=int(wait)) if wait else None
        outcomes = {topic: text for topic, text in values.items() if text}
        screen.write(lambda s: s.close_meeting(screen.actor, outcomes, at))

    title = f"Adjourn: {spec.title if spec else state.meeting}"
    screen.app.push_screen(FieldsPrompt(title, fields, "Adjourn", minutes), adjourned)


def action_item(screen: IncidentScreen) -> None:
    """A follow-up with its owner and, if agreed, a due date."""
    fields = [
        Field("text", "Action item:", "what must be done", required=True),
        Field("owner", "Owner:", "who sees it done", required=True),
        Field("due", "Due (YYYY-MM-DD, optional):"),
    ]

    def due_date(values: dict[str, str]) -> str | None:
        try:
            date.fromisoformat(values["due"]) if values["due"] else None
        except ValueError:
            return f"'{values['due']}' is not a date like 2026-11-28"
        return None

    def assigned(values: dict[str, str] | None) -> None:
        if values is not None:
            due = date.fromisoformat(values["due"]) if values["due"] else None
            screen.write(
                lambda s: s.assign_action_item(values["text"], values["owner"], screen.actor, due)
            )

    screen.app.push_screen(FieldsPrompt("Action item", fields, "Add", due_date), assigned)
