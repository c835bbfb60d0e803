"""Hostile hosts in the terminal UI (issue 15): what a host prints, and the reason it gives
for failing, is drawn written out (`\\x1b]52...`), never read as markup and never sent to the
terminal as control sequences; and what a facilitator wrote keeps its line breaks."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
import yaml
from textual.widgets import Log, Static

from irtool.engine.runner import Runner
from irtool.engine.session import IncidentSession
from irtool.evidence.store import EvidenceStore
from irtool.exercise.setup import load_exercise
from irtool.journal.incidents import EVIDENCE_DIR, incident_dir
from irtool.model.context import load_context
from irtool.model.inventory import ResolvedHost
from irtool.model.steps import Shell
from irtool.remote.base import Deadline, Failure, HostFailure, OnOutput
from irtool.remote.local import LocalConnection, LocalTransport
from irtool.tui.app import IrtoolApp
from irtool.tui.screens.evidence import EvidenceScreen
from irtool.tui.screens.facilitator import ReviewScreen
from irtool.tui.screens.incident import IncidentScreen
from irtool.tui.screens.run import RunScreen
from tests.support.clock import Clock
from tests.support.drill import CONTACTS, RUNBOOK, drill_scenario
from tests.support.runbooks import runbook
from tests.support.tmux import Tmux
from tests.support.tui import notifications, opened, screen_text, wait_for

# Everything a compromised host could send to fool or drive the responder's terminal.
HOSTILE = (
    "\x1b]52;c;cm0gLXJmIH4gIw==\x07"  # OSC 52: write the clipboard ("rm -rf ~ #")
    "\x1b]8;;https://evil.example/\x07click\x1b]8;;\x07"  # OSC 8: a hyperlink
    "\x1b]0;owned-title\x07"  # OSC 0: the window title
    "\x1b[2J\x1b[1;1H\x1b[5A"  # CSI: clear the screen, move the cursor
    "\x1bc"  # ESC c: reset the terminal
    "\x9b31m"  # 8-bit CSI
    "\u202etxt.exe"  # right-to-left override
    " [/] [bold red]not red[/bold red] done"  # markup that is not markup
)
CLIPBOARD = "\\x1b]52;c;cm0gLXJmIH4gIw==\\x07"  # how the OSC 52 is shown, written out
RAW = ("\x1b", "\x9b", "\x07", "\u202e")  # none of these may be drawn

# A host that answers with escape sequences and markup.
RUNBOOK_HOSTILE = runbook(
    "hostile",
    "Hostile host drill",
    """\
- id: grab
  type: collect
  title: Grab the banner
  shell: sh
  timeout: 60
  targets: [group:fleet]
  command: "cat hostile-output.txt; exit 3"
""",
)


class HostileConnection(LocalConnection):
    """The command really runs (and prints what the host printed); then the host fails
    with a reason in its own words, as a transport quoting a server's error does."""

    def run(self, command: str, shell: Shell, deadline: Deadline, on_output: OnOutput) -> int:
        super().run(command, shell, deadline, on_output)
        raise HostFailure(Failure.ERROR, f"the host answered: {HOSTILE}")


class HostileTransport(LocalTransport):
    def connect(self, host: ResolvedHost, deadline: Deadline) -> HostileConnection:
        return HostileConnection(host=host, identity="local hostile")


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the local host's command reads its output from here
    monkeypatch.setenv("IRTOOL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("IRTOOL_KEYMAP", str(tmp_path / "keymap.yaml"))


def hostile_incident(tmp_path: Path) -> str:
    output = tmp_path / "hostile-output.txt"
    # The markup again at a line's start, where a narrow output pane still shows it.
    output.write_bytes(f"banner: {HOSTILE}\n[/] [bold red]second line\n".encode())
    hosts = {"web01": {"address": "127.0.0.1", "transport": "local", "groups": ["fleet"]}}
    (tmp_path / "hostile.yaml").write_text(RUNBOOK_HOSTILE)
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump({"hosts": hosts}))
    context, _ = load_context(tmp_path / "hostile.yaml", inventory=tmp_path / "inventory.yaml")
    session = IncidentSession.new(context.runbook, {}, actor="ann", inventory=context.inventory)
    session.close_journal()
    return session.state.id


