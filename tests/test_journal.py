"""The journal: durable, append-only, hash-chained, and honest about tampering."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from irtool.journal import Event, EventDraft, Journal, JournalError, Verification
from irtool.journal.reading import JournalSnapshot
from tests.conftest import ROOT

INCIDENT = "ir-test"


def make(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "journal.sqlite"
    with Journal(path, INCIDENT, create=True) as journal:
        for i in range(n):
            journal.append(EventDraft("note.added", f"actor{i % 3}", {"text": f"note {i}", "i": i}))
    return path


def verify(path: Path, head: str | None = None) -> tuple[bool, int | None]:
    with Journal(path, INCIDENT) as journal:
        result = journal.verify(head)
    return result.ok, result.first_bad_seq


def test_events_keep_both_clocks_and_chain(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    clock = iter(
        [datetime(2026, 11, 21, 3, 40, tzinfo=UTC), datetime(2026, 11, 21, 3, 41, tzinfo=UTC)]
    )
    with Journal(path, INCIDENT, create=True, clock=lambda: next(clock)) as journal:
        began = datetime(2026, 11, 21, 2, 10, tzinfo=UTC)
        first = journal.append(
            EventDraft("note.added", "ann", {"text": "attack began"}, occurred_at=began)
        )
        second = journal.append(EventDraft("note.added", "ben", {"text": "now"}))
    assert first.occurred_at == "2026-11-21T02:10:00.000000Z"
    assert first.recorded_at == "2026-11-21T03:40:00.000000Z"
    assert second.occurred_at == second.recorded_at == "2026-11-21T03:41:00.000000Z"
    assert first.prev_hash == "0" * 64 and second.prev_hash == first.hash
    with Journal(path, INCIDENT) as journal:
        assert [e.hash for e in journal.events()] == [first.hash, second.hash]
        assert journal.verify().ok


def test_update_and_delete_are_refused_by_the_database(tmp_path: Path) -> None:
    path = make(tmp_path, 3)
    db = sqlite3.connect(path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE events SET actor = 'mallory' WHERE seq = 2")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM events WHERE seq = 3")
    assert verify(path) == (True, None)


def test_not_a_journal_is_a_clear_error(tmp_path: Path) -> None:
    bogus = tmp_path / "x.sqlite"
    bogus.write_bytes(b"definitely not sqlite" * 100)
    with pytest.raises(JournalError, match="cannot open the journal"):
        Journal(bogus, INCIDENT)
    with pytest.raises(JournalError, match="no journal"):
        Journal(tmp_path / "missing.sqlite", INCIDENT)


# -- tampering: someone with the file edits it behind the tool's back ------------

N = 8


def tamper(path: Path, sql: list[str]) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("DROP TRIGGER events_are_never_updated")
    db.execute("DROP TRIGGER events_are_never_deleted")
    for statement in sql:
        db.execute(statement)
    db.close()


def _edit(k: int) -> list[str]:
    return [f'UPDATE events SET data = \'{{"text":"nothing happened"}}\' WHERE seq = {k}']


def _edit_actor(k: int) -> list[str]:
    return [f"UPDATE events SET actor = 'mallory' WHERE seq = {k}"]


def _backdate(k: int) -> list[str]:
    return [f"UPDATE events SET occurred_at = '2000-01-01T00:00:00.000000Z' WHERE seq = {k}"]


def _delete(k: int) -> list[str]:
    return [f"DELETE FROM events WHERE seq = {k}"]


def _insert(k: int) -> list[str]:
    # Make room at k by renumbering from the end, then slip a forged event in.
    shift = [f"UPDATE events SET seq = seq + 1 WHERE seq = {s}" for s in range(N, k - 1, -1)]
    forged = (
        f"INSERT INTO events SELECT {k}, incident, occurred_at, recorded_at, 'mallory', kind, "
        f"step, host, data, prev_hash, 'forged{k}', NULL FROM events WHERE seq = {k + 1}"
    )
    return [*shift, forged]


def _swap(k: int) -> list[str]:
    return [
        f"UPDATE events SET seq = -1 WHERE seq = {k}",
        f"UPDATE events SET seq = {k} WHERE seq = {k + 1}",
        f"UPDATE events SET seq = {k + 1} WHERE seq = -1",
    ]


def single_pass(path: Path) -> tuple[Verification, list[Event]]:
    """The chain's verification and every readable event, in the one pass an export reads."""
    with JournalSnapshot(path, INCIDENT) as snapshot:
        chain = snapshot.verifying()
        events = list(chain)
        return chain.verification, events


