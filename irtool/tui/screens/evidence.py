"""The evidence kept so far: one row per output, Enter reads it, `c` compares it across hosts."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static
from textual.worker import Worker

from irtool.engine.state import Evidence, IncidentState
from irtool.model.untrusted import visible
from irtool.model.when import clock, zone_label
from irtool.secrets.redact import Redactor
from irtool.tui.guard import guarded
from irtool.tui.screens import viewer


def _plain(text: str) -> Text:
    return Text(visible(text))


def outputs(item: Evidence) -> list[str]:
    """The streams of `item` worth a row: stdout (or a fetched file), stderr when not empty."""
    shown: list[str] = [s for s in ("stdout", "file") if s in item.files]
    if int((item.files.get("stderr") or {}).get("size") or 0) > 0:
        shown.append("stderr")
    return shown or list(item.files)[:1]


def known_secrets(state: IncidentState, redactor: Redactor) -> None:
    """Teach `redactor` every credential of the incident's hosts the keyring gives without
    asking: a secret a host echoed is in the evidence, and must not be on the screen."""
    from irtool.secrets.run import RunSecrets, credentials

    if state.exercise is None:  # simulated hosts have no secrets
        RunSecrets(prompt=None, redactor=redactor).preload(credentials(state.inventory))


class EvidenceScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="evidence.back"),
        Binding("enter", "read", "Read", id="evidence.read", tooltip="Read this output"),
        Binding(
            "c",
            "compare",
            "Compare hosts",
            id="evidence.compare",
            tooltip="This collector's output across hosts: rare lines first",
        ),
    ]
    DEFAULT_CSS = """
    EvidenceScreen #items { height: 1fr; }
    EvidenceScreen #custody { height: auto; max-height: 9; border-top: solid $panel-lighten-2;
        padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(
        self,
        state: IncidentState,
        redactor: Redactor | None = None,
        only: Callable[[Evidence], bool] | None = None,
        gather: Callable[[list[str]], object] | None = None,
    ) -> None:
        """`gather`: fetch evidence files this machine lacks (a team incident's journal's
        `gather_evidence`: another responder collected them)."""
        super().__init__()
        self.state = state
        self.gather = gather
        self.only = only  # which records to list (a run screen's host): all if None
        self.seen = 0  # records of the state looked at
        self.redactor = redactor or Redactor()
        self._load_secrets = redactor is None
        self.secrets_read = redactor is not None
        self._waiting: Callable[[], None] | None = None  # to open once the secrets are known
        self.items: list[Evidence] = []
        self.rows: dict[str, tuple[Evidence, str]] = {}

    def compose(self) -> ComposeResult:
        yield Static(" Evidence: every output kept, by SHA-256 (enter reads it)", classes="title")
        yield DataTable(id="items", cursor_type="row")
        yield Static(id="custody")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#items", DataTable)
        for key, label in (
            ("seq", "#"),
            ("time", zone_label()),
            ("host", "host"),
            ("what", "step / item"),
            ("stream", "out"),
            ("bytes", "bytes"),
            ("exit", "exit"),
        ):
            table.add_column(label, key=key)
        self.extend([])
        table.focus()
        if self._load_secrets:
            self.read_secrets()

    @work(thread=True, exclusive=True, exit_on_error=False, group="secrets")
    def read_secrets(self) -> None:
        # The keyring may be slow (or a desktop may ask to unlock it): never on the event loop.
        known_secrets(self.state, self.redactor)  # shared with the viewers it opens

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "secrets" or not event.worker.is_finished:
            return
        # Read or not (no keyring): what is on screen is drawn again, redacted with what is known.
        self.secrets_read = True
        table = self.query_one("#items", DataTable)
        if table.row_count:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
            self.on_data_table_row_highlighted(DataTable.RowHighlighted(table, 0, key))
        if self._waiting is not None:
            waiting, self._waiting = self._waiting, None
            waiting()

    def extend(self, events: object) -> None:
        """Add what new events recorded (the state is the incident screen's, already folded)."""
        table = self.query_one("#items", DataTable)
        fresh = self.state.evidence[self.seen :]
        self.seen += len(fresh)
        for item in fresh:
            if self.only is not None and not self.only(item):
                continue
            self.items.append(item)
            failed = item.failure or (item.exit_status not in (0, None))
            for stream in outputs(item):
                key = f"{item.seq}:{stream}"
                self.rows[key] = (item, stream)
                size = (item.files.get(stream) or {}).get("size", 0)
                # Every cell is the journal's (so a host's or a file's) text: plain, written out.
                table.add_row(
                    _plain(str(item.seq)),
                    _plain(clock(item.at)),
                    _plain(item.host),
                    _plain(viewer.what(item)),
                    _plain(stream),
                    _plain(str(size)),
                    Text(visible(str(item.exit_status)), style="red" if failed else ""),
                    key=key,
                )
        if not self.items:
            self.query_one("#custody", Static).update("no evidence yet: run a collect step")

    @property
    def selected(self) -> tuple[Evidence, str] | None:
        table = self.query_one("#items", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.rows.get(str(key))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        picked = self.rows.get(str(event.row_key.value))
        if picked is None:
            return
        item, stream = picked

        lines = viewer.custody_lines(item, stream)
        command = item.command.splitlines() or [""]
        lines += [viewer.prompt(item) + command[0]] + [f"  {line}" for line in command[1:]]
        # One line per field: a host's newline cannot forge a line of custody.
        self.query_one("#custody", Static).update(
            Text("\n".join(visible(self.redactor.text(line)) for line in lines))
        )

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_read()

    def action_read(self) -> None:
        picked = self.selected
        if picked is None:
            return
        self.read(*picked)

    def read(self, item: Evidence, stream: str) -> None:
        if not self.secrets_read:
            # No line is drawn before the secrets to hide are known.
            self._waiting = lambda: self.read(item, stream)
            return
        with guarded(self.app):
            sha256 = str((item.files.get(stream) or {}).get("sha256") or "")
            if self.gather and sha256:  # fetched only where this machine lacks it
                self.gather([sha256])
            self.app.push_screen(viewer.ViewerScreen.of(self.state.id, item, stream, self.redactor))

    def action_compare(self) -> None:
        picked = self.selected
        if picked is None:
            return
        from irtool.tui.screens.compare import CompareScreen

        item, stream = picked
        if not self.secrets_read:
            self._waiting = self.action_compare
            return
        self.app.push_screen(CompareScreen(self.state, item, stream, self.redactor))