def assert_nothing_raw(text: str) -> None:
    shown = [repr(c) for c in RAW if c in text]
    assert not shown, f"drawn raw: {shown} in:\n{text}"


async def test_a_hostile_host_neither_breaks_nor_drives_the_run_screen(tmp_path: Path) -> None:
    """A reason with `[/]` used to raise MarkupError and end the app; controls went raw."""
    incident = hostile_incident(tmp_path)
    app = IrtoolApp(
        actor="ann", incident=incident, transports=lambda _: {"local": HostileTransport()}
    )
    async with app.run_test(size=(200, 40), notifications=True) as pilot:
        await opened(pilot)
        await pilot.press("r")
        run = app.screen
        assert isinstance(run, RunScreen)
        await wait_for(pilot, lambda: run.report is not None, what="the end of the run")
        await wait_for(pilot, lambda: CLIPBOARD in screen_text(app), what="the reason, shown")
        await pilot.pause(0.3)  # a few more ticks: whatever would break has broken
        assert app.is_running and app.screen is run

        drawn = screen_text(app)
        assert_nothing_raw(drawn)
        status = str(run.query_one("#status", Static).content)
        assert CLIPBOARD in status and "[/] [bold red]not red[/bold red]" in status
        assert "\\u202etxt.exe" in status and "\\x9b31m" in status and "\\x1bc" in status
        # The run's notification: the same words, plain text.
        (said,) = [n for n in app._notifications if "Failed: web01" in n.message]
        assert not said.markup and CLIPBOARD in said.message and "[/]" in said.message
        assert_nothing_raw(said.message)
        # The output pane: every line the host printed, none of its controls.
        output = "\n".join(run.query_one("#output", Log).lines)
        assert "cm0gLXJmIH4gIw==" in output and "[bold red]not red" in output
        assert "[/] [bold red]second line" in output
        assert_nothing_raw(output)

        # Back on the incident screen, and in the evidence pane: the same, written out.
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, IncidentScreen), what="incident")
        assert_nothing_raw(screen_text(app))
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, EvidenceScreen), what="evidence")
        await wait_for(pilot, lambda: "failure:" in screen_text(app), what="the custody")
        drawn = screen_text(app)
        assert "failure: error: the host answered:" in drawn and CLIPBOARD in drawn
        assert_nothing_raw(drawn)
        assert app.is_running


