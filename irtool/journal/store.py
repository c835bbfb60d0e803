"""The journal in SQLite: WAL, a durable commit per acknowledged event, nothing ever updated.

Appends happen inside `BEGIN IMMEDIATE`, which takes SQLite's write lock
before reading the head. Two processes (the UI and a scribe's
`irtool incident note`) therefore serialise: each reads the true head, links
to it and commits; neither can fork the chain. Callers that must check state
before writing (the engine refusing a step already done) do both inside one
`transaction()`, so no other writer can slip in between.

`recorded_at` never goes backwards: a writer whose clock is behind the head
records that (a `clock.skewed` event) and then writes at the head's time.
`verify` names any backwards step a journal written before that holds.

A journal on read-only media (a directory mounted read-only, an archive on
a write-protected disk) is opened read-only: it can be read, verified and
exported; a write is refused in one line.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from irtool.journal import anchors
from irtool.journal.events import (
    CLOCK_SKEWED,
    GENESIS,
    Event,
    EventDraft,
    Signer,
    canonical_json,
    event_hash,
    parse_moment,
    sealed,
    utc_text,
)
from irtool.model.names import unshowable_in_name

FORMAT_VERSION = 2  # 2: each event may carry its writer's signature (format 1 is read too)
BUSY_TIMEOUT_S = 15.0
HEAD_EVERY_S = 2.0  # how often a busy writer keeps the head it reached (journal.anchors)

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
    hash        TEXT NOT NULL UNIQUE,
    signature   TEXT  -- SSHSIG of the hash by the writer's key (engine.signatures); not hashed
);
CREATE TRIGGER IF NOT EXISTS events_are_never_updated BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the journal is append-only: record a correction instead'); END;
CREATE TRIGGER IF NOT EXISTS events_are_never_deleted BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'the journal is append-only: record a correction instead'); END;
"""

_PAGE = 2000  # events read per page by `events()`
_COLUMNS = "seq, incident, occurred_at, recorded_at, actor, kind, step, host, data, prev_hash, hash"
_SIGNED = f"{_COLUMNS}, signature"


def selected(version: int) -> str:
    """The columns an event is read from, in a journal of `version` (format 1, read where it
    cannot be upgraded, had no signatures)."""
    return _SIGNED if version >= 2 else f"{_COLUMNS}, NULL"


class JournalError(Exception):
    """The journal cannot be opened or written; the message says why in a responder's words."""


class Unsigned(JournalError):
    """An event that must be signed and cannot be (engine.signatures): not written. A journal
    error, so what a command does with a journal that will not take an event it does here
    too: a custody record goes to the spool, and is appended once its writer can sign it."""


class JournalBusy(JournalError):
    """Another writer held the journal longer than we were willing to wait."""


class JournalFull(JournalError):
    """The disk under the journal is full: nothing more can be written until space is freed."""


def _journal_error(what: str, exc: sqlite3.Error, path: Path | None = None) -> JournalError:
    """The real reason, in one line: a full disk is said as such. SQLite calls a -shm file it
    cannot create on a full disk an I/O error, so the disk is asked too."""
    text = str(exc)
    if "full" in text or getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
        return JournalFull(f"{what}: the disk under the journal is full ({text})")
    if path is not None and "I/O" in text and _no_space(path.parent):
        return JournalFull(f"{what}: the disk under the journal is full ({text})")
    return JournalError(f"{what}: {text}")


def _no_space(directory: Path) -> bool:
    try:
        found = os.statvfs(directory)
    except OSError:
        return False
    return found.f_bavail * found.f_frsize < 64 * 1024


@dataclass(frozen=True)
class BackwardStep:
    """An event recorded earlier than the event before it: a writer's clock was behind. The
    chain still holds; the order of `recorded_at` does not. Only journals written before
    `clock.skewed` existed can hold one."""

    seq: int
    recorded_at: str
    previous_at: str  # event seq - 1's recorded_at

    def __str__(self) -> str:
        return (
            f"event {self.seq} was recorded at {self.recorded_at}, before event "
            f"{self.seq - 1} ({self.previous_at}): a writer's clock was behind"
        )


@dataclass(frozen=True)
class Verification:
    ok: bool  # the hash chain holds
    count: int
    head: str
    first_bad_seq: int | None = None
    problem: str | None = None
    backwards: tuple[BackwardStep, ...] = ()  # where recorded_at goes back, in the chain's part


