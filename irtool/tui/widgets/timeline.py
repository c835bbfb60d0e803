"""A virtual list of journal events: one row each, and only the rows on screen are drawn."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import ClassVar, NamedTuple

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from irtool.engine import kinds
from irtool.engine.timeline import TimelineFilter, describe
from irtool.journal import Event
from irtool.journal.events import parse_moment
from irtool.model.untrusted import visible
from irtool.model.when import zone

WIDE = 110  # from this many columns the date fits beside the time
SKEW = timedelta(minutes=1)  # a note recorded later than this was back-dated


class _Row(NamedTuple):
    """An event's columns but the description, before they are fitted to a width."""

    date: str
    time: str  # HH:MM:SS then "~" when back-dated, else " "
    actor: str
    kind: str
    where: str
    tone: str  # a component class, or "" for the default colour


def _moment(text: str) -> datetime | None:
    """The event's moment in the responder's zone, which the timeline screen names."""
    try:
        return parse_moment(text).astimezone(zone())
    except ValueError:
        return None


def _tone(event: Event) -> str:
    """The component class that colours the row: failures must catch the eye."""
    ran = event.kind in (kinds.COMMAND_RAN, kinds.FILE_FETCHED)
    data = event.data
    if event.kind == kinds.HOST_FAILED or (
        ran and (data.get("failure") or data.get("exit_status") not in (None, 0))
    ):
        return "timeline--failure"
    if event.kind == kinds.HOST_WARNING:
        return "timeline--warning"
    if event.kind.startswith("action."):
        return "timeline--action"
    if event.kind == kinds.DECISION_MADE:
        return "timeline--decision"
    return ""


def _where(event: Event) -> str:
    return "@".join(part for part in (event.step, event.host) if part)


def _row(event: Event) -> _Row:
    occurred, recorded = _moment(event.occurred_at), _moment(event.recorded_at)
    if occurred is None:  # not ours to reject here: show what the journal holds
        date, time = "", visible(event.occurred_at)[:8].ljust(8)
    else:
        iso = occurred.isoformat()
        date, time = iso[:10], iso[11:19]
    skewed = occurred is not None and recorded is not None and abs(recorded - occurred) > SKEW
    return _Row(
        date,
        time + ("~" if skewed else " "),
        visible(event.actor),
        visible(event.kind),
        visible(_where(event)),
        _tone(event),
    )


def _haystack(event: Event, text: str) -> str:
    """What free words of a filter are looked for in: the row's text, cheaply."""
    return f"{event.occurred_at} #{event.seq} {event.actor} {event.kind} {_where(event)} {text}"


def _fit(text: str, width: int) -> str:
    """Exactly `width` cells: padded, or cut with an ellipsis so a reader sees it goes on."""
    if width <= 0:
        return ""
    if cell_len(text) > width:
        return set_cell_size(text, width - 1) + "…"
    return set_cell_size(text, width)


