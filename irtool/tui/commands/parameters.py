"""Parameters learned as the incident unfolds: pick one, type its value (or several, for a
`list: true` parameter), say why; and, before a run, the values its commands still need.

A value is checked as the runbook types it before anything is written; the engine records
it as a `parameter.set` event and the plan is drawn again from the new values."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.content import Content
from textual.widgets import Input, Label, OptionList, Static, TextArea
from textual.widgets.option_list import Option

from irtool.model.params import Parameter, Value, parse_values, value_text
from irtool.model.untrusted import visible
from irtool.tui.commands.hub import Hub, planner
from irtool.tui.guard import guarded
from irtool.tui.screens.prompts import Prompt, Text


@dataclass(frozen=True)
class ParameterValue:
    name: str
    values: list[str]  # canonical: one value, or each of a list parameter's
    reason: str


def split_values(text: str) -> list[str]:
    """Several values typed one per line, or on one line separated by commas (a user agent,
    which holds commas itself, goes on a line of its own)."""
    text = text.strip()
    if not text:
        return []
    parts = text.splitlines() if "\n" in text else text.split(",")
    return [part.strip() for part in parts if part.strip()]


class ParameterPrompt(Prompt[ParameterValue]):
    """One parameter: its type, meaning and current value; the new value(s), and why."""

    AUTO_FOCUS = "#value"
    DEFAULT_CSS = """
    ParameterPrompt #about { color: $text-muted; height: auto; margin: 0 0 1 0; }
    ParameterPrompt TextArea { height: 5; margin: 0 0 1 0; }
    """

    def __init__(
        self,
        name: str,
        param: Parameter,
        current: Value,
        *,
        title: str = "",
        reason: str = "",
    ) -> None:
        super().__init__(title or f"Set parameter {name}", "Set")
        self.param_name, self.param, self.current = name, param, current
        self.reason = reason

    def fields(self) -> ComposeResult:
        param = self.param
        kind = f"{param.type}, several values" if param.many else str(param.type)
        about = [f"{self.param_name} ({kind}): {param.description}"]
        if param.choices:
            about.append(f"one of: {', '.join(param.choices)}")
        if param.example:
            about.append(f"for example: {param.example}")
        about.append(f"now: {value_text(self.current)}")
        yield Static(visible("\n".join(about), lines=True), id="about", markup=False)
        if param.many:
            yield Label("Values (one per line, or separated by commas; ctrl+s sets them):")
            yield TextArea(_prefill(self.current), id="value", soft_wrap=False)
        else:
            yield Label("Value:")
            yield Input(_prefill(self.current), placeholder=param.example or "", id="value")
        yield Label("Reason (for the timeline):")
        yield Input(self.reason, placeholder="how it was learned", id="reason")

    def submit(self) -> ParameterValue | str:
        field = self.query_one("#value")
        raw = field.text if isinstance(field, TextArea) else self.query_one("#value", Input).value
        typed = split_values(raw) if self.param.many else [raw.strip()]
        if not typed or not typed[0]:
            return f"type a value for {self.param_name}"
        try:
            parsed = parse_values(self.param, typed)
        except ValueError as bad:
            return str(bad)
        reason = self.query_one("#reason", Input).value.strip()
        if not reason:
            return "a reason is needed: how the value was learned"
        return ParameterValue(
            self.param_name, [parsed] if isinstance(parsed, str) else parsed, reason
        )

    def on_input_submitted(self, event: Input.Submitted) -> None:
        # Enter moves on to the reason; on the reason, it sets the value.
        event.stop()
        if event.input.id == "reason":
            self.action_submit()
        else:
            self.focus_next()


def _prefill(current: Value) -> str:
    if current is None:
        return ""
    return "\n".join(current) if isinstance(current, list) else current


class PickParameter(Prompt[Text]):
    """Which parameter to set: each with its type, meaning and value (or unset)."""

    AUTO_FOCUS = "OptionList"
    DEFAULT_CSS = "PickParameter OptionList { max-height: 16; }"

    def __init__(self, parameters: dict[str, Parameter], values: dict[str, Value]) -> None:
        super().__init__("Parameters: enter sets or amends one", "Choose")
        self.parameters, self.values = parameters, values

    def fields(self) -> ComposeResult:
        options = []
        for name, param in self.parameters.items():
            kind = f"{param.type} list" if param.many else str(param.type)
            text = f"{name} ({kind}) = {value_text(self.values.get(name))}\n  {param.description}"
            options.append(Option(Content(visible(text, lines=True)), id=name))
        yield OptionList(*options, id="parameters")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.action_submit()

    def submit(self) -> Text | str:
        options = self.query_one("#parameters", OptionList)
        if options.highlighted is None:
            return "choose a parameter"
        return Text(options.get_option_at_index(options.highlighted).id or "")


def set_parameter(hub: Hub) -> None:
    """P: choose a parameter, then set or amend its value."""
    parameters = hub.state.runbook.parameters
    if not parameters:
        hub.app.notify("this runbook has no parameters")
        return

    def chosen(picked: Text | None) -> None:
        if picked:
            ask(hub, picked.text, then=lambda: None)

    hub.app.push_screen(PickParameter(dict(parameters), dict(hub.state.parameters)), chosen)


def ask(
    hub: Hub, name: str, then: Callable[[], None], *, title: str = "", reason: str = ""
) -> None:
    """The form for one parameter; once its value is recorded, `then` carries on."""
    param = hub.state.runbook.parameters[name]

    def given(result: ParameterValue | None) -> None:
        if result is None:
            return
        changes = len(hub.state.parameter_changes)
        hub.write(lambda s: s.set_parameter(name, result.values, hub.actor, result.reason))
        if len(hub.state.parameter_changes) > changes:  # recorded, not refused
            then()

    current = hub.state.parameters.get(name)
    hub.app.push_screen(ParameterPrompt(name, param, current, title=title, reason=reason), given)


def ask_missing(hub: Hub, step: str, then: Callable[[], None]) -> None:
    """Before a run: each unset parameter its commands use, asked in turn; then the run."""
    with guarded(hub.app):
        missing = [name for name, _ in planner(hub).missing_parameters(step)]
        if not missing:
            then()
            return

        def next_one(names: list[str]) -> None:
            if not names:
                then()
                return
            title = f"{step} needs {names[0]} before it runs"
            reason = f"needed to run {step}"
            ask(hub, names[0], lambda: next_one(names[1:]), title=title, reason=reason)

        next_one(missing)