def _writable(path: Path) -> bool:
    """Whether SQLite can write here: the file, and the directory for the -wal and -shm files
    WAL mode keeps beside it. False on read-only media (EROFS) even for root."""
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def _open_read_only(path: Path) -> sqlite3.Connection:
    """Open a journal that cannot be written. `mode=ro` still needs the -shm file of WAL mode,
    which it creates when missing; where it cannot (a read-only directory holding no -shm),
    `immutable=1` reads the file as it stands, taking no lock. That is only true to the
    journal when no -wal holds events the main file has not yet taken in (a journal closed
    cleanly leaves none): else the latest events would be silently missed, so we refuse."""
    uri = path.resolve().as_uri()  # percent-encodes what SQLite's URI syntax would misread
    connect = partial(
        sqlite3.connect, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
    )
    db = connect(f"{uri}?mode=ro", uri=True)
    try:
        db.execute("PRAGMA user_version").fetchone()  # the -shm is needed here, not at connect
        return db
    except sqlite3.OperationalError:
        db.close()
    wal = path.with_name(f"{path.name}-wal")
    if wal.exists() and wal.stat().st_size > 0:
        raise JournalError(
            f"the incident directory is read-only and {wal.name} holds events not yet in "
            f"{path.name}: SQLite cannot read them there; copy the incident directory to "
            "writable storage and read the copy"
        )
    return connect(f"{uri}?mode=ro&immutable=1", uri=True)


def _moment(text: str) -> datetime | None:
    try:
        return parse_moment(text)
    except ValueError:  # a damaged head: verify names it; a write need not stop on it
        return None


