"""Comparing one collector's output across hosts, headless: rare lines first, big files noted."""

from __future__ import annotations

from pathlib import Path

import pytest

from irtool.engine.compare import compare
from irtool.engine.runner import Runner
from irtool.evidence.store import EvidenceStore
from irtool.journal.incidents import EVIDENCE_DIR, incident_dir
from irtool.remote.local import LocalTransport
from tests.support.runbooks import open_collect_incident

COMMAND = """\
echo w3wp.exe
echo '  w3wp.exe  '
case {{ host.name }} in web02) echo nc.exe; seq 1 5000;; esac"""


def test_rare_lines_first_and_a_big_output_left_out_with_a_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hosts = {f"web0{n}": {"address": "127.0.0.1", "transport": "local"} for n in (1, 2, 3)}
    session = open_collect_incident(tmp_path, monkeypatch, hosts, COMMAND)
    store = EvidenceStore(incident_dir(session.state.id) / EVIDENCE_DIR)
    runner = Runner(session, {"local": LocalTransport()}, store, "ann")
    runner.run("collect")
    runner.run("collect", ["web01"])  # a re-run: its latest output is the one compared
    state = session.state
    web03 = next(e for e in state.evidence if e.host == "web03")
    result = compare(state, store, web03)
    assert result.hosts == ["web01", "web02", "web03"]
    assert result.lines[0].text == "1" and result.lines[0].hosts == ("web02",)
    # Spaces around a line do not make it another line; every host's comes last.
    assert result.lines[-1].text == "w3wp.exe" and len(result.lines[-1].hosts) == 3
    assert len(result.lines) == 5002
    small = compare(state, store, web03, size_limit=100)
    assert small.hosts == ["web01", "web03"]
    assert small.notes == ["web02: left out, its stdout is 23.4 KiB (over 100 bytes)"]
    short = compare(state, store, web03, lines_limit=2)
    assert short.notes == ["web02: only its first 2 distinct lines compared"]
    assert {line.text for line in short.lines} == {"w3wp.exe", "nc.exe"}
    session.close_journal()
