"""The facilitator's screen of an exercise: the clock, the injects fired and to come, and the
facilitator's own commands (pause, fire now, mark handled, a new inject, an observation, the
after-action review). Every command is an event, so the review is read off the journal."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.console import Group, RenderableType
from rich.markdown import Markdown
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Static

from irtool.engine.exercise import ExerciseState
from irtool.engine.session import IncidentSession
from irtool.engine.state import IncidentState
from irtool.exercise.director import schedule
from irtool.exercise.review import clock, review
from irtool.export.markdown import review_markdown
from irtool.journal import Event
from irtool.journal.events import parse_moment
from irtool.model.untrusted import visible
from irtool.tui.commands.scope import change_scope
from irtool.tui.screens.prompts import Choice, ChoicePrompt, TextPrompt
from irtool.tui.screens.prompts import Text as Typed
from irtool.tui.widgets.tables import refilled, row_under_cursor

if TYPE_CHECKING:
    from irtool.tui.commands.hub import Hub


class FacilitatorScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="facilitator.back"),
        Binding("space", "pause", "Pause/resume", id="facilitator.pause"),
        Binding("f", "fire", "Fire now", id="facilitator.fire"),
        Binding("h", "handled", "Handled", id="facilitator.handled"),
        Binding("i", "new_inject", "New inject", id="facilitator.new"),
        Binding("o", "observe", "Observation", id="facilitator.observe"),
        Binding("v", "review", "Review", id="facilitator.review"),
        Binding(
            "a",
            "add_host",
            "Add a host",
            id="facilitator.scope",
            tooltip="Add a host to affected (or another group), as an inject demands",
        ),
        Binding("b", "briefing", "Briefing", id="facilitator.briefing", show=False),
    ]
    DEFAULT_CSS = """
    FacilitatorScreen #clock { height: 1; background: $warning; color: $text; text-style: bold;
        padding: 0 1; }
    FacilitatorScreen #injects { height: 1fr; overflow-x: hidden; }
    FacilitatorScreen #about { height: auto; max-height: 12; border-top: solid $panel-lighten-2;
        padding: 0 1; }
    """

    def __init__(self, incident: Hub) -> None:
        super().__init__()
        self.incident = incident

    @property
    def state(self) -> IncidentState:
        return self.incident.state

    @property
    def exercise(self) -> ExerciseState:
        assert self.state.exercise is not None
        return self.state.exercise

    def compose(self) -> ComposeResult:
        yield Static(" Facilitator", classes="title")
        yield Static(id="clock")
        yield DataTable(id="injects", cursor_type="row")
        with VerticalScroll(id="about"):
            yield Static(id="inject")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#injects", DataTable)
        table.add_column("when", key="when", width=16)
        table.add_column("state", key="state", width=8)
        table.add_column("to", key="to", width=18)
        table.add_column("inject", key="inject")  # last: a long title cuts nothing else off
        self.redraw()
        table.focus()
        self.set_interval(1.0, self.show_clock)

    # -- drawing ------------------------------------------------------------------------

    def show_clock(self) -> None:
        played = self.exercise
        now = self.incident.clock()
        if self.state.closed_at:  # the exercise ended with the incident: its clock stops there
            now = min(now, parse_moment(self.state.closed_at))
        line = Text(visible(f"{played.scenario.title}  T+{clock(played.elapsed(now))}"))
        if played.speed != 1:
            line.append(f"  ({played.speed:g}x)")
        if played.paused_at:
            line.append("  PAUSED (space resumes)", style="bold reverse")
        waiting = len(played.waiting())
        if waiting:
            line.append(f"  {waiting} inject(s) waiting for an answer")
        self.query_one("#clock", Static).update(line)

    def redraw(self) -> None:
        table = self.query_one("#injects", DataTable)
        # Cells are the facilitator's words: plain text, never read as markup.
        with refilled(table):
            for fired in self.exercise.fired.values():
                answered = fired.handled_at is not None
                status = Text(
                    "handled" if answered else "WAITING", style="green" if answered else "bold"
                )
                table.add_row(
                    f"T+{clock(fired.offset)}",
                    status,
                    _plain(fired.to),
                    _plain(fired.title),
                    key=fired.id,
                )
            for coming in schedule(self.state):
                when = (
                    f"T+{clock(coming.due)}"
                    if coming.due is not None
                    else f"after {coming.inject.after}"
                )
                table.add_row(
                    _plain(when),
                    "to come",
                    _plain(coming.inject.to),
                    _plain(coming.inject.title),
                    key=coming.inject.id,
                )
        self.show_clock()
        self.show_inject()
        self.refresh_bindings()

    def extend(self, events: object) -> None:
        """New events from the journal: an inject fired, a step finished elsewhere."""
        self.redraw()

    @property
    def selected(self) -> str | None:
        return row_under_cursor(self.query_one("#injects", DataTable))

    def show_inject(self) -> None:
        chosen = self.selected
        parts: list[RenderableType] = []
        if chosen is None:
            if self.exercise.scenario.briefing:
                parts.append(Markdown(visible(self.exercise.scenario.briefing, lines=True)))
            parts.append(Text("No inject in this scenario: i makes one up.", style="dim"))
        else:
            planned = self.exercise.scenario.inject(chosen)
            fired = self.exercise.fired.get(chosen)
            title, to, detail = (
                (fired.title, fired.to, fired.detail)
                if fired
                else (planned.title, planned.to, planned.detail)
                if planned
                else (chosen, "", "")
            )
            parts.append(Text(visible(f"{title}  → {to}"), style="bold"))
            if detail:
                parts.append(Markdown(visible(detail, lines=True)))
            if fired and fired.handled_at:
                handled = f"handled by {fired.handled_by}: {fired.handled_how}"
                parts.append(Text(visible(handled, lines=True), "green"))
            if planned and planned.expect:
                parts.append(Text(f"handled when done: {', '.join(planned.expect)}", "dim"))
            if planned and planned.facilitator:
                parts.append(
                    Text(visible(f"Facilitator: {planned.facilitator}", lines=True), "italic")
                )
        self.query_one("#inject", Static).update(Group(*parts))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.show_inject()
        self.refresh_bindings()

    # -- commands ---------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        chosen = self.selected
        fired = self.exercise.fired.get(chosen or "")
        if action == "fire":
            return chosen is not None and fired is None
        if action == "handled":
            return fired is not None and fired.handled_at is None
        return True

    def run_command(self, command: Callable[[IncidentSession], Event]) -> None:
        self.incident.write(command)
        self.redraw()

    def action_pause(self) -> None:
        actor = self.incident.actor
        if self.exercise.paused_at:
            self.run_command(lambda s: s.resume_clock(actor))
        else:
            self.run_command(lambda s: s.pause_clock(actor))

    def action_fire(self) -> None:
        chosen = self.selected
        if chosen and chosen not in self.exercise.fired:
            actor = self.incident.actor
            self.run_command(lambda s: s.fire_inject(chosen, actor))

    def action_handled(self) -> None:
        chosen = self.selected
        if chosen is None:
            return

        def answered(result: Typed | None) -> None:
            if result:
                actor = self.incident.actor
                self.run_command(lambda s: s.handle_inject(chosen, actor, result.text))

        self.app.push_screen(
            TextPrompt(f"Handled: {self.exercise.fired[chosen].title}", "How:"), answered
        )

    def action_new_inject(self) -> None:
        def titled(result: Typed | None) -> None:
            if not result:
                return
            roles = [(role, role) for role in self.state.runbook.roles]

            def addressed(choice: Choice | None) -> None:
                if choice is None:
                    return
                actor = self.incident.actor
                new_id = f"adhoc-{len(self.exercise.fired) + 1}"
                self.run_command(
                    lambda s: s.fire_inject(
                        new_id, actor, title=result.text, to=choice.option, detail=choice.note
                    )
                )

            self.app.push_screen(
                ChoicePrompt(
                    "New inject",
                    f"{result.text}: to which role?",
                    roles,
                    ok="Fire",
                    note_label="The whole message (optional):",
                ),
                addressed,
            )

        self.app.push_screen(TextPrompt("New inject", "What the role hears:"), titled)

    def action_observe(self) -> None:
        def observed(result: Typed | None) -> None:
            if result:
                actor = self.incident.actor
                self.run_command(lambda s: s.observe(result.text, actor))

        self.app.push_screen(TextPrompt("Observation", "What you saw:", ok="Record"), observed)

    def action_add_host(self) -> None:
        # The responders' own scope form, with `affected` filled in: an inject's second
        # server joins the exercise as it would a live incident.
        change_scope(self.incident, "affected")

    def action_review(self) -> None:
        self.app.push_screen(ReviewScreen(review_markdown(review(self.state))))

    def action_briefing(self) -> None:
        self.app.push_screen(briefing(self.exercise))


def briefing(exercise: ExerciseState) -> ReviewScreen:
    """What the facilitator reads out at the start: shown once when an exercise opens."""
    speed = f", the clock runs {exercise.speed:g}x" if exercise.speed != 1 else ""
    text = (
        f"# {exercise.scenario.title}\n\n{exercise.scenario.briefing}\n\n"
        f"*Exercise: every host is simulated{speed}. Press f for the facilitator's screen.*\n"
    )
    return ReviewScreen(text)


class ReviewScreen(ModalScreen[None]):
    """Markdown to read: the after-action review so far, or the briefing."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back", id="review.back")]
    DEFAULT_CSS = """
    ReviewScreen { align: center middle; }
    ReviewScreen > VerticalScroll { width: 100%; max-width: 120; height: 100%;
        border: thick $warning; background: $surface; padding: 0 1; }
    """

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(Markdown(visible(self.text, lines=True)))
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(VerticalScroll).focus()


def _plain(text: str) -> Text:
    return Text(visible(text))
