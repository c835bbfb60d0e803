"""The whole timeline of an incident, with a filter line and each event's detail on enter."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Input, Label, Static

from irtool.engine.dumped import dumped_contacts
from irtool.engine.timeline import BadFilter, TimelineFilter
from irtool.journal import Event
from irtool.model.sshkeys import team_signs
from irtool.model.untrusted import visible
from irtool.model.when import shown, zone_label
from irtool.tui.widgets.timeline import TimelineView

PLACEHOLDER = "filter: kind:note step:ID host:NAME actor:NAME words"


def detail_text(event: Event, corrected: bool = False, signing: bool = False) -> Text:
    """Every field of the event, and its data as indented JSON; `signing`: the team signs its
    events, so one without a signature says so."""
    text = Text()
    for name, value in event.as_dict().items():
        if name == "data":
            continue
        text.append(f"{name:<12}", style="bold")
        if name in ("occurred_at", "recorded_at") and value:
            value = f"{shown(value)}  ({value})"  # the responder's time, then the record's
        text.append(visible("-" if value is None else str(value)) + "\n")
    if signing and event.signature is None:
        text.append("signature   ", style="bold")
        text.append("none: this event is unsigned\n", style="bold red")
    if corrected:
        text.append("corrected   ", style="bold")
        text.append("yes: a later event corrects this one\n")
    text.append("data\n", style="bold")
    # default=str: data came through JSON already, but a hand-built event may carry anything
    data = json.dumps(event.data, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    text.append("\n".join(visible(line) for line in data.splitlines()))
    return text


class EventDetail(ModalScreen[None]):
    """One event in full, over the timeline; escape goes back to it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Close", id="timeline.detail.close"),
    ]
    DEFAULT_CSS = """
    EventDetail { align: center middle; }
    EventDetail > VerticalScroll {
        width: 100; max-width: 100%; height: auto; max-height: 90%;
        border: thick $accent; background: $surface; padding: 0 1;
    }
    """

    def __init__(self, event: Event, corrected: bool = False, signing: bool = False) -> None:
        super().__init__()
        self.event = event
        self.corrected, self.signing = corrected, signing

    def compose(self) -> ComposeResult:
        with VerticalScroll() as box:
            box.border_title = Text(f"Event #{self.event.seq}: {visible(self.event.kind)}")
            yield Static(
                detail_text(self.event, self.corrected, self.signing), id="timeline-detail"
            )


class TimelineScreen(Screen[None]):
    """Every event of the incident, newest at the bottom, filtered as the responder types."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back", id="timeline.back"),
        Binding("slash", "focus_filter", "Filter", key_display="/", id="timeline.filter"),
    ]
    AUTO_FOCUS = "TimelineView"  # the rows first: moving through them is what one came for
    DEFAULT_CSS = """
    TimelineScreen TimelineView { height: 1fr; }
    TimelineScreen #timeline-status { height: 1; padding: 0 1; }
    TimelineScreen #timeline-count { width: auto; }
    TimelineScreen #timeline-problem { width: 1fr; color: $text-error; padding: 0 0 0 2; }
    """

    def __init__(self, events: Sequence[Event], corrected: Iterable[int] = ()) -> None:
        super().__init__()
        self.view = TimelineView(events, id="timeline-view")
        opening = events[0] if events and events[0].seq == 1 else None
        self.signing = team_signs(dumped_contacts(opening.data)) if opening else False
        self.view.mark_corrected(corrected)
        self.filter_input = Input(placeholder=PLACEHOLDER, id="timeline-filter")
        self.count = Label(id="timeline-count")
        self.problem = Label(id="timeline-problem")

    def compose(self) -> ComposeResult:
        yield self.filter_input
        yield self.view
        with Horizontal(id="timeline-status"):
            yield self.count
            yield self.problem
        yield Footer()

    def on_mount(self) -> None:
        self._show_count()

    def extend(self, events: Sequence[Event]) -> None:
        """Add events that reached the journal since; the view follows them if at the tail."""
        self.view.extend(events)
        self._show_count()

    def mark_corrected(self, seqs: Iterable[int]) -> None:
        self.view.mark_corrected(seqs)

    def _show_count(self) -> None:
        self.count.update(f"{self.view.shown} of {self.view.total} events, times {zone_label()}")

    def action_focus_filter(self) -> None:
        self.filter_input.focus()

    @on(Input.Changed, "#timeline-filter")
    def _filter_changed(self, changed: Input.Changed) -> None:
        try:
            wanted = TimelineFilter.parse(changed.value)
        except BadFilter as bad:
            # Half-typed filters are normal: keep showing the last good one and say why.
            self.problem.update(Text(str(bad)))
            return
        self.problem.update("")
        self.view.set_filter(wanted)
        self._show_count()

    @on(Input.Submitted, "#timeline-filter")
    def _filter_done(self) -> None:
        self.view.focus()

    @on(TimelineView.Selected)
    def _open(self, selected: TimelineView.Selected) -> None:
        selected.stop()
        self.app.push_screen(
            EventDetail(selected.event, self.view.is_corrected(selected.event.seq), self.signing)
        )
