"""The incident's indicators (attacker addresses, file hashes, accounts...) by kind: listed,
added and removed with a reason, each change an event runbook commands can then use."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text as RichText
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from irtool.engine.kinds import IOC_KINDS
from irtool.journal import Event
from irtool.model.indicators import ioc_value
from irtool.model.untrusted import visible
from irtool.tui.commands.hub import Hub
from irtool.tui.screens.prompts import Prompt, Text, TextPrompt


@dataclass(frozen=True)
class Indicator:
    kind: str
    value: str
    reason: str


class IndicatorPrompt(Prompt[Indicator]):
    """A new indicator: its kind, its value, and where it was seen."""

    def fields(self) -> ComposeResult:
        yield Label("Kind:")
        kinds = (Option(Content(kind.replace("_", " ")), id=kind) for kind in IOC_KINDS)
        yield OptionList(*kinds, id="kind")
        yield Label("Value:")
        yield Input(placeholder="203.0.113.7, a SHA-256, a file name...", id="value")
        yield Label("Reason (for the timeline):")
        yield Input(placeholder="where it was seen", id="reason")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.query_one("#value", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "reason":
            self.action_submit()
        else:
            self.focus_next()

    def submit(self) -> Indicator | str:
        kinds = self.query_one("#kind", OptionList)
        if kinds.highlighted is None:
            return "choose the kind of indicator"
        kind = kinds.get_option_at_index(kinds.highlighted).id or ""
        try:  # checked as the engine will: the problem is shown here, the form kept
            value = ioc_value(kind, self.query_one("#value", Input).value)
        except ValueError as bad:
            return str(bad)
        reason = self.query_one("#reason", Input).value.strip()
        if not reason:
            return "a reason is needed: where it was seen"
        return Indicator(kind, value, reason)


class IndicatorsScreen(ModalScreen[None]):
    """Every indicator the incident holds, by kind; `a` adds one, `d` removes the one chosen."""

    BINDINGS = [
        Binding("a", "add", "Add", id="indicators.add", tooltip="Add an indicator"),
        Binding("d", "remove", "Remove", id="indicators.remove", tooltip="Remove the chosen one"),
        Binding("escape", "dismiss_screen", "Back", id="indicators.back"),
    ]
    DEFAULT_CSS = """
    IndicatorsScreen { align: center middle; }
    IndicatorsScreen > Vertical {
        width: 100; max-width: 100%; height: 80%; border: thick $accent;
        background: $surface; padding: 0 1;
    }
    IndicatorsScreen #heading { text-style: bold; }
    IndicatorsScreen DataTable { height: 1fr; }
    """

    def __init__(self, hub: Hub) -> None:
        super().__init__()
        self.hub = hub

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Indicators", id="heading")
            yield DataTable(id="iocs", cursor_type="row", zebra_stripes=True)
            yield Static("", id="empty")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#iocs", DataTable)
        table.add_column("kind", key="kind", width=10)
        table.add_column("value", key="value")
        self.show()
        table.focus()

    def show(self) -> None:
        table = self.query_one("#iocs", DataTable)
        table.clear()
        for kind in IOC_KINDS:  # grouped by kind, each kind's in the order they were added
            for value in self.hub.state.iocs.get(kind, []):
                label = kind.replace("_", " ")
                table.add_row(label, RichText(visible(value)), key=f"{kind}\x00{value}")
        count = table.row_count
        empty = "none yet: a adds one" if not count else f"{count} indicator(s)"
        self.query_one("#empty", Static).update(empty)

    def extend(self, events: list[Event]) -> None:
        """The incident screen hands over what was written since, here or elsewhere."""
        self.show()

    def action_add(self) -> None:
        def added(result: Indicator | None) -> None:
            if result:
                self.hub.write(
                    lambda s: s.change_ioc(
                        "add", result.kind, result.value, self.hub.actor, result.reason
                    )
                )
                self.show()

        self.app.push_screen(IndicatorPrompt("Add an indicator", "Add"), added)

    def action_remove(self) -> None:
        table = self.query_one("#iocs", DataTable)
        if not table.row_count:
            return
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value or ""
        kind, _, value = key.partition("\x00")

        def removed(result: Text | None) -> None:
            if result:
                self.hub.write(
                    lambda s: s.change_ioc("remove", kind, value, self.hub.actor, result.text)
                )
                self.show()

        title = f"Remove the {kind.replace('_', ' ')} {value}"
        self.app.push_screen(TextPrompt(title, "Reason:", ok="Remove"), removed)

    def action_dismiss_screen(self) -> None:
        self.dismiss(None)


def indicators(hub: Hub) -> None:
    """I: the incident's indicators."""
    hub.app.push_screen(IndicatorsScreen(hub))
