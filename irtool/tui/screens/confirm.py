"""Containment's confirmation: the exact commands and hosts, typed assent, a reason, approval.

The screen returns what the responder confirmed and the incident screen records the
request and approval, then starts the run. The one write made from here is a two-person
action's request, when no second responder is at this keyboard: it is recorded at once (with
the reason) so that they can approve it from their own terminal; the approval shows here
within a second, and the action can then be applied.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from irtool.engine.state import ActionState
from irtool.model.names import same_responder
from irtool.model.plan import PlanRow
from irtool.model.steps import ActionStep, Confirm
from irtool.model.untrusted import visible
from irtool.tui.widgets.detail import EXERCISE_ACTION


@dataclass(frozen=True)
class Requested:
    """A two-person action to request now, for a second responder elsewhere to approve."""

    reason: str


@dataclass(frozen=True)
class Confirmed:
    reason: str
    approver: str  # a second responder, at this keyboard, for two-person actions; else ""
    put_back: bool = False  # a rollback that restores attacker state, confirmed a second time


# What a responder types to confirm a rollback that puts back what the attacker had.
PUT_BACK = "put back"


def expected_assent(hosts: list[str]) -> tuple[str, str]:
    """What the responder must type: the host's name for one host, else the number of hosts."""
    if len(hosts) == 1:
        return hosts[0], "the host's name"
    return str(len(hosts)), "the number of hosts"


