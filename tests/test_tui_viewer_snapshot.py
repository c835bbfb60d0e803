"""A snapshot of the evidence viewer at 80x24 (a responder's SSH session): the custody record,
the exact command over two lines, and a JSON output indented, not cut at the edge.

The incident has a fixed clock, id, zone and host identity, so every run draws the same
screen. Update with `pytest tests/test_tui_viewer_snapshot.py --snapshot-update` and look
at the SVG under tests/__snapshots__/ before committing it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from textual.pilot import Pilot

from irtool.engine.runner import Runner
from irtool.engine.session import IncidentSession
from irtool.evidence.store import EvidenceStore
from irtool.journal.incidents import EVIDENCE_DIR, incident_dir
from irtool.model.loader import load_inventory, load_runbook
from irtool.tui.app import IrtoolApp
from irtool.tui.screens.viewer import ViewerScreen
from tests.support.clock import Clock
from tests.support.remote import NamelessLocal
from tests.support.runbooks import COLLECT_ALL, runbook
from tests.support.tui import opened, wait_for

T0 = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
PROCESSES = {
    "host": "web01",
    "processes": [
        {"pid": 4120, "name": "w3wp.exe", "user": "IIS APPPOOL\\DefaultAppPool"},
        {"pid": 5312, "name": "cmd.exe", "parent": 4120, "args": "/c whoami /all"},
    ],
}
COMMAND = f"printf '%s\\n' '{json.dumps(PROCESSES)}' |\n  tr -d '\\r'"


@pytest.fixture
def incident(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("IRTOOL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("IRTOOL_KEYMAP", str(tmp_path / "no-keymap.yaml"))
    monkeypatch.setenv("IRTOOL_TZ", "Europe/Paris")
    monkeypatch.setattr("irtool.journal.incidents.secrets.token_hex", lambda n: "5e1f")
    steps = COLLECT_ALL.format(timeout=10, command=json.dumps(COMMAND))
    (tmp_path / "collect.yaml").write_text(runbook("processes", "Processes", steps))
    hosts = {"web01": {"address": "127.0.0.1", "transport": "local"}}
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump({"hosts": hosts}))
    clock = Clock(T0)
    session = IncidentSession.new(
        load_runbook(tmp_path / "collect.yaml"),
        {},
        actor="ann",
        inventory=load_inventory(tmp_path / "inventory.yaml"),
        clock=clock,
    )
    clock.now = T0 + timedelta(minutes=3)
    store = EvidenceStore(incident_dir(session.state.id) / EVIDENCE_DIR)
    Runner(
        session, {"local": NamelessLocal("local snapshot-host")}, store, "ann", clock=clock, pool=1
    ).run("collect")
    session.close_journal()
    return {"id": session.state.id, "clock": clock}


def test_evidence_viewer(snap_compare: Any, incident: dict[str, Any]) -> None:
    async def read(pilot: Pilot[None]) -> None:
        await opened(pilot)
        await pilot.press("e", "enter")
        viewer = pilot.app.screen
        assert isinstance(viewer, ViewerScreen)
        await wait_for(pilot, lambda: viewer.checked == "", what="the hash check")
        viewer.tick()
        await pilot.pause()

    app = IrtoolApp(
        actor="ann",
        incident=incident["id"],
        clock=incident["clock"],
        transports=lambda redactor: {"local": NamelessLocal("local snapshot-host")},
    )
    assert snap_compare(app, run_before=read, terminal_size=(80, 24))
