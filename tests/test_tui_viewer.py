"""Reading evidence in the terminal UI: the evidence screen, the viewer, comparing hosts, and
opening a host's output from the run screen."""

from __future__ import annotations

from pathlib import Path

import keyring
import pytest
from textual.widgets import DataTable, Log

from irtool.engine.runner import Runner
from irtool.engine.session import IncidentSession
from irtool.evidence.store import EvidenceStore
from irtool.journal.incidents import EVIDENCE_DIR, incident_dir
from irtool.remote.local import LocalTransport
from irtool.secrets import store as keyring_store
from irtool.tui.app import IrtoolApp
from irtool.tui.screens.compare import CompareScreen
from irtool.tui.screens.evidence import EvidenceScreen
from irtool.tui.screens.run import RunScreen
from irtool.tui.screens.viewer import ViewerScreen, viewer_path
from tests.support.keyring_backend import FileKeyring
from tests.support.runbooks import open_collect_incident
from tests.support.tui import notifications, opened, screen_text, wait_for

# Every host lists w3wp.exe; web01 and web02 have cmd.exe; only web02 runs nc.exe. Then 300
# lines with a needle on every hundredth, and a password a host echoed.
LONG = '{"payload": "' + "A" * 150 + '", "end": true}'
COMMAND = (
    f"echo '{LONG}'\n"
    + """\
echo w3wp.exe
case {{ host.name }} in web01|web02) echo cmd.exe;; esac
case {{ host.name }} in web02) echo nc.exe;; esac
for i in $(seq 1 300); do
  if [ $((i % 100)) -eq 0 ]; then echo "needle $i"; else echo "line $i"; fi
done
echo 'login with hunter2-secret \033]52;c;evil\a'"""
)

HOSTS = {
    name: {"address": "127.0.0.1", "transport": "local", "groups": ["fleet"]}
    for name in ("web01", "web02", "web03")
}


@pytest.fixture(autouse=True)
def keymap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRTOOL_KEYMAP", str(tmp_path / "keymap.yaml"))


def collected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> IncidentSession:
    session = open_collect_incident(tmp_path, monkeypatch, HOSTS, COMMAND)
    store = EvidenceStore(incident_dir(session.state.id) / EVIDENCE_DIR)
    Runner(session, {"local": LocalTransport()}, store, "ann", pool=1).run("collect")
    session.close_journal()
    return session


def line_of(viewer: ViewerScreen, text: str) -> int:
    return next(n for n, line in enumerate(viewer.view.page(0, 400)) if line == text)


async def test_enter_reads_an_output_and_search_moves_between_matches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = collected(tmp_path, monkeypatch)
    app = IrtoolApp(actor="ann", incident=session.state.id)
    async with app.run_test(size=(100, 30)) as pilot:
        await opened(pilot)
        await pilot.press("e")
        assert isinstance(app.screen, EvidenceScreen)
        assert app.screen.query_one("#items", DataTable).row_count == 3  # stderr empty: no row
        await pilot.press("enter")
        viewer = app.screen
        assert isinstance(viewer, ViewerScreen)
        redactor = viewer.redactor
        redactor.add("hunter2-secret")  # as if the keyring held it
        await wait_for(pilot, lambda: viewer.text.complete and viewer.checked == "", what="index")
        # The status line is redrawn on the viewer's next tick, not at once.
        await wait_for(pilot, lambda: "sha256 checked" in screen_text(app), what="the check")
        shown = screen_text(app)
        # The exact command, line for line, and the custody record.
        assert '$ echo \'{"payload"' in shown and "  echo w3wp.exe" in shown
        assert f"collect event {viewer.item.seq if viewer.item else 0} by ann" in shown
        assert "… 6 more lines (c: the whole command)" in shown
        await pilot.press("c")
        assert "  echo 'login with hunter2" not in screen_text(app)  # redacted there too
        assert "  echo 'login with [redacted]" in screen_text(app)
        await pilot.press("c")
        await pilot.press("/", *"needle", "enter")
        await wait_for(pilot, lambda: viewer.view.match is not None, what="a match")
        first = line_of(viewer, "needle 100")
        assert viewer.view.match == first
        await pilot.press("n")
        await wait_for(pilot, lambda: viewer.view.match == line_of(viewer, "needle 200"))
        await pilot.press("N")
        await wait_for(pilot, lambda: viewer.view.match == first, what="back to the first")
        # The secret a host echoed is not on screen; its escape sequence is written out.
        await pilot.press("end")
        await pilot.pause()
        shown = screen_text(app)
        assert "login with [redacted] \\x1b]52;c;evil\\x07" in shown
        assert "hunter2" not in shown


async def test_compare_lists_the_line_on_fewest_hosts_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = collected(tmp_path, monkeypatch)
    app = IrtoolApp(actor="ann", incident=session.state.id)
    async with app.run_test(size=(100, 30)) as pilot:
        await opened(pilot)
        await pilot.press("e", "c")
        compare = app.screen
        assert isinstance(compare, CompareScreen)
        await wait_for(pilot, lambda: compare.result is not None, what="the comparison")
        table = compare.query_one("#compare-table", DataTable)
        rows = [[str(cell) for cell in table.get_row_at(n)] for n in range(3)]
        assert rows[0] == ["1/3", "web02", "nc.exe"]
        assert rows[1] == ["2/3", "web01, web02", "cmd.exe"]
        assert rows[2][0] == "3/3" and rows[2][1] == "all"