def test_in_a_real_terminal_a_hostile_host_sets_no_clipboard_and_no_title(
    tmp_path: Path,
) -> None:
    """tmux with set-clipboard on takes OSC 52 into a paste buffer and OSC 0 as the pane's
    title: after the host's words are on screen, neither has changed."""
    incident = hostile_incident(tmp_path)
    # A run against the hostile host, recorded as the command line would record it.
    session = IncidentSession.open(incident)
    try:
        store = EvidenceStore(incident_dir(incident) / EVIDENCE_DIR)
        report = Runner(session, {"local": HostileTransport()}, store, "ann").run("grab")
    finally:
        session.close_journal()
    assert report.failed
    env = {
        "IRTOOL_HOME": os.environ["IRTOOL_HOME"],
        "IRTOOL_KEYMAP": str(tmp_path / "no-keymap.yaml"),
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        **({"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {}),
    }
    irtool = str(Path(sys.executable).parent / "irtool")
    with Tmux([irtool, "open", incident, "--as", "ann"], env, tmp_path) as terminal:
        terminal.command("set-option", "-s", "set-clipboard", "on")
        title = terminal.command("display", "-p", "-t", "ui", "#{pane_title}")
        terminal.wait_for("Grab the banner")
        # The evidence pane: the failure's words and the command, with custody.
        terminal.send("e")
        screen = terminal.wait_for("failure:")
        assert CLIPBOARD in screen, screen
        # The viewer, its header whole (`c`): the rest of the failure's words, shown as text.
        terminal.send("Enter")
        # The viewer's own status line: "failure:" is on the evidence pane behind it too, and
        # a `c` sent before the viewer is in front goes to that pane.
        terminal.wait_for("sha256 checked")
        terminal.send("c")
        screen = terminal.wait_for("not red[/bold red]")
        assert CLIPBOARD in screen and "[bold red]not red[/bold red]" in screen, screen
        terminal.send("Escape")
        terminal.wait_for("Evidence:")
        terminal.send("Escape")
        terminal.wait_for("Grab the banner")
        # A run now, on the real local host: its output streams into the run screen.
        terminal.send("r")
        screen = terminal.wait_for("exited 3")
        assert "cm0gLXJmIH4gIw==" in screen and "[/] [bold red]second line" in screen, screen
        assert terminal.command("list-buffers") == ""
        assert terminal.command("display", "-p", "-t", "ui", "#{pane_title}") == title
        terminal.send("Escape")
        terminal.wait_for("Grab the banner")
        terminal.send("C-q")
        terminal.wait_for("IRTOOL-EXIT=0")
        assert terminal.command("list-buffers") == ""
        assert terminal.command("display", "-p", "-t", "ui", "#{pane_title}") == title
        # The control: this terminal does take an OSC 52 that reaches it, so the checks above
        # would have seen one.
        terminal.command("new-window", "-d", r"printf '\033]52;c;aGVsbG8=\007'; sleep 5")
        deadline = time.monotonic() + 10
        while "hello" not in terminal.command("list-buffers"):
            assert time.monotonic() < deadline, "tmux never took an OSC 52: the test is blind"
            time.sleep(0.1)  # polling tmux: the condition above is the synchronisation


async def test_an_inject_keeps_the_line_breaks_its_facilitator_wrote(tmp_path: Path) -> None:
    (tmp_path / "drill.yaml").write_text(RUNBOOK)
    (tmp_path / "contacts.yaml").write_text(CONTACTS)
    (tmp_path / "scenario.yaml").write_text(drill_scenario(tmp_path))
    exercise, _ = load_exercise(
        tmp_path / "drill.yaml", tmp_path / "scenario.yaml", tmp_path / "contacts.yaml"
    )
    clock = Clock()
    app = IrtoolApp(actor="fiona", exercise=exercise, clock=clock)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ReviewScreen), what="briefing")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, IncidentScreen), what="incident")
        screen = app.screen
        assert isinstance(screen, IncidentScreen)
        # The facilitator makes one up (as `i` on the facilitator's screen does).
        screen.write(
            lambda s: s.fire_inject(
                "ceo-call",
                "fiona",
                title="The CEO calls",
                to="security",
                detail="Line one of the call.\nLine two: the press knows.\n- and a third",
            )
        )
        await wait_for(
            pilot,
            lambda: any("Line one" in n for n in notifications(app)),
            what="the inject's notification",
        )
        (message,) = [n for n in notifications(app) if "Line one" in n]
        assert message == "Line one of the call.\nLine two: the press knows.\n- and a third"

        # The toast as drawn (its render), title above the facilitator's three lines.
        def toasts() -> list[str]:
            return [str(toast.render()) for toast in app.screen.query("Toast")]

        await wait_for(pilot, lambda: any("Line two" in t for t in toasts()), what="the toast")
        (drawn,) = [t for t in toasts() if "Line two" in t]
        assert drawn.splitlines() == [
            "INJECT for security: The CEO calls",
            "Line one of the call.",
            "Line two: the press knows.",
            "- and a third",
        ]
        assert "\ufffd" not in drawn
