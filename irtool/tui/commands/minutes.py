"""What the team's meetings decide: a meeting on the standing agenda (m opens it, m again
adjourns it with an outcome per topic and the time to reconvene), the answers to a
post-mortem's questions (c on its step), and action items with owners (i)."""

from __future__ import annotations

from datetime import date, timedelta

from irtool.model.steps import AgendaStep, PostmortemStep
from irtool.tui.commands.command import Command, Incident
from irtool.tui.commands.records import ahead
from irtool.tui.screens.prompts import Field, FieldsPrompt

NOTE = "note"
RECONVENE = "reconvene in"
MAX_AHEAD = timedelta(days=7)


def answer_postmortem(hub: Incident, spec: PostmortemStep) -> None:
    """Done on a post-mortem step: the team's answer to each question, and a note."""
    fields = [
        Field(str(n), f"{n}. {question}") for n, question in enumerate(spec.questions, start=1)
    ]
    fields.append(Field(NOTE, "Note (optional):", "who took part, what was left open"))

    def answered(values: dict[str, str] | None) -> None:
        if values is not None:
            note = values.pop(NOTE)
            hub.write(lambda s: s.complete(spec.id, hub.actor, note, [], values))

    hub.push(FieldsPrompt(f"Done: {spec.title}", fields, ok="Done"), answered)


def can_meet(hub: Incident) -> bool | str:
    state = hub.state
    return state.meeting is not None or isinstance(
        state.runbook.step(hub.selected or ""), AgendaStep
    )


def meeting(hub: Incident) -> None:
    """Open the selected agenda step's meeting, or adjourn the open one with its minutes."""
    state = hub.state
    if state.meeting is None:
        step = hub.selected
        if step and isinstance(state.runbook.step(step), AgendaStep):
            hub.write(lambda s: s.open_meeting(step, hub.actor))
            if hub.state.meeting == step:  # a refusal has been said already
                hub.app.notify("Meeting open: m again adjourns it with its outcomes.")
        return
    spec = state.runbook.step(state.meeting)
    topics = spec.topics if isinstance(spec, AgendaStep) else []
    fields = [Field(t.id, f"{t.title}:", t.prompt) for t in topics]
    fields.append(Field(RECONVENE, "Reconvene (30m, 1h, 19:30, minutes; blank: not set):"))

    def when(values: dict[str, str]) -> str | None:
        given = values[RECONVENE]
        if not given:
            return None
        try:
            at = ahead(given, hub.clock())
        except ValueError as bad:
            return str(bad)
        if at - hub.clock() > MAX_AHEAD:
            return f"'{given}' is more than a week away"
        return None

    def adjourned(values: dict[str, str] | None) -> None:
        if values is None:
            return
        wait = values.pop(RECONVENE)
        at = ahead(wait, hub.clock()) if wait else None
        outcomes = {topic: text for topic, text in values.items() if text}
        hub.write(lambda s: s.close_meeting(hub.actor, outcomes, at))

    title = f"Adjourn: {spec.title if spec else state.meeting}"
    hub.push(FieldsPrompt(title, fields, "Adjourn", when), adjourned)


def action_item(hub: Incident) -> None:
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
            hub.write(
                lambda s: s.assign_action_item(values["text"], values["owner"], hub.actor, due)
            )

    hub.push(FieldsPrompt("Action item", fields, "Add", due_date), assigned)


COMMANDS = [
    Command(
        "m",
        "meeting",
        "Meeting",
        meeting,
        can_meet,
        "Open the agenda step's meeting; again, adjourn it with its outcomes",
        footer=False,
    ),
    Command(
        "i",
        "action_item",
        "Action item",
        action_item,
        tooltip="Record an action item with its owner",
        footer=False,
        after_close=True,
    ),
]