async def test_the_run_screen_heads_each_output_and_opens_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = open_collect_incident(tmp_path, monkeypatch, HOSTS, COMMAND)
    session.close_journal()
    app = IrtoolApp(actor="ann", incident=session.state.id)
    async with app.run_test(size=(100, 30)) as pilot:
        await opened(pilot)
        await pilot.press("r")
        run = app.screen
        assert isinstance(run, RunScreen)
        await wait_for(pilot, lambda: run.report is not None, what="the run")
        await pilot.pause()
        log = run.query_one("#output", Log)
        assert log.lines[0] == "── collect on web01 ──"
        assert log.lines[1] == LONG and log.lines[2] == "w3wp.exe"
        # A long line is not cut at the pane's edge: scrolled sideways, or wrapped.
        await pilot.press("right")
        assert log.scroll_x > 0
        await pilot.press("w")
        width = log.scrollable_content_region.width
        assert all(len(line) <= width for line in log.lines)
        assert "".join(log.lines[1:5]).startswith(LONG)
        await pilot.press("down", "o")
        viewer = app.screen
        assert isinstance(viewer, ViewerScreen) and viewer.item is not None
        assert viewer.item.host == "web02"
        await wait_for(pilot, lambda: "nc.exe" in screen_text(app), what="web02's output")


async def test_a_running_hosts_output_is_followed_as_it_grows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    go_on = tmp_path / "go-on"
    hosts = {"web01": {"address": "127.0.0.1", "transport": "local", "vars": {"go": str(go_on)}}}
    command = "echo started; while [ ! -e {{ host.vars.go }} ]; do sleep 0.05; done; echo later"
    session = open_collect_incident(tmp_path, monkeypatch, hosts, command)
    session.close_journal()
    app = IrtoolApp(actor="ann", incident=session.state.id)
    async with app.run_test(size=(100, 30)) as pilot:
        await opened(pilot)
        await pilot.press("r")
        run = app.screen
        assert isinstance(run, RunScreen)
        await wait_for(pilot, lambda: "started" in screen_text(app), what="the first output")
        await pilot.press("o")
        viewer = app.screen
        assert isinstance(viewer, ViewerScreen) and viewer.following
        await wait_for(pilot, lambda: "1 started" in screen_text(app), what="the file so far")
        assert "still being written" in screen_text(app)
        go_on.touch()
        await wait_for(pilot, lambda: "2 later" in screen_text(app), what="what came after")
        await pilot.press("escape")
        await wait_for(pilot, lambda: run.report is not None, what="the run")


async def test_a_password_a_host_echoed_is_hidden_in_the_viewer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The password of another host of the inventory, from the keyring, as a run knows it."""
    monkeypatch.setenv("IRTOOL_TEST_KEYRING", str(tmp_path / "keyring.json"))
    previous = keyring.get_keyring()
    keyring.set_keyring(FileKeyring())
    try:
        keyring_store.store("db-admin", "S3cret-db-pass")
        hosts = {
            "web01": {"address": "127.0.0.1", "transport": "local"},
            "db01": {"address": "192.0.2.5", "transport": "ssh", "credential": "db-admin"},
        }
        session = open_collect_incident(tmp_path, monkeypatch, hosts, "echo conn=S3cret-db-pass")
        store = EvidenceStore(incident_dir(session.state.id) / EVIDENCE_DIR)
        runner = Runner(session, {"local": LocalTransport()}, store, "ann")
        runner.run("collect", ["web01"])
        session.close_journal()
        app = IrtoolApp(actor="ann", incident=session.state.id)
        async with app.run_test(size=(100, 30)) as pilot:
            await opened(pilot)
            await pilot.press("e", "enter")
            await wait_for(pilot, lambda: isinstance(app.screen, ViewerScreen), what="viewer")
            await wait_for(pilot, lambda: "1 conn=" in screen_text(app), what="the output")
            assert "1 conn=[redacted]" in screen_text(app)
            assert "S3cret" not in screen_text(app)
    finally:
        keyring.set_keyring(previous)


async def test_an_altered_file_is_flagged_in_the_viewer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = collected(tmp_path, monkeypatch)
    item = session.state.evidence[0]
    kept = incident_dir(session.state.id) / EVIDENCE_DIR / item.files["stdout"]["sha256"]
    kept.chmod(0o644)
    kept.write_text("w3wp.exe\nnothing to see here\n")
    app = IrtoolApp(actor="ann", incident=session.state.id)
    async with app.run_test(size=(100, 30)) as pilot:
        await opened(pilot)
        await pilot.press("e", "enter")
        viewer = app.screen
        assert isinstance(viewer, ViewerScreen)
        await wait_for(pilot, lambda: "ALTERED" in screen_text(app), what="the hash check")
        assert any("was altered" in n for n in notifications(app))


async def test_leaving_one_viewer_leaves_the_viewer_under_it_following(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A viewer's workers are its own: closing the one on top (or stepping to a finding's next
    # file) must not stop the viewer under it from reading, as cancelling every worker did.
    session = open_collect_incident(tmp_path, monkeypatch, HOSTS)
    session.close_journal()
    growing, other = tmp_path / "growing.log", tmp_path / "other.log"
    growing.write_text("first\n")
    other.write_text("something else\n")
    app = IrtoolApp(actor="ann", incident=session.state.id)
    async with app.run_test(size=(100, 30)) as pilot:
        await opened(pilot)
        under = viewer_path(growing)
        await app.push_screen(under)
        await wait_for(pilot, lambda: "1 first" in screen_text(app), what="the followed file")
        on_top = viewer_path(other)
        await app.push_screen(on_top)
        await wait_for(pilot, lambda: "1 something else" in screen_text(app), what="the other")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is under, what="the viewer under it")
        with growing.open("a") as out:
            out.write("second\n")
        await wait_for(pilot, lambda: "2 second" in screen_text(app), what="what came after")
