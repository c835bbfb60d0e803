"""The journal on PostgreSQL: one incident shared by responders on many machines.

The same events as the SQLite journal (journal.store), sealed the same way (`sealed`: the same
canonical JSON, hash chain and signatures), so the same `verify` holds either. What the server
adds is what many machines need:

- appends to one incident serialise on a transaction-scoped advisory lock, and
  UNIQUE (incident, seq) and UNIQUE (incident, prev_hash) keep the chain from forking even for
  a writer that skips the lock;
- `recorded_at` is the server's clock, not the writer's: the writer reads it under the lock,
  and a trigger refuses a row whose time is more than a few seconds off it;
- the role irtool connects as may only INSERT and SELECT (`install` grants no more), and a
  trigger refuses UPDATE, DELETE and TRUNCATE to every role, the table's owner included;
- each append notifies `irtool_events` in its own transaction, so other responders' screens
  learn of it once it is committed (LISTEN/NOTIFY), and catch up by seq after a reconnect.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from irtool.journal.database import first_line
from irtool.journal.events import GENESIS, Event, EventDraft, Signer, parse_moment, sealed
from irtool.journal.incidents import is_incident_id
from irtool.journal.pgevidence import install_evidence
from irtool.journal.store import (
    _SIGNED,
    JournalError,
    Verification,
    _Chain,
    _row_event,
)
from irtool.model.names import unshowable_in_name

CHANNEL = "irtool_events"  # NOTIFY payload: "INCIDENT SEQ"
CLOCK_SLACK_S = 5  # how far a row's recorded_at may be from the server's clock
_PAGE = 2000
_COLUMNS = _SIGNED  # the SQLite journal's columns, in its order: its readers read these rows

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS irtool_events (
    incident    TEXT NOT NULL,
    seq         BIGINT NOT NULL CHECK (seq > 0),
    occurred_at TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    actor       TEXT NOT NULL,
    kind        TEXT NOT NULL,
    step        TEXT,
    host        TEXT,
    data        TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL UNIQUE,
    signature   TEXT,
    PRIMARY KEY (incident, seq),
    UNIQUE (incident, prev_hash)
);
CREATE OR REPLACE FUNCTION irtool_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the journal is append-only: record a correction instead';
END $$;
CREATE OR REPLACE FUNCTION irtool_server_clock() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF abs(extract(epoch FROM (NEW.recorded_at::timestamptz - clock_timestamp())))
       > {CLOCK_SLACK_S} THEN
        RAISE EXCEPTION 'recorded_at % is not the server''s clock', NEW.recorded_at;
    END IF;
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS irtool_events_never_change ON irtool_events;
CREATE TRIGGER irtool_events_never_change BEFORE UPDATE OR DELETE ON irtool_events
    FOR EACH ROW EXECUTE FUNCTION irtool_append_only();
DROP TRIGGER IF EXISTS irtool_events_never_emptied ON irtool_events;
CREATE TRIGGER irtool_events_never_emptied BEFORE TRUNCATE ON irtool_events
    FOR EACH STATEMENT EXECUTE FUNCTION irtool_append_only();
DROP TRIGGER IF EXISTS irtool_events_server_clock ON irtool_events;
CREATE TRIGGER irtool_events_server_clock BEFORE INSERT ON irtool_events
    FOR EACH ROW EXECUTE FUNCTION irtool_server_clock();
REVOKE ALL ON irtool_events FROM PUBLIC;
"""


def install(admin: str | psycopg.Connection[Any], writers: Collection[str] = ()) -> None:
    """Create the journal's tables (its events; evidence, journal.pgevidence), their
    triggers, and let each role of `writers` (the roles responders connect as) INSERT and
    SELECT, and nothing else. Run by the tables' owner (a database administrator), with a URL
    or a connection in autocommit mode; running it again changes nothing."""
    if isinstance(admin, str):
        with psycopg.connect(admin, autocommit=True) as db:
            install(db, writers)
        return
    admin.execute(SCHEMA.encode())  # a constant, built from constants
    for role in writers:
        name = sql.Identifier(role)
        admin.execute(sql.SQL("REVOKE ALL ON irtool_events FROM {}").format(name))
        admin.execute(sql.SQL("GRANT SELECT, INSERT ON irtool_events TO {}").format(name))
    install_evidence(admin, writers)


def team_incidents(db: psycopg.Connection[Any]) -> list[str]:
    """Every incident the database holds (each has its opening event, seq 1)."""
    try:
        rows = db.execute("SELECT incident FROM irtool_events WHERE seq = 1").fetchall()
    except psycopg.Error as error:
        raise _failed("cannot read the journal", error) from None
    return sorted(str(row[0]) for row in rows if is_incident_id(str(row[0])))


def _failed(what: str, error: psycopg.Error) -> JournalError:
    return JournalError(f"{what}: {first_line(error)}")


