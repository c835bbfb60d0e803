"""Done on a rotation step (c): for each credential, rotated or not, and a note; one not
rotated needs its note (what is pending), so the post-mortem never claims a rotation that
did not happen."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.widgets import Checkbox, Input, Label

from irtool.model.steps import RotateStep
from irtool.model.untrusted import visible
from irtool.tui.commands.command import Incident
from irtool.tui.screens.prompts import Prompt
from irtool.tui.widgets.detail import EXERCISE_ROTATE


@dataclass(frozen=True)
class Rotated:
    rotations: dict[str, tuple[bool, str]]  # item id -> (rotated, note)
    note: str


class RotationPrompt(Prompt[Rotated]):
    """One line per credential: a tick when rotated, and a note (how, or what is pending)."""

    AUTO_FOCUS = "Checkbox"
    DEFAULT_CSS = """
    RotationPrompt Checkbox { border: none; padding: 0; height: 1; background: $surface; }
    RotationPrompt Checkbox:focus { background: $primary 30%; }
    RotationPrompt .exercise { background: yellow; color: black; text-style: bold; }
    """

    def __init__(self, spec: RotateStep, exercise: bool = False) -> None:
        super().__init__(f"Done: {spec.title}", "Done")
        self.spec, self.exercise = spec, exercise

    def fields(self) -> ComposeResult:
        if self.exercise:
            yield Label(EXERCISE_ROTATE, classes="exercise")
        yield Label("For each credential: rotated or not, and a note (tab moves on).")
        for n, item in enumerate(self.spec.items):
            yield Label(visible(f"{item.title} ({item.kind}, {item.method})"), markup=False)
            yield Checkbox("rotated (space ticks it)", id=f"rotated-{n}")
            yield Input(placeholder="how; or, not rotated, what is pending", id=f"note-{n}")
        yield Label("Note (optional):")
        yield Input(id="note")

    def submit(self) -> Rotated | str:
        rotations: dict[str, tuple[bool, str]] = {}
        for n, item in enumerate(self.spec.items):
            rotated = self.query_one(f"#rotated-{n}", Checkbox).value
            note = self.query_one(f"#note-{n}", Input).value.strip()
            if not rotated and not note:
                return f"{item.title}: tick it rotated, or say in its note what is pending"
            rotations[item.id] = (rotated, note)
        return Rotated(rotations, self.query_one("#note", Input).value.strip())

    def entered(self, field: Input) -> None:
        # Enter moves on to the next credential; on the last note it submits.
        if field.id == "note":
            self.action_submit()
        else:
            self.focus_next()


def rotated(hub: Incident, spec: RotateStep) -> None:
    def done(result: Rotated | None) -> None:
        if result:
            hub.write(
                lambda s: s.complete(spec.id, hub.actor, result.note, rotations=result.rotations)
            )

    hub.push(RotationPrompt(spec, hub.state.exercise is not None), done)