def _row_event(row: tuple[Any, ...]) -> Event:
    seq, incident, occurred, recorded, actor, kind, step, host, data, prev, digest, signed = row
    content = json.loads(data)
    if not isinstance(content, dict):
        raise TypeError(f"event {seq} holds {type(content).__name__}, not an object")
    return Event(
        seq, incident, occurred, recorded, actor, kind, step, host, content, prev, digest, signed
    )


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
        self._skew_said = False  # this writer has recorded that its clock is behind the head
        self._busy_timeout = BUSY_TIMEOUT_S  # what the connection's busy handler waits now
        # (actor, hash) -> the actor's signature of the hash, or None: set by the engine,
        # which knows whose keys are whose (engine.signatures).
        self.signer: Signer | None = None
        # The head this writer appended last, kept for `verify` (journal.anchors) at most
        # every HEAD_EVERY_S and when the journal is closed: a write is not slowed by it.
        self._keeps_heads = anchors.keeps_heads(self.path, incident)
        self._unkept: Event | None = None
        self._kept_at: float | None = None
        # The furthest event this writer knows the chain holds (the head this machine saw,
        # then each event it appends): every write first checks the journal still holds it.
        # A journal made new starts a chain of its own: a head kept of an incident once of
        # that id is stale, and forgotten.
        self._held: anchors.Anchor | None = None
        self._held_read = not self._keeps_heads
        if create and self._keeps_heads:
            anchors.forget(incident)
            self._held_read = True
        if not create and not self.path.exists():
            raise JournalError(f"no journal at {self.path}")
        self._read_only = not create and not _writable(self.path)
        try:
            if self._read_only:
                self._db = _open_read_only(self.path)
            else:
                self._db = sqlite3.connect(
                    self.path,
                    timeout=BUSY_TIMEOUT_S,
                    isolation_level=None,
                    check_same_thread=False,
                )
                self._db.execute("PRAGMA journal_mode=WAL")
            # FULL: the WAL is fsynced at every commit, so an acknowledged event survives
            # a crash of the process and of the machine.
            self._db.execute("PRAGMA synchronous=FULL")
            if create:
                self._db.executescript(_SCHEMA)
                self._db.execute(f"PRAGMA user_version={FORMAT_VERSION}")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version == 1 and not self._read_only:
                version = self._upgrade()
        except sqlite3.DatabaseError as exc:
            if hasattr(self, "_db"):
                self._db.close()  # a half-open connection holds the file, and its mount busy
            raise _journal_error(f"cannot open the journal {self.path}", exc, self.path) from None
        if version not in (1, FORMAT_VERSION):
            self._db.close()
            raise JournalError(f"{self.path} is not an irtool journal (format {version})")
        self._select = selected(version)

    def _upgrade(self) -> int:
        """Format 1 to 2: the signature column, added once by whichever writer comes first."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            if self._db.execute("PRAGMA user_version").fetchone()[0] == 1:
                self._db.execute("ALTER TABLE events ADD COLUMN signature TEXT")
                self._db.execute(f"PRAGMA user_version={FORMAT_VERSION}")
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        return FORMAT_VERSION

    @property
    def read_only(self) -> bool:
        """The journal's file or directory cannot be written (read-only media or
        permissions): it can be read and verified; `transaction()` refuses."""
        return self._read_only

    def now(self) -> datetime:
        """This writer's clock (a test's clock when one was given)."""
        return self._clock()

    def close(self) -> None:
        with self._lock:
            self._db.close()
            if self._unkept is not None:
                self._keep_head(self._unkept, now=True)

    def _keep_head(self, event: Event, *, now: bool = False) -> None:
        moment = time.monotonic()
        if now or self._kept_at is None or moment - self._kept_at >= HEAD_EVERY_S:
            anchors.saw(anchors.Anchor(self.incident, event.seq, event.hash))
            self._unkept, self._kept_at = None, moment
        else:
            self._unkept = event

    def __enter__(self) -> Journal:
        return self

    # This machine's own file: always there, and nothing tells of other writers but reading.
    connection = None

    def watch(self, heard: Callable[[int], None], linked: Callable[[bool, str], None]) -> None:
        return None

    def reconnect(self) -> bool:
        return True

    def gather_evidence(self, wanted: Collection[str]) -> list[str]:
        return []  # what this machine lacks, no one else holds

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------

    @contextmanager
    def transaction(self, busy_timeout: float | None = None) -> Iterator[Transaction]:
        """Hold the write lock: read what others appended, decide, append; commit on exit.

        `busy_timeout`: how long to wait for another writer (default BUSY_TIMEOUT_S); a
        custody record waits less, since it has a durable spool to fall back on."""
        wait = BUSY_TIMEOUT_S if busy_timeout is None else busy_timeout
        if self._read_only:
            raise JournalError(
                f"the incident directory is read-only: {self.path.parent} can be read, "
                "verified and exported, not written"
            )
        with self._lock:
            try:
                if wait != self._busy_timeout:  # a PRAGMA per write costs; set it on change
                    self._db.execute(f"PRAGMA busy_timeout={int(wait * 1000)}")
                    self._busy_timeout = wait
                self._db.execute("BEGIN IMMEDIATE")
                if self._keeps_heads:
                    self._hold_to_seen()
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    raise JournalBusy(
                        f"the journal is busy: another writer held it over {wait:g} s"
                    ) from None
                raise _journal_error("cannot write the journal", exc) from None
            tx, skew_said = Transaction(self), self._skew_said
            try:
                yield tx
                self._db.execute("COMMIT")
                if tx.last is not None and self._keeps_heads:
                    self._held = anchors.Anchor(self.incident, tx.last.seq, tx.last.hash)
                    self._keep_head(tx.last)
            except BaseException as exc:
                self._skew_said = skew_said  # a skew said in an undone transaction was not said
                # SQLite may have rolled back already (a full disk does): then there is no
                # transaction left to end, and that must not hide the real error.
                if self._db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        self._db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise _journal_error("the journal did not take the event", exc) from None
                raise

    def _hold_to_seen(self) -> None:
        """Refuse to write on a journal cut short or rewritten behind the head this machine
        saw: an event written there would carry the altered chain on, and in time take the
        place of the head that shows it. Checked at every write, under the write lock, in one
        lookup: a writer that stays open (the UI, a run) is not written past a cut either."""
        if not self._held_read:
            self._held, self._held_read = anchors.seen(self.incident), True
        known = self._held
        if known is not None and known.seq is not None:
            row = self._db.execute("SELECT hash FROM events WHERE seq = ?", (known.seq,)).fetchone()
            if row is None or row[0] != known.hash:
                self._db.execute("ROLLBACK")
                raise JournalError(
                    f"the journal of {self.incident} no longer holds event {known.seq} as this "
                    "machine saw it: it was cut short or rewritten, and nothing is written on "
                    f"it (irtool verify {self.incident} says more; if it was restored from a "
                    f"backup on purpose, remove {anchors.seen_path(self.incident)})"
                )

    @contextmanager
    def _synchronous(self, level: str) -> Iterator[None]:
        self._db.execute(f"PRAGMA synchronous={level}")
        try:
            yield
        finally:
            self._db.execute("PRAGMA synchronous=FULL")

    def append(self, draft: EventDraft) -> Event:
        """Record one event; returns only once it is durably committed."""
        with self.transaction() as tx:
            return tx.append(draft)

    def copied(self) -> tuple[int, str] | None:
        """The last event taken in from another journal (`copy_in`): where this copy stands
        against the team's database. None when nothing was."""
        with self._lock:
            try:
                row = self._db.execute("SELECT seq, hash FROM copied").fetchone()
            except sqlite3.OperationalError:  # no such table: nothing was ever copied in
                return None
        return (int(row[0]), str(row[1])) if row else None

    def copy_in(self, events: Iterable[Event]) -> Event | None:
        """Take in, exactly as they are, events another journal of this incident holds (the
        team's database, journal.team), read as they come (a page at a time: a million are
        never held at once): each must carry the chain on from this journal's head, its hash
        recomputed, or none is taken. Ones already here (another process of this machine took
        them first) are passed over. Returns the last of `events`, now held here, which is
        also noted as `copied()` in the same commit: the mark and the copy never part."""
        last = None
        # Not fsynced at each commit as this machine's own events are: these are durable in
        # the database already, and a copy that loses its last ones to a power cut takes
        # them again (journal.team). WAL keeps each commit whole either way.
        with self._lock, self._synchronous("NORMAL"), self.transaction() as tx:
            seq, prev = self.head()
            for event in events:
                if event.seq <= seq:
                    if self.hash_at(event.seq) != event.hash:
                        raise JournalError(
                            f"event {event.seq} of the team's database is not the event "
                            f"{event.seq} this machine's copy holds: the chains have parted"
                        )
                else:
                    problem = chain_problem(event, seq + 1, prev, self.incident)
                    if problem:
                        raise JournalError(f"the team's database: {problem}")
                    tx._row(event, canonical_json(event.data))
                    seq, prev = event.seq, event.hash
                last = event
            if last is not None:
                tx._mark(last.seq, last.hash)
        return last

    # -- reading ---------------------------------------------------------------

    def events(
        self, after: int = 0, *, upto: int | None = None, kinds: Collection[str] | None = None
    ) -> Iterator[Event]:
        """The events after seq `after` (and up to `upto`), of `kinds` if given, in order.

        Read a page at a time, the lock held per page only: a million events never sit in
        memory at once, and a writer on another thread is not kept waiting for the reader."""
        where, base = "seq > ?", list[int | str]()
        if upto is not None:
            where += " AND seq <= ?"
            base.append(upto)
        if kinds is not None:
            where += f" AND kind IN ({','.join('?' * len(kinds))})"
            base += sorted(kinds)
        query = f"SELECT {self._select} FROM events WHERE {where} ORDER BY seq LIMIT {_PAGE}"  # noqa: S608 - constant columns
        while True:
            with self._lock:
                rows = self._db.execute(query, (after, *base)).fetchall()
            for row in rows:
                yield _row_event(row)
            if len(rows) < _PAGE:
                return
            after = rows[-1][0]

    def hash_at(self, seq: int) -> str | None:
        """The hash of event `seq`, None when there is no such event."""
        with self._lock:
            row = self._db.execute("SELECT hash FROM events WHERE seq = ?", (seq,)).fetchone()
        return row[0] if row else None

    def first(self) -> Event | None:
        """The opening event alone: what a screen shows while the rest is read."""
        with self._lock:
            row = self._db.execute(
                f"SELECT {self._select} FROM events WHERE seq = 1"  # noqa: S608 - constant columns
            ).fetchone()
        return _row_event(row) if row else None

    def head(self) -> tuple[int, str]:
        with self._lock:
            row = self._db.execute(
                "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1"
            ).fetchone()
        return (row[0], row[1]) if row else (0, GENESIS)

    def verify(self, expected_head: str | None = None) -> Verification:
        """Recompute the chain; name the first event that was edited, removed, added or moved,
        and every event recorded earlier than the one before it."""
        chain, seen_head = _Chain(self.incident), expected_head is None
        with self._lock:
            rows = self._db.execute(f"SELECT {self._select} FROM events ORDER BY seq")  # noqa: S608
            for row in rows:
                chain.follow(row)
                if chain.broken:
                    return chain.verification
                seen_head = seen_head or chain.prev == expected_head
        found = chain.verification
        if not seen_head:
            return Verification(
                False,
                found.count,
                found.head,
                found.count + 1,
                f"the head {expected_head} is not in the journal: events were removed from its end",
                found.backwards,
            )
        return found


