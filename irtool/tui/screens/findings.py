"""The findings of the hunts and rules (F on the incident screen): the worst first, filtered as
the responder types; each one's lines read in the evidence viewer, a pivot on its client, URI
or user agent, and a verdict (confirmed or dismissed, with why) written as an event.

Reading a finding's lines: enter opens the viewer on the evidence file of its first line,
at that line, marked. `n` and `N` then walk the finding's lines (the first 50 a hunt keeps,
file by file, in line order), moving to the next evidence file past the last line of this
one, as a responder steps through matches; once `/` searched for something, they follow the
search instead, as in any viewer. A pivot's rows are walked the same way.

Everything a finding says came from a log (a client's user agent, a URI): each cell is plain
text, written out by `visible`, never read as markup, and redacted like the evidence itself.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static
from textual.worker import Worker, get_current_worker

from irtool.engine.findings import judge_finding, worst_first
from irtool.engine.learned import Finding
from irtool.engine.pivots import (
    PIVOTS,
    Pivot,
    PivotUnavailable,
    event_records,
    is_event_log,
    pivot,
    pivot_on_ref,
)
from irtool.engine.refusal import Refused
from irtool.engine.runreport import RunReport
from irtool.engine.state import AD_HOC, Evidence, IncidentState
from irtool.engine.sweep import SweepPlan, plan_sweep, sweep_reason, sweep_results

# row_starts: the viewer's own cutting of a long line, so rows are counted as it shows them.
from irtool.evidence.reader import CHUNK, LINE_LIMIT, EvidenceText, row_starts
from irtool.evidence.store import EvidenceStore
from irtool.journal import Event
from irtool.journal.incidents import EVIDENCE_DIR, incident_dir
from irtool.model.steps import Shell
from irtool.model.untrusted import visible
from irtool.model.when import zone, zone_label
from irtool.secrets.redact import Redactor
from irtool.tui.guard import guarded
from irtool.tui.screens.evidence import known_secrets
from irtool.tui.screens.prompts import Text as Typed
from irtool.tui.screens.prompts import TextPrompt
from irtool.tui.screens.run import AdHoc, RunRequest, RunScreen
from irtool.tui.screens.viewer import ViewerScreen
from irtool.tui.widgets.tables import row_under_cursor

if TYPE_CHECKING:
    from irtool.tui.commands.hub import Hub

_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "", "info": "dim"}
STATE_SHOWN = {"open": "new", "confirmed": "confirmed", "dismissed": "dismissed"}
CELL = 60  # characters of a summary (or a URI) in a table; the pane below has it whole
TITLE = 40
PLACEHOLDER = "filter: words in the hunt, title, summary, host, severity or state (/)"


def matches(finding: Finding, words: Sequence[str]) -> bool:
    """Every word (any case) is somewhere in the finding's hunt, title, summary, hosts,
    severity or state."""
    text = " ".join(
        [
            finding.hunt,
            finding.title,
            finding.summary,
            finding.severity,
            STATE_SHOWN.get(finding.status, finding.status),
            *finding.hosts,
        ]
    ).casefold()
    return all(word.casefold() in text for word in words)


def when(at: str | datetime | None) -> str:
    """`2024-03-03 10:15:02` in the responder's zone (the column's heading names it)."""
    if at is None or at == "":
        return ""
    try:
        moment = at if isinstance(at, datetime) else datetime.fromisoformat(at)
    except ValueError:
        return str(at)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # the store and the hunts keep UTC
    return moment.astimezone(zone()).strftime("%Y-%m-%d %H:%M:%S")


def _cut(text: str, width: int = CELL) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


# -- reading the lines -------------------------------------------------------------------------


@dataclass(frozen=True)
class Mark:
    """One line of evidence to show: the file (by SHA-256), its source, the 1-based line."""

    sha256: str
    source: str
    line: int


def marks_of(refs: Iterable[dict[str, Any]]) -> list[Mark]:
    """A finding's references as the viewer walks them: file by file (in the order the
    finding names them), in line order within each. A reference to a whole file (line 0: a
    fetched file YARA matched) opens it at its first line."""
    files: dict[str, int] = {}
    marks = []
    for ref in refs:
        sha = str(ref.get("sha256") or "")
        if sha and ref.get("line") is not None:
            files.setdefault(sha, len(files))
            marks.append(Mark(sha, str(ref.get("source") or ""), max(1, int(ref["line"]))))
    unique = dict.fromkeys(marks)  # a line named twice is read once
    return sorted(unique, key=lambda m: (files[m.sha256], m.line))


def kept_as(state: IncidentState, sha256: str) -> tuple[Evidence, str] | None:
    """The evidence record (and its stream) that kept the file with this SHA-256."""
    for item in state.evidence:
        for stream, kept in item.files.items():
            if kept.get("sha256") == sha256:
                return item, stream
    return None


CARRY_LIMIT = 64 << 20  # a "line" longer than this (binary garbage) ends the walk: rows guessed


def screen_rows(
    path: Path, lines: Iterable[int], cancelled: Callable[[], bool] = lambda: False
) -> dict[int, int]:
    """The viewer's row (0-based) of each 1-based line of the file: line - 1, unless a line
    before it is longer than the viewer's `LINE_LIMIT`, which it shows as several rows (a
    log line with a 20 KB cookie). Cut exactly as the viewer's reader cuts."""
    wanted = sorted({n for n in lines if n > 0})
    rows: dict[int, int] = {}
    extra = number = k = 0  # rows past one a line so far; lines read; next wanted
    carry = b""
    with path.open("rb") as stream:
        while k < len(wanted) and not cancelled():
            chunk = stream.read(CHUNK)
            parts = (carry + chunk).split(b"\n")
            carry = parts.pop() if chunk else b""  # at the end, the last line has no newline
            for part in parts:
                number += 1
                if number == wanted[k]:
                    rows[number] = number - 1 + extra
                    k += 1
                    if k == len(wanted):
                        break
                if len(part) > LINE_LIMIT:
                    extra += len(row_starts(part + b"\n")) - 2
            if not chunk or len(carry) > CARRY_LIMIT:
                break
    for n in wanted[k:]:  # past what could be read: the best guess
        rows[n] = n - 1 + extra
    return rows


