"""Events and their hash chain: each event's hash covers its content and the hash before it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64

# The one kind the journal writes itself, not the engine: a writer whose clock is behind the
# journal's head says so before its event is recorded at the head's time (store.py,
# Transaction.append). The engine re-exports it with its own kinds.
CLOCK_SKEWED = "clock.skewed"


def canonical_json(value: Any) -> str:
    """One spelling per value: sorted keys, no spaces, UTF-8 kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def utc_text(moment: datetime) -> str:
    """ISO 8601 in UTC with microseconds, so text order is time order."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_moment(text: str) -> datetime:
    """ISO 8601 (a journal's `...Z` included); without an offset the time is UTC, as IIS logs
    write it. ValueError when it is not a time."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class EventDraft:
    """What a command asks to record; the journal gives it a seq, a time and its hashes."""

    kind: str
    actor: str
    data: dict[str, Any] = field(default_factory=dict)
    step: str | None = None
    host: str | None = None
    occurred_at: datetime | None = None  # None: now; a responder may back-date


@dataclass(frozen=True)
class Event:
    seq: int
    incident: str
    occurred_at: str
    recorded_at: str
    actor: str
    kind: str
    step: str | None
    host: str | None
    data: dict[str, Any]
    prev_hash: str
    hash: str
    signature: str | None = None  # its writer's SSHSIG of `hash` (not part of what is hashed)

    def content(self) -> dict[str, Any]:
        """Everything the hash covers: all fields but the hash itself."""
        return {
            "seq": self.seq,
            "incident": self.incident,
            "occurred_at": self.occurred_at,
            "recorded_at": self.recorded_at,
            "actor": self.actor,
            "kind": self.kind,
            "step": self.step,
            "host": self.host,
            "data": self.data,
            "prev_hash": self.prev_hash,
        }

    def as_dict(self) -> dict[str, Any]:
        """The event whole, as the JSON timelines give it: its signature too, where it has one
        (what a reader needs to check it with ssh-keygen -Y verify, without irtool)."""
        whole = {**self.content(), "hash": self.hash}
        if self.signature is not None:
            whole["signature"] = self.signature
        return whole


def event_hash(content: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(content).encode("utf-8")).hexdigest()


# (actor, hash) -> the actor's signature of the hash, or None: set on a journal by the engine,
# which knows whose keys are whose (engine.signatures).
Signer = Callable[[str, str], "str | None"]


def sealed(
    draft: EventDraft,
    incident: str,
    seq: int,
    prev: str,
    recorded: datetime,
    signer: Signer | None = None,
) -> tuple[Event, str]:
    """`draft` as event `seq` of `incident` after the hash `prev`, recorded at `recorded`:
    hashed, signed by `signer` if there is one, and the text its data is stored as. What every
    journal backend writes, so each writes the same chain."""
    # Written once: the stored text, and (read back) the data as only JSON can hold it, what
    # the hash and every reader see. Canonical JSON reads back to the same text.
    data = canonical_json(draft.data)
    content = {
        "seq": seq,
        "incident": incident,
        "occurred_at": utc_text(draft.occurred_at or recorded),
        "recorded_at": utc_text(recorded),
        "actor": draft.actor,
        "kind": draft.kind,
        "step": draft.step,
        "host": draft.host,
        "data": json.loads(data),
        "prev_hash": prev,
    }
    digest = event_hash(content)
    # The writer signs the hash, which covers the event and, through prev_hash, every event
    # before it; an event that must be signed and cannot be is never written (the signer
    # raises inside the write's transaction).
    signature = signer(draft.actor, digest) if signer else None
    return Event(**content, hash=digest, signature=signature), data
