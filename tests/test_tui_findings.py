"""The findings screen (F): worst first, the filter, a finding's lines in the evidence viewer,
the pivots on its client, URI and user agent, a verdict with its reason, new findings as they
are raised, and a log's text shown as it is, never as markup or escapes.

Each test drives the app through Textual's pilot over a real incident: a 30,000-line IIS log
with planted attacks (tests/support/weblog.py) fetched as evidence and analysed into the
incident's DuckDB store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.app import App
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import DataTable, Input

from irtool.analysis.hunts import FindingDraft
from irtool.engine import kinds
from irtool.engine.findings import STORE_FILE, analyze_incident, raise_findings
from irtool.engine.learned import Finding
from irtool.engine.runner import Runner
from irtool.engine.session import IncidentSession
from irtool.evidence.reader import LINE_LIMIT, EvidenceText
from irtool.evidence.store import EvidenceStore
from irtool.journal import Event, Journal
from irtool.journal.incidents import EVIDENCE_DIR, incident_dir, journal_path
from irtool.model.hunt import SEVERITIES
from irtool.model.steps import Shell
from irtool.remote.local import LocalTransport
from irtool.tui.app import IrtoolApp
from irtool.tui.screens.findings import (
    FindingsScreen,
    LinesViewer,
    PivotScreen,
    marks_of,
    screen_rows,
)
from irtool.tui.screens.prompts import TextPrompt
from irtool.tui.screens.run import RunScreen
from tests.support.findings import analyzed, log_rows
from tests.support.runbooks import open_collect_incident
from tests.support.tui import notifications, opened, screen_text, wait_for
from tests.support.weblog import WEBSHELL_CLIENT, WEBSHELL_URI, write_log

SIZE = (140, 40)


@pytest.fixture(autouse=True)
def keymap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRTOOL_KEYMAP", str(tmp_path / "keymap.yaml"))


def focused(app: App[Any]) -> Widget | None:
    return app.focused


def rows(screen: FindingsScreen) -> list[int]:
    """The findings' numbers, top to bottom."""
    table = screen.query_one("#findings", DataTable)
    return [int(str(table.get_row_at(n)[0])) for n in range(table.row_count)]


async def findings_screen(pilot: Pilot[Any], app: IrtoolApp) -> FindingsScreen:
    await opened(pilot)
    await pilot.press("F")
    await wait_for(pilot, lambda: isinstance(app.screen, FindingsScreen), what="findings")
    screen = app.screen
    assert isinstance(screen, FindingsScreen)
    await wait_for(pilot, lambda: screen.secrets_read, what="the secrets read")
    return screen


async def select(pilot: Pilot[Any], screen: FindingsScreen, seq: int) -> None:
    table = screen.query_one("#findings", DataTable)
    table.move_cursor(row=rows(screen).index(seq))
    await wait_for(pilot, lambda: screen.selected is not None and screen.selected.seq == seq)
    # Its detail in the pane below, once the table said the row is highlighted.
    await wait_for(pilot, lambda: f"\n #{seq} " in screen_text(screen.app), what=f"#{seq}")


def events_of(incident: str, kind: str) -> list[Event]:
    journal = Journal(journal_path(incident), incident)
    try:
        return [e for e in journal.events() if e.kind == kind]
    finally:
        journal.close()


async def test_findings_are_worst_first_and_the_filter_narrows_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, _manifest, _log = analyzed(tmp_path, monkeypatch)
    state = session.state
    session.close_journal()
    app = IrtoolApp(actor="ann", incident=state.id)
    async with app.run_test(size=SIZE) as pilot:
        screen = await findings_screen(pilot, app)
        shown = rows(screen)
        assert sorted(shown) == sorted(state.findings)  # every finding, once
        worst = SEVERITIES[::-1]  # critical first
        ranks = [worst.index(state.findings[s].severity) for s in shown]
        assert ranks == sorted(ranks) and ranks[0] == 0  # the web shell is critical
        first_critical = [s for s in shown if state.findings[s].severity == "critical"]
        assert [state.findings[s].first_seen for s in first_critical] == sorted(
            state.findings[s].first_seen or "" for s in first_critical
        )  # of one severity, the first seen first
        text = screen_text(app)
        assert f"{len(state.findings)} raised ({len(state.findings)} new" in text
        assert "CRITICAL" in text and WEBSHELL_CLIENT in text

        await pilot.press("/", *"webshell")
        assert isinstance(focused(app), Input)
        narrowed = rows(screen)
        assert narrowed == [s for s in shown if "webshell" in _words(state.findings[s])]
        assert 0 < len(narrowed) < len(shown)
        assert f"; {len(narrowed)} shown" in screen_text(app)
        await pilot.press("enter")  # back to the table, the filter kept
        assert isinstance(focused(app), DataTable) and rows(screen) == narrowed

        await pilot.press("/", *" nothing-like-this")
        assert rows(screen) == [] and "no finding matches the filter" in screen_text(app)
        field = screen.query_one("#findings-filter", Input)
        field.value = "high"  # a severity is a word too
        await pilot.pause()
        assert rows(screen) and {state.findings[s].severity for s in rows(screen)} == {"high"}