class LinesViewer(ViewerScreen):
    """The evidence viewer on the file of one of `marks`, at its line; `n`/`N` walk the marks
    (to the next file past the last of this one) until a search is typed."""

    def __init__(
        self,
        state: IncidentState,
        marks: Sequence[Mark],
        index: int,
        redactor: Redactor,
        label: str,
    ) -> None:
        mark = marks[index]
        text = EvidenceText.open(incident_dir(state.id) / EVIDENCE_DIR, mark.sha256)
        kept = kept_as(state, mark.sha256)
        item, stream = kept if kept is not None else (None, "stdout")
        super().__init__(text, item, stream, redactor, about=mark.source)
        self.incident, self.marks, self.at, self.label = state, list(marks), index, label
        self.goal: int | None = mark.line  # the line to go to (1-based, in the file)
        self.rows: dict[int, int] | None = None  # the viewer's row of each mark's line

    @property
    def mark(self) -> Mark:
        return self.marks[self.at]

    def on_mount(self) -> None:
        super().on_mount()
        self.locate()

    @work(thread=True, exclusive=True, exit_on_error=False, group="rows")
    def locate(self) -> None:
        worker = get_current_worker()
        sha256 = self.mark.sha256
        wanted = [m.line for m in self.marks if m.sha256 == sha256]
        try:
            rows = screen_rows(self.text.path, wanted, lambda: worker.is_cancelled)
        except OSError:
            rows = {}  # the viewer says what is wrong with the file; rows are guessed
        if not worker.is_cancelled:
            self.app.call_from_thread(self.located, rows)

    def located(self, rows: dict[int, int]) -> None:
        self.rows = rows
        self.tick()

    def tick(self) -> None:
        super().tick()
        if self.goal is None or self.rows is None:
            return
        row = self.rows.get(self.goal, self.goal - 1)
        if self.view.line_count > row:
            # Once the index reaches the line (a large log is indexed in a thread).
            self.goal = None
            self.view.go_to(row)
            self.call_after_refresh(self.view.go_to, row)  # again, laid out
        elif self.text.complete:
            self.goal = None
            self.notify(
                visible(f"{self.mark.source}: no line {self.mark.line} in this file"),
                severity="warning",
            )

    def _status(self) -> str:
        status = super()._status()
        if self.needle:
            return status
        files = list(dict.fromkeys(m.sha256 for m in self.marks))
        where = (
            f", file {files.index(self.mark.sha256) + 1} of {len(files)}" if len(files) > 1 else ""
        )
        return (
            f"{status} · {visible(self.label)}: line {self.mark.line}, "
            f"{self.at + 1} of {len(self.marks)}{where} (n/N)"
        )

    def action_next(self, backward: bool) -> None:
        if self.needle:
            super().action_next(backward)
            return
        wanted = self.at + (-1 if backward else 1)
        if not 0 <= wanted < len(self.marks):
            self.notify(
                f"the {'first' if backward else 'last'} line of {visible(self.label)}", timeout=3
            )
            return
        self.step_to(wanted)

    def step_to(self, index: int) -> None:
        mark = self.marks[index]
        if mark.sha256 == self.mark.sha256:
            self.at = index
            self.goal = mark.line
            self.tick()
            return
        with guarded(self.app):  # the next evidence file: in a viewer of its own
            self.app.switch_screen(
                LinesViewer(self.incident, self.marks, index, self.redactor, self.label)
            )