class _Chain:
    """The hash chain followed row by row: where it stands, and its first break once found."""

    def __init__(self, incident: str) -> None:
        self.incident, self.expected_seq, self.prev = incident, 1, GENESIS
        self.broken: Verification | None = None
        self.recorded = ""  # the last recorded_at followed
        self.backwards: list[BackwardStep] = []

    def follow(self, row: tuple[Any, ...]) -> Event | None:
        """The row as an event (None: unreadable); past a break, rows are read, not checked."""
        event = _readable(row)
        if self.broken is None:
            problem = _chain_problem(row, event, self.expected_seq, self.prev, self.incident)
            if problem is None:
                self.prev, self.expected_seq = row[10], self.expected_seq + 1
                # utc_text's fixed form makes text order time order: no parsing per row.
                if row[3] < self.recorded:
                    self.backwards.append(BackwardStep(row[0], row[3], self.recorded))
                self.recorded = row[3]
            else:
                at = min(row[0], self.expected_seq)
                self.broken = Verification(False, self.expected_seq - 1, self.prev, at, problem)
        return event

    @property
    def verification(self) -> Verification:
        found = self.broken or Verification(True, self.expected_seq - 1, self.prev)
        return replace(found, backwards=tuple(self.backwards))


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
    return chain_problem(event, expected_seq, prev, incident)


