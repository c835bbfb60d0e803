"""`irtool sync`: what a responder wrote while the team's database was out of reach, given to
it in order, nothing lost.

While offline, a responder's events chain on this machine's copy of the incident, after the
last event the copy took from the database (journal.team). Meanwhile others may have written
to the database, so those events cannot go there as they are: their seqs and hashes belong
to another chain. Sync therefore:

1. keeps the offline chain whole, as `journal.offline-SEQ-TIME.sqlite` beside the copy: it
   still verifies on its own, and is what every synced event points back to;
2. makes the copy anew from the database;
3. writes each offline event to the database, in order, as a new event of its chain (the
   same kind, actor, data and time it happened), with its `origin`: the device, the seq and
   the hash it had offline. Its writer's key signs it again, since it is a new event.

A conflict is resolved as the engine resolves two terminals writing at once: the later one
is refused. An offline event that moved a step on (completed it, say) while the database
shows the step moved on differently is not written as it was; a note says what it was, who
wrote it offline and why it was refused, with the event whole in its data.

Sync can be run again at any time: an offline event already in the database (by its origin
hash) is passed over, so a sync cut short (the database lost again, a key not in the agent)
goes on where it stopped.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from irtool.engine import kinds
from irtool.engine.refusal import Refused
from irtool.engine.session import IncidentSession
from irtool.engine.state import IncidentState
from irtool.journal import Event, EventDraft, Journal, JournalError
from irtool.journal.backends import is_team
from irtool.journal.events import parse_moment
from irtool.journal.incidents import journal_path
from irtool.journal.team import TeamJournal

OFFLINE_PREFIX = "journal.offline-"


@dataclass
class Synced:
    """What a sync did."""

    given: list[Event] = field(default_factory=list)  # offline events now in the database
    refused: list[Event] = field(default_factory=list)  # notes written in place of conflicts
    kept: list[Path] = field(default_factory=list)  # the offline chains, kept beside the copy


# The data fields that name another event by its seq: an offline event's point at the offline
# chain's seqs, which the database's chain gives other numbers.
REFERENCES = ("corrects", "run", "undoes", "finding", "request")
REFERENCE_LISTS = ("findings",)


def offline_copies(incident: str) -> list[Path]:
    """The offline chains of `incident` this machine keeps, oldest first (by when each was
    set aside: `journal.offline-SEQ-TIME.sqlite`)."""
    directory = journal_path(incident).parent
    found = directory.glob(f"{OFFLINE_PREFIX}*.sqlite")
    return sorted(found, key=lambda p: (p.name.rsplit("-", 1)[-1], p.name))


def sync(incident: str, actor: str) -> Synced:
    """Give the database what this machine wrote offline. JournalError when the database
    cannot be reached (nothing changes then); Refused when this is not a team incident."""
    if not is_team(incident):
        raise Refused(f"{incident} is kept on this machine alone: there is nothing to sync with")
    synced = Synced()
    session = IncidentSession.open(incident)
    try:
        journal = session.journal
        assert isinstance(journal, TeamJournal)
        journal.reconnect()
        if journal.server is None:
            raise JournalError(journal.offline_reason or "cannot reach the team's database")
        if journal.unsynced():
            known = journal.server_head()
            session.close_journal()
            _keep_offline_chain(incident, journal.path, (known.seq or 0) if known else 0)
            session = IncidentSession.open(incident)  # the copy made anew, from the database
    except BaseException:
        session.close_journal()
        raise
    try:
        for chain in offline_copies(incident):
            _give(session, chain, actor, synced)
            synced.kept.append(chain)
    finally:
        session.close_journal()
    return synced


def _keep_offline_chain(incident: str, path: Path, upto: int) -> Path:
    """Move the copy (`path`: its events past `upto` are this machine's own) aside under a
    name of its own."""
    if path.with_name(f"{path.name}-wal").exists():
        raise Refused(
            f"another irtool on this machine has {incident} open (its journal's -wal is in "
            "use): close it, then sync"
        )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    kept = path.with_name(f"{OFFLINE_PREFIX}{upto}-{stamp}.sqlite")
    path.rename(kept)  # the directory stays marked the team's: the copy is made anew there
    return kept


def _give(session: IncidentSession, chain: Path, actor: str, synced: Synced) -> None:
    device = socket.gethostname()
    with Journal(chain, session.state.id) as offline:
        copied = offline.copied()  # the last event it took from the database: then its own
        upto = copied[0] if copied else 0
        before = offline.events(upto=upto)
        first = next(before, None)
        if first is None:
            return
        mine = IncidentState.opened(first, records=False)  # the step statuses offline
        for event in before:
            mine.apply(event)
        # Offline seq -> its seq in the database, for the events given already (a sync cut
        # short, run again) and as each is given: what an offline event names, it names there.
        given = _origins(session, chain.name)
        for event in offline.events(after=upto):
            step = mine.steps.get(event.step) if event.step else None
            was = step.status if step else None
            mine.apply(event)
            if event.seq in given:
                continue
            moved = step is not None and mine.steps[event.step or ""].status is not was
            origin = {
                "device": device,
                "copy": chain.name,
                "seq": event.seq,
                "hash": event.hash,
                "recorded_at": event.recorded_at,
            }
            event = replace(event, data=_renumbered(event.data, given, upto))
            written, refused = _write(session, event, origin, was if moved else None, actor)
            (synced.refused if refused else synced.given).append(written)
            given[event.seq] = written.seq


def _origins(session: IncidentSession, copy: str) -> dict[int, int]:
    """The offline events of `copy` the database holds already: offline seq -> seq there."""
    found = {}
    for event in session.journal.events():
        origin = event.data.get("origin")
        if isinstance(origin, dict) and origin.get("copy") == copy:
            found[int(origin.get("seq", 0))] = event.seq
    return found


def _renumbered(data: dict[str, Any], given: dict[int, int], upto: int) -> dict[str, Any]:
    """`data` with each seq it names of the offline chain's own events (past `upto`, the last
    the database holds too) given the number that event has in the database."""

    def there(seq: object) -> object:
        return given.get(seq, seq) if isinstance(seq, int) and seq > upto else seq

    moved = {key: there(data[key]) for key in REFERENCES if key in data}
    moved |= {
        key: [there(seq) for seq in data[key]]
        for key in REFERENCE_LISTS
        if isinstance(data.get(key), list)
    }
    return {**data, **moved}


def _write(
    session: IncidentSession, event: Event, origin: dict[str, Any], was: Any, actor: str
) -> tuple[Event, bool]:
    """`event` written to the database with its origin; or, where the step it moved on (from
    the status `was`) has moved on there meanwhile, a note by `actor` saying so (True)."""
    with session.journal.transaction() as tx:
        for other in tx.events(after=session.state.last_seq):
            session.state.apply(other)
        step = session.state.steps.get(event.step) if event.step and was is not None else None
        # Once closed, only the post-mortem moves on (engine: what a closed incident takes).
        closed = session.state.closed and not (
            event.kind == kinds.POSTMORTEM_ANSWERED or event.data.get("answers")
        )
        refused = step is not None and (step.status is not was or closed)
        if refused:
            assert step is not None
            why = (
                f"incident {session.state.id} was closed meanwhile"
                if step.status is was
                else f"the step was already {step.status} by {step.by} at {step.at}"
            )
            draft = EventDraft(
                kinds.NOTE_ADDED,
                actor,
                {
                    "text": (
                        f"Refused at sync: {event.actor}'s {event.kind} of step '{event.step}' "
                        f"at {event.occurred_at}, written offline on {origin['device']} "
                        f"(its event {event.seq} there), was not applied: {why}."
                    ),
                    "origin": origin,
                    "refused_offline": event.as_dict(),
                },
                step=event.step,
            )
        else:
            draft = EventDraft(
                event.kind,
                event.actor,
                {**event.data, "origin": origin},
                event.step,
                event.host,
                occurred_at=parse_moment(event.occurred_at),
            )
        written = tx.append(draft)
    session.state.apply(written)
    return written, refused
