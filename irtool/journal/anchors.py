"""Anchors: a head of an incident's chain (an event's seq and hash) kept somewhere the
journal's writer cannot reach, so that a journal cut short or rewritten behind it is caught.

The hash chain alone proves that the events form one unbroken chain, not that it is the
chain that was written: whoever can write the file can drop its tail or rewrite it, hash by
hash, from any event on. An anchor pins one event: the journal must still hold event `seq`
with that hash, and since each hash covers every event before it, all of them unchanged.

Two kinds of anchor are checked by `verify`:

- the head this machine last saw of each incident: irtool keeps it outside the incident's
  directory (an archive or a copy of the incident carries none), moved on as this machine
  writes and verifies, never back;
- an anchor written down elsewhere: `irtool anchor ID` prints one line to paste into a
  ticket or a chat, and `verify --head` takes it back.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from irtool.journal.events import Event
from irtool.journal.incidents import home, is_incident_id, journal_path

if TYPE_CHECKING:
    from irtool.journal.store import Verification

_ANCHOR = re.compile(
    r"\s*(?P<incident>ir-\d{8}-\d{6}-[0-9a-f]{4})\s+event\s+(?P<seq>\d+)\s+"
    r"sha256:(?P<hash>[0-9a-f]{64})\s*"
)
_HASH = re.compile(r"\s*(?P<hash>[0-9a-f]{64})\s*")


@dataclass(frozen=True)
class Anchor:
    """Event `seq` of `incident` has hash `hash`; `seq` None: a bare hash, as `verify` has
    printed it, found wherever it is in the chain."""

    incident: str
    seq: int | None
    hash: str

    def __str__(self) -> str:
        return f"{self.incident} event {self.seq} sha256:{self.hash}"

    @classmethod
    def parse(cls, text: str, incident: str) -> Anchor:
        """An anchor as `irtool anchor` prints it, or a bare head hash; ValueError if `text`
        is neither, or is an anchor of another incident."""
        found = _ANCHOR.fullmatch(text)
        if found:
            if found["incident"] != incident:
                raise ValueError(f"that anchor is of incident {found['incident']}, not {incident}")
            if int(found["seq"]) < 1:
                raise ValueError("an anchor names an event: its seq is 1 or more")
            return cls(incident, int(found["seq"]), found["hash"])
        bare = _HASH.fullmatch(text.lower())
        if bare:
            return cls(incident, None, bare["hash"])
        raise ValueError(
            f"not an anchor: '{text[:80]}' (expected '{incident} event SEQ sha256:HASH', as "
            "irtool anchor prints it, or a head hash)"
        )


@dataclass
class Check:
    """One anchor `verify` holds the journal to, and what is wrong, once checked."""

    anchor: Anchor
    where: str  # whose anchor, in a message
    problem: str | None = None


def checks(incident: str, given: Iterable[str]) -> list[Check]:
    """The anchors to hold `incident`'s journal to: each of `given` (ValueError if one is not
    an anchor of it), then the head this machine saw."""
    found = [Check(Anchor.parse(text, incident), "the anchor given (--head)") for text in given]
    known = seen(incident)
    if known is not None:
        found.append(Check(known, "the head this machine saw"))
    return found


def judge(
    found: Iterable[Check], count: int, hash_at: Callable[[int], str | None], hashes: set[str]
) -> None:
    """Say of each check what is wrong with a chain of `count` events whose event seq has
    hash `hash_at(seq)` and which holds the hashes `hashes` (those of the bare ones met)."""
    for check in found:
        if check.anchor.seq is None:
            if check.anchor.hash not in hashes:
                check.problem = (
                    f"the head {check.anchor.hash} is not in the journal: events were removed "
                    "from its end"
                )
        else:
            check.problem = behind(check.anchor, count, hash_at, check.where)


def behind(
    anchor: Anchor, count: int, hash_at: Callable[[int], str | None], where: str
) -> str | None:
    """Why a chain of `count` events (whose event seq has hash `hash_at(seq)`) is not the one
    `anchor` pins, or None. `where` names the anchor in the message."""
    if anchor.seq is None:
        return None  # a bare hash: `judge` looks for it among those met
    if anchor.seq > count:
        return (
            f"the journal ends at event {count}, but {where} is event {anchor.seq}: events "
            "were removed from its end"
        )
    if hash_at(anchor.seq) != anchor.hash:
        return (
            f"event {anchor.seq} is not the one {where} pins: the journal was rewritten behind it"
        )
    return None


# -- the heads this machine has seen -----------------------------------------------------


def keeps_heads(path: Path, incident: str) -> bool:
    """Heads are kept of the incidents of this irtool home, opened where they live: not of a
    journal opened from elsewhere (an archive, a copy being examined)."""
    return is_incident_id(incident) and Path(path).absolute() == journal_path(incident).absolute()


def seen_path(incident: str) -> Path:
    """Where this machine keeps the head it saw of `incident`."""
    return home().parent / "heads" / f"{incident}.head"


def seen(incident: str) -> Anchor | None:
    """The furthest head of `incident` this machine has written or verified, if any."""
    if not is_incident_id(incident):
        return None
    try:
        return Anchor.parse(seen_path(incident).read_text(encoding="ascii"), incident)
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def forget(incident: str) -> None:
    """Forget the head seen of `incident`: a journal of that id made new starts its own."""
    if is_incident_id(incident):
        with contextlib.suppress(OSError):
            seen_path(incident).unlink(missing_ok=True)


def saw(anchor: Anchor) -> None:
    """Keep `anchor` as the head this machine has seen, unless it has seen one further on.
    Best effort: a home that cannot be written only loses this check, never the event."""
    if anchor.seq is None or not is_incident_id(anchor.incident):
        return
    path = seen_path(anchor.incident)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(path.with_name(f".{path.name}.lock"), "a") as lock:
            # Two writers at once: the one further on wins, whichever comes last.
            fcntl.flock(lock, fcntl.LOCK_EX)
            known = seen(anchor.incident)
            if known is not None and known.seq is not None and known.seq >= anchor.seq:
                return
            temporary.write_text(f"{anchor}\n", encoding="ascii")
            os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink()


def verified_chain(
    incident: str, heads: Iterable[str], see: Callable[[Event], None] | None = None
) -> tuple[Verification, list[Check]]:
    """The hash chain verified in one pass over a snapshot of the journal (each event shown
    to `see` as it goes: a million events are never held at once), and held to its anchors:
    each of `heads`, then the head this machine saw. A chain that holds is seen to here."""
    from irtool.journal.reading import JournalSnapshot  # it reads the store, which keeps heads

    held = checks(incident, heads)  # ValueError: one line, as any bad input
    seqs = {c.anchor.seq for c in held if c.anchor.seq is not None}
    bare = {c.anchor.hash for c in held if c.anchor.seq is None}
    pinned: dict[int, str] = {}  # seq -> hash, of the events the anchors name
    found: set[str] = set()  # the bare hashes met
    last = 0
    with JournalSnapshot(journal_path(incident), incident) as journal:
        chain = journal.verifying()
        for event in chain:
            if see is not None:
                see(event)
            last = max(last, event.seq)
            if event.seq in seqs:
                pinned[event.seq] = event.hash
            if event.hash in bare:
                found.add(event.hash)
        result = chain.verification
    judge(held, last, pinned.get, found)
    behind = [c.problem for c in held if c.problem]
    if result.ok and behind:
        cut = min((c.anchor.seq or last + 1 for c in held if c.problem), default=last + 1)
        result = replace(
            result, ok=False, first_bad_seq=min(cut, last + 1), problem="; ".join(behind)
        )
    if result.ok:  # this machine has now seen the chain whole, up to here
        saw(Anchor(incident, result.count, result.head))
    return result, held
