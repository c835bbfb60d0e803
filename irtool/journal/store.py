"""The journal in SQLite: WAL, a durable commit per acknowledged event, nothing ever updated.

Appends happen inside `BEGIN IMMEDIATE`, which takes SQLite's write lock
before reading the head. Two processes (the UI and a scribe's
`irtool incident note`) therefore serialise: each reads the true head, links
to it and commits; neither can fork the chain. Callers that must check state
before writing (the engine refusing a step already done) do both inside one
`transaction()`, so no other writer can slip in between.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from irtool.journal.events import GENESIS, Event, EventDraft, canonical_json, event_hash, utc_text

FORMAT_VERSION = 1
BUSY_TIMEOUT_S = 15.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq         INTEGER PRIMARY KEY,
    incident    TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    actor       TEXT NOT NULL,
    kind        TEXT NOT NULL,
    step        TEXT,
    host        TEXT,
    data        TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL UNIQUE
);
CREATE TRIGGER IF NOT EXISTS events_are_never_updated BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the journal is append-only: record a correction instead'); END;
CREATE TRIGGER IF NOT EXISTS events_are_never_deleted BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'the journal is append-only: record a correction instead'); END;
"""

_COLUMNS = "seq, incident, occurred_at, recorded_at, actor, kind, step, host, data, prev_hash, hash"


class JournalError(Exception):
    """The journal cannot be opened or written; the message says why in a responder's words."""


class JournalBusy(JournalError):
    """Another writer held the journal longer than we were willing to wait."""


@dataclass(frozen=True)
class Verification:
    ok: bool
    count: int
    head: str
    first_bad_seq: int | None = None
    problem: str | None = None


def _row_event(row: tuple[Any, ...]) -> Event:
    seq, incident, occurred, recorded, actor, kind, step, host, data, prev, digest = row
    content = json.loads(data)
    if not isinstance(content, dict):
        raise TypeError(f"event {seq} holds {type(content).__name__}, not an object")
    return Event(seq, incident, occurred, recorded, actor, kind, step, host, content, prev, digest)


class Journal:
    """One incident's events. Thread-safe; safe to share the file between processes."""

    def __init__(
        self,
        path: Path,
        incident: str,
        *,
        create: bool = False,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.path, self.incident = Path(path), incident
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.RLock()
        if not create and not self.path.exists():
            raise JournalError(f"no journal at {self.path}")
        try:
            self._db = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL: the WAL is fsynced at every commit, so an acknowledged event survives
            # a crash of the process and of the machine.
            self._db.execute("PRAGMA synchronous=FULL")
            if create:
                self._db.executescript(_SCHEMA)
                self._db.execute(f"PRAGMA user_version={FORMAT_VERSION}")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise JournalError(f"cannot open the journal {self.path}: {exc}") from None
        if version != FORMAT_VERSION:
            raise JournalError(f"{self.path} is not an irtool journal (format {version})")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Hold the write lock: read what others appended, decide, append; commit on exit."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    raise JournalBusy(
                        f"the journal is busy: another writer held it over {BUSY_TIMEOUT_S:.0f} s"
                    ) from None
                raise JournalError(f"cannot write the journal: {exc}") from None
            tx = Transaction(self)
            try:
                yield tx
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            try:
                self._db.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                self._db.execute("ROLLBACK")
                raise JournalError(f"the journal did not take the event: {exc}") from None

    def append(self, draft: EventDraft) -> Event:
        """Record one event; returns only once it is durably committed."""
        with self.transaction() as tx:
            return tx.append(draft)

    # -- reading ---------------------------------------------------------------

    def events(self, after: int = 0) -> Iterator[Event]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM events WHERE seq > ? ORDER BY seq",  # noqa: S608 - constant columns
                (after,),
            ).fetchall()
        for row in rows:
            yield _row_event(row)

    def first(self) -> Event | None:
        """The opening event alone: what a screen shows while the rest is read."""
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM events WHERE seq = 1"  # noqa: S608 - constant columns
            ).fetchone()
        return _row_event(row) if row else None

    def head(self) -> tuple[int, str]:
        with self._lock:
            row = self._db.execute(
                "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1"
            ).fetchone()
        return (row[0], row[1]) if row else (0, GENESIS)

    def verify(self, expected_head: str | None = None) -> Verification:
        """Recompute the chain; name the first event that was edited, removed, added or moved."""
        chain, seen_head = _Chain(self.incident), expected_head is None
        with self._lock:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM events ORDER BY seq")  # noqa: S608
            for row in rows:
                chain.follow(row)
                if chain.broken:
                    return chain.broken
                seen_head = seen_head or chain.prev == expected_head
        found = chain.verification
        if not seen_head:
            return Verification(
                False,
                found.count,
                found.head,
                found.count + 1,
                f"the head {expected_head} is not in the journal: events were removed from its end",
            )
        return found

    def verified_events(self) -> tuple[Verification, list[Event]]:
        """Every event and the chain's verification, in one pass over the journal (what an
        export reads). Past a break the events are still returned, as they now read; an
        event whose data cannot be read at all is left out (the verification names the first
        break, which is at or before it)."""
        chain, events = _Chain(self.incident), []
        with self._lock:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM events ORDER BY seq")  # noqa: S608
            for row in rows:
                event = chain.follow(row)
                if event is not None:
                    events.append(event)
        return chain.verification, events