def _words(f: Finding) -> str:
    return " ".join([f.hunt, f.title, f.summary, *f.hosts]).casefold()


async def test_enter_reads_the_findings_lines_and_n_walks_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, manifest, log = analyzed(tmp_path, monkeypatch)
    state = session.state
    session.close_journal()
    shell = next(f for f in state.findings.values() if f.hunt == "iis-webshell")
    lines = sorted(r["line"] for r in shell.refs)
    written = log.read_text().splitlines()
    app = IrtoolApp(actor="ann", incident=state.id)
    async with app.run_test(size=SIZE) as pilot:
        screen = await findings_screen(pilot, app)
        await select(pilot, screen, shell.seq)
        await pilot.press("enter")
        viewer = app.screen
        assert isinstance(viewer, LinesViewer)
        await wait_for(pilot, lambda: viewer.view.match == lines[0] - 1, what="the first line")
        assert viewer.view.page(lines[0] - 1, 1) == [written[lines[0] - 1]]
        assert WEBSHELL_URI in written[lines[0] - 1]
        await pilot.pause()
        shown = screen_text(app)
        # The line, as the log has it, on screen (as wide as the screen is), and where it is.
        assert f"{lines[0]} {written[lines[0] - 1]}"[: SIZE[0] - 4] in shown
        assert f"finding #{shell.seq}: line {lines[0]}, 1 of {len(lines)}" in shown
        assert f"sha256 {state.evidence[-1].files['file']['sha256']}" in shown  # custody

        await pilot.press("n")
        await wait_for(pilot, lambda: viewer.view.match == lines[1] - 1, what="the second")
        assert viewer.view.page(lines[1] - 1, 1) == [written[lines[1] - 1]]
        await pilot.press("N", "N")
        await wait_for(pilot, lambda: viewer.view.match == lines[0] - 1, what="back")
        assert "the first line of finding" in " ".join(notifications(app))
        assert set(manifest["webshell"].lines) <= set(lines)
        await pilot.press("escape")
        assert app.screen is screen


async def test_a_pivot_on_the_client_lists_every_request_of_that_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, _manifest, log = analyzed(tmp_path, monkeypatch)
    state = session.state
    session.close_journal()
    shell = next(f for f in state.findings.values() if f.hunt == "iis-webshell")
    expected = [n for n, values in log_rows(log) if values[8] == WEBSHELL_CLIENT]
    written = log.read_text().splitlines()
    app = IrtoolApp(actor="ann", incident=state.id)
    async with app.run_test(size=SIZE) as pilot:
        screen = await findings_screen(pilot, app)
        await select(pilot, screen, shell.seq)
        await pilot.press("c")
        pivot = app.screen
        assert isinstance(pivot, PivotScreen)
        await wait_for(pilot, lambda: pivot.result is not None, what="the pivot")
        table = pivot.query_one("#pivot-table", DataTable)
        assert table.row_count == len(expected)
        listed = [int(str(table.get_row_at(n)[7]).rsplit(":", 1)[1]) for n in range(len(expected))]
        assert listed == expected
        assert all(str(table.get_row_at(n)[2]) == WEBSHELL_CLIENT for n in range(len(expected)))
        assert f"Every request of client {WEBSHELL_CLIENT}: {len(expected)}" in screen_text(app)

        await pilot.press("down", "down", "enter")
        viewer = app.screen
        assert isinstance(viewer, LinesViewer)
        await wait_for(pilot, lambda: viewer.view.match == expected[2] - 1, what="its line")
        assert viewer.view.page(expected[2] - 1, 1) == [written[expected[2] - 1]]
        await pilot.press("escape")

        # From a request, on to its URI: every request of the web shell's page.
        await pilot.press("u")
        by_uri = app.screen
        assert isinstance(by_uri, PivotScreen) and by_uri is not pivot
        await wait_for(pilot, lambda: by_uri.result is not None, what="the URI pivot")
        uri = by_uri.result.value if by_uri.result else ""
        count = sum(1 for _, values in log_rows(log) if values[4] == uri)
        assert by_uri.query_one("#pivot-table", DataTable).row_count == count


