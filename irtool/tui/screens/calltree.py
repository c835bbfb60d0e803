"""The call tree: for each role, who to call next and how; mark reached, no answer, message,
or escalate to the backup. Every attempt is an event, so the report says who was reached when."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from irtool.engine.state import CallTree, IncidentState
from irtool.model.steps import NotifyStep
from irtool.model.untrusted import visible
from irtool.model.when import shown
from irtool.tui.screens.prompts import Text as Typed
from irtool.tui.screens.prompts import TextPrompt
from irtool.tui.widgets.tables import refilled, row_under_cursor

if TYPE_CHECKING:
    from irtool.tui.commands.hub import Hub


def how_to_reach(state: IncidentState, person: str) -> str:
    people = state.contacts.people if state.contacts else {}
    if person not in people:
        return person
    entry = people[person]
    methods = ", ".join(f"{method} {value}" for method, value in entry.methods())
    return f"{entry.name} ({entry.timezone}): {methods}"


def tree_status(tree: CallTree) -> str:
    if tree.reached:
        return f"reached {tree.reached}"
    if tree.next_person is None:
        return "no one left to call" if tree.order else "no contacts for this role"
    last = tree.last
    waiting = f" ({last.person}: {last.outcome})" if last else ""
    return f"call {tree.next_person}{waiting}"


class CallTreeScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="calltree.back"),
        Binding("r", "outcome('reached')", "Reached", id="calltree.reached"),
        Binding("n", "outcome('no-answer')", "No answer", id="calltree.no_answer"),
        Binding("m", "outcome('left-message')", "Left message", id="calltree.left_message"),
        Binding("u", "escalate", "Escalate to backup", id="calltree.escalate"),
    ]
    DEFAULT_CSS = """
    CallTreeScreen #roles { height: 1fr; }
    CallTreeScreen #who { height: auto; max-height: 16; border-top: solid $panel-lighten-2;
        padding: 0 1; }
    """

    def __init__(self, incident: Hub) -> None:
        super().__init__()
        self.incident = incident

    @property
    def state(self) -> IncidentState:
        return self.incident.state

    def compose(self) -> ComposeResult:
        yield Static(" Call tree: who to call next", classes="title")
        yield DataTable(id="roles", cursor_type="row")
        yield Static(id="who")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#roles", DataTable)
        table.add_column("role", key="role")
        table.add_column("status", key="status")
        table.add_column("tries", key="tries", width=5)
        self.redraw()
        table.focus()

    def redraw(self) -> None:
        table = self.query_one("#roles", DataTable)
        with refilled(table):
            for role, tree in self.state.calls.items():
                style = "green" if tree.reached else ("red" if tree.next_person is None else "")
                table.add_row(
                    Text(visible(role)),
                    Text(visible(tree_status(tree)), style=style),
                    str(tree.tried),
                    key=role,
                )
        self.show_role()

    def extend(self, events: object) -> None:
        """New events from the journal (another terminal marked a call)."""
        self.redraw()

    @property
    def role(self) -> str | None:
        return row_under_cursor(self.query_one("#roles", DataTable))

    def show_role(self) -> None:
        role = self.role
        if role is None:
            return
        tree = self.state.calls[role]
        lines = [Text(visible(f"{role}: call in this order"), style="bold")]
        for index, person in enumerate(tree.order):
            marker = "→ " if person == tree.next_person else "  "
            label = "primary" if index == 0 else f"backup {index}"
            lines.append(Text(visible(f"{marker}{label}: {how_to_reach(self.state, person)}")))
        for _, step in self.state.runbook.steps():
            # What the runbook says to tell them, word for word, beside how to reach them.
            if isinstance(step, NotifyStep) and role in step.roles and step.message.strip():
                lines.append(Text(visible(f"Tell them ({step.title}):"), style="bold"))
                lines.append(Text(visible(step.message.strip(), lines=True)))
        for attempt in self.state.attempts(role)[-3:]:
            lines.append(
                Text(
                    visible(
                        f"  {shown(attempt.at)} {attempt.person}: {attempt.outcome} ({attempt.by})"
                    ),
                    "dim",
                )
            )
        self.query_one("#who", Static).update(Text("\n").join(lines))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.show_role()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("outcome", "escalate"):
            role = self.role
            return bool(role) and self.state.calls[role or ""].next_person is not None
        return True

    def action_outcome(self, outcome: str) -> None:
        role = self.role
        if role is None:
            return
        person = self.state.calls[role].next_person
        if person is None:
            return
        actor = self.incident.actor
        self.incident.write(lambda s: s.reach(role, person, outcome, actor))
        self.redraw()
        self.refresh_bindings()

    def action_escalate(self) -> None:
        role = self.role
        if role is None:
            return

        def escalated(result: Typed | None) -> None:
            if result is not None:
                actor = self.incident.actor
                self.incident.write(lambda s: s.escalate(role, actor, result.text))
                self.redraw()
                self.refresh_bindings()

        self.app.push_screen(
            TextPrompt(f"Escalate {role} to the next backup", "Why (optional):", required=False),
            escalated,
        )
