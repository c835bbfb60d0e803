"""The incident journal: append-only, hash-chained events in SQLite."""

from irtool.journal.events import GENESIS, Event, EventDraft, canonical_json, event_hash
from irtool.journal.store import Journal, JournalBusy, JournalError, JournalFull, Verification

__all__ = [
    "GENESIS",
    "Event",
    "EventDraft",
    "Journal",
    "JournalBusy",
    "JournalError",
    "JournalFull",
    "Verification",
    "canonical_json",
    "event_hash",
]