@pytest.mark.parametrize("how", [_edit, _edit_actor, _backdate, _delete, _insert, _swap])
@pytest.mark.parametrize("k", range(1, N))
def test_any_single_tampered_event_is_named(tmp_path: Path, how: object, k: int) -> None:
    path = make(tmp_path, N)
    assert verify(path) == (True, None)
    tamper(path, how(k))  # type: ignore[operator]
    assert verify(path) == (False, k)
    # The export's single pass says the same, and still hands over every row as it now reads.
    with Journal(path, INCIDENT) as journal:
        alone = journal.verify()
        rows = list(journal.events())
    together, events = single_pass(path)
    assert together == alone
    assert events == rows


def test_a_truncated_tail_is_caught_with_the_head(tmp_path: Path) -> None:
    path = make(tmp_path, N)
    with Journal(path, INCIDENT) as journal:
        _, head = journal.head()
    tamper(path, [f"DELETE FROM events WHERE seq = {N}"])
    assert verify(path) == (True, None)  # without an outside anchor, a cut tail looks whole
    assert verify(path, head) == (False, N)


def test_editing_the_last_event_is_caught(tmp_path: Path) -> None:
    path = make(tmp_path, N)
    tamper(path, _edit(N))
    assert verify(path) == (False, N)


# -- durability and concurrency with real processes -------------------------------


def writer(path: Path, actor: str, count: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.journal_writer",
            str(path),
            INCIDENT,
            actor,
            str(count),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def test_acknowledged_events_survive_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    rng = random.Random(20261121)
    acknowledged = 0
    for _ in range(25):
        process = writer(path, "crashy", -1)
        assert process.stdout is not None
        target = rng.randint(1, 30)
        for _ in range(target):
            acknowledged = int(process.stdout.readline())
        # Kill at a random point of the next append: between acknowledgements or mid-commit.
        for _ in range(rng.randint(0, 20_000)):
            pass
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        with Journal(path, INCIDENT) as journal:
            seq, _ = journal.head()
            assert seq >= acknowledged
            result = journal.verify()
            assert result.ok, result.problem
            assert [e.seq for e in journal.events()] == list(range(1, seq + 1))


def test_two_processes_writing_at_once_both_land_in_order(tmp_path: Path) -> None:
    path = make(tmp_path, 1)
    first, second = writer(path, "ui", 150), writer(path, "scribe", 150)
    outs = [first.communicate(timeout=120)[0], second.communicate(timeout=120)[0]]
    assert first.returncode == second.returncode == 0
    with Journal(path, INCIDENT) as journal:
        assert journal.verify().ok
        events = list(journal.events())
    assert len(events) == 301
    for actor, out in zip(["ui", "scribe"], outs, strict=True):
        mine = [e for e in events if e.actor == actor]
        assert [e.data["text"] for e in mine] == [f"{actor} note {i}" for i in range(150)]
        assert [e.seq for e in mine] == [int(line) for line in out.split()]


def test_an_unreadable_event_is_named_and_the_rest_still_read(tmp_path: Path) -> None:
    path = make(tmp_path, N)
    tamper(path, ["UPDATE events SET data = '{not json' WHERE seq = 3"])
    verification, events = single_pass(path)
    assert (verification.ok, verification.first_bad_seq) == (False, 3)
    assert verification.problem == "event 3 holds unreadable data"
    assert [e.seq for e in events] == [s for s in range(1, N + 1) if s != 3]
