"""The evidence kept so far: host, command, size and SHA-256 of every output, with custody."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from irtool.engine.state import Evidence, IncidentState
from irtool.model.untrusted import visible


def _plain(text: str) -> Text:
    return Text(visible(text))


def _size(files: dict[str, dict[str, object]]) -> int:
    return sum(int(str(f.get("size", 0))) for f in files.values())


class EvidenceScreen(Screen[None]):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back", id="evidence.back")]
    DEFAULT_CSS = """
    EvidenceScreen #items { height: 1fr; }
    EvidenceScreen #custody { height: auto; max-height: 9; border-top: solid $panel-lighten-2;
        padding: 0 1; }
    """

    def __init__(self, state: IncidentState) -> None:
        super().__init__()
        self.state = state
        self.items: list[Evidence] = []

    def compose(self) -> ComposeResult:
        yield Static(" Evidence: every output kept, by SHA-256", classes="title")
        yield DataTable(id="items", cursor_type="row")
        yield Static(id="custody")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#items", DataTable)
        for name in ("#", "host", "step", "what", "exit", "bytes", "sha256"):
            table.add_column(name, key=name)
        self.extend([])
        table.focus()

    def extend(self, events: object) -> None:
        """Add what new events recorded (the state is the incident screen's, already folded)."""
        table = self.query_one("#items", DataTable)
        for item in self.state.evidence[len(self.items) :]:
            self.items.append(item)
            main = item.files.get("stdout") or item.files.get("file") or {}
            failed = item.failure or (item.exit_status not in (0, None))
            # Every cell is the journal's (so a host's or a file's) text: plain, written out.
            table.add_row(
                _plain(str(item.seq)),
                _plain(item.host),
                _plain(item.step or "-"),
                _plain(item.item or item.purpose),
                Text(visible(str(item.exit_status)), style="red" if failed else ""),
                _plain(str(_size(item.files))),
                _plain(str(main.get("sha256", ""))[:16]),
                key=str(item.seq),
            )
        if not self.items:
            self.query_one("#custody", Static).update("no evidence yet: run a collect step")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        seq = int(str(event.row_key.value))
        item = next(i for i in self.items if i.seq == seq)
        lines = [f"event {item.seq} at {item.at} by {item.by}: {item.purpose} on {item.host}"]
        if item.failure:  # what went wrong first: the box is short, the hashes can wait
            lines.append(f"failure: {item.failure}")
        lines += [
            f"identity: {item.identity or '-'}",
            f"command: {' '.join(item.command.split())}",
        ]
        for stream, data in item.files.items():
            lines.append(f"{stream}: {data.get('size')} bytes  sha256 {data.get('sha256')}")
        # One line per field: a host's newline cannot forge a line of custody.
        self.query_one("#custody", Static).update(Text("\n".join(visible(line) for line in lines)))
