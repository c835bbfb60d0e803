"""The journal on a real PostgreSQL (Debian's server, started by the test on 127.0.0.1): the
same chain as SQLite's, appends that serialise per incident across processes, a role that
may only INSERT and SELECT, the server's clock, and notifications after commit."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from irtool.engine import kinds
from irtool.journal import EventDraft, JournalError
from irtool.journal.events import parse_moment
from irtool.journal.postgres import CHANNEL, PgJournal
from irtool.journal.store import chain_problem
from tests.conftest import ROOT
from tests.support.postgres import Postgres, team_server

RESPONDER, SECRET = "responder", "s3cret-for-tests"


@pytest.fixture(scope="module")
def server() -> Iterator[Postgres]:
    with team_server(RESPONDER, SECRET) as running:
        yield running


@pytest.fixture
def url(server: Postgres) -> str:
    return server.url(RESPONDER, SECRET)


def opened(url: str, incident: str, notes: int = 0) -> PgJournal:
    journal = PgJournal(url, incident, create=True)
    journal.append(EventDraft(kinds.INCIDENT_OPENED, "ann", {"title": "t"}))
    for n in range(notes):
        journal.append(EventDraft(kinds.NOTE_ADDED, "ann", {"text": f"note {n}"}))
    return journal


def test_events_chain_as_in_sqlite_and_read_back_as_written(url: str) -> None:
    with opened(url, "ir-20261207-100000-0001", notes=3) as journal:
        events = list(journal.events())
        assert [e.seq for e in events] == [1, 2, 3, 4]
        prev = "0" * 64
        for event in events:  # the SQLite journal's own check, event by event
            assert chain_problem(event, event.seq, prev, journal.incident) is None
            prev = event.hash
        assert journal.head() == (4, events[-1].hash)
        assert journal.verify().ok and journal.verify().count == 4
        assert [e.seq for e in journal.events(1, upto=3, kinds=[kinds.NOTE_ADDED])] == [2, 3]
    with pytest.raises(JournalError, match="no incident ir-20261207-100000-0009"):
        PgJournal(url, "ir-20261207-100000-0009")


def test_the_responders_role_may_not_change_or_remove_an_event(url: str, server: Postgres) -> None:
    opened(url, "ir-20261207-100000-0002", notes=1).close()
    with psycopg.connect(url, autocommit=True) as db:
        for statement in (
            "UPDATE irtool_events SET actor = 'mallory' WHERE seq = 2",
            "DELETE FROM irtool_events WHERE seq = 2",
            "TRUNCATE irtool_events",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                db.execute(statement)  # refused by grant
    # The table's owner, past the grants: refused by trigger.
    with psycopg.connect(server.url(), autocommit=True) as owner:
        for statement in (
            "UPDATE irtool_events SET actor = 'mallory' WHERE seq = 2",
            "DELETE FROM irtool_events WHERE seq = 2",
            "TRUNCATE irtool_events",
        ):
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                owner.execute(statement)


def test_recorded_at_is_the_servers_clock(url: str) -> None:
    with opened(url, "ir-20261207-100000-0003") as journal:
        server_now = journal.now()
        recorded = parse_moment(journal.append(EventDraft(kinds.NOTE_ADDED, "ann", {})).recorded_at)
        assert abs(recorded - server_now) < timedelta(seconds=5)
    # A row written around irtool with a time of its own choosing is refused.
    past = (datetime.now(UTC) - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    row = ("ir-20261207-100000-0003", past, past, "p" * 64, "h" * 64)
    insert = (
        "INSERT INTO irtool_events VALUES (%s, 9, %s, %s, 'x', 'note.added', NULL, NULL, "
        "'{}', %s, %s, NULL)"
    )
    with (
        psycopg.connect(url, autocommit=True) as db,
        pytest.raises(psycopg.errors.RaiseException, match="not the server's clock"),
    ):
        db.execute(insert, row)


WRITER = """
import sys
from irtool.journal import EventDraft
from irtool.journal.postgres import PgJournal
url, incident, who, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
with PgJournal(url, incident) as journal:
    for n in range(count):
        journal.append(EventDraft("note.added", who, {"text": f"{who} {n}"}))
"""


def test_writers_on_several_machines_append_to_one_chain_that_never_forks(url: str) -> None:
    incident = "ir-20261207-100000-0004"
    opened(url, incident).close()
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, url, incident, f"r{n}", "40"], cwd=ROOT)
        for n in range(4)
    ]
    assert [w.wait(timeout=120) for w in writers] == [0, 0, 0, 0]
    with PgJournal(url, incident) as journal:
        found = journal.verify()
        assert found.ok and found.count == 1 + 4 * 40
        texts = [str(e.data.get("text")) for e in journal.events(1)]
    assert sorted(texts) == sorted(f"r{n} {i}" for n in range(4) for i in range(40))


def given_up(journal: PgJournal) -> None:
    with journal.transaction() as tx:
        tx.append(EventDraft(kinds.NOTE_ADDED, "ann", {"text": "undone"}))
        raise psycopg.errors.QueryCanceled("the writer gave up")


def test_an_append_is_told_to_listeners_once_committed(url: str) -> None:
    incident = "ir-20261207-100000-0005"
    with psycopg.connect(url, autocommit=True) as listener:
        listener.execute(f"LISTEN {CHANNEL}")
        with opened(url, incident) as journal:
            with pytest.raises(JournalError):
                given_up(journal)  # rolled back
            journal.append(EventDraft(kinds.NOTE_ADDED, "ann", {"text": "kept"}))
        heard = [n.payload for n in listener.notifies(timeout=10, stop_after=2)]
    assert heard == [f"{incident} 1", f"{incident} 2"]  # the rolled-back one never told
