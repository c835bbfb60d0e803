"""A run on its hosts: each host's status and output live, a progress bar, and cancel.

The run itself happens in a thread worker with its own session on the
journal; host threads report into a `RunFeed`, which this screen reads ten
times a second. The event loop never waits on the network.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Log, ProgressBar, Static
from textual.worker import Worker, WorkerState

from irtool.engine.runner import Runner, RunReport
from irtool.engine.session import IncidentSession
from irtool.engine.state import Evidence
from irtool.evidence.reader import in_flight
from irtool.evidence.store import EvidenceStore
from irtool.journal.incidents import EVIDENCE_DIR, incident_dir
from irtool.model.untrusted import visible
from irtool.remote.base import Cancel, Transport
from irtool.remote.limits import fit_parallel, in_use
from irtool.secrets.redact import Redactor
from irtool.tui.feed import RunFeed
from irtool.tui.guard import guarded, notify_error

# Transports for one run, built around that run's redactor (live: keyring secrets; exercise:
# simulated hosts).
Transports = Callable[[Redactor], Mapping[str, Transport]]

TICK_S = 0.1
SYMBOL = {"queued": "·", "connecting": "…", "running": "▶", "done": "✓", "failed": "✗"}


@dataclass(frozen=True)
class AdHoc:
    """A one-off command, not a runbook step's: run by Runner.collect_ad_hoc."""

    command: str
    shell: str = "sh"
    changes: bool = False
    rollback: str | None = None
    irreversible: str | None = None


@dataclass(frozen=True)
class RunRequest:
    incident: str
    step: str
    title: str
    hosts: list[str]
    rollback: bool = False
    reason: str = ""
    ad_hoc: AdHoc | None = None  # then `step` is "ad-hoc" and `title` the command's first line
    put_back: bool = False  # confirmed twice: this rollback restores what the attacker had


def summary(report: RunReport, redactor: Redactor) -> tuple[str, str]:
    """(severity, text) of a finished run, in the words the command line uses."""
    failed = "; ".join(f"{h}: {redactor.text(r.why())}" for h, r in sorted(report.failed.items()))
    text = ". ".join(p for p in (report.headline, failed and f"Failed: {failed}") if p)
    outcome = report.outcome()
    text = f"{text}; {outcome}" if outcome else text
    if report.cancelled:
        return "warning", text
    if report.failed:
        return "error", text
    return ("warning" if report.outstanding else "information"), text


