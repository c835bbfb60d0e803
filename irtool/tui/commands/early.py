"""What a command on the selected step needs first: the step started early, with a reason,
when the steps ahead of it are not done yet (unless the runbook marks it strict); and, for a
run, each unset parameter its commands use. Then the command carries on as if nothing had
been in the way."""

from __future__ import annotations

from collections.abc import Callable

from irtool.engine.state import Status
from irtool.model.untrusted import visible
from irtool.tui.commands.hub import Hub
from irtool.tui.commands.parameters import ask_missing
from irtool.tui.screens.prompts import Text, TextPrompt

# The hub's commands that work the selected step, so may need it started early; of them,
# those that run its commands, so may need parameters first.
ON_STEP = {"complete", "decide", "run", "pick_hosts"}
RUNS = {"run", "pick_hosts"}
SHOWN_AHEAD = 3  # steps named in the question; the rest are counted


def waiting(hub: Hub) -> bool:
    """The selected step is pending and the flow has not reached it, nor was it started early."""
    step = hub.selected
    if not step:
        return False
    state = hub.state.steps[step]
    return state.status is Status.PENDING and not state.early and step not in hub.state.available()


def takes(hub: Hub, action: str, applies: bool | str) -> bool:
    """Whether `first` takes this command on: it applies, or it would but for the flow's reach
    (`applies` is then the sentence saying the step is not reached yet)."""
    if action not in ON_STEP:
        return False
    return applies is True or (isinstance(applies, str) and waiting(hub))


def first(hub: Hub, action: str, then: Callable[[], None]) -> None:
    """`then`, once the selected step is started early if need be, and for a run once the
    parameters it needs are set."""
    step = hub.selected
    if step and action in RUNS:
        start_early(hub, lambda: ask_missing(hub, step, then))
    else:
        start_early(hub, then)


def steps_ahead(hub: Hub, step: str) -> list[str]:
    """The pending steps before `step`, in the runbook's order: what starting it early passes."""
    order = list(hub.state.steps)
    return [s for s in order[: order.index(step)] if hub.state.steps[s].status is Status.PENDING]


def start_early(hub: Hub, then: Callable[[], None]) -> None:
    """`then` at once for a step the flow has reached; else ask to start it early first."""
    step = hub.selected
    if not step or not waiting(hub):
        then()
        return
    state = hub.state
    ahead = [f"'{state.steps[s].title}'" for s in steps_ahead(hub, step)]
    named = ", ".join(ahead[:SHOWN_AHEAD]) + (
        f" and {len(ahead) - SHOWN_AHEAD} more" if len(ahead) > SHOWN_AHEAD else ""
    )
    title = state.steps[step].title
    spec = state.runbook.step(step)
    if spec is not None and spec.strict:
        hub.app.notify(
            visible(f"'{title}' is strict: it waits until the steps ahead are done ({named})"),
            severity="warning",
            markup=False,
        )
        return

    def reasoned(result: Text | None) -> None:
        if result:
            hub.write(lambda s: s.start_early(step, hub.actor, result.text))
            if hub.state.steps[step].early:  # recorded, not refused
                then()

    question = f"Start '{title}' before {named}?"
    hub.app.push_screen(
        TextPrompt(question, "Reason (for the timeline):", ok="Start early"), reasoned
    )
