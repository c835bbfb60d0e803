"""One collector's output across hosts, the rarest lines first: the odd host out stands out."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static
from textual.worker import Worker, WorkerState, get_current_worker

from irtool.engine.compare import Comparison, compare
from irtool.engine.state import Evidence, IncidentState
from irtool.evidence.store import EvidenceStore
from irtool.journal.incidents import EVIDENCE_DIR, incident_dir
from irtool.model.untrusted import visible
from irtool.secrets.redact import Redactor
from irtool.tui.guard import notify_error
from irtool.tui.screens.viewer import what

ROWS_LIMIT = 5000  # rows a table holds well; the commonest lines beyond it are counted only


class CompareScreen(Screen[None]):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back", id="compare.back")]
    DEFAULT_CSS = """
    CompareScreen #compare-table { height: 1fr; }
    CompareScreen #compare-notes { height: auto; max-height: 5; padding: 0 1;
        border-top: solid $panel-lighten-2; }
    """

    def __init__(
        self, state: IncidentState, of: Evidence, stream: str, redactor: Redactor | None = None
    ) -> None:
        super().__init__()
        self.state, self.of, self.stream = state, of, stream
        self.redactor = redactor or Redactor()
        self.result: Comparison | None = None

    def compose(self) -> ComposeResult:
        yield Static(
            Text(visible(f" {what(self.of)}: {self.stream} across hosts, rarest lines first")),
            classes="title",
        )
        yield DataTable(id="compare-table", cursor_type="row")
        yield Static("reading every host's output…", id="compare-notes")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#compare-table", DataTable)
        table.add_column("hosts", key="count")
        table.add_column("on", key="hosts")
        table.add_column("line", key="line")
        table.focus()
        self.run_compare()

    @work(thread=True, exclusive=True, exit_on_error=False, group="compare")
    def run_compare(self) -> Comparison:
        worker = get_current_worker()
        store = EvidenceStore(incident_dir(self.state.id) / EVIDENCE_DIR, create=False)
        return compare(
            self.state, store, self.of, self.stream, cancelled=lambda: worker.is_cancelled
        )

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "compare":
            return
        if event.state is WorkerState.SUCCESS and isinstance(event.worker.result, Comparison):
            self.show(event.worker.result)
        elif event.state is WorkerState.ERROR and event.worker.error is not None:
            self.query_one("#compare-notes", Static).update("could not compare")
            notify_error(self.app, event.worker.error)

    def show(self, result: Comparison) -> None:
        self.result = result
        table = self.query_one("#compare-table", DataTable)
        total = len(result.hosts)

        def plain(text: str) -> Text:
            return Text(visible(self.redactor.text(text)), no_wrap=True)

        for n, line in enumerate(result.lines[:ROWS_LIMIT]):
            everywhere = len(line.hosts) == total
            table.add_row(
                Text(f"{len(line.hosts)}/{total}", style="dim" if everywhere else "bold"),
                plain(", ".join(line.hosts) if not everywhere else "all"),
                plain(line.text),
                key=str(n),
            )
        notes = [f"{len(result.lines)} distinct lines on {total} host(s)"]
        if len(result.lines) > ROWS_LIMIT:
            notes.append(f"the {len(result.lines) - ROWS_LIMIT} commonest lines are not listed")
        notes += result.notes
        self.query_one("#compare-notes", Static).update(
            Text("\n".join(visible(self.redactor.text(n)) for n in notes))
        )
