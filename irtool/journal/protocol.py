"""What the engine asks of a journal, whichever keeps it: SQLite on this machine
(store.Journal) or the team's database through this machine's copy (team.TeamJournal).
journal.backends says which an incident has; the engine never does."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import Protocol

from irtool.journal.events import Event, EventDraft, Signer


class Appending(Protocol):
    """Inside a journal's transaction: what others appended, then what we append."""

    last: Event | None

    def events(self, after: int = 0) -> Iterator[Event]: ...

    def append(self, draft: EventDraft) -> Event: ...


class Watching(Protocol):
    def stop(self) -> None: ...


Heard = Callable[[int], None]  # an event seq was committed by someone (0: read all you lack)
Connection = Callable[[bool, str], None]  # the link to the journal came or went, and why


class IncidentJournal(Protocol):
    incident: str
    path: Path  # this machine's journal file: the incident's directory is its parent
    signer: Signer | None

    @property
    def read_only(self) -> bool: ...

    def now(self) -> datetime: ...

    def close(self) -> None: ...

    def transaction(
        self, busy_timeout: float | None = None
    ) -> AbstractContextManager[Appending]: ...

    def append(self, draft: EventDraft) -> Event: ...

    def events(
        self, after: int = 0, *, upto: int | None = None, kinds: Collection[str] | None = None
    ) -> Iterator[Event]: ...

    def hash_at(self, seq: int) -> str | None: ...

    def first(self) -> Event | None: ...

    def head(self) -> tuple[int, str]: ...

    @property
    def connection(self) -> str | None:
        """What a screen's header says of where writes go: None for a journal of this machine
        alone, which is always there."""
        ...

    def watch(self, heard: Heard, linked: Connection) -> Watching | None:
        """Be told as others commit events (None: this journal cannot tell; read it now and
        then instead)."""
        ...

    def reconnect(self) -> bool:
        """Try again to reach where the journal is kept; True when writes go there."""
        ...

    def gather_evidence(self, wanted: Collection[str]) -> list[str]:
        """Evidence files of `wanted` this machine lacks, fetched from where the journal is
        kept and checked against their hashes (another responder collected them); those
        fetched."""
        ...
