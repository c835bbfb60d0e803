"""Pivots: every request of one client, URI or user agent, read from the incident's store with
the evidence line it stands on; the value a parameter, never SQL; a store missing, locked or
held open said as such."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from irtool.engine.findings import STORE_FILE
from irtool.engine.pivots import PivotUnavailable, pivot, pivot_on_ref, request_at
from irtool.engine.runner import Runner
from irtool.evidence.store import EvidenceStore
from irtool.journal.incidents import EVIDENCE_DIR, incident_dir
from irtool.remote.local import LocalTransport
from tests.support.findings import analyzed, log_rows
from tests.support.runbooks import open_collect_incident
from tests.support.weblog import SCANNER_UA, WEBSHELL_CLIENT, WEBSHELL_URI, write_log

LOCAL = {"address": "127.0.0.1", "transport": "local"}


def held_open(path: Path) -> subprocess.Popen[str]:
    """Another process with the store open (an `irtool analyze` loading), once it has it."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys\n"
            "from irtool.analysis.store import RequestStore\n"
            f"store = RequestStore({str(path)!r})\n"
            "print('open', flush=True)\n"
            "sys.stdin.read()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "open\n"
    return holder


def test_a_pivot_on_a_client_lists_exactly_its_requests_with_their_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, manifest, log = analyzed(tmp_path, monkeypatch)
    directory = session.directory
    found = pivot(directory, "client", WEBSHELL_CLIENT, state=session.state)
    expected = [n for n, values in log_rows(log) if values[8] == WEBSHELL_CLIENT]
    assert found.total == len(expected) and found.more == 0
    assert [r.line for r in found.requests] == expected  # oldest first: the file's order
    assert set(manifest["webshell"].lines) <= set(expected)
    sha = session.state.evidence[-1].files["file"]["sha256"]
    for request in found.requests:
        assert request.client == WEBSHELL_CLIENT and request.host == "web01"
        assert (request.sha256, request.source) == (sha, f"web01:{log}")
        assert request.ts is not None
    shell = [r for r in found.requests if r.stem == WEBSHELL_URI and r.method == "POST"]
    assert shell and all(r.status == "200" for r in shell)

    # The same for a user agent with spaces (written '+' in the log) and a URI.
    agent = pivot(directory, "cs_user_agent", SCANNER_UA)
    assert agent.total == sum(1 for _, v in log_rows(log) if v[9] == SCANNER_UA.replace(" ", "+"))
    assert agent.total >= len(manifest["scanner"].lines) > 0
    page = pivot(directory, "cs_uri_stem", WEBSHELL_URI, limit=3)
    assert len(page.requests) == 3 and page.more == page.total - 3
    assert page.total == sum(1 for _, v in log_rows(log) if v[4] == WEBSHELL_URI)


def test_a_pivot_on_a_findings_line_takes_the_value_of_that_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, _manifest, log = analyzed(tmp_path, monkeypatch)
    shell = next(f for f in session.state.findings.values() if f.hunt == "iis-webshell")
    ref = shell.refs[0]
    at = request_at(session.directory, ref["sha256"], ref["source"], ref["line"])
    assert at is not None and at.line == ref["line"] and at.client == WEBSHELL_CLIENT
    found = pivot_on_ref(session.directory, "client", ref, state=session.state)
    assert found.value == WEBSHELL_CLIENT and found.what == f"client {WEBSHELL_CLIENT}"
    assert found.total == sum(1 for _, v in log_rows(log) if v[8] == WEBSHELL_CLIENT)
    by_uri = pivot_on_ref(session.directory, "cs_uri_stem", ref)
    assert by_uri.value == WEBSHELL_URI
    gone = {**ref, "line": 10**9}
    with pytest.raises(PivotUnavailable, match="not in the analysis store"):
        pivot_on_ref(session.directory, "client", gone)


def test_the_value_is_a_parameter_and_the_column_one_of_the_pivots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, _manifest, _log = analyzed(tmp_path, monkeypatch)
    for hostile in ("x' OR '1'='1", "'; DROP TABLE requests; --", "$value"):
        assert pivot(session.directory, "client", hostile).total == 0
    assert pivot(session.directory, "client", WEBSHELL_CLIENT).total > 0  # the table is whole
    with pytest.raises(ValueError, match="no pivot on"):
        pivot(session.directory, "1=1 OR c_ip", "x")


def test_a_missing_store_says_run_analyze_and_is_not_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, _manifest, _log = analyzed(tmp_path, monkeypatch)
    store = session.directory / STORE_FILE
    store.unlink()
    with pytest.raises(PivotUnavailable) as missing:
        pivot(session.directory, "client", WEBSHELL_CLIENT, state=session.state)
    assert f"run `irtool analyze {session.state.id}`" in str(missing.value)
    assert "1 web log(s)" in str(missing.value)
    assert not store.exists()

    (tmp_path / "bare").mkdir()
    bare = open_collect_incident(tmp_path / "bare", monkeypatch, {"web02": LOCAL})
    with pytest.raises(PivotUnavailable, match="has no web logs in its evidence"):
        pivot(bare.directory, "client", "10.0.0.1", state=bare.state)


def test_a_store_in_use_elsewhere_is_said_and_a_pivot_never_holds_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, _manifest, _log = analyzed(tmp_path, monkeypatch)
    path = session.directory / STORE_FILE
    holder = held_open(path)
    try:
        with pytest.raises(PivotUnavailable, match="in use by another process"):
            pivot(session.directory, "client", WEBSHELL_CLIENT)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)
    # Open, query, close: once a pivot returns, another process (analyze) has the store.
    assert pivot(session.directory, "client", WEBSHELL_CLIENT).total > 0
    after = held_open(path)
    assert after.stdin is not None
    after.stdin.close()
    assert after.wait(timeout=30) == 0


def test_a_log_kept_since_the_analysis_is_said_not_to_be_in_the_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, _manifest, log = analyzed(tmp_path, monkeypatch)
    assert pivot(session.directory, "client", WEBSHELL_CLIENT, state=session.state).unloaded == 0
    later = log.with_name("u_ex240304.log")
    write_log(later, lines=2_000, seed=12)
    evidence = EvidenceStore(incident_dir(session.state.id) / EVIDENCE_DIR)
    Runner(session, {"local": LocalTransport()}, evidence, "ann").fetch("web01", str(later))
    found = pivot(session.directory, "client", WEBSHELL_CLIENT, state=session.state)
    assert found.unloaded == 1
    assert found.total == sum(1 for _, v in log_rows(log) if v[8] == WEBSHELL_CLIENT)