class _Chain:
    """The hash chain followed row by row: where it stands, and its first break once found."""

    def __init__(self, incident: str) -> None:
        self.incident, self.expected_seq, self.prev = incident, 1, GENESIS
        self.broken: Verification | None = None

    def follow(self, row: tuple[Any, ...]) -> Event | None:
        """The row as an event (None: unreadable); past a break, rows are read, not checked."""
        event = _readable(row)
        if self.broken is None:
            problem = _chain_problem(row, event, self.expected_seq, self.prev, self.incident)
            if problem is None:
                self.prev, self.expected_seq = row[10], self.expected_seq + 1
            else:
                at = min(row[0], self.expected_seq)
                self.broken = Verification(False, self.expected_seq - 1, self.prev, at, problem)
        return event

    @property
    def verification(self) -> Verification:
        return self.broken or Verification(True, self.expected_seq - 1, self.prev)


def _readable(row: tuple[Any, ...]) -> Event | None:
    try:
        return _row_event(row)
    except (ValueError, TypeError):
        return None


def _chain_problem(
    row: tuple[Any, ...], event: Event | None, expected_seq: int, prev: str, incident: str
) -> str | None:
    """Why `row` (read as `event`) does not continue the chain at `expected_seq` after `prev`,
    or None."""
    seq = row[0]
    if seq != expected_seq:
        return f"event {expected_seq} is missing (event {seq} comes next)"
    if event is None:
        return f"event {seq} holds unreadable data"
    if event.prev_hash != prev:
        return f"event {seq} does not follow event {seq - 1}: events were removed, added or moved"
    if event_hash(event.content()) != event.hash:
        return f"event {seq} was altered: its content does not match its hash"
    if event.incident != incident:
        return f"event {seq} belongs to another incident ({event.incident})"
    return None


class Transaction:
    """The write side of `Journal.transaction()`."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal
        self._db = journal._db

    def events(self, after: int = 0) -> Iterator[Event]:
        return self._journal.events(after)

    def append(self, draft: EventDraft) -> Event:
        seq, prev = self._journal.head()
        recorded = self._journal._clock()
        content = {
            "seq": seq + 1,
            "incident": self._journal.incident,
            "occurred_at": utc_text(draft.occurred_at or recorded),
            "recorded_at": utc_text(recorded),
            "actor": draft.actor,
            "kind": draft.kind,
            "step": draft.step,
            "host": draft.host,
            "data": json.loads(canonical_json(draft.data)),  # only JSON survives the round trip
            "prev_hash": prev,
        }
        digest = event_hash(content)
        event = Event(**content, hash=digest)
        self._db.execute(
            f"INSERT INTO events ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",  # noqa: S608
            (
                event.seq,
                event.incident,
                event.occurred_at,
                event.recorded_at,
                event.actor,
                event.kind,
                event.step,
                event.host,
                canonical_json(event.data),
                event.prev_hash,
                event.hash,
            ),
        )
        return event
