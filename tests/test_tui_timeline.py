"""The timeline screen as a responder sees it: rows, filter, tail-following, detail."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.style import Style
from textual.app import App, ComposeResult
from textual.widget import Widget
from textual.widgets import Static

from irtool.engine import kinds
from irtool.engine.timeline import TimelineFilter
from irtool.journal import Event, EventDraft, Journal
from irtool.tui.screens.timeline import EventDetail, TimelineScreen
from irtool.tui.widgets.timeline import TimelineView

START = datetime(2026, 11, 21, 2, 0, 0, tzinfo=UTC)
INCIDENT = "ir-20261121-031500-7f3a"


def stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def event(
    seq: int,
    kind: str = kinds.NOTE_ADDED,
    data: dict[str, object] | None = None,
    *,
    actor: str = "ann",
    step: str | None = None,
    host: str | None = None,
) -> Event:
    """An event built by hand: the widget never checks hashes, so fakes do."""
    at = stamp(START + timedelta(seconds=seq))
    return Event(
        seq, INCIDENT, at, at, actor, kind, step, host, data or {"text": f"note {seq}"}, "p", "h"
    )


def notes_and_runs(count: int) -> list[Event]:
    """Every third event a note, the rest commands that ran on web01."""
    return [
        event(seq)
        if seq % 3 == 0
        else event(
            seq,
            kinds.COMMAND_RAN,
            {"purpose": "collect", "item": f"item{seq}", "exit_status": 0},
            actor="engine",
            step="triage",
            host="web01",
        )
        for seq in range(1, count + 1)
    ]


# What the reader sees is read through Widget.render_lines, the call the compositor
# makes to paint a widget: for TimelineView it goes through our render_line, for
# labels through their visual. It needs no private compositor state and gives both
# the text and the styles that reach the terminal.
def painted(widget: Widget) -> list[str]:
    return [strip.text.rstrip() for strip in widget.render_lines(widget.size.region)]


def row_styles(view: TimelineView, needle: str) -> list[Style]:
    """The styles of the segments of the on-screen row that contains `needle`."""
    for strip in view.render_lines(view.size.region):
        if needle in strip.text:
            return [segment.style for segment in strip if segment.style and segment.text.strip()]
    raise AssertionError(f"{needle!r} is not on screen")


class TimelineHost(App[None]):
    """The smallest app that shows a TimelineScreen."""

    def __init__(self, events: Sequence[Event], corrected: Sequence[int] = ()) -> None:
        super().__init__()
        self.timeline = TimelineScreen(events, corrected)

    def on_mount(self) -> None:
        self.push_screen(self.timeline)


class ViewHost(App[None]):
    """A bare TimelineView filling the app, for the widget on its own."""

    def __init__(self, events: Sequence[Event]) -> None:
        super().__init__()
        self.view = TimelineView(events)

    def compose(self) -> ComposeResult:
        yield self.view


@pytest.fixture(autouse=True)
def _utc(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows show the responder's zone: these tests read it as UTC, wherever they run."""
    monkeypatch.setenv("IRTOOL_TZ", "UTC")


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    moments = (START + timedelta(minutes=minute) for minute in range(1000))
    with Journal(tmp_path / "j.db", INCIDENT, create=True, clock=lambda: next(moments)) as j:
        yield j


async def test_rows_read_at_80_columns_with_the_date_from_110(journal: Journal) -> None:
    journal.append(EventDraft(kinds.INCIDENT_OPENED, "ann", {"title": "IIS defaced"}))
    journal.append(
        EventDraft(
            kinds.HOST_FAILED,
            "engine",
            {"failure": "unreachable", "reason": "timed out"},
            step="triage",
            host="web01",
        )
    )
    # recorded at 02:02 about 01:30: the row must say it was written later
    journal.append(EventDraft(kinds.NOTE_ADDED, "bob", {"text": "saw it first"}, occurred_at=START))
    app = TimelineHost(list(journal.events()))
    async with app.run_test(size=(80, 24)) as pilot:
        rows = painted(app.timeline.view)
        assert rows[0].startswith("02:00:00  #1 ann")
        assert rows[1].startswith("02:01:00  #2 engine host.failed ")
        assert rows[1].endswith(" triage@web01 host failed (unreachable): tim…")  # cut at 80
        assert rows[2].startswith("02:00:00~ #3 bob")
        assert "2026-11-21" not in rows[0]
        assert all(len(row) <= 80 for row in rows)
        assert painted(app.timeline.count) == ["3 of 3 events, times UTC"]
        await pilot.resize_terminal(120, 24)
        await pilot.pause()
        assert painted(app.timeline.view)[0].startswith("2026-11-21 02:00:00  #1 ann")


