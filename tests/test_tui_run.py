"""The run screen under load and on cancel, and the way in from the home screen."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from textual.widgets import DataTable, Log

from irtool.engine.session import IncidentSession
from irtool.journal import Journal
from irtool.model.context import load_context
from irtool.tui.app import IrtoolApp
from irtool.tui.screens.incident import IncidentScreen
from irtool.tui.screens.run import RunScreen
from irtool.tui.screens.start import StartScreen
from tests.support.drill import CONTACTS, RUNBOOK
from tests.support.tui import opened, screen_text, wait_for

HEAVY = """\
id: heavy
title: Heavy collection
summary: Output and time for the run screen tests.
version: "1"
severity: high
applies_to: [iis]
triggers: [A test]
activation:
  may_activate: [security]
roles: [security]
phases:
  - id: work
    title: Work
    steps:
      - id: flood
        type: collect
        title: Ten MiB each
        shell: sh
        timeout: 120
        targets: [group:fleet]
        command: >-
          for i in $(seq 40); do head -c 262144 /dev/zero | tr '\\0' 'x' | fold -w 100;
          sleep 0.1; done
      - id: hang
        type: collect
        title: Never ends
        shell: sh
        timeout: 120
        targets: [group:fleet]
        command: "echo started; sleep 100"
"""


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRTOOL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("IRTOOL_KEYMAP", str(tmp_path / "keymap.yaml"))


def heavy_incident(tmp_path: Path) -> str:
    hosts = {
        name: {"address": "127.0.0.1", "transport": "local", "groups": ["fleet"]}
        for name in ("web01", "web02")
    }
    (tmp_path / "heavy.yaml").write_text(HEAVY)
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump({"hosts": hosts}))
    context, _ = load_context(tmp_path / "heavy.yaml", inventory=tmp_path / "inventory.yaml")
    session = IncidentSession.new(context.runbook, {}, actor="ann", inventory=context.inventory)
    session.close_journal()
    return session.state.id


async def test_twenty_mib_of_output_never_freezes_the_screen(tmp_path: Path) -> None:
    incident = heavy_incident(tmp_path)
    app = IrtoolApp(actor="ann", incident=incident)
    async with app.run_test(size=(80, 24)) as pilot:
        await opened(pilot)
        await pilot.press("r")
        run = app.screen
        assert isinstance(run, RunScreen)
        table = run.query_one("#hosts", DataTable)
        await wait_for(pilot, lambda: run.feed.hosts["web01"].bytes > 0, what="output")
        # While both hosts stream, switching host is answered at once, every time.
        slowest = 0.0
        switches = 0
        while run.report is None and switches < 20:
            began = time.monotonic()
            await pilot.press("down" if table.cursor_row == 0 else "up")
            slowest = max(slowest, time.monotonic() - began)
            switches += 1
        print(f"{switches} host switches while streaming, slowest {slowest * 1000:.0f} ms")
        assert switches >= 3, "the run ended before the screen could be tried"
        assert slowest < 1.0, f"a key took {slowest:.2f} s while output streamed"
        await wait_for(pilot, lambda: run.report is not None, timeout=120, what="the end")
        assert run.report is not None and not run.report.failed
        shown = {host: feed.bytes for host, feed in run.feed.hosts.items()}
        # The screen keeps a bounded tail; the evidence keeps everything.
        assert run.query_one("#output", Log).line_count <= 5000
    with Journal(tmp_path / "home" / "incidents" / incident / "journal.sqlite", incident) as j:
        sizes = [e.data["stdout"]["size"] for e in j.events() if e.kind == "command.ran"]
    assert len(sizes) == 2 and all(size > 10 * 1024 * 1024 for size in sizes)
    assert sorted(shown.values()) == sorted(sizes)  # the screen counted every byte kept


async def test_a_run_is_cancelled_and_what_arrived_is_kept(tmp_path: Path) -> None:
    incident = heavy_incident(tmp_path)
    app = IrtoolApp(actor="ann", incident=incident)
    async with app.run_test(size=(80, 24)) as pilot:
        await opened(pilot)
        # The second step is not reached yet: the run first asks why it starts early.
        await pilot.press("down", "r")
        await pilot.press(*"cancel drill", "enter")
        run = app.screen
        assert isinstance(run, RunScreen)
        await wait_for(pilot, lambda: "started" in screen_text(app), what="the first output")
        await pilot.press("escape")
        assert app.screen is run  # escape does not walk away from a running run
        began = time.monotonic()
        await pilot.press("x")
        await wait_for(pilot, lambda: run.report is not None, timeout=20, what="the cancel")
        assert time.monotonic() - began < 10
        assert run.report is not None and run.report.cancelled
        await pilot.press("escape")
        assert isinstance(app.screen, IncidentScreen)
        assert app.screen.state.steps["hang"].status == "pending"
    with Journal(tmp_path / "home" / "incidents" / incident / "journal.sqlite", incident) as j:
        ran = [e.data for e in j.events() if e.kind == "command.ran"]
    assert len(ran) == 2 and all(d["stdout"]["size"] == len(b"started\n") for d in ran)


async def test_the_home_screen_opens_incidents_and_starts_runbooks(tmp_path: Path) -> None:
    books = tmp_path / "runbooks"
    books.mkdir()
    # A parameter needed to open (at_open): the start form asks for it.
    at_open = RUNBOOK.replace("example: 203.0.113.7}", "example: 203.0.113.7, at_open: true}")
    assert at_open != RUNBOOK
    (books / "drill.yaml").write_text(at_open)
    (books / "broken.yaml").write_text(RUNBOOK.replace("title: Web shell drill", "title: [oops"))
    (tmp_path / "contacts.yaml").write_text(CONTACTS)
    existing = heavy_incident(tmp_path)
    app = IrtoolApp(actor="ann", runbook_dirs=[books], contacts=tmp_path / "contacts.yaml")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: existing in screen_text(app), what="the incident list")
        text = screen_text(app)
        assert "Heavy collection" in text and "Web shell drill" in text and "broken" in text
        await pilot.press("enter")  # the live incident has focus
        await opened(pilot)
        assert app.screen.state.id == existing
        app.pop_screen()
        await pilot.pause()
        runbooks = app.screen.query_one("#runbooks", DataTable)
        runbooks.focus()
        runbooks.move_cursor(row=1)  # drill, after the broken one
        await pilot.press("enter")
        assert isinstance(app.screen, StartScreen)
        await pilot.press(*"198.51.100.9", "enter")
        assert isinstance(app.screen, IncidentScreen)
        assert app.screen.state.parameters["attacker_ip"] == "198.51.100.9"
        assert app.screen.state.contacts is not None


def test_the_run_summary_says_what_the_cli_says_and_never_a_secret() -> None:
    from irtool.engine.runner import HostResult, RunReport
    from irtool.remote.base import Failure, HostFailure
    from irtool.secrets.redact import Redactor
    from irtool.tui.screens.run import summary

    redactor = Redactor()
    redactor.add("hunter2-canary")
    failed = HostResult("web02", failure=HostFailure(Failure.AUTH, "refused hunter2-canary"))
    report = RunReport(
        "triage", "collect", {"web01": HostResult("web01", [0]), "web02": failed}, False
    )
    severity, text = summary(report, redactor)
    assert severity == "error"
    assert text.startswith("triage: collect ok on 1 of 2 host(s). Failed: web02: ")
    assert "hunter2-canary" not in text and "[redacted]" in text
    assert text.endswith("step 'triage' stays open: run it again, or complete or skip it by hand")
