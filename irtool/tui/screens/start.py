"""Opening an incident: a form for the runbook's parameters, each typed and checked as entered."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Label, Select, Static

from irtool.model.params import ParamType, Value, parse_value
from irtool.model.untrusted import visible

if TYPE_CHECKING:
    from irtool.model.context import RunbookContext

Values = dict[str, Value]


class StartScreen(Screen[None]):
    """One field per parameter; `on_start(values, exercise)` opens the incident."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="start.back"),
        Binding("ctrl+s", "start", "Open incident", id="start.open"),
    ]
    DEFAULT_CSS = """
    StartScreen #fields { height: 1fr; padding: 0 1; }
    StartScreen .name { text-style: bold; margin-top: 1; }
    StartScreen .problem { color: $error; height: auto; }
    StartScreen Horizontal { height: 1; align-horizontal: right; }
    """

    def __init__(
        self,
        context: RunbookContext,
        given: dict[str, str],
        on_start: Callable[[Values], None],
        mode: str = "live",
    ) -> None:
        super().__init__()
        self.context, self.given, self.on_start, self.mode = context, given, on_start, mode

    def compose(self) -> ComposeResult:
        runbook = self.context.runbook.model
        yield Static(
            _plain(f" Open a {self.mode.upper()} incident: {runbook.title} (v{runbook.version})"),
            classes="title",
        )
        with VerticalScroll(id="fields"):
            for name, param in runbook.parameters.items():
                need = "required" if param.required else "optional"
                yield Label(_plain(f"{name} ({param.type}, {need})"), classes="name")
                yield Label(_plain(param.description))
                value = self.given.get(name, param.default or "")
                if param.type is ParamType.CHOICE:
                    yield Select(
                        [(c, c) for c in param.choices or []],
                        value=value if value in (param.choices or []) else Select.BLANK,
                        id=f"p-{name}",
                    )
                else:
                    yield Input(value=value, placeholder=param.example or "", id=f"p-{name}")
                yield Static("", id=f"e-{name}", classes="problem")
        with Horizontal():
            yield Button("Open incident", id="open", variant="primary")
        yield Footer()

    def on_mount(self) -> None:
        empty = [i for i in self.query(Input).results(Input) if not i.value]
        first = empty[0] if empty else next(self.query(Input).results(Input), None)
        if first:
            first.focus()

    def values(self) -> Values | None:
        """Every value checked; each refusal shown under its field."""
        values: Values = {}
        ok = True
        for name, param in self.context.runbook.model.parameters.items():
            field = self.query_one(f"#p-{name}")
            raw = field.value if isinstance(field, Input | Select) else None
            text = "" if raw in (None, Select.BLANK) else str(raw).strip()
            problem = ""
            if not text:
                values[name] = None
                if param.required:
                    problem = "needed"
            else:
                try:
                    values[name] = parse_value(param, text)
                except ValueError as bad:
                    problem = str(bad)
            # What was typed comes back in the problem: plain text, never markup.
            self.query_one(f"#e-{name}", Static).update(_plain(problem))
            ok = ok and not problem
        return values if ok else None

    def action_start(self) -> None:
        values = self.values()
        if values is None:
            self.app.notify("some parameters need a look", severity="warning")
            return
        self.on_start(values)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_start()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        inputs = list(self.query(Input).results(Input))
        index = inputs.index(event.input)
        if index + 1 < len(inputs):
            inputs[index + 1].focus()
        else:
            self.action_start()


def _plain(text: str) -> Content:
    """Words from a runbook, a journal or a host, for a label: never read as markup."""
    return Content(visible(text))
