"""Phases and their steps, each with its status: where the incident stands and what is next."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from irtool.engine.state import IncidentState, Status
from irtool.model.untrusted import visible

# done, skipped, rolled back (can be applied again), next (reachable now), later
GLYPH = {
    "done": ("✓", "green"),
    "skipped": ("–", "dim"),
    "rolled back": ("↶", "magenta"),
    "next": ("▶", "bold yellow"),
    "later": ("·", "dim"),
}


def step_state(state: IncidentState, step: str, available: list[str]) -> str:
    status = state.steps[step].status
    if status is Status.DONE:
        return "done"
    if status is Status.SKIPPED:
        return "skipped"
    if status is Status.ROLLED_BACK:
        return "rolled back"
    return "next" if step in available else "later"


class StepList(OptionList):
    """One option per step, phase titles between them (disabled, so the cursor skips them)."""

    DEFAULT_CSS = """
    /* 36 columns at 80 wide; a wider screen gives step titles their room (54 at 120). */
    StepList, StepList:focus { width: 45%; min-width: 34; max-width: 60; height: 1fr;
        border: none; padding: 0;
        text-wrap: nowrap; text-overflow: ellipsis; }
    StepList > .option-list--option-disabled { text-style: bold; color: $text-muted; }
    """

    def show(self, state: IncidentState) -> None:
        """Rebuild from the state; the highlighted step stays highlighted."""
        keep = self.selected_step
        available = state.available()
        phases = {p.id: p.title for p in state.runbook.phases}
        options: list[Option] = []
        current_phase = None
        for step in state.steps.values():
            if step.phase != current_phase:
                current_phase = step.phase
                options.append(
                    Option(Text(visible(phases.get(step.phase, step.phase).upper())), disabled=True)
                )
            glyph, style = GLYPH[step_state(state, step.id, available)]
            label = Text.assemble(
                (glyph, style), " ", visible(step.title), no_wrap=True, overflow="ellipsis"
            )
            options.append(Option(label, id=step.id))
        self.clear_options()
        self.add_options(options)
        target = keep or (available[0] if available else None)
        if target:
            self.highlighted = self.get_option_index(target)

    @property
    def selected_step(self) -> str | None:
        if self.highlighted is None or self.option_count == 0:
            return None
        return self.get_option_at_index(self.highlighted).id