class TimelineView(ScrollView, can_focus=True):
    """The events of an incident, one row each, with a cursor and a filter."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor(-1)", "Previous event", show=False, id="timeline.up"),
        Binding("down", "cursor(1)", "Next event", show=False, id="timeline.down"),
        Binding("pageup", "page(-1)", "Page up", show=False, id="timeline.page_up"),
        Binding("pagedown", "page(1)", "Page down", show=False, id="timeline.page_down"),
        Binding("home", "first", "First event", show=False, id="timeline.first"),
        Binding("end", "last", "Last event", show=False, id="timeline.last"),
        Binding("enter", "select", "Details", id="timeline.select"),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        f"timeline--{part}"
        for part in ("cursor", "meta", "failure", "warning", "action", "decision", "corrected")
    }

    DEFAULT_CSS = """
    TimelineView {
        background: $surface;
        color: $foreground;
        overflow-x: hidden;
        overflow-y: auto;
        & > .timeline--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
        }
        &:focus > .timeline--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
        }
        & > .timeline--meta { color: $text-muted; }
        & > .timeline--failure { color: $text-error; }
        & > .timeline--warning { color: $text-warning; }
        & > .timeline--action { color: ansi_magenta; }
        & > .timeline--decision { color: ansi_cyan; }
        & > .timeline--corrected { text-style: dim strike; }
    }
    """

    class Selected(Message):
        """The responder chose an event (enter, or a click on the highlighted row)."""

        def __init__(self, timeline: TimelineView, event: Event) -> None:
            super().__init__()
            self.timeline = timeline
            self.event = event

        @property
        def control(self) -> TimelineView:
            return self.timeline

    def __init__(self, events: Sequence[Event] = (), *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._events: list[Event] = []
        self._rows: list[int] = []  # indexes into _events of the rows the filter keeps
        self._filter = TimelineFilter()
        self._cursor = 0  # index into _rows
        self._corrected: set[int] = set()
        self._texts: dict[int, str] = {}  # descriptions by seq: made once, when first needed
        self._columns: LRUCache[int, _Row] = LRUCache(1024)  # by seq, for rows on screen
        self._strips: LRUCache[tuple[int, int, bool, bool], Strip] = LRUCache(512)
        self._widths = [0, 0, 0, 0]  # seq digits, actor, kind, where: the widest seen
        self.set_events(events)

    # -- what is shown -------------------------------------------------------------------

    @property
    def shown(self) -> int:
        return len(self._rows)

    @property
    def total(self) -> int:
        return len(self._events)

    @property
    def selected(self) -> Event | None:
        return self._events[self._rows[self._cursor]] if self._rows else None

    def set_events(self, events: Sequence[Event]) -> None:
        """Show these events instead, with the cursor on the newest."""
        self._events = list(events)
        self._texts.clear()
        self._columns.clear()
        self._widths = [0, 0, 0, 0]
        self._learn(self._events)
        self._rows = self._keep(0)
        self._cursor = max(0, len(self._rows) - 1)
        self._resized(tail=True)

    def extend(self, events: Sequence[Event]) -> None:
        """Append events newer than the last; follow them if the reader was at the tail."""
        last = self._events[-1].seq if self._events else 0
        fresh = [event for event in events if event.seq > last]  # a re-delivered event is no news
        if not fresh:
            return
        following = not self._rows or self._cursor == len(self._rows) - 1
        at_bottom = self.is_vertical_scroll_end
        start = len(self._events)
        self._events.extend(fresh)
        self._learn(fresh)
        self._rows.extend(self._keep(start))
        if following:
            self._cursor = max(0, len(self._rows) - 1)
        self._resized(tail=following or at_bottom)

    def set_filter(self, timeline_filter: TimelineFilter) -> None:
        """Show only the events the filter takes; the cursor stays on its event if still shown."""
        current = self._rows[self._cursor] if self._rows else None
        self._filter = timeline_filter
        self._rows = self._keep(0)
        if current is not None and self._rows:
            # the row of the same event, or else of the one shown just before it
            self._cursor = max(0, bisect_right(self._rows, current) - 1)
        else:
            self._cursor = max(0, len(self._rows) - 1)
        self._resized(tail=False)
        self._show_cursor()

    def is_corrected(self, seq: int) -> bool:
        return seq in self._corrected

    def mark_corrected(self, seqs: Iterable[int]) -> None:
        """Show these events as corrected: they stay, dimmed and struck through."""
        self._corrected.update(seqs)
        self._strips.clear()
        self.refresh()

    # -- bookkeeping ---------------------------------------------------------------------

    def _learn(self, events: Sequence[Event]) -> None:
        """Widen the columns for new events and note the corrections they carry."""
        widths = self._widths
        for event in events:
            widths[0] = max(widths[0], len(str(event.seq)))
            widths[1] = max(widths[1], len(event.actor))
            widths[2] = max(widths[2], len(event.kind))
            widths[3] = max(widths[3], len(event.step or "") + len(event.host or "") + 1)
            if event.kind == kinds.EVENT_CORRECTED and isinstance(event.data.get("corrects"), int):
                self._corrected.add(event.data["corrects"])
        self._strips.clear()  # a wider column moves every row

    def _keep(self, start: int) -> list[int]:
        """Indexes from `start` on of the events the filter takes."""
        events, keep = self._events, self._filter
        if keep.empty:
            return list(range(start, len(events)))
        if not keep.words:  # field tests only: no need to format anything
            return [i for i in range(start, len(events)) if keep.matches(events[i])]
        text = self._text
        return [
            i
            for i in range(start, len(events))
            if keep.matches(events[i], _haystack(events[i], text(events[i])))
        ]

    def _text(self, event: Event) -> str:
        text = self._texts.get(event.seq)
        if text is None:
            late = " (written after closing)" if event.data.get("after_close") else ""
            text = self._texts[event.seq] = visible(describe(event)) + late
        return text

    def _resized(self, tail: bool) -> None:
        self.virtual_size = Size(0, len(self._rows))
        if not self.is_mounted:
            return  # on mount the first resize puts the cursor in view
        if tail:
            self.scroll_end(animate=False, immediate=True, force=True, x_axis=False)
        elif self.scroll_y > self.max_scroll_y:  # fewer rows now: no blank screen below them
            self.scroll_to(y=self.max_scroll_y, animate=False, force=True)
        self.refresh()

    # -- moving the cursor ---------------------------------------------------------------

    def _move(self, to: int) -> None:
        if not self._rows:
            return
        old, self._cursor = self._cursor, max(0, min(to, len(self._rows) - 1))
        self.refresh_line(old)
        self.refresh_line(self._cursor)
        self._show_cursor()

    def _show_cursor(self) -> None:
        height = self.scrollable_content_region.height
        if not self.is_mounted or height <= 0:
            return
        top = round(self.scroll_y)
        if self._cursor < top:
            self.scroll_to(y=self._cursor, animate=False, force=True)
        elif self._cursor >= top + height:
            self.scroll_to(y=self._cursor - height + 1, animate=False, force=True)

    def action_cursor(self, step: int) -> None:
        self._move(self._cursor + step)

    def action_page(self, direction: int) -> None:
        self._move(self._cursor + direction * max(1, self.scrollable_content_region.height - 1))

    def action_first(self) -> None:
        self._move(0)

    def action_last(self) -> None:
        self._move(len(self._rows) - 1)

    def action_select(self) -> None:
        event = self.selected
        if event is not None:
            self.post_message(self.Selected(self, event))

    async def _on_click(self, click: events.Click) -> None:
        offset = click.get_content_offset(self)
        if offset is None:
            return
        row = round(self.scroll_y) + offset.y
        if not 0 <= row < len(self._rows):
            return
        # First click highlights; a click on the highlighted row (or a double click) opens it.
        again = row == self._cursor or click.chain > 1
        self._move(row)
        if again:
            self.action_select()

    def _on_resize(self, _: events.Resize) -> None:
        self._strips.clear()
        self._show_cursor()

    def notify_style_update(self) -> None:  # also on focus: the cursor's colour changes
        super().notify_style_update()
        self._strips.clear()

    # -- drawing -------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        row = round(self.scroll_y) + y
        width = self.scrollable_content_region.width
        if not 0 <= row < len(self._rows):
            return Strip.blank(width, self.rich_style)
        event = self._events[self._rows[row]]
        wide = self.size.width >= WIDE  # the view's width, scrollbar included
        key = (event.seq, width, wide, row == self._cursor)
        strip = self._strips.get(key)
        if strip is None:
            strip = self._strips[key] = self._draw(event, width, wide, row == self._cursor)
        return strip

    def _draw(self, event: Event, width: int, wide: bool, cursor: bool) -> Strip:
        text = self._columns.get(event.seq)
        if text is None:
            text = self._columns[event.seq] = _row(event)
        style = self.get_component_rich_style
        line = self.rich_style
        if cursor:  # in full: a partial style drops the alpha of the unfocused cursor colour
            line += style("timeline--cursor")
        if event.seq in self._corrected:
            line += style("timeline--corrected", partial=True)
        meta = line + style("timeline--meta", partial=True)
        tone = line + style(text.tone, partial=True) if text.tone else line
        digits, actor, kind, where = self._widths
        narrow = not wide
        # Narrow terminals cap the columns so the description keeps some room.
        actor, kind = min(actor, 8 if narrow else 12), min(kind, 16 if narrow else 19)
        where = min(where, 14 if narrow else 24) if where > 1 else 0
        cells: list[tuple[str, Style]] = []
        if not narrow:
            cells.append((text.date + " ", meta))
        cells += [
            (text.time + " ", meta),
            (f"#{event.seq}".rjust(digits + 1) + " ", meta),
            (_fit(text.actor, actor) + " ", line),
            (_fit(text.kind, kind) + " ", tone),
        ]
        if where:
            cells.append((_fit(text.where, where) + " ", meta))
        used = sum(cell_len(cell) for cell, _ in cells)
        cells.append((_fit(self._text(event), width - used), tone))
        strip = Strip([Segment(cell, cell_style) for cell, cell_style in cells])
        return strip.crop_extend(0, width, line)