class ConfirmAction(ModalScreen[Confirmed | None]):
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="confirm.cancel"),
        Binding("ctrl+s", "go", "Confirm", id="confirm.go"),
    ]
    DEFAULT_CSS = """
    ConfirmAction { align: center middle; }
    ConfirmAction > Vertical {
        width: 100%; max-width: 110; height: 100%; max-height: 40;
        border: thick $error; background: $surface; padding: 0 1;
    }
    ConfirmAction.rollback > Vertical { border: thick $warning; }
    ConfirmAction #verb { text-style: bold; color: $error; }
    ConfirmAction #commands { height: 1fr; min-height: 4; background: $boost; }
    ConfirmAction .host { text-style: bold; }
    ConfirmAction .command { padding: 0 0 1 2; }
    ConfirmAction #problem { color: $error; height: auto; }
    ConfirmAction #approvals { height: auto; }
    ConfirmAction #exercise { background: yellow; color: black; text-style: bold; }
    ConfirmAction #puts-back { color: $error; text-style: bold; height: auto; }
    ConfirmAction Horizontal.buttons { height: 1; align-horizontal: right; }
    ConfirmAction Horizontal.field { height: 1; }
    ConfirmAction Horizontal.field Label { width: 30; }
    ConfirmAction Horizontal.field Input { width: 1fr; }
    """

    def __init__(
        self,
        step: ActionStep,
        per_host: dict[str, list[PlanRow]],
        *,
        rollback: bool,
        actor: str,
        action: Callable[[], ActionState | None],
        exercise: bool = False,
        request: Callable[[str], None] | None = None,
        approve_command: str = "irtool incident approve",
    ) -> None:
        super().__init__(classes="rollback" if rollback else "")
        self.exercise = exercise
        self.step, self.per_host, self.rollback, self.actor = step, per_host, rollback, actor
        self.action_state = action  # read again each second: an approval may come from elsewhere
        # Records the request (with its reason) for a second responder elsewhere to approve.
        self.request, self.approve_command = request, approve_command
        self.expected, self.what = expected_assent(list(per_host))

    @property
    def puts_back(self) -> str | None:
        """What this rollback restores that the attacker had, if it does: asked twice."""
        return self.step.rollback_puts_back if self.rollback else None

    @property
    def pending(self) -> bool:
        """No live request for this action yet: a reason is needed."""
        action = self.action_state()
        return action is None or action.rolled_back

    @property
    def needs_approver(self) -> bool:
        action = self.action_state()
        return (
            not self.rollback
            and self.step.approvals == 2
            and (action is None or action.rolled_back or not action.approvals)
        )

    def compose(self) -> ComposeResult:
        verb = "ROLL BACK" if self.rollback else "APPLY"
        with Vertical():
            yield Static(Text(visible(f"{verb} {self.step.id}: {self.step.title}")), id="verb")
            scope = f"on {len(self.per_host)} host(s): {', '.join(self.per_host)}"
            yield Static(Text(visible(scope)), id="scope")
            if self.exercise:
                yield Static(EXERCISE_ACTION, id="exercise")
            with VerticalScroll(id="commands"):
                for host, rows in self.per_host.items():
                    command = rows[0].rollback if self.rollback else rows[0].command
                    if rows[0].unfit:  # no form fits the host: it is not contacted
                        command = f"NOT RUN: {rows[0].unfit}"
                    where = visible(f"on {host} ({rows[0].shell or 'no form'}):")
                    yield Static(where, classes="host", markup=False)
                    shown = visible(command or "", lines=True)
                    yield Static(shown, classes="command", markup=False)
            yield Static("", id="approvals")
            if self.puts_back:
                yield Static(
                    Text(visible(f"This rollback PUTS BACK {self.puts_back}.")), id="puts-back"
                )
                with Horizontal(classes="field"):
                    yield Label(f"Type '{PUT_BACK}' if you mean it:")
                    yield Input(id="put-back")
            if self.step.confirm is Confirm.TYPE_COUNT:
                with Horizontal(classes="field"):
                    yield Label(Text(visible(f"Type {self.what} ({self.expected}):")))
                    yield Input(id="assent")
            with Horizontal(classes="field"):
                yield Label("Reason:")
                yield Input(placeholder="why, for the timeline", id="reason")
            if self.needs_approver:
                with Horizontal(classes="field"):
                    yield Label("Second responder approves:")
                    yield Input(
                        placeholder="their name, or blank to request it",
                        id="approver",
                    )
            yield Static("", id="problem")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button(verb.title(), id="ok", variant="error")

    def on_mount(self) -> None:
        self.show_approvals()
        self.set_interval(1.0, self.show_approvals)
        self.query(Input).first().focus()

    def show_approvals(self) -> None:
        text = self.approvals_text()
        self.query_one("#approvals", Static).update(Text(visible(text, lines=True)))

    def approvals_text(self) -> str:
        action = self.action_state()
        if self.rollback:
            text = "rolls back what was applied; recorded in the timeline"
        elif self.step.approvals < 2:
            text = "one responder: your reason is recorded with the request"
        elif action is None or action.rolled_back:
            text = (
                f"two people, not {self.actor} alone: a second responder's name below, or "
                f"blank to request it now for them to approve in their terminal:\n"
                f"  {self.approve_command}"
            )
        elif not action.approvals:
            text = (
                f"requested by {action.requested_by}; waiting for a second responder to "
                f"approve in their terminal (or their name below):\n  {self.approve_command}"
            )
        else:
            text = (
                f"requested by {action.requested_by}; approved by {', '.join(action.approvals)}:"
                " ctrl+s applies it"
            )
        return text

    def check(self) -> Confirmed | Requested | str:
        if self.puts_back and self.query_one("#put-back", Input).value.strip() != PUT_BACK:
            return f"this rollback puts back {self.puts_back}: type '{PUT_BACK}' to go on"
        if self.step.confirm is Confirm.TYPE_COUNT:
            typed = self.query_one("#assent", Input).value.strip()
            if typed != self.expected:
                return f"type {self.what}, {self.expected}, to go on"
        reason = self.query_one("#reason", Input).value.strip()
        if not reason and (self.rollback or self.pending):
            return "a reason is needed"
        approver = ""
        fields = self.query("#approver").results(Input)
        if self.needs_approver and (field := next(fields, None)):
            approver = field.value.strip()
            action = self.action_state()
            requester = action.requested_by if action and not action.rolled_back else self.actor
            if not approver:
                if self.request is not None and self.pending:
                    return Requested(reason)
                return "waiting for a second responder's approval (see above)"
            if same_responder(approver, requester):
                return f"{approver} requested it: a second responder must approve"
        return Confirmed(reason, approver, put_back=bool(self.puts_back))

    def action_go(self) -> None:
        result = self.check()
        if isinstance(result, Requested):
            if self.request is not None:
                self.request(result.reason)  # a refusal is said by the screen below
            self.show_approvals()
            result = ""  # what waits, and for whom, is said just above
        if isinstance(result, str):
            self.query_one("#problem", Static).update(Text(visible(result)))
        else:
            self.dismiss(result)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_go()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "ok":
            self.action_go()
        else:
            self.action_cancel()
