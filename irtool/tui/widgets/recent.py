"""Under the steps: the latest events (the room's shared memory at a glance), and a bar with
the incident screen's rarer keys, which the footer has no room for at 80 columns."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual.widgets import Static

from irtool.engine.timeline import describe
from irtool.journal import Event
from irtool.model.untrusted import visible
from irtool.model.when import clock, zone_label

RECENT = 5


class RecentEvents(Static):
    """The latest events, newest last."""

    DEFAULT_CSS = """
    RecentEvents { height: 6; border-top: solid $panel-lighten-2; padding: 0 1;
        border-title-color: $text-muted;
        text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def show(self, events: list[Event]) -> None:
        self.border_title = f"latest events, times {zone_label()}"
        lines = []
        for event in events[-RECENT:]:
            line = Text.assemble(
                (visible(clock(event.occurred_at)), "dim"),
                " ",
                (visible(event.actor), "bold"),
                " ",
                visible(f"[{'@'.join(p for p in (event.step, event.host) if p)}] ")
                if event.step
                else "",
                visible(describe(event)),
                no_wrap=True,
                overflow="ellipsis",
            )
            lines.append(line)
        self.update(Text("\n", no_wrap=True, overflow="ellipsis").join(lines))


class KeyBar(Static):
    """`key label` pairs: the keys that apply now but have no place in the footer, on as many
    lines as they need (two at most), a pair never split across them."""

    DEFAULT_CSS = """
    KeyBar { height: auto; max-height: 2; background: $panel; padding: 0 1; }
    """
    keys: list[tuple[str, str]] = []

    def show(self, keys: Iterable[tuple[str, str]]) -> None:
        self.keys = [*keys, ("?", "all keys")]
        self.draw()

    def on_resize(self) -> None:
        self.draw()

    def draw(self) -> None:
        width = (self.size.width - 2) if self.size.width > 2 else 78
        lines: list[Text] = [Text()]
        for key, label in self.keys:
            pair = Text.assemble((key, "bold"), f" {label}")
            if lines[-1] and lines[-1].cell_len + 2 + pair.cell_len > width:
                lines.append(Text())
            if lines[-1]:
                lines[-1].append("  ")
            lines[-1].append_text(pair)
        self.update(Text("\n").join(lines))