async def test_long_text_is_cut_not_wrapped() -> None:
    long = event(1, data={"text": "word " * 100 + "\x1b[31mred"})
    app = TimelineHost([long, event(2)])
    async with app.run_test(size=(80, 24)):
        rows = painted(app.timeline.view)
        assert rows[0].endswith("…") and rows[1].startswith("02:00:02")
        assert "\x1b" not in "".join(rows)  # a note cannot send escapes to the terminal


async def test_typing_a_filter_shows_only_matching_rows_and_the_count() -> None:
    app = TimelineHost(notes_and_runs(30))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("slash", *"kind:note")
        await pilot.pause()
        rows = [row for row in painted(app.timeline.view) if row]
        assert len(rows) == 10 and all("note.added" in row for row in rows)
        assert painted(app.timeline.count) == ["10 of 30 events, times UTC"]
        await pilot.press(*" 27")  # free words are searched in the row's text
        await pilot.pause()
        assert next(row for row in painted(app.timeline.view) if row).endswith("note: note 27")
        assert painted(app.timeline.count) == ["1 of 30 events, times UTC"]
        await pilot.press("enter")  # done typing: back to the rows
        assert app.timeline.view.has_focus


async def test_a_bad_filter_says_why_and_keeps_the_previous_rows() -> None:
    app = TimelineHost(notes_and_runs(30))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("slash", *"kind:note")
        await pilot.pause()
        before = painted(app.timeline.view)
        # As if pasted: typed a key at a time, " step" would first filter on the word "step".
        app.timeline.filter_input.insert_text_at_cursor(" step:")
        await pilot.pause()
        assert painted(app.timeline.view) == before
        assert painted(app.timeline.count) == ["10 of 30 events, times UTC"]
        problem = painted(app.timeline.problem)[0]
        assert "'step:' needs a value" in problem
        assert app.timeline.problem.styles.color.rgb != app.timeline.count.styles.color.rgb
        await pilot.press(*"triage")
        await pilot.pause()
        assert painted(app.timeline.problem) == [""]
        assert painted(app.timeline.count) == ["0 of 30 events, times UTC"]  # notes carry no step


async def test_new_events_show_at_the_tail_when_the_reader_is_there() -> None:
    app = TimelineHost(notes_and_runs(60))
    async with app.run_test(size=(80, 24)) as pilot:
        assert "#60" in painted(app.timeline.view)[-1]  # opens at the newest
        app.timeline.extend([event(61, data={"text": "containment done"})])
        await pilot.pause()
        rows = painted(app.timeline.view)
        assert rows[-1].endswith("note: containment done")
        assert app.timeline.view.selected is not None and app.timeline.view.selected.seq == 61
        assert painted(app.timeline.count) == ["61 of 61 events, times UTC"]


async def test_the_view_stays_put_when_the_reader_has_scrolled_up() -> None:
    app = TimelineHost(notes_and_runs(60))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("home", "down", "down")
        before = painted(app.timeline.view)
        app.timeline.extend([event(61), event(62)])
        await pilot.pause()
        assert painted(app.timeline.view) == before
        assert app.timeline.view.selected is not None and app.timeline.view.selected.seq == 3
        assert painted(app.timeline.count) == ["62 of 62 events, times UTC"]
        await pilot.press("end")
        assert painted(app.timeline.view)[-1].startswith("02:01:02  #62 ann")


async def test_keys_and_clicks_move_the_cursor_and_enter_opens_the_detail() -> None:
    app = TimelineHost(notes_and_runs(60))
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.timeline.view
        await pilot.press("home")
        assert view.selected is not None and view.selected.seq == 1
        assert painted(view)[0].startswith("02:00:01   #1 engine")
        await pilot.press("pagedown", "down")
        assert view.selected is not None and view.selected.seq == 20  # a page is 19 rows
        await pilot.press("up", "pageup")
        assert view.selected is not None and view.selected.seq == 1
        await pilot.click(TimelineView, offset=(30, 4))
        assert view.selected is not None and view.selected.seq == 5
        assert isinstance(app.screen, TimelineScreen)  # the first click only highlights
        await pilot.click(TimelineView, offset=(30, 4))
        await pilot.pause()
        assert isinstance(app.screen, EventDetail) and app.screen.event.seq == 5
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is app.timeline
        await pilot.double_click(TimelineView, offset=(30, 2))
        await pilot.pause()
        assert isinstance(app.screen, EventDetail) and app.screen.event.seq == 3
        await pilot.press("escape", "end", "enter")
        await pilot.pause()
        assert isinstance(app.screen, EventDetail) and app.screen.event.seq == 60


