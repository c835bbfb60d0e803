"""One output read in full: the exact command, its custody record, and the text, lazily.

The file is indexed in a thread while the first screenful is already shown, so a 1 GB output
neither blocks the screen nor loads into memory; its SHA-256 is checked against its name
once it is indexed. `/` searches, `n` and `N` go to the next and previous match, `f` follows
a file still being written, `j` shows JSON indented or as it is.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, Input, Static
from textual.worker import get_current_worker

from irtool.engine.state import Evidence
from irtool.evidence.reader import EvidenceText, Found
from irtool.journal.incidents import EVIDENCE_DIR, incident_dir
from irtool.model.untrusted import visible
from irtool.model.when import shown
from irtool.secrets.redact import Redactor
from irtool.tui.widgets.evidence_view import EvidenceView

TICK_S = 0.2
COMMAND_LINES = 2  # lines of a command shown above the text until `c` shows them all
FOLLOW_WAIT_S = 0.25  # how often a followed file is looked at for more


def what(item: Evidence) -> str:
    """Which command an output is: its step and item, or that it was typed ad hoc."""
    name = " / ".join(p for p in (item.step or "ad hoc", item.item) if p)
    return f"{name} (ad hoc)" if item.ad_hoc and item.step else name


def prompt(item: Evidence) -> str:
    """What goes before the first line of the command: a fetch names a file, not a command."""
    return "file " if item.purpose == "fetch" else "$ "


def custody_lines(item: Evidence, stream: str) -> list[str]:
    """The custody record of one output, one field a line (a host's newline cannot forge one)."""
    where = what(item)
    record = item.files.get(stream) or {}
    exit_status = "-" if item.exit_status is None else str(item.exit_status)
    lines = [
        f"{where} on {item.host} ({item.identity or 'identity unknown'}): {stream}",
        f"{item.purpose} event {item.seq} by {item.by} at {shown(item.at)}, exit {exit_status}, "
        f"{record.get('size', 0)} bytes",
        f"sha256 {record.get('sha256', '-')}",
    ]
    if item.failure:
        lines.append(f"failure: {item.failure}")
    if item.interrupted:
        lines.append("interrupted: irtool ended before the command did")
    return lines


class ViewerScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="viewer.back"),
        Binding("slash", "search", "Search", key_display="/", id="viewer.search"),
        Binding("n", "next(False)", "Next", id="viewer.next"),
        Binding("N", "next(True)", "Previous", key_display="N", id="viewer.previous"),
        Binding("f", "follow", "Follow", id="viewer.follow", tooltip="Keep reading as it grows"),
        Binding("j", "json", "JSON", id="viewer.json", tooltip="JSON indented, or as kept"),
        Binding("c", "command", "Command", id="viewer.command", tooltip="The whole command"),
    ]
    AUTO_FOCUS = "EvidenceView"
    DEFAULT_CSS = """
    ViewerScreen #viewer-header { height: auto; padding: 0 1; background: $panel;
        text-wrap: nowrap; text-overflow: ellipsis; }
    ViewerScreen #viewer-header.whole { text-wrap: wrap; }
    ViewerScreen EvidenceView { height: 1fr; }
    ViewerScreen #viewer-status { height: 1; padding: 0 1; background: $panel; }
    ViewerScreen #viewer-search { display: none; }
    ViewerScreen #viewer-search.asking { display: block; }
    """

    def __init__(
        self,
        text: EvidenceText,
        item: Evidence | None = None,
        stream: str = "stdout",
        redactor: Redactor | None = None,
        *,
        follow: bool = False,
        about: str = "",
    ) -> None:
        super().__init__()
        self.about = about  # what a file not yet kept as evidence is
        self.text, self.item, self.stream = text, item, stream
        self.redactor = redactor or Redactor()
        self.view = EvidenceView(text, self.redactor, id="viewer-text")
        self.following = follow
        self.needle = ""
        self.checked: str | None = None  # the hash check's verdict, once made
        self._lines_seen = -1
        self._wake = threading.Event()
        self.whole_command = False
        self._told = False

    @classmethod
    def of(
        cls, incident: str, item: Evidence, stream: str = "stdout", redactor: Redactor | None = None
    ) -> ViewerScreen:
        """The viewer on one output of `item`; OSError or ValueError if it cannot be read."""
        sha256 = str((item.files.get(stream) or {}).get("sha256") or "")
        if not sha256:
            raise ValueError(f"no {stream} was kept for event {item.seq}")
        return cls(EvidenceText.open(incident_dir(incident) / EVIDENCE_DIR, sha256), item, stream,
                   redactor)  # fmt: skip

    def compose(self) -> ComposeResult:
        yield Static(
            self._header(), id="viewer-header", classes="whole" if self.whole_command else ""
        )
        yield self.view
        yield Static(id="viewer-status")
        yield Input(placeholder="search for (enter: find; escape: cancel)", id="viewer-search")
        yield Footer()

    def _header(self) -> Text:
        if self.item is None:
            lines = [
                self.about or str(self.text.path),
                "still being written: not yet named by its hash",
            ]
        else:
            lines = custody_lines(self.item, self.stream)
            # The exact command, line for line as it was sent: never flattened.
            command = self.item.command.splitlines() or [""]
            shown = command if self.whole_command else command[:COMMAND_LINES]
            first = prompt(self.item)
            lines += [f"{first}{line}" if n == 0 else f"  {line}" for n, line in enumerate(shown)]
            if len(shown) < len(command):
                lines.append(f"  … {len(command) - len(shown)} more lines (c: the whole command)")
        return Text("\n".join(visible(self.redactor.text(line)) for line in lines))

    def on_mount(self) -> None:
        pretty = self.text.pretty_json()
        if pretty is not None:
            self.view.show_pretty(pretty)
        self.set_interval(TICK_S, self.tick)
        self.index()
        self.tick()
        self._show_header()  # as `c` may have left it before the screen was mounted

    def on_unmount(self) -> None:
        self.workers.cancel_node(self)  # its own: never the screen under it, nor a run
        self._wake.set()
        self.text.close()

    # -- in threads --------------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="index")
    def index(self) -> None:
        worker = get_current_worker()
        with contextlib.suppress(ValueError):  # closed under it: the viewer was left
            while not worker.is_cancelled:
                if self.text.scan():
                    continue
                if not self.following:
                    break
                self._wake.wait(FOLLOW_WAIT_S)
                self._wake.clear()
            if not worker.is_cancelled and self.text.sha256 and self.checked is None:
                verdict = self.text.verify(lambda: worker.is_cancelled)
                if not worker.is_cancelled:
                    self.checked = verdict or ""

    @work(thread=True, exclusive=True, exit_on_error=False, group="search")
    def search(self, needle: str, after: int, backward: bool, wrapped: bool = False) -> None:
        worker = get_current_worker()
        with contextlib.suppress(ValueError):  # closed under it: the viewer was left
            found = self.text.find(needle, after, backward, lambda: worker.is_cancelled)
            if not worker.is_cancelled:
                self.app.call_from_thread(self.found, needle, found, backward, wrapped)

    # -- on the event loop ---------------------------------------------------------------

    def tick(self) -> None:
        if self.checked and not self._told:
            self._told = True  # the file is not what was kept: said once, loudly
            self.notify(self.checked, title="Evidence altered", severity="error", timeout=30)
        count = self.view.line_count
        if count != self._lines_seen:
            self._lines_seen = count
            self.view.grown(follow=self.following)
        self.query_one("#viewer-status", Static).update(Text(self._status()))

    def _status(self) -> str:
        count, top = self.view.line_count, self.view.top
        height = max(1, self.view.scrollable_content_region.height)
        parts = [f"lines {min(count, top + 1)}-{min(count, top + height)} of {count}"]
        if self.view.pretty is not None:
            parts.append("JSON indented (j: as kept)")
        if not self.text.complete:
            size = max(1, self.text.size)
            parts.append(f"reading {self.text.scanned * 100 // size}%")
        if self.following:
            parts.append("following")
        if self.checked == "":
            parts.append("sha256 checked")
        elif self.checked:
            parts.append("ALTERED: does not match its sha256")
        if self.needle:
            parts.append(f"/{visible(self.needle)}")
        return " · ".join(parts)

    def action_search(self) -> None:
        field = self.query_one("#viewer-search", Input)
        field.add_class("asking")
        field.value = self.needle
        field.focus()

    @on(Input.Submitted, "#viewer-search")
    def _asked(self, submitted: Input.Submitted) -> None:
        submitted.stop()  # the search line answers here, and nowhere else
        self.needle = submitted.value
        self._close_search()
        if self.needle:
            start = self.view.match if self.view.match is not None else self.view.top - 1
            self._find(start, backward=False)

    def _close_search(self) -> None:
        self.query_one("#viewer-search", Input).remove_class("asking")
        self.view.focus()

    def action_back(self) -> None:
        field = self.query_one("#viewer-search", Input)
        if field.has_class("asking"):
            self._close_search()
            return
        self.dismiss()

    def action_next(self, backward: bool) -> None:
        if not self.needle:
            self.action_search()
            return
        start = self.view.match if self.view.match is not None else self.view.top - 1
        if backward and self.view.match is None:
            start = self.view.top
        self._find(start, backward)

    def _find(self, after: int, backward: bool, wrapped: bool = False) -> None:
        if self.view.pretty is not None:  # the lines shown are in memory: look there
            self.found(self.needle, _find_in(self.view.pretty, self.needle, after, backward),
                       backward, wrapped)  # fmt: skip
        else:
            self.search(self.needle, after, backward, wrapped)

    def found(self, needle: str, where: Found | None, backward: bool, wrapped: bool) -> None:
        if needle != self.needle:
            return  # an older search, overtaken
        if where is not None:
            self.view.go_to(where.line)
            if wrapped:
                self.notify("search wrapped around", timeout=2)
        elif not wrapped:
            # Vim's way: past the last match, go on from the other end.
            self._find(self.view.line_count if backward else -1, backward, wrapped=True)
        else:
            self.notify(f"not found: {visible(needle)}", severity="warning", timeout=3)
        self.tick()

    def action_follow(self) -> None:
        self.following = not self.following
        if self.following:
            self.view.grown(follow=True)
            self._wake.set()
            if not any(w.group == "index" and w.is_running for w in self.workers):
                self.index()
        self.tick()

    def action_command(self) -> None:
        self.whole_command = not self.whole_command
        self._show_header()
        # A key typed as the screen opens can come between its compose and its mount, when
        # the header is not there to update yet: shown again once it is.
        self.call_after_refresh(self._show_header)

    def _show_header(self) -> None:
        for header in self.query("#viewer-header").results(Static):
            header.set_class(self.whole_command, "whole")
            header.update(self._header())

    def action_json(self) -> None:
        if self.view.pretty is not None:
            self.view.show_pretty(None)
        else:
            pretty = self.text.pretty_json()
            if pretty is None:
                self.notify("not JSON as a whole (or over 4 MiB): shown as kept", timeout=3)
                return
            self.view.show_pretty(pretty)
        self._lines_seen = -1
        self.tick()


def _find_in(lines: list[str], needle: str, after: int, backward: bool) -> Found | None:
    wanted = needle.casefold()
    order = range(min(after, len(lines)) - 1, -1, -1) if backward else range(after + 1, len(lines))
    for number in order:
        column = lines[number].casefold().find(wanted)
        if column >= 0:
            return Found(number, column)
    return None


def viewer_path(path: Path, redactor: Redactor | None = None, about: str = "") -> ViewerScreen:
    """The viewer on a file still being written (a stream in flight), following it."""
    return ViewerScreen(EvidenceText(path), redactor=redactor, follow=True, about=about)
