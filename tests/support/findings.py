"""Incidents with web logs for the findings tests: a fetched IIS log with planted attacks,
analysed or not, and the log's request lines as the file holds them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from irtool.analysis.store import RequestStore
from irtool.engine.findings import STORE_FILE, analyze_incident
from irtool.engine.runner import Runner
from irtool.engine.session import IncidentSession
from irtool.evidence.store import EvidenceStore
from irtool.journal.incidents import EVIDENCE_DIR, incident_dir
from irtool.model.loader import load_inventory, load_runbook
from irtool.remote.local import LocalTransport
from tests.support.runbooks import COLLECT_ALL, runbook
from tests.support.weblog import write_log


def incident_with_a_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[dict[str, str], str, Any, Path]:
    monkeypatch.setenv("IRTOOL_HOME", str(tmp_path / "home"))
    env = {**os.environ, "IRTOOL_RESPONDER": "ann"}
    log = tmp_path / "LogFiles" / "W3SVC1" / "u_ex240303.log"
    log.parent.mkdir(parents=True)
    manifest = write_log(log, lines=30_000, seed=11)
    (tmp_path / "book.yaml").write_text(
        runbook("logs", "Logs", COLLECT_ALL.format(timeout=10, command='"true"'))
    )
    hosts = {"web01": {"address": "127.0.0.1", "transport": "local"}}
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump({"hosts": hosts}))
    session = IncidentSession.new(
        load_runbook(tmp_path / "book.yaml"),
        {},
        actor="ann",
        inventory=load_inventory(tmp_path / "inventory.yaml"),
    )
    store = EvidenceStore(incident_dir(session.state.id) / EVIDENCE_DIR)
    Runner(session, {"local": LocalTransport()}, store, "ann").fetch("web01", str(log))
    session.close_journal()
    return env, session.state.id, manifest, log


def analyzed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[IncidentSession, Any, Path]:
    """An incident that fetched a 30,000-line IIS log, analysed: (session, manifest, log)."""
    _env, incident, manifest, log = incident_with_a_log(tmp_path, monkeypatch)
    session = IncidentSession.open(incident)
    evidence = EvidenceStore(incident_dir(incident) / EVIDENCE_DIR)
    analyze_incident(session, evidence, "ann")
    assert session.state.findings
    with RequestStore(session.directory / STORE_FILE) as store:
        assert store.query("SELECT count(*) AS n FROM requests")[0]["n"] == manifest.rows
    return session, manifest, log


def log_rows(log: Path) -> list[tuple[int, list[str]]]:
    """(line number, values) of every request line, read straight from the file: c-ip is the
    9th value and cs(User-Agent) the 10th under both of the generator's #Fields."""
    rows = []
    for number, line in enumerate(log.read_text().splitlines(), start=1):
        if line and not line.startswith("#"):
            rows.append((number, line.split(" ")))
    return rows
