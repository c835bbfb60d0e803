"""Snapshots of the main screens at 80x24 (a responder's SSH session) and 120x40.

The incident is built with a fixed clock and id, and its evidence comes from
the local transport printing fixed text, so every run draws the same screens.
Update with `pytest tests/test_tui_snapshots.py --snapshot-update` and look
at the SVGs under tests/__snapshots__/ before committing them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from textual.pilot import Pilot
from textual.widgets import Log

from irtool.engine.runner import Runner
from irtool.engine.session import IncidentSession
from irtool.evidence.store import EvidenceStore
from irtool.exercise import director
from irtool.exercise.setup import load_exercise, open_exercise
from irtool.exercise.transports import transports_for
from irtool.journal.incidents import EVIDENCE_DIR, incident_dir
from irtool.model.context import load_context
from irtool.tui.app import IrtoolApp
from irtool.tui.screens.run import RunScreen
from tests.support.clock import Clock
from tests.support.drill import CONTACTS, RUNBOOK, drill_scenario
from tests.support.remote import NamelessLocal
from tests.support.tui import opened, wait_for

T0 = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]


@pytest.fixture
def incident(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """An incident 12 minutes in: activated, the team called, the decision made, evidence."""
    monkeypatch.setenv("IRTOOL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("IRTOOL_KEYMAP", str(tmp_path / "no-keymap.yaml"))
    monkeypatch.setenv("IRTOOL_TZ", "UTC")  # times are the responder's: the same everywhere
    monkeypatch.setattr("irtool.journal.incidents.secrets.token_hex", lambda n: "7f3a")
    hosts = {
        name: {
            "address": "127.0.0.1",
            "transport": "local",
            "groups": ["fleet"],
            "vars": {"marker": f"/srv/{name}.block"},
        }
        for name in ("web01", "web02")
    }
    (tmp_path / "drill.yaml").write_text(RUNBOOK)
    (tmp_path / "contacts.yaml").write_text(CONTACTS)
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump({"hosts": hosts}))
    context, _ = load_context(
        tmp_path / "drill.yaml", tmp_path / "contacts.yaml", tmp_path / "inventory.yaml"
    )
    clock = Clock(T0)
    session = IncidentSession.new(
        context.runbook,
        {"attacker_ip": "203.0.113.7"},
        actor="ann",
        contacts=context.contacts,
        inventory=context.inventory,
        clock=clock,
    )
    steps: list[Callable[[], object]] = [
        lambda: session.complete("assess", "ann", "IIS logs show POSTs to /aspnet_client/x.aspx"),
        lambda: session.reach("security", "ann", "no-answer", "ann", "phone"),
        lambda: session.reach("security", "ben", "reached", "ann", "email"),
        lambda: session.reach("server-management", "ben", "left-message", "ann", "email"),
        lambda: session.complete("call-team", "ann"),
        lambda: session.decide("is-compromise", "confirmed", "ann", "web shell confirmed"),
        lambda: session.note("w3wp.exe spawned cmd.exe", "ben", T0 - timedelta(minutes=50)),
        lambda: session.set_reconvene(T0 + timedelta(minutes=45), "ann"),
    ]
    for minute, step in enumerate(steps, start=1):
        clock.now = T0 + timedelta(minutes=minute)
        step()
    clock.now = T0 + timedelta(minutes=10)
    store = EvidenceStore(incident_dir(session.state.id) / EVIDENCE_DIR)
    # One host at a time: the events then come in the same order on every run.
    runner = Runner(
        session, {"local": NamelessLocal("local snapshot-host")}, store, "ann", clock=clock, pool=1
    )
    runner.run("collect-state")
    session.close_journal()
    clock.now = T0 + timedelta(minutes=12)
    return {"id": session.state.id, "clock": clock, "runbooks": tmp_path}


def app_for(fixture: dict[str, Any], **settings: Any) -> IrtoolApp:
    return IrtoolApp(
        actor="ann",
        clock=fixture["clock"],
        transports=lambda redactor: {"local": NamelessLocal("local snapshot-host")},
        **settings,
    )


@pytest.mark.parametrize("size", SIZES)
def test_incident_screen(
    snap_compare: Any, incident: dict[str, Any], size: tuple[int, int]
) -> None:
    assert snap_compare(app_for(incident, incident=incident["id"]), terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_containment_confirmation(
    snap_compare: Any, incident: dict[str, Any], size: tuple[int, int]
) -> None:
    async def confirm(pilot: Pilot[None]) -> None:
        await opened(pilot)
        await pilot.press("r")

    app = app_for(incident, incident=incident["id"])
    assert snap_compare(app, run_before=confirm, terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_run_screen_after_a_collect(
    snap_compare: Any, incident: dict[str, Any], size: tuple[int, int]
) -> None:
    async def collect_again(pilot: Pilot[None]) -> None:
        await opened(pilot)
        await pilot.press("up", "r")
        run = pilot.app.screen
        assert isinstance(run, RunScreen)
        output = run.query_one("#output", Log)
        await wait_for(
            pilot, lambda: run.report is not None and output.line_count >= 2, what="the run"
        )
        await pilot.pause()

    app = app_for(incident, incident=incident["id"])
    assert snap_compare(app, run_before=collect_again, terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("key", ["p", "e", "t"], ids=["call-tree", "evidence", "timeline"])
def test_other_screens(
    snap_compare: Any, incident: dict[str, Any], size: tuple[int, int], key: str
) -> None:
    async def shown(pilot: Pilot[None]) -> None:
        await opened(pilot)
        await pilot.press(key)
        if key == "t":  # the timeline reads the journal in a worker
            screen = pilot.app.screen
            await wait_for(pilot, lambda: getattr(screen, "view", None) and screen.view.total > 0)
            await pilot.pause()

    app = app_for(incident, incident=incident["id"])
    assert snap_compare(app, run_before=shown, terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_home_screen(snap_compare: Any, incident: dict[str, Any], size: tuple[int, int]) -> None:
    async def loaded(pilot: Pilot[None]) -> None:
        tables = pilot.app.screen.query("DataTable")
        await wait_for(pilot, lambda: tables.last().row_count and pilot.app.focused is not None)
        await pilot.pause()

    app = app_for(incident, runbook_dirs=[incident["runbooks"]])
    assert snap_compare(app, run_before=loaded, terminal_size=size)


@pytest.fixture
def exercise(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """An exercise 100 wall seconds in at 10x: an inject fired, a triage run on simulated hosts."""
    monkeypatch.setenv("IRTOOL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("IRTOOL_KEYMAP", str(tmp_path / "no-keymap.yaml"))
    monkeypatch.setenv("IRTOOL_TZ", "UTC")  # times are the responder's: the same everywhere
    monkeypatch.setattr("irtool.journal.incidents.secrets.token_hex", lambda n: "e7e7")
    (tmp_path / "drill.yaml").write_text(RUNBOOK)
    (tmp_path / "contacts.yaml").write_text(CONTACTS)
    (tmp_path / "scenario.yaml").write_text(drill_scenario(Path("/srv")))
    played, _ = load_exercise(
        tmp_path / "drill.yaml", tmp_path / "scenario.yaml", tmp_path / "contacts.yaml"
    )
    clock = Clock(T0)
    session = open_exercise(played, {"attacker_ip": "203.0.113.9"}, "fiona", clock)
    script: list[tuple[int, Callable[[], object]]] = [
        (20, lambda: session.complete("assess", "ann", "help desk ticket 4711")),
        (30, lambda: session.reach("security", "ann", "no-answer", "ann", "phone")),
        (35, lambda: session.reach("security", "ben", "reached", "ann", "email")),
        (40, lambda: session.reach("server-management", "ben", "reached", "ann", "email")),
        (45, lambda: session.complete("call-team", "ann")),
        (61, lambda: director.tick(session, "fiona", clock())),
        (70, lambda: session.decide("is-compromise", "confirmed", "ann", "web shell")),
    ]
    for second, step in script:
        clock.now = T0 + timedelta(seconds=second)
        step()
    clock.now = T0 + timedelta(seconds=80)
    store = EvidenceStore(incident_dir(session.state.id) / EVIDENCE_DIR)
    transports = transports_for(session.state, lambda: pytest.fail("live transports built"))
    Runner(session, transports, store, "ann", clock=clock, pool=1).run("collect-state")
    session.close_journal()
    clock.now = T0 + timedelta(seconds=100)
    return {"id": session.state.id, "clock": clock}


@pytest.mark.parametrize("size", SIZES)
def test_exercise_incident_and_facilitator_screens(
    snap_compare: Any, exercise: dict[str, Any], size: tuple[int, int]
) -> None:
    async def facilitate(pilot: Pilot[None]) -> None:
        await opened(pilot)
        await pilot.press("f")
        await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == "FacilitatorScreen")
        await pilot.pause()

    app = app_for(exercise, incident=exercise["id"])
    assert snap_compare(app, run_before=facilitate, terminal_size=size)


def test_exercise_incident_screen(snap_compare: Any, exercise: dict[str, Any]) -> None:
    app = app_for(exercise, incident=exercise["id"])
    assert snap_compare(app, run_before=opened, terminal_size=(80, 24))