def chain_problem(event: Event, expected_seq: int, prev: str, incident: str) -> str | None:
    """Why `event` does not continue the chain at `expected_seq` after the hash `prev` (of
    `incident`), or None: what `verify` checks of each event, and a checkpoint of its tail."""
    seq = event.seq
    if seq != expected_seq:
        return f"event {expected_seq} is missing (event {seq} comes next)"
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
        self.last: Event | None = None  # the last event appended

    def events(self, after: int = 0) -> Iterator[Event]:
        return self._journal.events(after)

    def append(self, draft: EventDraft) -> Event:
        """Record `draft` after the head, never earlier than the head's time.

        A writer whose clock is behind the head (a clock set wrong, a faulty NTP step)
        first records so in a `clock.skewed` event, once until its clock catches up again,
        then writes at the head's time: `recorded_at` never goes backwards, and the record
        says whose clock was off and by how much."""
        unshowable = unshowable_in_name(draft.actor)
        if unshowable:  # the engine and the command line refuse first; this is the backstop
            raise JournalError(unshowable)
        journal = self._journal
        # One read of the head for its place in the chain and its time.
        row = self._db.execute(
            "SELECT seq, hash, recorded_at FROM events ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        seq, prev, head_time = (row[0], row[1], _moment(row[2])) if row else (0, GENESIS, None)
        clock = journal._clock()
        if head_time is None or clock >= head_time:
            journal._skew_said = False
            return self._insert(draft, clock, seq, prev)
        if not journal._skew_said:
            skew = {
                "writer_clock": utc_text(clock),
                "head_time": utc_text(head_time),
                "behind_s": (head_time - clock).total_seconds(),
            }
            said = self._insert(EventDraft(CLOCK_SKEWED, draft.actor, skew), head_time, seq, prev)
            seq, prev = said.seq, said.hash
            journal._skew_said = True
        return self._insert(draft, head_time, seq, prev)

    def _insert(self, draft: EventDraft, recorded: datetime, seq: int, prev: str) -> Event:
        journal = self._journal
        event, data = sealed(draft, journal.incident, seq + 1, prev, recorded, journal.signer)
        return self._row(event, data)

    def _mark(self, seq: int, digest: str) -> None:
        """Where this copy stands against the database it copies: one row, moved forward only
        (two processes of one machine copying at once must never set it back). Not the
        record: a note of this machine's, beside it."""
        self._db.execute("CREATE TABLE IF NOT EXISTS copied (seq INTEGER NOT NULL, hash TEXT)")
        if self._db.execute("SELECT count(*) FROM copied").fetchone()[0] == 0:
            self._db.execute("INSERT INTO copied VALUES (?, ?)", (seq, digest))
        else:
            self._db.execute(
                "UPDATE copied SET seq = ?, hash = ? WHERE seq < ?", (seq, digest, seq)
            )

    def _row(self, event: Event, data: str) -> Event:
        """Write `event` (its data stored as the text `data`) as it is."""
        self._db.execute(
            f"INSERT INTO events ({_SIGNED}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",  # noqa: S608
            (
                event.seq,
                event.incident,
                event.occurred_at,
                event.recorded_at,
                event.actor,
                event.kind,
                event.step,
                event.host,
                data,
                event.prev_hash,
                event.hash,
                event.signature,
            ),
        )
        self.last = event
        return event