async def test_a_pivot_without_the_store_says_run_analyze(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, _manifest, _log = analyzed(tmp_path, monkeypatch)
    state = session.state
    session.close_journal()
    (session.directory / STORE_FILE).unlink()
    app = IrtoolApp(actor="ann", incident=state.id)
    async with app.run_test(size=SIZE) as pilot:
        await findings_screen(pilot, app)
        await pilot.press("a")
        pivot = app.screen
        assert isinstance(pivot, PivotScreen)
        await wait_for(pilot, lambda: pivot.problem is not None, what="the refusal")
        assert f"run `irtool analyze {state.id}`" in screen_text(app)
        assert not (session.directory / STORE_FILE).exists()


async def test_confirm_and_dismiss_write_the_verdict_with_its_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, _manifest, _log = analyzed(tmp_path, monkeypatch)
    state = session.state
    session.close_journal()
    shell = next(f for f in state.findings.values() if f.hunt == "iis-webshell")
    other = next(f for f in state.findings.values() if f.hunt != "iis-webshell")
    app = IrtoolApp(actor="ann", incident=state.id)
    async with app.run_test(size=SIZE) as pilot:
        screen = await findings_screen(pilot, app)
        await select(pilot, screen, shell.seq)
        await pilot.press("y")
        assert isinstance(app.screen, TextPrompt)
        await pilot.press(*"errorpage.aspx is a web shell", "enter")
        await wait_for(pilot, lambda: app.screen is screen, what="the prompt closed")
        confirmed = events_of(state.id, kinds.FINDING_CONFIRMED)
        assert [(e.data, e.actor) for e in confirmed] == [
            ({"finding": shell.seq, "reason": "errorpage.aspx is a web shell"}, "ann")
        ]
        text = screen_text(app)
        assert "confirmed by ann: errorpage.aspx is a web shell" in text
        assert "1 confirmed" in text

        await select(pilot, screen, other.seq)
        await pilot.press("x")
        await pilot.press("escape")  # backed out: nothing written
        await wait_for(pilot, lambda: app.screen is screen, what="the prompt closed")
        assert events_of(state.id, kinds.FINDING_DISMISSED) == []
        await pilot.press("x", *"the monitoring probe", "enter")
        await wait_for(pilot, lambda: app.screen is screen, what="the prompt closed")
        dismissed = events_of(state.id, kinds.FINDING_DISMISSED)
        assert [e.data for e in dismissed] == [
            {"finding": other.seq, "reason": "the monitoring probe"}
        ]
        assert other.seq in rows(screen)
        await pilot.press("h")  # the dismissed hidden
        assert other.seq not in rows(screen) and shell.seq in rows(screen)
        assert len(rows(screen)) == len(state.findings) - 1


async def test_findings_raised_elsewhere_show_and_a_logs_text_shows_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, _manifest, _log = analyzed(tmp_path, monkeypatch)
    state = session.state
    ref = next(iter(state.findings.values())).refs[0]
    session.close_journal()
    hostile = FindingDraft(
        hunt="iis-user-agents",
        version="1",
        severity="critical",
        title="[bold]pwned[/bold] agent",
        summary="10.9.9.9 sent [red]evil[/red] \x1b]52;c;ZXZpbA==\x07 as its user agent",
        hosts=("web01",),
        first_seen="2024-03-01T00:00:00+00:00",
        last_seen="2024-03-01T00:00:00+00:00",
        count=1,
        refs=((ref["sha256"], ref["source"], ref["line"]),),
        key="iis-user-agents:hostile",
    )
    app = IrtoolApp(actor="ann", incident=state.id)
    async with app.run_test(size=SIZE) as pilot:
        screen = await findings_screen(pilot, app)
        before = len(rows(screen))
        # Another terminal (an `irtool analyze`) raises one more: it shows, on top.
        other = IncidentSession.open(state.id)
        try:
            (raised,) = raise_findings(other, "bob", [hostile])
        finally:
            other.close_journal()
        await wait_for(pilot, lambda: len(rows(screen)) == before + 1, what="the new finding")
        assert rows(screen)[0] == raised.seq  # critical, and first seen earliest
        await select(pilot, screen, raised.seq)
        text = screen_text(app)
        assert "[bold]pwned[/bold] agent" in text
        assert "[red]evil[/red] \\x1b]52;c;ZXZpbA==\\x07 as its user agent" in text
        assert "\x1b" not in text


async def test_without_findings_the_key_says_how_to_get_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IRTOOL_HOME", str(tmp_path / "home"))
    hosts = {"web01": {"address": "127.0.0.1", "transport": "local"}}
    session = open_collect_incident(tmp_path, monkeypatch, hosts)
    session.close_journal()
    app = IrtoolApp(actor="ann", incident=session.state.id)
    async with app.run_test(size=SIZE) as pilot:
        await opened(pilot)
        await pilot.press("F")
        await wait_for(pilot, lambda: notifications(app), what="a word on F")
        assert (
            "no findings yet: run an analyze step (r), or irtool analyze" in notifications(app)[0]
        )
        assert not isinstance(app.screen, FindingsScreen)


def test_a_line_after_a_very_long_one_is_found_where_the_viewer_shows_it(tmp_path: Path) -> None:
    # The viewer shows a line longer than LINE_LIMIT bytes as several rows (a log line with a
    # huge cookie): the rows of the lines after it move down, and the finding's line with them.
    lines = [
        "#Fields: date time cs(Cookie)",
        "short",
        "é" * 30_000,  # 60 KB of two-byte characters: cut where a character starts
        "x" * LINE_LIMIT,  # exactly the limit: one row
        "needle one",
        "y" * (3 * LINE_LIMIT + 7),
        "needle two",
    ]
    path = tmp_path / "u_ex.log"
    path.write_bytes("\r\n".join(lines).encode())  # and no newline after the last line
    rows = screen_rows(path, [2, 5, 7, 99])
    with EvidenceText(path) as text:
        text.scan_all()
        assert text.lines(rows[2], 1) == ["short"]
        assert text.lines(rows[5], 1) == ["needle one"] and rows[5] > 4
        assert text.lines(rows[7], 1) == ["needle two"] and rows[7] > rows[5] + 4
        assert rows[99] >= text.line_count  # no such line: past the end, said so by the viewer


async def test_n_walks_a_findings_lines_on_into_its_next_evidence_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, _manifest, log = analyzed(tmp_path, monkeypatch)
    # A second day's log, fetched and analysed: the web shell's finding now stands on both.
    later = log.with_name("u_ex240304.log")
    write_log(later, lines=5_000, seed=12)
    evidence = EvidenceStore(incident_dir(session.state.id) / EVIDENCE_DIR)
    Runner(session, {"local": LocalTransport()}, evidence, "ann").fetch("web01", str(later))
    analyze_incident(session, evidence, "ann")
    state = session.state
    session.close_journal()
    shell = next(
        f for f in state.findings.values() if f.hunt == "iis-webshell" and len(f.evidence) == 2
    )
    marks = marks_of(shell.refs)
    first_file = [m for m in marks if m.sha256 == marks[0].sha256]
    second = marks[len(first_file)]
    assert second.sha256 != marks[0].sha256
    app = IrtoolApp(actor="ann", incident=state.id)
    async with app.run_test(size=SIZE) as pilot:
        screen = await findings_screen(pilot, app)
        await select(pilot, screen, shell.seq)
        await pilot.press("enter")
        viewer = app.screen
        assert isinstance(viewer, LinesViewer)
        last = first_file[-1].line - 1
        await pilot.press(*["n"] * (len(first_file) - 1))
        await wait_for(pilot, lambda: viewer.view.match == last, what="the file's last line")
        assert "file 1 of 2 (n/N)" in screen_text(app)
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen is not viewer, what="the next file")
        following = app.screen
        assert isinstance(following, LinesViewer) and following.text.sha256 == second.sha256
        await wait_for(pilot, lambda: following.view.match == second.line - 1, what="its line")
        written = (later if second.source.endswith(later.name) else log).read_text().splitlines()
        assert following.view.page(second.line - 1, 1) == [written[second.line - 1]]
        assert "file 2 of 2 (n/N)" in screen_text(app)
        await pilot.press("escape")
        assert app.screen is screen  # back to the findings, not to the first file