class PgJournal:
    """One incident's events in PostgreSQL. Thread-safe; any number of machines may write."""

    def __init__(
        self, url: str | psycopg.Connection[Any], incident: str, *, create: bool = False
    ) -> None:
        """`url`: a libpq URL, or a connection made already in autocommit mode (the team
        journal makes it, with the password from the keyring: journal.database)."""
        self.incident = incident
        self.signer: Signer | None = None
        self.read_only = False
        self._lock = threading.RLock()
        if isinstance(url, psycopg.Connection):
            self._db = url
        else:
            try:
                self._db = psycopg.connect(url, autocommit=True)
            except psycopg.Error as error:
                raise _failed("cannot reach the journal's database", error) from None
        if not create and self.hash_at(1) is None:
            self._db.close()
            raise JournalError(f"no incident {incident} in the journal's database")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """The connection itself, held for this thread (evidence goes through it:
        journal.pgevidence)."""
        with self._lock:
            yield self._db

    @property
    def broken(self) -> bool:
        """The connection is gone (the server stopped, the network went): not a refusal."""
        return bool(self._db.closed or self._db.broken)

    def __enter__(self) -> PgJournal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def now(self) -> datetime:
        """The server's clock: the one every event is recorded by."""
        found = self._one("SELECT clock_timestamp()", ())
        assert found is not None
        moment: datetime = found[0]
        return moment

    # -- writing ---------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[PgTransaction]:
        """Hold this incident's write lock: read what others appended, decide, append;
        commit on exit (and only then are the appends told to those listening)."""
        with self._lock:
            try:
                with self._db.transaction():
                    self._db.execute(
                        "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (self.incident,)
                    )
                    yield PgTransaction(self)
            except psycopg.Error as error:
                raise _failed("the journal did not take the event", error) from None

    def append(self, draft: EventDraft) -> Event:
        with self.transaction() as tx:
            return tx.append(draft)

    # -- reading ---------------------------------------------------------------

    def _one(self, query: str, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        with self._lock:
            try:
                return self._db.execute(query.encode(), args).fetchone()
            except psycopg.Error as error:
                raise _failed("cannot read the journal", error) from None

    def events(
        self, after: int = 0, *, upto: int | None = None, kinds: Collection[str] | None = None
    ) -> Iterator[Event]:
        """The events after seq `after` (and up to `upto`), of `kinds` if given, in order, a
        page at a time."""
        while True:
            with self._lock:
                try:
                    rows = self._db.execute(
                        f"SELECT {_COLUMNS} FROM irtool_events WHERE incident = %s AND seq > %s "  # noqa: S608 - constant columns
                        "AND (%s::bigint IS NULL OR seq <= %s) "
                        "AND (%s::text[] IS NULL OR kind = ANY(%s)) ORDER BY seq LIMIT %s",
                        (self.incident, after, upto, upto, _list(kinds), _list(kinds), _PAGE),
                    ).fetchall()
                except psycopg.Error as error:
                    raise _failed("cannot read the journal", error) from None
            for row in rows:
                yield _row_event(row[:12])
            if len(rows) < _PAGE:
                return
            after = rows[-1][0]

    def hash_at(self, seq: int) -> str | None:
        found = self._one(
            "SELECT hash FROM irtool_events WHERE incident = %s AND seq = %s", (self.incident, seq)
        )
        return str(found[0]) if found else None

    def first(self) -> Event | None:
        return next(self.events(0, upto=1), None)

    def head(self) -> tuple[int, str]:
        found = self._one(
            "SELECT seq, hash FROM irtool_events WHERE incident = %s ORDER BY seq DESC LIMIT 1",
            (self.incident,),
        )
        return (int(found[0]), str(found[1])) if found else (0, GENESIS)

    def verify(self) -> Verification:
        """Recompute the chain, as the SQLite journal's `verify` does, row by row."""
        chain = _Chain(self.incident)
        # A server-side cursor, inside a transaction of its own: read a page at a time.
        try:
            with self._lock, self._db.transaction(), self._db.cursor(name="verify") as rows:
                rows.execute(
                    f"SELECT {_COLUMNS} FROM irtool_events WHERE incident = %s ORDER BY seq",  # noqa: S608 - constant columns
                    (self.incident,),
                )
                for row in rows:
                    chain.follow(tuple(row))
                    if chain.broken:
                        break
        except psycopg.Error as error:
            raise _failed("cannot read the journal", error) from None
        return chain.verification


def _list(kinds: Collection[str] | None) -> list[str] | None:
    return list(kinds) if kinds is not None else None


class PgTransaction:
    """The write side of `PgJournal.transaction()`."""

    def __init__(self, journal: PgJournal) -> None:
        self._journal = journal
        self._db = journal._db
        self.last: Event | None = None

    def events(self, after: int = 0) -> Iterator[Event]:
        return self._journal.events(after)

    def append(self, draft: EventDraft) -> Event:
        """Record `draft` after the head, at the server's time (never before the head's)."""
        unshowable = unshowable_in_name(draft.actor)
        if unshowable:
            raise JournalError(unshowable)
        journal = self._journal
        head = self._db.execute(
            "SELECT seq, hash, recorded_at FROM irtool_events WHERE incident = %s "
            "ORDER BY seq DESC LIMIT 1",
            (journal.incident,),
        ).fetchone()
        clock = self._db.execute("SELECT clock_timestamp()").fetchone()
        assert clock is not None
        recorded: datetime = clock[0]
        seq, prev = (int(head[0]), str(head[1])) if head else (0, GENESIS)
        if head and parse_moment(head[2]) > recorded:
            recorded = parse_moment(head[2])  # the server's clock stepped back: never backwards
        event, data = sealed(draft, journal.incident, seq + 1, prev, recorded, journal.signer)
        self._db.execute(
            f"INSERT INTO irtool_events ({_COLUMNS}) "  # noqa: S608 - constant columns
            "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
            (event.seq, event.incident, event.occurred_at, event.recorded_at, event.actor,
             event.kind, event.step, event.host, data, event.prev_hash, event.hash,
             event.signature),
        )  # fmt: skip
        # Delivered when the transaction commits, never for one that rolls back.
        self._db.execute("SELECT pg_notify(%s, %s)", (CHANNEL, f"{event.incident} {event.seq}"))
        self.last = event
        return event
