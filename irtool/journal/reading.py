"""A journal as an export reads it: one snapshot, read in passes, each streamed row by row.

An export reads the journal several times (the chain's verification with the fold, then the
events each section lists); every pass sees the journal as it stood when the first began,
even while a scribe appends. Rows come as SQLite steps to them, never all at once, so a
1,000,000-event journal is read in the memory of a few events. Time order is SQLite's own
sort, which spills to a temporary file rather than growing in memory.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from irtool.journal.events import Event

# The store's own helpers: this is its reader, beside it in the same package.
from irtool.journal.store import (
    BUSY_TIMEOUT_S,
    FORMAT_VERSION,
    JournalError,
    Verification,
    _Chain,
    _journal_error,
    _open_read_only,
    _readable,
    _writable,
    selected,
)

# Enough for one statement per batch of seqs: SQLite's own limit is 32,766 variables.
_BATCH = 500


class JournalSnapshot:
    """A read-only view of one incident's journal as it stood when this was opened."""

    def __init__(self, path: Path, incident: str) -> None:
        self.path, self.incident = Path(path), incident
        if not self.path.exists():
            raise JournalError(f"no journal at {self.path}")
        try:
            if _writable(self.path):
                self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
                self._db.execute("PRAGMA query_only=ON")  # an export never writes
            else:  # read-only media: as the journal itself opens it there
                self._db = _open_read_only(self.path)
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (1, FORMAT_VERSION):
                self._db.close()
                raise JournalError(f"{self.path} is not an irtool journal (format {version})")
            self._select = selected(version)
            # One read transaction for every pass: SQLite takes its snapshot at the first read.
            self._db.execute("BEGIN")
            self.last_seq: int = self._db.execute("SELECT max(seq) FROM events").fetchone()[0] or 0
        except sqlite3.DatabaseError as exc:
            if hasattr(self, "_db"):
                self._db.close()
            raise _journal_error(f"cannot open the journal {self.path}", exc, self.path) from None

    def close(self) -> None:
        self._db.close()  # ends the read transaction with it

    def __enter__(self) -> JournalSnapshot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _rows(
        self, kinds: Iterable[str] | None, order: str, where: str = ""
    ) -> Iterator[tuple[Any, ...]]:
        wanted = tuple(kinds) if kinds is not None else ()
        conditions = [where] if where else []
        if kinds is not None:
            conditions.append(f"kind IN ({','.join('?' * len(wanted))})")
        condition = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        # A cursor is iterated as SQLite steps: no row is read before it is wanted. (A loop,
        # not `yield from`, which would close the cursor of a pass left unfinished, and fail
        # once the snapshot is closed.)
        rows = self._db.execute(
            f"SELECT {self._select} FROM events {condition} ORDER BY {order}",  # noqa: S608 - constant text
            wanted,
        )
        for row in rows:  # noqa: UP028
            yield row

    def _in_time_order(
        self, kinds: Iterable[str] | None, written_in_order: bool
    ) -> Iterator[tuple[Any, ...]]:
        if not written_in_order:
            return self._rows(kinds, "occurred_at, seq")
        return _merged(
            self._rows(kinds, "seq", "occurred_at = recorded_at"),
            self._rows(kinds, "occurred_at, seq", "occurred_at != recorded_at"),
        )

    def events(
        self,
        kinds: Iterable[str] | None = None,
        order: Literal["seq", "time"] = "seq",
        *,
        written_in_order: bool = False,
    ) -> Iterator[Event]:
        """The readable events (of `kinds`, when given), in the journal's order or in the order
        things happened (by `occurred_at`, then the journal's order). An event whose data
        cannot be read at all is left out: the verification names a break at or before it.

        `written_in_order`: every event was recorded no earlier than the one before it (a
        chain verified whole, with no step backwards): then the events not back-dated are
        already in time order, and only the back-dated few are sorted."""
        kinds = list(kinds) if kinds is not None else None
        if order == "time":
            rows = self._in_time_order(kinds, written_in_order)
        else:
            rows = self._rows(kinds, "seq")
        for row in rows:
            event = _readable(row)
            if event is not None:
                yield event

    def at(self, seqs: Iterable[int]) -> Iterator[Event]:
        """The readable events of these seqs, in the order given (each seq once)."""
        wanted = list(dict.fromkeys(seqs))
        for start in range(0, len(wanted), _BATCH):
            batch = wanted[start : start + _BATCH]
            rows = self._db.execute(
                f"SELECT {self._select} FROM events "  # noqa: S608 - constant text
                f"WHERE seq IN ({','.join('?' * len(batch))})",
                batch,
            )
            found = {event.seq: event for row in rows if (event := _readable(row)) is not None}
            yield from (found[seq] for seq in batch if seq in found)

    def verifying(self) -> Verifying:
        """A pass in the journal's order that follows the hash chain as it goes."""
        return Verifying(self._rows(None, "seq"), self.incident)


def _merged(
    in_order: Iterator[tuple[Any, ...]], back_dated: Iterator[tuple[Any, ...]]
) -> Iterator[tuple[Any, ...]]:
    """Two runs of rows, each by (occurred_at, seq), as one (few rows are back-dated)."""
    early = next(back_dated, None)
    for row in in_order:
        while early is not None and (
            early[2] < row[2] or (early[2] == row[2] and early[0] < row[0])
        ):
            yield early
            early = next(back_dated, None)
        yield row
    if early is not None:
        yield early
        yield from back_dated


class Verifying:
    """Iterate it for every readable event (past a break too, as the journal now reads); once
    done, `verification` says whether the chain holds and where it first breaks."""

    def __init__(self, rows: Iterator[tuple[Any, ...]], incident: str) -> None:
        self._rows, self._chain = rows, _Chain(incident)

    def __iter__(self) -> Iterator[Event]:
        follow = self._chain.follow
        for row in self._rows:
            event = follow(row)
            if event is not None:
                yield event

    @property
    def verification(self) -> Verification:
        return self._chain.verification