async def test_enter_on_an_event_log_finding_reads_its_records_not_the_binary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = open_collect_incident(
        tmp_path, monkeypatch, {"web01": {"address": "127.0.0.1", "transport": "local"}}
    )
    evidence = EvidenceStore(incident_dir(session.state.id) / EVIDENCE_DIR)
    security = Path(__file__).resolve().parent / "data" / "evtx" / "security.evtx"
    Runner(session, {"local": LocalTransport()}, evidence, "ann").fetch("web01", str(security))
    analyze_incident(session, evidence, "ann")
    state = session.state
    session.close_journal()
    users = next(f for f in state.findings.values() if f.hunt == "win-new-local-user")
    first = min(int(r["line"]) for r in users.refs)
    app = IrtoolApp(actor="ann", incident=state.id)
    async with app.run_test(size=SIZE) as pilot:
        screen = await findings_screen(pilot, app)
        await select(pilot, screen, users.seq)
        await pilot.press("enter")
        await wait_for(pilot, lambda: f"record {first}" in screen_text(app), what="the record")
        shown = screen_text(app)
        assert '"EventID": 4720' in shown and "ElfFile" not in shown
        folder = Path(app.screen.folder.name)  # type: ignore[attr-defined]
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, FindingsScreen), what="findings")
        assert not folder.exists()  # the records' text was a temporary file