class RecordsViewer(ViewerScreen):
    """The event log records a finding names, one indented JSON object each under a
    `# SOURCE record N` line: written to a temporary file the viewer reads (the evidence
    viewer reads files), removed when it closes. The store holds them as the evtx parser read
    them from the evidence file the header names."""

    def __init__(self, records: Sequence[tuple[str, int, str]], redactor: Redactor, label: str):
        self.folder = tempfile.TemporaryDirectory(prefix="irtool-records-")
        path = Path(self.folder.name) / "records.txt"
        parts = []
        for source, number, raw in records:
            try:
                shown = json.dumps(json.loads(raw), indent=2, ensure_ascii=False)
            except ValueError:
                shown = raw
            parts.append(f"# {source} record {number}\n{shown}\n")
        path.write_text("".join(parts), encoding="utf-8")
        super().__init__(
            EvidenceText(path), None, "stdout", redactor,
            about=f"{label}: {len(records)} event log record(s), from the analysis store",
        )  # fmt: skip

    def on_unmount(self) -> None:
        super().on_unmount()
        self.folder.cleanup()


# -- the findings ------------------------------------------------------------------------------


def pivot_keys(screen: str, whose: str) -> list[Binding]:
    """c, u, a: every request of the selected one's client, URI or user agent (a screen's
    own binding ids, so that a keymap can rebind them on one screen only)."""
    return [
        Binding(
            "c",
            "pivot('client')",
            "Client",
            id=f"{screen}.client",
            tooltip=f"Every request of {whose} client",
        ),
        Binding(
            "u",
            "pivot('cs_uri_stem')",
            "URI",
            id=f"{screen}.uri",
            tooltip=f"Every request of {whose} URI",
        ),
        Binding(
            "a",
            "pivot('cs_user_agent')",
            "Agent",
            id=f"{screen}.agent",
            tooltip=f"Every request with {whose} user agent",
        ),
    ]


class FindingsScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="findings.back"),
        Binding("enter", "lines", "Lines", id="findings.lines", tooltip="Read its lines"),
        Binding("slash", "filter", "Filter", key_display="/", id="findings.filter"),
        *pivot_keys("findings", "this"),
        Binding(
            "y",
            "judge('confirmed')",
            "Confirm",
            id="findings.confirm",
            tooltip="Confirm it, with why",
        ),
        Binding(
            "x",
            "judge('dismissed')",
            "Dismiss",
            id="findings.dismiss",
            tooltip="Dismiss it, with why",
        ),
        Binding(
            "h",
            "hide",
            "Hide dismissed",
            id="findings.hide",
            tooltip="Hide or show the dismissed findings",
        ),
        Binding(
            "s",
            "sweep",
            "Sweep",
            id="findings.sweep",
            tooltip="Look for its indicators on other hosts, read-only",
        ),
    ]
    DEFAULT_CSS = """
    FindingsScreen #findings { height: 1fr; }
    FindingsScreen #finding-detail { height: auto; max-height: 10; padding: 0 1;
        border-top: solid $panel-lighten-2; }
    """

    def __init__(self, hub: Hub, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.hub = hub
        self.redactor = redactor or Redactor()
        self.secrets_read = redactor is not None
        self._waiting: Callable[[], None] | None = None  # to open once the secrets are known
        self.words: list[str] = []
        self.hide_dismissed = False
        self.shown: list[Finding] = []

    @property
    def state(self) -> IncidentState:
        return self.hub.state

    def compose(self) -> ComposeResult:
        yield Static(id="findings-title", classes="title")
        yield Input(placeholder=PLACEHOLDER, id="findings-filter")
        yield DataTable(id="findings", cursor_type="row")
        yield Static(id="finding-detail")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#findings", DataTable)
        for key, label in (
            ("seq", "#"),
            ("severity", "severity"),
            ("state", "state"),
            ("title", "finding"),
            ("count", "count"),
            ("first", f"first seen ({zone_label()})"),
            ("hosts", "hosts"),
            ("summary", "summary"),  # the longest, last: the pane below has it whole
        ):
            table.add_column(label, key=key)
        self.redraw()
        table.focus()
        if not self.secrets_read:
            self.read_secrets()

    @work(thread=True, exclusive=True, exit_on_error=False, group="secrets")
    def read_secrets(self) -> None:
        # The keyring may be slow (or ask to be unlocked): never on the event loop.
        known_secrets(self.state, self.redactor)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "secrets" or not event.worker.is_finished:
            return
        # Read or not (no keyring): drawn again with what is known, then what was asked.
        self.secrets_read = True
        self.redraw()
        if self._waiting is not None:
            waiting, self._waiting = self._waiting, None
            waiting()

    def _plain(self, text: str, style: str = "") -> Text:
        return Text(visible(self.redactor.text(text)), style=style)

    # -- drawing ---------------------------------------------------------------------------

    def redraw(self) -> None:
        table = self.query_one("#findings", DataTable)
        keep = self.selected
        everything = worst_first(self.state.findings.values())
        self.shown = [
            f
            for f in everything
            if matches(f, self.words) and not (self.hide_dismissed and f.status == "dismissed")
        ]
        table.clear()
        for f in self.shown:
            dim = "dim" if f.status == "dismissed" else ""
            state_style = {"confirmed": "bold green", "dismissed": "dim"}.get(f.status, "bold")
            table.add_row(
                Text(str(f.seq), style=dim),
                self._plain(f.severity.upper(), _STYLE.get(f.severity, "")),
                Text(STATE_SHOWN.get(f.status, f.status), style=state_style),
                self._plain(_cut(f.title or f.hunt, TITLE), dim),
                Text(str(f.count), style=dim),
                Text(when(f.first_seen), style=dim),
                self._plain(_cut(", ".join(f.hosts) or "-", 24), dim),
                self._plain(_cut(f.summary), dim),
                key=str(f.seq),
            )
        rows = [f.seq for f in self.shown]
        if keep is not None and keep.seq in rows:
            table.move_cursor(row=rows.index(keep.seq))
        self._title(everything)
        self.show_finding()
        self.refresh_bindings()

    def _title(self, everything: list[Finding]) -> None:
        counts = {s: sum(f.status == s for f in everything) for s in STATE_SHOWN}
        text = (
            f" Findings: {len(everything)} raised ({counts['open']} new, "
            f"{counts['confirmed']} confirmed, {counts['dismissed']} dismissed), worst first"
        )
        if len(self.shown) != len(everything):
            text += f"; {len(self.shown)} shown"
        if self.hide_dismissed:
            text += " (dismissed hidden: h)"
        self.query_one("#findings-title", Static).update(Text(text))

    def extend(self, events: Iterable[Event]) -> None:
        """New events folded into the incident's state (an analysis, another responder's
        verdict): drawn again if any is about findings."""
        if any(e.kind.startswith("finding.") for e in events):
            self.redraw()

    @property
    def selected(self) -> Finding | None:
        if not self.is_mounted:
            return None
        key = row_under_cursor(self.query_one("#findings", DataTable))
        return self.state.findings.get(int(key)) if key is not None else None

    def show_finding(self) -> None:
        detail = self.query_one("#finding-detail", Static)
        f = self.selected
        if f is None:
            if not self.state.findings:
                detail.update("no findings yet: run `irtool analyze` (or an analyze step)")
            else:
                detail.update("no finding matches the filter")
            return
        lines = [
            Text(
                visible(f"#{f.seq} {f.severity.upper()} {f.hunt} v{f.version}: {f.title}"),
                style="bold",
            ),
            self._plain(f.summary),
            self._plain(
                f"hosts {', '.join(f.hosts) or '-'} · {f.count} hit(s) · "
                f"first {when(f.first_seen)} · last {when(f.last_seen)} ({zone_label()})"
            ),
        ]
        marks = marks_of(f.refs)
        if marks:
            files = len({m.sha256 for m in marks})
            more = f", {f.count - len(marks)} more counted" if f.count > len(marks) else ""
            lines.append(
                self._plain(
                    f"lines: {marks[0].source}:{marks[0].line} and {len(marks) - 1} more "
                    f"in {files} file(s){more} (enter: read them)"
                )
            )
        if f.status != "open":
            lines.append(self._plain(f"{f.status} by {f.judged_by}: {f.reason}", "bold"))
        detail.update(Text("\n").join(lines))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.show_finding()
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("lines", "pivot", "judge"):
            return self.selected is not None
        if action == "sweep":
            return self.selected is not None and bool(self.selected.indicators)
        return True

    # -- the filter ------------------------------------------------------------------------

    def action_filter(self) -> None:
        self.query_one("#findings-filter", Input).focus()

    @on(Input.Changed, "#findings-filter")
    def _filtered(self, changed: Input.Changed) -> None:
        self.words = changed.value.split()
        self.redraw()

    @on(Input.Submitted, "#findings-filter")
    def _filter_done(self, submitted: Input.Submitted) -> None:
        submitted.stop()
        self.query_one("#findings", DataTable).focus()

    def action_hide(self) -> None:
        self.hide_dismissed = not self.hide_dismissed
        self.redraw()

    def action_back(self) -> None:
        field = self.query_one("#findings-filter", Input)
        if field.has_focus:  # out of the filter first, as a search line does
            self.query_one("#findings", DataTable).focus()
            return
        self.dismiss()

    # -- reading, pivoting, judging --------------------------------------------------------

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_lines()

    def _when_secrets_known(self, then: Callable[[], None]) -> bool:
        """No line is drawn before the secrets to hide are known: False, and `then` later."""
        if self.secrets_read:
            return True
        self._waiting = then
        return False

    def action_lines(self) -> None:
        f = self.selected
        if f is None or not self._when_secrets_known(self.action_lines):
            return
        marks = marks_of(f.refs)
        if not marks:
            self.notify("this finding names no line of evidence", severity="warning")
            return
        label = f"finding #{f.seq}"
        if is_event_log(incident_dir(self.state.id), marks[0].sha256):
            self.read_records(marks, label)
            return
        with guarded(self.app):
            self.app.push_screen(LinesViewer(self.state, marks, 0, self.redactor, label))

    def read_records(self, marks: Sequence[Mark], label: str) -> None:
        """An event log is binary: its records, as the store keeps them, in a viewer."""
        refs = [(m.sha256, m.source, m.line) for m in marks]
        try:
            found = event_records(incident_dir(self.state.id), self.state, refs)
        except PivotUnavailable as why:
            self.notify(visible(str(why)), severity="warning", markup=False)
            return
        if not found:
            self.notify("its records are not in the store: run the analysis again")
            return
        with guarded(self.app):
            self.app.push_screen(RecordsViewer(found, self.redactor, label))

    def action_pivot(self, column: str) -> None:
        f = self.selected
        if f is None or not self._when_secrets_known(lambda: self.action_pivot(column)):
            return
        if not f.refs:
            self.notify("this finding names no request to pivot from", severity="warning")
            return
        self.app.push_screen(PivotScreen(self.state, column, self.redactor, ref=f.refs[0]))

    def action_judge(self, verdict: str) -> None:
        f = self.selected
        if f is None:
            return
        seq, hub = f.seq, self.hub
        verb = "Confirm" if verdict == "confirmed" else "Dismiss"

        def judged(result: Typed | None) -> None:
            if result is None:
                return
            hub.write(lambda s: judge_finding(s, seq, verdict, hub.actor, result.text))
            self.redraw()

        self.app.push_screen(
            TextPrompt(f"{verb} finding #{seq}: {f.title}", "Why:", ok=verb), judged
        )

    # -- a sweep ---------------------------------------------------------------------------

    def action_sweep(self) -> None:
        """The finding's indicators looked for on hosts the responder names: one read-only
        ad-hoc run per shell on the run screen (custody as any run), then each hit a finding."""
        f = self.selected
        if f is None or not f.indicators:
            return
        seq = f.seq
        shown = ", ".join(f"{kind} {value}" for kind, value in f.indicators[:4])

        def given(targets: Typed | None) -> None:
            if targets is None:
                return
            try:
                plan = plan_sweep(self.state, seq, targets.text.split())
            except Refused as why:
                self.notify(visible(str(why)), severity="warning", markup=False)
                return
            self._sweep(plan, list(plan.scripts.items()), {})

        self.app.push_screen(
            TextPrompt(
                f"Sweep for finding #{seq}'s indicators ({shown})",
                "Hosts (a host, group:G, tag:T or all):",
                placeholder="group:similar",
                ok="Sweep",
            ),
            given,
        )

    def _sweep(
        self,
        plan: SweepPlan,
        left: list[tuple[Shell, tuple[list[str], str]]],
        reports: dict[Shell, RunReport],
    ) -> None:
        if not left:
            if reports:
                self._swept(plan, reports)
            return
        shell, (hosts, script) = left[0]
        request = RunRequest(
            self.state.id,
            AD_HOC,
            f"sweep for finding #{plan.finding} ({shell})",
            hosts,
            reason=sweep_reason(plan),
            ad_hoc=AdHoc(script, str(shell)),
        )

        def finished(report: RunReport | None) -> None:
            if report is not None:
                reports[shell] = report
            self._sweep(plan, left[1:], reports)

        hub = self.hub
        self.app.push_screen(
            RunScreen(request, hub.actor, hub.transports, clock=hub.clock), finished
        )

    def _swept(self, plan: SweepPlan, reports: dict[Shell, RunReport]) -> None:
        evidence = EvidenceStore(incident_dir(self.state.id) / EVIDENCE_DIR, create=False)
        with guarded(self.app):
            result = sweep_results(self.hub.session, evidence, plan, reports, self.hub.actor)
            hits = sum(result.hits.values())
            text = (
                f"sweep for finding #{plan.finding}: {hits} hit(s) on "
                f"{sum(1 for n in result.hits.values() if n)} host(s), "
                f"{len(result.raised)} new finding(s)"
            )
            if result.failed:
                text += "; not swept: " + "; ".join(
                    f"{h}: {why}" for h, why in sorted(result.failed.items())
                )
            self.notify(
                visible(text),
                severity="warning" if result.failed else "information",
                markup=False,
                timeout=10,
            )
            self.redraw()


# -- a pivot -----------------------------------------------------------------------------------


class PivotScreen(Screen[None]):
    """Every request of one client, URI or user agent, oldest first; enter reads its line."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back", id="pivot.back"),
        Binding("enter", "read", "Read", id="pivot.read", tooltip="Read this request's line"),
        *pivot_keys("pivot", "this request's"),
    ]
    DEFAULT_CSS = """
    PivotScreen #pivot-table { height: 1fr; }
    PivotScreen #pivot-notes { height: auto; max-height: 4; padding: 0 1;
        border-top: solid $panel-lighten-2; }
    """

    def __init__(
        self,
        state: IncidentState,
        column: str,
        redactor: Redactor,
        *,
        ref: dict[str, Any] | None = None,
        value: str | None = None,
    ) -> None:
        super().__init__()
        self.state, self.column, self.redactor = state, column, redactor
        self.ref, self.value = ref, value
        self.result: Pivot | None = None
        self.problem: str | None = None

    def compose(self) -> ComposeResult:
        yield Static(
            Text(f" Every request of this {PIVOTS[self.column]}…"),
            id="pivot-title",
            classes="title",
        )
        yield DataTable(id="pivot-table", cursor_type="row")
        yield Static("reading the requests…", id="pivot-notes")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#pivot-table", DataTable)
        for key, label in (
            ("time", f"time ({zone_label()})"),
            ("host", "host"),
            ("client", "client"),
            ("method", "method"),
            ("status", "status"),
            ("uri", "URI"),
            ("agent", "user agent"),
            ("line", "line"),
        ):
            table.add_column(label, key=key)
        table.focus()
        self.read()

    @work(thread=True, exclusive=True, exit_on_error=False, group="pivot")
    def read(self) -> None:
        # DuckDB over a large store takes a moment: never on the event loop.
        worker = get_current_worker()
        directory = incident_dir(self.state.id)
        try:
            if self.ref is not None:
                found = pivot_on_ref(directory, self.column, self.ref, state=self.state)
            else:
                found = pivot(directory, self.column, self.value or "", state=self.state)
        except (PivotUnavailable, ValueError) as why:
            if not worker.is_cancelled:
                self.app.call_from_thread(self.failed, str(why))
            return
        if not worker.is_cancelled:
            self.app.call_from_thread(self.show, found)

    def failed(self, why: str) -> None:
        self.problem = why
        self.query_one("#pivot-notes", Static).update(Text(visible(why)))
        self.notify(visible(why), title="No pivot", severity="warning", timeout=10)

    def show(self, found: Pivot) -> None:
        self.result = found
        plain = self._plain
        self.query_one("#pivot-title", Static).update(
            plain(f" Every request of {found.what}: {found.total}")
        )
        table = self.query_one("#pivot-table", DataTable)
        table.clear()
        for n, r in enumerate(found.requests):
            table.add_row(
                Text(when(r.ts)),
                plain(r.host),
                plain(r.client),
                plain(r.method),
                plain(r.status),
                plain(_cut(r.uri)),
                plain(_cut(r.user_agent, 40)),
                plain(f"{r.source}:{r.line}"),
                key=str(n),
            )
        notes = f"{len(found.requests)} request(s), oldest first; enter reads one's line"
        if found.more:
            notes = f"the first {len(found.requests)} of {found.total} (the rest not listed)"
        if found.unloaded:
            notes += (
                f"; {found.unloaded} web log(s) kept since the last analysis are not in it: "
                f"run `irtool analyze {self.state.id}`"
            )
        self.query_one("#pivot-notes", Static).update(Text(notes))

    def _plain(self, text: str) -> Text:
        return Text(visible(self.redactor.text(text)))

    @property
    def index(self) -> int | None:
        key = row_under_cursor(self.query_one("#pivot-table", DataTable))
        return int(key) if key is not None and self.result is not None else None

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_read()

    def action_read(self) -> None:
        index, found = self.index, self.result
        if index is None or found is None:
            return
        marks = [Mark(r.sha256, r.source, r.line) for r in found.requests]
        with guarded(self.app):
            self.app.push_screen(LinesViewer(self.state, marks, index, self.redactor, found.what))

    def action_pivot(self, column: str) -> None:
        index, found = self.index, self.result
        if index is None or found is None:
            return
        value = found.requests[index].value(column)
        if value is None:
            self.notify(f"this request has no {PIVOTS[column]}", severity="warning")
            return
        self.app.push_screen(PivotScreen(self.state, column, self.redactor, value=value))