async def test_the_cursor_row_stands_out_and_dims_when_typing_a_filter() -> None:
    app = TimelineHost(notes_and_runs(30))
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.timeline.view
        await pilot.press("up")  # the cursor on the last row but one

        def background(needle: str) -> object:
            return row_styles(view, needle)[0].bgcolor

        focused, other = background("#29 "), background("#30 ")
        assert focused != other
        await pilot.press("slash")
        await pilot.pause()
        assert background("#29 ") not in (focused, other)


async def test_the_detail_shows_every_field_and_the_data() -> None:
    ran = event(
        7,
        kinds.COMMAND_RAN,
        {"purpose": "collect", "item": "netstat", "exit_status": 3, "stdout": {"size": 812}},
        actor="engine",
        step="triage",
        host="web01",
    )
    app = TimelineHost([event(1), ran], corrected=[7])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("enter")
        await pilot.pause()
        detail = app.screen.query_one("#timeline-detail", Static)
        text = "\n".join(painted(detail))
        for shown in ("seq         7", "host        web01", "hash        h", "corrected"):
            assert shown in text
        assert '"exit_status": 3,' in text and '"size": 812' in text
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is app.timeline


async def test_corrected_and_failed_events_look_different() -> None:
    events = [
        event(1, data={"text": "web02 is down"}),
        event(2, kinds.HOST_FAILED, {"failure": "auth", "reason": "denied"}, host="web03"),
        event(3, kinds.EVENT_CORRECTED, {"corrects": 1, "reason": "it was web01"}),
        event(4, data={"text": "plain note"}),
        event(5, data={"text": "cursor here"}),
    ]
    app = ViewHost(events)
    async with app.run_test(size=(80, 24)):
        # Textual paints "dim" as a fainter colour, so that is what the test looks for.
        struck, plain = row_styles(app.view, "web02 is down"), row_styles(app.view, "plain note")
        assert all(style.strike for style in struck)  # event 3 corrects it
        assert struck[-1].color != plain[-1].color
        assert not any(style.strike for style in plain)
        app.view.mark_corrected([4])
        assert all(style.strike for style in row_styles(app.view, "plain note"))
        failed = row_styles(app.view, "denied")[-1].color
        assert failed is not None and failed != plain[-1].color
        assert failed.triplet is not None and failed.triplet.red > failed.triplet.green


async def test_fifty_thousand_events_filter_and_draw_quickly() -> None:
    events = notes_and_runs(50_000)
    app = ViewHost([])
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.view
        began = time.perf_counter()
        view.set_events(events)
        view.set_filter(TimelineFilter.parse("kind:note"))
        rows = painted(view)
        took = time.perf_counter() - began
        # free words format every event once: the slowest filter there is
        began = time.perf_counter()
        view.set_filter(TimelineFilter.parse("item49999"))
        worded = painted(view)
        took_words = time.perf_counter() - began
        print(f"50k: kind filter + page {took:.3f} s, word filter + page {took_words:.3f} s")
        assert took < 2 and took_words < 2
        assert view.total == 50_000 and view.shown == 1
        assert rows[-1].startswith("15:53:18  #49998") and "note: note 49998" in rows[-1]
        assert "collect item49999: exit 0" in worded[0]
        await pilot.pause()
        assert len(app.screen.query(Widget)) < 10  # one widget, not one per event


def test_every_binding_has_an_id_and_a_description() -> None:
    for owner in (TimelineView, TimelineScreen, EventDetail):
        for binding in owner.BINDINGS:
            assert not isinstance(binding, tuple)
            assert binding.id and binding.id.startswith("timeline."), binding
            assert binding.description, binding


def test_a_filter_word_may_hold_an_apostrophe() -> None:
    # shlex reads ' as a quote; a responder searching notes for "couldn't" means the word.
    assert TimelineFilter.parse("couldn't kind:note") == TimelineFilter(
        kind="note", words=("couldn't",)
    )
    assert TimelineFilter.parse("kind:note 'web shell'") == TimelineFilter(
        kind="note", words=("web shell",)
    )