async def test_s_sweeps_a_findings_indicators_on_the_hosts_named_and_raises_the_hits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    webroot = tmp_path / "www"
    (webroot / "uploads").mkdir(parents=True)
    (webroot / "uploads" / "errors.aspx").write_text("<% eval %>")
    hosts = {
        name: {"address": "127.0.0.1", "transport": "local", "os": "linux"}
        for name in ("web01", "web02")
    }
    session = open_collect_incident(tmp_path, monkeypatch, hosts)
    draft = FindingDraft(
        "webroot:added", "1", "high", "A file the release does not have", "errors.aspx",
        ("web01",), None, None, 1, (), "webroot:web01:errors.aspx", (("file", "errors.aspx"),),
    )  # fmt: skip
    (raised,) = raise_findings(session, "ann", [draft])
    incident = session.state.id
    session.close_journal()
    monkeypatch.setattr("irtool.model.sweep.DEFAULT_WEBROOT", {Shell.SH: str(webroot)})
    monkeypatch.setattr("irtool.model.sweep.DEFAULT_ALSO", {Shell.SH: ()})  # not all of /tmp
    app = IrtoolApp(actor="ann", incident=incident)
    async with app.run_test(size=SIZE) as pilot:
        screen = await findings_screen(pilot, app)
        await select(pilot, screen, raised.seq)
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, TextPrompt), what="the hosts")
        await pilot.press(*"web02", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen), what="the run")
        run = app.screen
        assert isinstance(run, RunScreen)
        await wait_for(pilot, lambda: run.report is not None, what="the sweep's end")
        assert list(run.report.results) == ["web02"]  # type: ignore[union-attr]
        await pilot.press("escape")
        await wait_for(
            pilot,
            lambda: any("sweep for finding" in n for n in notifications(app)),
            what="the sweep's result",
        )
        said = next(n for n in notifications(app) if "sweep for finding" in n)
        assert "1 hit(s) on 1 host(s), 1 new finding(s)" in said
        hit = max(rows(screen))
        assert hit != raised.seq
    found = [e for e in events_of(incident, kinds.FINDING_RAISED) if e.seq != raised.seq]
    assert [e.data["hunt"] for e in found] == ["sweep:file"] and found[0].data["hosts"] == ["web02"]
    ran = [e for e in events_of(incident, kinds.COMMAND_RAN) if e.host == "web02"]
    assert ran and ran[-1].data["ad_hoc"] is True  # the sweep's run, with its custody