class RunScreen(Screen[RunReport | None]):
    BINDINGS = [
        Binding("x", "cancel_run", "Cancel run", id="run.cancel"),
        Binding("o", "open_output", "Read output", id="run.open", tooltip="This host's output"),
        Binding("escape", "back", "Back", id="run.back"),
        Binding("w", "wrap", "Wrap", id="run.wrap", tooltip="Wrap long lines, or scroll (← →)"),
        # The host table has no use for them: they move the output sideways.
        Binding("left", "sideways(-1)", "Left", show=False, priority=True, id="run.left"),
        Binding("right", "sideways(1)", "Right", show=False, priority=True, id="run.right"),
    ]
    DEFAULT_CSS = """
    RunScreen #title { height: 1; text-style: bold; padding: 0 1; }
    RunScreen ProgressBar { height: 1; padding: 0 1; }
    RunScreen #hosts { width: 36; }
    RunScreen #output { width: 1fr; border-left: solid $panel-lighten-2; }
    RunScreen #status { height: auto; max-height: 3; padding: 0 1; }
    """

    def __init__(
        self,
        request: RunRequest,
        actor: str,
        transports: Transports,
        pool: int = 32,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__()
        self.request, self.actor, self.transports, self.pool = request, actor, transports, pool
        self.clock = clock
        self.redactor = Redactor()
        self.feed = RunFeed(request.hosts, self.redactor, request.step)
        self.cancel = Cancel()
        self.report: RunReport | None = None
        self.shown_host: str | None = None
        # Wrapping triples the lines a pane of 100-column output draws: off unless asked
        # (w), so fifty streaming hosts keep the keys quick; ← → scroll instead.
        self.wrapping = False
        self.column = 0  # cells already on the output's last line, for wrapping
        # The run's own session (in its worker): its state gains each output as it is kept.
        self.session: IncidentSession | None = None
        self.evidence_from = 0

    def compose(self) -> ComposeResult:
        verb = "ROLL BACK" if self.request.rollback else "RUN"
        yield Static(
            _plain(
                f"{verb} {self.request.step}: {self.request.title} "
                f"on {len(self.request.hosts)} host(s)"
            ),
            id="title",
        )
        yield ProgressBar(total=len(self.request.hosts), show_eta=False, id="progress")
        with Horizontal():
            yield DataTable(id="hosts", cursor_type="row", zebra_stripes=False)
            yield Log(max_lines=5000, id="output")
        yield Static("connecting…", id="status")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#hosts", DataTable)
        table.add_column("", key="symbol", width=1)
        table.add_column("host", key="host")
        table.add_column("status", key="status", width=10)
        table.add_column("bytes", key="bytes", width=9)
        for host in self.request.hosts:
            table.add_row(SYMBOL["queued"], _plain(host), "queued", "0", key=host)
        table.focus()
        self.shown_host = self.request.hosts[0] if self.request.hosts else None
        self.set_interval(TICK_S, self.tick)
        self.execute()

    @property
    def running(self) -> bool:
        return self.report is None

    # -- the run, in a thread -----------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="run")
    def execute(self) -> RunReport:
        from irtool.secrets.run import preload

        request = self.request
        session = IncidentSession.open(request.incident, clock=self.clock)
        self.evidence_from = len(session.state.evidence)
        self.session = session
        try:
            transports = self.transports(self.redactor)
            inventory = session.state.inventory
            names = [
                str(inventory.resolve(h).transport)
                for h in request.hosts
                if inventory and h in inventory.hosts
            ]
            # Every credential the run may use, looked up before the first connection: a host
            # that echoes another host's password is then redacted like the rest.
            preload(transports, inventory, request.hosts)
            # As many hosts at once as the descriptors allow; the responder is told.
            parallel = fit_parallel(self.pool, in_use(transports, names))
            if parallel.lowered:
                self.app.notify(parallel.message(), severity="warning")  # thread-safe
            runner = Runner(
                session,
                transports,
                EvidenceStore(incident_dir(request.incident) / EVIDENCE_DIR),
                self.actor,
                redactor=self.redactor,
                pool=parallel.allowed,
                cancel=self.cancel,
                on_progress=self.feed.progress,
                on_output=self.feed.output,
                on_warning=lambda text: self.app.notify(text, severity="warning"),
                clock=self.clock,
            )
            if request.ad_hoc:
                adhoc = request.ad_hoc
                return runner.collect_ad_hoc(
                    request.hosts, adhoc.command, adhoc.shell, request.reason,
                    changes=adhoc.changes, rollback=adhoc.rollback,
                    irreversible=adhoc.irreversible,
                )  # fmt: skip
            if request.rollback:
                return runner.rollback(
                    request.step, request.hosts, request.reason, put_back=request.put_back
                )
            return runner.run(request.step, request.hosts, request.reason)
        finally:
            session.close_journal()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "run":
            return
        if event.state is WorkerState.SUCCESS:
            self.report = event.worker.result
            assert self.report is not None
            self.tick()
            severity, text = summary(self.report, self.redactor)
            # Failure reasons are the hosts' words: written out, and never read as markup.
            self.query_one("#status", Static).update(_plain(text))
            self.app.notify(visible(text), severity=severity, markup=False)  # type: ignore[arg-type]
        elif event.state is WorkerState.ERROR and event.worker.error is not None:
            self.report = RunReport(self.request.step, "run", {}, cancelled=True)
            self.query_one("#status", Static).update(_plain(f"not run: {event.worker.error}"))
            notify_error(self.app, event.worker.error)
        self.refresh_bindings()

    # -- the screen, ten times a second ----------------------------------------------

    def tick(self) -> None:
        table = self.query_one("#hosts", DataTable)
        for host in self.feed.take_changed():
            feed = self.feed.hosts[host]
            if host not in table.rows:
                continue
            table.update_cell(host, "symbol", SYMBOL.get(feed.status, "?"))
            table.update_cell(host, "status", feed.status)
            table.update_cell(host, "bytes", _size(feed.bytes))
        if self.shown_host:
            text = self.feed.drain(self.shown_host)
            if text:
                self.show_output(text)
        finished, total = self.feed.counts()
        self.query_one("#progress", ProgressBar).update(progress=finished)
        if self.running and self.shown_host:
            feed = self.feed.hosts[self.shown_host]
            state = f"{feed.status} {feed.item or ''} {feed.detail}".strip()
            self.query_one("#status", Static).update(
                _plain(f"{finished} of {total} host(s) finished; {self.shown_host}: {state}")
            )

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        host = str(event.row_key.value)
        if host == self.shown_host:
            return
        self.shown_host = host
        self.show_again()

    def show_again(self) -> None:
        """The shown host's output so far, from the top of what is kept for the screen."""
        self.query_one("#output", Log).clear()
        self.column = 0
        if self.shown_host:
            self.show_output(self.feed.history(self.shown_host))

    def show_output(self, text: str) -> None:
        """Output as it arrives; wrapped at the pane's width when asked, so a JSON document on
        one line is read in full, not cut at the edge."""
        log = self.query_one("#output", Log)
        text = visible(text, lines=True)
        if self.wrapping:
            width = log.scrollable_content_region.width or 80
            text, self.column = wrap(text.expandtabs(8), width, self.column)
        log.write(text)

    def action_wrap(self) -> None:
        self.wrapping = not self.wrapping
        self.show_again()

    def action_sideways(self, direction: int) -> None:
        log = self.query_one("#output", Log)
        log.scroll_relative(x=direction * max(8, log.scrollable_content_region.width // 2),
                            animate=False)  # fmt: skip

    def outputs(self, host: str) -> list[Evidence]:
        """What this run kept of `host` so far: one record per command that ran."""
        if self.session is None:
            return []
        kept = self.session.state.evidence[self.evidence_from :]
        return [item for item in kept if item.host == host]

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open_output()

    def action_open_output(self) -> None:
        """The highlighted host's output in the viewer, once its command's record is kept."""
        host = self.shown_host
        if host is None:
            return
        from irtool.tui.screens.evidence import EvidenceScreen, outputs
        from irtool.tui.screens.viewer import ViewerScreen, viewer_path

        kept = self.outputs(host)
        if self.running and self.feed.hosts[host].status == "running":
            # Still writing: follow the file its command is writing now.
            directory = incident_dir(self.request.incident) / EVIDENCE_DIR
            writing = in_flight(directory, host, os.getpid())
            if writing is not None:
                with guarded(self.app):
                    about = f"{self.request.step} on {host}: {self.feed.hosts[host].item or ''}"
                    self.app.push_screen(viewer_path(writing, self.redactor, about.rstrip(": ")))
                return
        if not kept or self.session is None:
            self.app.notify(
                visible(f"{host}: no output kept yet; it is read once its command starts"),
                severity="warning",
            )
            return

        with guarded(self.app):
            if len(kept) == 1 and len(outputs(kept[0])) == 1:
                item = kept[0]
                screen: Screen[None] = ViewerScreen.of(
                    self.request.incident, item, outputs(item)[0], self.redactor
                )
            else:  # several commands (or stdout and stderr): the responder picks one
                wanted = {item.seq for item in kept}
                screen = EvidenceScreen(
                    self.session.state, self.redactor, only=lambda item: item.seq in wanted
                )
            self.app.push_screen(screen)

    # -- keys ---------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel_run":
            return self.running and not self.cancel.is_set()
        return True

    def action_cancel_run(self) -> None:
        self.cancel.cancel()
        self.query_one("#status", Static).update("cancelling: every host stops; output is kept")
        self.refresh_bindings()

    def action_back(self) -> None:
        if self.running:
            self.app.notify("the run is still going: x cancels it", severity="warning")
            return
        self.dismiss(self.report)


def wrap(text: str, width: int, column: int = 0) -> tuple[str, int]:
    """`text` with a line break wherever a line would pass `width` characters (after a space
    when there is one), its first line continuing one that has `column` already; and the
    column it ends at."""
    if width <= 0:
        return text, column
    out: list[str] = []
    for n, part in enumerate(text.split("\n")):
        if n:
            out.append("\n")
            column = 0
        while column + len(part) > width:
            room = width - column
            # At the last space that fits, as prose wraps; a long token (JSON, base64) is cut.
            space = part.rfind(" ", 0, room + 1)
            cut = space + 1 if space > 0 else room
            if cut <= 0:  # the line it continues is full: go on from the next one
                out.append("\n")
                column = 0
                continue
            out += [part[:cut], "\n"]
            part, column = part[cut:], 0
        out.append(part)
        column += len(part)
    return "".join(out), column


def _plain(text: str) -> Text:
    """One line of text that may hold a host's words (a status, a reason, a name), ready to
    draw: what could drive the terminal written out, and never parsed as markup."""
    return Text(visible(text))


def _size(count: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if count < 1024 or unit == "MiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024  # type: ignore[assignment]
    return str(count)
