"""Time in the record: `recorded_at` never goes backwards, even from a writer whose clock is
behind (a real process under libfaketime); `verify` names a backwards step an older journal
holds; times a responder gives far outside what an incident can hold are refused."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from irtool.journal.events import event_hash
from tests.conftest import ROOT
from tests.support.cli import irtool

RUNBOOK = str(ROOT / "tests/corpus/valid/every-kind.yaml")
NEW = ["incident", "new", RUNBOOK, "--param", "attacker_ip=203.0.113.7"]
FAKETIME = shutil.which("faketime")
WINDOW = "must fall between"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "IRTOOL_HOME": str(tmp_path), "IRTOOL_RESPONDER": "judy"}


@pytest.fixture
def incident(env: dict[str, str]) -> str:
    opened = irtool(env, *NEW, "--param", "account=CORP\\mallory", "--as", "ann")
    assert opened.returncode == 0, opened.stderr
    return opened.stdout.strip()


def journal(env: dict[str, str], incident: str) -> Path:
    return Path(env["IRTOOL_HOME"]) / "incidents" / incident / "journal.sqlite"


def rows(env: dict[str, str], incident: str) -> list[dict[str, Any]]:
    db = sqlite3.connect(journal(env, incident))
    db.row_factory = sqlite3.Row
    found = [dict(r) for r in db.execute("SELECT * FROM events ORDER BY seq")]
    db.close()
    return found


def text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.mark.skipif(
    FAKETIME is None, reason="needs faketime (Debian package faketime) to set a writer's clock"
)
def test_a_writer_whose_clock_is_behind_says_so_and_never_writes_time_backwards(
    env: dict[str, str], incident: str
) -> None:
    head = rows(env, incident)[-1]["recorded_at"]
    note = ["incident", "note", incident, "from the scribe's laptop"]
    behind = subprocess.run(
        [str(FAKETIME), "-f", "-2h", sys.executable, "-m", "irtool", *note],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert behind.returncode == 0, behind.stderr
    written = rows(env, incident)
    assert [r["kind"] for r in written] == ["incident.opened", "clock.skewed", "note.added"]
    times = [r["recorded_at"] for r in written]
    assert times == sorted(times)
    skew = json.loads(written[1]["data"])
    assert 7100 < skew["behind_s"] < 7300  # the faked clock really was two hours behind
    assert skew["head_time"] == head and skew["writer_clock"] < head
    assert written[1]["actor"] == "judy"
    noted = written[2]
    assert noted["recorded_at"] == head and noted["occurred_at"] == head  # the head's time

    in_step = irtool(env, "incident", "note", incident, "from a clock in step")
    assert in_step.returncode == 0, in_step.stderr
    times = [r["recorded_at"] for r in rows(env, incident)]
    assert len(times) == 4 and times == sorted(times) and times[3] > head

    verified = irtool(env, "verify", incident)
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith("journal intact: 4 events")
    timeline = irtool(env, "export", incident, "--format", "csv")
    assert timeline.returncode == 0, timeline.stderr
    said = rf"the writer's clock \({skew['writer_clock']}\) was (1 h 59 min|2 h 0 min) \d+ s"
    assert re.search(said + " behind the journal", timeline.stdout), timeline.stdout


def test_verify_names_a_backwards_step_an_older_journal_holds(
    env: dict[str, str], incident: str
) -> None:
    """A journal written before the fix: a note recorded two hours before the opening, its
    hash chain intact. `verify` must not call that intact."""
    db = sqlite3.connect(journal(env, incident))
    seq, prev, recorded = db.execute(
        "SELECT seq, hash, recorded_at FROM events ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    earlier = text(datetime.fromisoformat(recorded.replace("Z", "+00:00")) - timedelta(hours=2))
    content = {
        "seq": seq + 1,
        "incident": incident,
        "occurred_at": earlier,
        "recorded_at": earlier,
        "actor": "scribe",
        "kind": "note.added",
        "step": None,
        "host": None,
        "data": {"text": "written by a clock two hours slow"},
        "prev_hash": prev,
    }
    with db:
        db.execute(
            "INSERT INTO events (seq, incident, occurred_at, recorded_at, actor, kind, step, "
            "host, data, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                *(content[k] for k in ("seq", "incident", "occurred_at", "recorded_at")),
                *(content[k] for k in ("actor", "kind", "step", "host")),
                json.dumps(content["data"], sort_keys=True, separators=(",", ":")),
                prev,
                event_hash(content),
            ),
        )
    db.close()

    said = irtool(env, "verify", incident)
    assert said.returncode == 1
    assert "journal intact" not in said.stdout and "times go backwards" in said.stdout
    assert f"event {seq + 1} was recorded at {earlier}, before event {seq}" in said.stderr
    as_json = irtool(env, "verify", incident, "--json")
    assert as_json.returncode == 1
    found = json.loads(as_json.stdout)
    assert found["ok"] is False and found["problem"] is None  # the chain itself holds
    assert found["recorded_backwards"] == [
        {"seq": seq + 1, "recorded_at": earlier, "previous_at": recorded}
    ]


def events(env: dict[str, str], incident: str) -> int:
    return len(rows(env, incident))


def refused(env: dict[str, str], incident: str, what: str, *args: str) -> None:
    """Exit 2, the time and the window it missed on stderr, nothing written."""
    before = events(env, incident)
    done = irtool(env, "incident", *args)
    assert done.returncode == 2, done.stderr
    assert f"{what} " in done.stderr and WINDOW in done.stderr, done.stderr
    assert "from now)" in done.stderr  # the window's bounds, in words
    assert events(env, incident) == before


def test_times_no_incident_can_hold_are_refused_with_the_window(
    env: dict[str, str], incident: str
) -> None:
    now = datetime.now(UTC)
    next_year, long_ago = text(now + timedelta(days=366)), text(now - timedelta(days=800))
    refused(env, incident, "the note's time", "note", incident, "x", "--at", next_year)
    refused(env, incident, "the note's time", "note", incident, "x", "--at", long_ago)
    began = text(now - timedelta(days=40))
    noted = irtool(env, "incident", "note", incident, "began", "--at", began)
    assert noted.returncode == 0, noted.stderr  # back-dated to the attack: fine
    refused(
        env, incident, "the corrected time", "correct", incident, "2", "--reason", "typo",
        "--at", next_year,
    )  # fmt: skip
    refused(env, incident, "the reconvene time", "reconvene", incident, "2020-01-01T00:00")
    in_60_days = text(now + timedelta(days=60))
    refused(env, incident, "the reconvene time", "reconvene", incident, in_60_days)
    assert irtool(env, "incident", "meet", incident, "meet").returncode == 0
    refused(
        env, incident, "the reconvene time", "adjourn", incident, "--reconvene", "2020-01-01T00:00"
    )
    soon = text(now + timedelta(minutes=45))
    adjourned = irtool(env, "incident", "adjourn", incident, "--reconvene", soon)
    assert adjourned.returncode == 0, adjourned.stderr
    shown = json.loads(irtool(env, "incident", "show", incident, "--json").stdout)
    assert shown["reconvene_at"] == soon


def test_the_terminal_ui_s_forms_meet_the_same_window(
    env: dict[str, str], incident: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The UI's note and reconvene forms call these engine methods with what was typed."""
    from irtool.engine.session import IncidentSession, Refused

    monkeypatch.setenv("IRTOOL_HOME", env["IRTOOL_HOME"])
    session = IncidentSession.open(incident)
    try:
        with pytest.raises(Refused, match=WINDOW):
            session.set_reconvene(datetime(2020, 1, 1, tzinfo=UTC), "ann")
        with pytest.raises(Refused, match=WINDOW):
            session.note("x", "ann", datetime.now(UTC) + timedelta(days=365))
    finally:
        session.close_journal()
    assert events(env, incident) == 1
