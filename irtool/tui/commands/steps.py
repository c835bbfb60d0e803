"""The selected step's own commands: mark it done (c), skip it (s), answer its decision (d),
approve its action (a)."""

from __future__ import annotations

from irtool.engine.state import Status
from irtool.model.steps import DecisionStep, PostmortemStep, RotateStep
from irtool.tui.commands import minutes, rotation
from irtool.tui.commands.command import Command, Incident
from irtool.tui.screens.prompts import (
    Choice,
    ChoicePrompt,
    CompletePrompt,
    Completion,
    TextPrompt,
)
from irtool.tui.screens.prompts import Text as Typed


def pending(hub: Incident) -> bool:
    step = hub.selected
    return bool(step) and hub.state.steps[step or ""].status is Status.PENDING


def can_finish(hub: Incident) -> bool | str:
    spec = hub.state.runbook.step(hub.selected or "")
    return pending(hub) and not isinstance(spec, DecisionStep)


def can_complete(hub: Incident) -> bool | str:
    """As `can_finish`; once closed, only a post-mortem (its answers come within weeks)."""
    spec = hub.state.runbook.step(hub.selected or "")
    if hub.state.closed and not isinstance(spec, PostmortemStep):
        return False
    return can_finish(hub)


def can_decide(hub: Incident) -> bool | str:
    spec = hub.state.runbook.step(hub.selected or "")
    if not (pending(hub) and isinstance(spec, DecisionStep)):
        return False
    return reached(hub)


def reached(hub: Incident) -> bool | str:
    """True for a step the flow has reached; else why it cannot be worked on yet."""
    step = hub.selected or ""
    if step in hub.state.available():
        return True
    return f"'{hub.state.steps[step].title}' is not reached yet: finish the steps before it"


def can_approve(hub: Incident) -> bool | str:
    action = hub.state.actions.get(hub.selected or "")
    return bool(action and not action.rolled_back and pending(hub))


def complete(hub: Incident) -> None:
    step = hub.selected
    if not step:
        return
    spec = hub.state.runbook.step(step)
    if isinstance(spec, PostmortemStep):
        minutes.answer_postmortem(hub, spec)
        return
    if isinstance(spec, RotateStep):
        rotation.rotated(hub, spec)
        return
    checklist = list(getattr(spec, "checklist", []))

    def done(result: Completion | None) -> None:
        if result:
            hub.write(lambda s: s.complete(step, hub.actor, result.note, result.checklist))

    hub.push(CompletePrompt(f"Done: {hub.state.steps[step].title}", checklist), done)


def skip(hub: Incident) -> None:
    step = hub.selected
    if not step:
        return

    def skipped(result: Typed | None) -> None:
        if result:
            hub.write(lambda s: s.skip(step, hub.actor, result.text))

    title = f"Skip: {hub.state.steps[step].title}"
    hub.push(TextPrompt(title, "Reason:", ok="Skip"), skipped)


def decide(hub: Incident) -> None:
    spec = hub.state.runbook.step(hub.selected or "")
    if not isinstance(spec, DecisionStep):
        return

    def decided(result: Choice | None) -> None:
        if result:
            hub.write(lambda s: s.decide(spec.id, result.option, hub.actor, result.note))

    options = [(o.id, o.label) for o in spec.options]
    hub.push(ChoicePrompt(spec.title, spec.question, options), decided)


def approve(hub: Incident) -> None:
    step = hub.selected
    if step:
        hub.write(lambda s: s.approve(step, hub.actor))


COMMANDS = [
    Command(
        "c", "complete", "Done", complete, can_complete, "Mark the step done", after_close=True
    ),
    Command("d", "decide", "Decide", decide, can_decide, "Answer the decision"),
    Command("a", "approve", "Approve", approve, can_approve, "Approve an action"),
    Command("s", "skip", "Skip", skip, can_finish, "Skip the step, with a reason"),
]
