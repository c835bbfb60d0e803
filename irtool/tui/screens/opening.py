"""Opening an incident: its identity on screen at once, the journal folded in a thread, from
the checkpoint of its standing state, then its records in the background.

Reading the opening event needs only SQLite; folding every event needs the
models (pydantic), which take longer to load than the screen takes to draw.
So the responder sees LIVE or EXERCISE, the title and the id in the first
frame, and the incident screen replaces this one as soon as it is ready.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Static
from textual.worker import Worker, WorkerState

from irtool.journal import Journal
from irtool.journal.incidents import journal_path
from irtool.model.untrusted import visible
from irtool.tui.guard import notify_error
from irtool.tui.widgets.header import badge

if TYPE_CHECKING:
    from irtool.engine.session import IncidentSession


def identity(incident: str) -> tuple[Text, int]:
    """The header's first line from the opening event, and how many events there are."""
    if not journal_path(incident).exists():  # a team's incident, not yet copied here
        return Text(incident), 0
    with Journal(journal_path(incident), incident) as journal:
        first = journal.first()
        count = journal.head()[0]
    if first is None:
        return Text(incident), 0
    data: dict[str, Any] = first.data
    runbook = data.get("runbook", {}).get("model", {})
    line = Text.assemble(
        badge(str(data.get("mode", "live"))),
        " ",
        (visible(str(data.get("title", ""))), "bold"),
        "\n",
        (visible(incident), "bold"),
        visible(f"  {runbook.get('id', '')} v{runbook.get('version', '')}"),
        no_wrap=True,
    )
    return line, count


def _read_behind(session: IncidentSession) -> None:
    # Unread when it fails here (the incident was closed meanwhile): whatever asks for the
    # records reads them then, and says what went wrong, where the responder sees it.
    with contextlib.suppress(Exception):
        session.state.records()


class OpeningScreen(Screen[None]):
    DEFAULT_CSS = """
    OpeningScreen #identity { height: 2; background: $panel; text-wrap: nowrap; }
    OpeningScreen #reading { padding: 1 1; color: $text-muted; }
    """

    def __init__(
        self, incident: str, line: Text, count: int, on_open: Callable[[IncidentSession], None]
    ) -> None:
        super().__init__()
        self.incident, self.line, self.count, self.on_open = incident, line, count, on_open

    def compose(self) -> ComposeResult:
        line, count = self.line, self.count
        yield Static(line, id="identity")
        yield Static(f"opening the incident: reading {count} event(s)…", id="reading")

    def on_mount(self) -> None:
        # After the frame is on screen: the worker's imports would otherwise hold the GIL
        # while the first frame waits to be drawn.
        self.call_after_refresh(self.load)

    @work(thread=True, exclusive=True, exit_on_error=False, group="open")
    def load(self) -> IncidentSession:
        from irtool.engine.session import IncidentSession
        from irtool.tui.screens import incident  # the screen's own imports, off the loop too

        del incident
        # The standing state, from its checkpoint: the steps are on screen in the same time
        # at event 10 and at event 1,000,000. The records follow in the background.
        session = IncidentSession.open(self.incident, clock=self.app.clock, records=False)  # type: ignore[attr-defined]
        # What a dead run or a busy journal left becomes part of the record before the
        # responder sees the incident; what that did, or what still waits, is said.
        from irtool.engine.recovery import recover

        found = recover(session, self.app.actor)  # type: ignore[attr-defined]
        for line in found.lines():
            self.app.notify(line, severity="warning" if found.pending else "information")
        return session

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "open":
            return
        if event.state is WorkerState.SUCCESS and event.worker.result is not None:
            session = event.worker.result
            self.on_open(session)
            # Every piece of evidence, note and run, read while the responder reads the
            # steps; a screen that needs them before this is done waits for it. A daemon
            # thread, not a worker: it only reads, and quitting must not wait for it (at a
            # million events it takes seconds).
            threading.Thread(target=_read_behind, args=(session,), daemon=True).start()
        elif event.state is WorkerState.ERROR and event.worker.error is not None:
            notify_error(self.app, event.worker.error)
            reason = Text(visible(f"cannot open: {event.worker.error}"))
            self.query_one("#reading", Static).update(reason)
