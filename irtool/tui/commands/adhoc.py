"""A one-off command on chosen hosts, outside the runbook: its output kept with the same custody,
marked ad hoc. One that changes state goes through containment's confirmation, with the
command that undoes it or the reason nothing can."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.widgets import Checkbox, Input, Label, RadioButton, RadioSet, SelectionList, TextArea

from irtool.model.steps import ActionStep, CollectStep, Shell
from irtool.model.untrusted import visible
from irtool.tui.commands.hub import Hub, planner
from irtool.tui.guard import guarded
from irtool.tui.screens.confirm import ConfirmAction, Confirmed
from irtool.tui.screens.prompts import Prompt
from irtool.tui.screens.run import AdHoc, RunRequest

AD_HOC = "ad-hoc"  # what the run screen and the confirmation call a command of no step


@dataclass(frozen=True)
class AdHocCommand:
    hosts: list[str]
    shell: str
    command: str
    reason: str
    changes: bool = False
    rollback: str | None = None
    irreversible: str | None = None

    @property
    def title(self) -> str:
        first = self.command.strip().splitlines()[0] if self.command.strip() else ""
        return f"ad hoc: {first}"


class AdHocPrompt(Prompt[AdHocCommand]):
    """Hosts, shell, the command; and, if it changes state, how it is undone."""

    AUTO_FOCUS = "SelectionList"
    DEFAULT_CSS = """
    AdHocPrompt > Vertical { width: 100; }
    AdHocPrompt TextArea { height: 5; margin: 0 0 1 0; }
    AdHocPrompt RadioSet { margin: 0 0 1 0; }
    AdHocPrompt #undo { height: auto; }
    """

    def __init__(self, hosts: list[str], chosen: list[str]) -> None:
        super().__init__("Ad-hoc command on chosen hosts", "Run")
        self.hosts, self.chosen = hosts, chosen

    def fields(self) -> ComposeResult:
        yield Label("Hosts (space ticks):")
        yield SelectionList[str](
            *((visible(h), h, h in self.chosen) for h in self.hosts), id="hosts"
        )
        yield Label("Shell:")
        yield RadioSet(
            *(RadioButton(s.value, value=s is Shell.SH, id=s.value) for s in Shell), id="shell"
        )
        yield Label("Command (several lines are one script; tab leaves the box):")
        yield TextArea(id="command", soft_wrap=False, tab_behavior="focus")
        yield Checkbox("It changes state (containment): confirm, with its way back", id="changes")
        yield Label("Rollback command (blank if it cannot be undone):", classes="undo")
        yield Input(id="rollback", classes="undo")
        yield Label("Why it cannot be undone (when there is no rollback):", classes="undo")
        yield Input(id="irreversible", classes="undo")
        yield Label("Reason (for the timeline):", id="reason-label")
        yield Input(placeholder="what it looks for", id="reason")

    def on_mount(self) -> None:
        self.show_undo()

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        self.show_undo()

    def show_undo(self) -> None:
        changes = self.query_one("#changes", Checkbox).value
        for widget in self.query(".undo"):
            widget.display = changes
        # A change is confirmed with its own reason: one place to give it.
        self.query_one("#reason").display = not changes
        self.query_one("#reason-label").display = not changes

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id in ("reason", "irreversible"):
            self.action_submit()
        else:
            self.focus_next()

    def submit(self) -> AdHocCommand | str:
        hosts = [h for h in self.hosts if h in self.query_one("#hosts", SelectionList).selected]
        if not hosts:
            return "tick at least one host (space)"
        pressed = self.query_one("#shell", RadioSet).pressed_button
        shell = str(pressed.id) if pressed else Shell.SH.value
        command = self.query_one("#command", TextArea).text.strip()
        if not command:
            return "type the command"
        if not self.query_one("#changes", Checkbox).value:
            reason = self.query_one("#reason", Input).value.strip()
            if not reason:
                return "a reason is needed: what the command looks for"
            return AdHocCommand(hosts, shell, command, reason)
        rollback = self.query_one("#rollback", Input).value.strip() or None
        irreversible = self.query_one("#irreversible", Input).value.strip() or None
        if not rollback and not irreversible:
            return "a change needs its rollback command, or why it cannot be undone"
        return AdHocCommand(hosts, shell, command, "", True, rollback, irreversible)


def request(hub: Hub, adhoc: AdHocCommand, reason: str) -> RunRequest:
    """The run screen's request for an ad-hoc command."""
    how = AdHoc(adhoc.command, adhoc.shell, adhoc.changes, adhoc.rollback, adhoc.irreversible)
    return RunRequest(hub.state.id, AD_HOC, adhoc.title, adhoc.hosts, reason=reason, ad_hoc=how)


def as_action(adhoc: AdHocCommand) -> ActionStep:
    """The change as containment's confirmation reads an action: typed assent, one responder."""
    return ActionStep.model_validate(
        {
            "type": "action",
            "id": AD_HOC,
            "title": adhoc.title,
            "targets": [f"host:{h}" for h in adhoc.hosts],
            "shell": adhoc.shell,
            "command": adhoc.command,
            "rollback": adhoc.rollback,
            "irreversible": adhoc.irreversible,
        }
    )


def collect(hub: Hub) -> None:
    """x: a one-off command on chosen hosts (the selected step's hosts ticked to start)."""
    inventory = hub.state.inventory
    if inventory is None:
        hub.app.notify("this incident has no inventory: no host to run on", severity="warning")
        return
    chosen: list[str] = []
    step = hub.selected
    if step:
        with guarded(hub.app):  # a step that runs on no host ticks none
            chosen = list(planner(hub).commands(step)) if _runs(hub, step) else []

    def confirmed_change(adhoc: AdHocCommand, result: Confirmed | None) -> None:
        if result is not None:
            hub.start_run(request(hub, adhoc, result.reason))

    def given(adhoc: AdHocCommand | None) -> None:
        if adhoc is None:
            return
        if not adhoc.changes:
            hub.start_run(request(hub, adhoc, adhoc.reason))
            return
        with guarded(hub.app):
            per_host = planner(hub).ad_hoc_commands(adhoc.hosts, adhoc.command, adhoc.shell)
            hub.app.push_screen(
                ConfirmAction(
                    as_action(adhoc),
                    per_host,
                    rollback=False,
                    actor=hub.actor,
                    action=lambda: None,
                    exercise=hub.state.exercise is not None,
                ),
                lambda result: confirmed_change(adhoc, result),
            )

    hub.app.push_screen(AdHocPrompt(list(inventory.hosts), chosen), given)


def _runs(hub: Hub, step: str) -> bool:
    return isinstance(hub.state.runbook.step(step), CollectStep | ActionStep)
