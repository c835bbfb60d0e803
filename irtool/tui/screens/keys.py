"""`?`: every key of the screen below, read from its active bindings, so the list is always the
screen's own: what applies now, with the responder's keymap, the rarer keys the footer has no
room for, and those of the field that has the focus."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from irtool.model.untrusted import visible


def key_table(screen: Screen[object]) -> Table:
    """One row per key: the key as typed, what it does; dimmed when it does not apply now."""
    table = Table(box=None, show_header=False, padding=(0, 2, 0, 0), expand=True)
    table.add_column("key", style="bold", no_wrap=True)
    table.add_column("does")
    seen: set[str] = set()
    for key, active in screen.active_bindings.items():
        binding = active.binding
        if not binding.description or key in seen:
            continue
        seen.add(key)
        shown = screen.app.get_key_display(binding)
        does = binding.tooltip or binding.description
        if binding.tooltip and binding.tooltip != binding.description:
            does = f"{binding.description}: {binding.tooltip}"
        style = "" if active.enabled else "dim"
        table.add_row(Text(visible(shown), style=style), Text(visible(does), style=style))
    return table


class KeysScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape", "dismiss", "Close", id="keys.close"),
        Binding("question_mark", "dismiss", "Close", id="keys.close_again", show=False),
    ]
    DEFAULT_CSS = """
    KeysScreen { align: center middle; }
    KeysScreen > VerticalScroll { width: 80; max-width: 100%; height: auto; max-height: 100%;
        border: thick $accent; background: $surface; padding: 0 1; }
    """

    def __init__(self, below: Screen[object]) -> None:
        super().__init__()
        self.below = below

    def compose(self) -> ComposeResult:
        with VerticalScroll() as box:
            box.border_title = "Keys of this screen (escape closes)"
            yield Static(key_table(self.below), id="keys")
