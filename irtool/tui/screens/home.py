"""The home screen: open incidents, live and exercise apart, and the runbooks to start one from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Label, Static
from textual.worker import Worker, WorkerState

from irtool.engine.listing import IncidentSummary, list_incidents
from irtool.model.loader import Kind, detect_kind, load_runbook
from irtool.model.problems import InvalidFile
from irtool.model.untrusted import visible
from irtool.model.when import shown
from irtool.model.yamlsource import read
from irtool.tui.widgets.tables import row_under_cursor


@dataclass(frozen=True)
class RunbookRow:
    path: Path
    id: str
    title: str
    version: str
    problem: str = ""


def find_runbooks(directories: list[Path]) -> list[RunbookRow]:
    rows = []
    for directory in directories:
        for path in sorted(directory.glob("*.yaml")) + sorted(directory.glob("*.yml")):
            try:
                if detect_kind(read(path)) is not Kind.RUNBOOK:
                    continue  # contacts, inventories and fragments live beside runbooks
                runbook = load_runbook(path).model
            except InvalidFile as invalid:
                first = invalid.problems[0]
                where = f"line {first.mark.line}: " if first.mark.line else ""
                problem = f"broken ({len(invalid.problems)} problem(s)): {where}{first.message}"
                rows.append(RunbookRow(path, path.stem, "", "", problem))
                continue
            rows.append(RunbookRow(path, runbook.id, runbook.title, runbook.version))
    return rows


class HomeScreen(Screen[None]):
    BINDINGS = [
        Binding("enter", "choose", "Open / start", id="home.choose", show=True, priority=False),
        Binding("x", "exercise", "Exercise", id="home.exercise", tooltip="Rehearse the runbook"),
        Binding("a", "toggle_closed", "All / open only", id="home.closed"),
        Binding("f5", "reload", "Reload", id="home.reload"),
    ]
    DEFAULT_CSS = """
    HomeScreen DataTable { height: auto; max-height: 12; margin: 0 0 1 0; }
    HomeScreen Label.section { text-style: bold; padding: 0 1; }
    HomeScreen #runbooks { height: 1fr; max-height: 100%; }
    """

    def __init__(self, runbook_dirs: list[Path]) -> None:
        super().__init__()
        self.runbook_dirs = runbook_dirs
        self.show_closed = False
        self.incidents: list[IncidentSummary] = []
        self.runbooks: list[RunbookRow] = []

    def compose(self) -> ComposeResult:
        yield Static(" irtool: incidents and runbooks", classes="title")
        yield Label("LIVE incidents", classes="section")
        yield DataTable(id="live", cursor_type="row")
        yield Label("EXERCISES", classes="section")
        yield DataTable(id="exercise", cursor_type="row")
        yield Label("Runbooks (enter starts a live incident, x an exercise)", classes="section")
        yield DataTable(id="runbooks", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        for name in ("live", "exercise"):
            table = self.query_one(f"#{name}", DataTable)
            # Fixed widths: the tables fill in from a worker, and must not shift as they do.
            for column, width in (
                ("id", 23), ("title", 24), ("opened", 20), ("IC", 10), ("status", 10)
            ):  # fmt: skip
                table.add_column(column, width=width)
            table.loading = True
        runbooks = self.query_one("#runbooks", DataTable)
        for column, width in (("runbook", 24), ("version", 8), ("title", 60)):
            runbooks.add_column(column, width=width)
        self.action_reload()

    def action_reload(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="home")
    def load(self) -> tuple[list[IncidentSummary], list[RunbookRow]]:
        # Every journal is folded to list it: off the event loop, so the screen shows at once.
        return list_incidents(), find_runbooks(self.runbook_dirs)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "home" or event.state is not WorkerState.SUCCESS:
            return
        result = event.worker.result
        assert result is not None
        self.incidents, self.runbooks = result
        self.fill()

    def fill(self) -> None:
        for mode in ("live", "exercise"):
            table = self.query_one(f"#{mode}", DataTable)
            table.loading = False
            table.clear()
            for row in self.incidents:
                if (row.mode if row.mode in ("live", "exercise") else "live") != mode:
                    continue
                if row.closed and not self.show_closed:
                    continue
                status = row.problem or ("closed" if row.closed else "open")
                opened = shown(row.opened_at, seconds=False)
                # What the journals and files say: plain text, never read as markup.
                table.add_row(
                    *(_plain(c) for c in (row.id, row.title, opened, row.commander)),
                    _plain(status),
                    key=row.id,
                )
        runbooks = self.query_one("#runbooks", DataTable)
        runbooks.clear()
        for book in self.runbooks:
            cells = (book.id, book.version, book.problem or book.title)
            runbooks.add_row(*(_plain(str(c)) for c in cells), key=str(book.path))
        first = next((t for t in self.query(DataTable).results(DataTable) if t.row_count), runbooks)
        first.focus()

    def action_toggle_closed(self) -> None:
        self.show_closed = not self.show_closed
        self.fill()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.choose(event.data_table, str(event.row_key.value))

    def action_choose(self) -> None:
        table = self.focused
        if isinstance(table, DataTable):
            key = row_under_cursor(table)
            if key is not None:
                self.choose(table, key)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "exercise":
            table = self.focused
            return isinstance(table, DataTable) and table.id == "runbooks" and table.row_count > 0
        return True

    def on_descendant_focus(self) -> None:
        self.refresh_bindings()

    def action_exercise(self) -> None:
        from irtool.tui.app import IrtoolApp

        table = self.query_one("#runbooks", DataTable)
        app = self.app
        key = row_under_cursor(table)
        if key is not None and isinstance(app, IrtoolApp):
            app.start_runbook(Path(key), exercise=True)

    def choose(self, table: DataTable[object], key: str) -> None:
        from irtool.tui.app import IrtoolApp

        app = self.app
        assert isinstance(app, IrtoolApp)
        if table.id == "runbooks":
            app.start_runbook(Path(key))
        else:
            app.open_incident(key)


def _plain(text: str) -> Text:
    return Text(visible(text))
