"""A team incident read whole on this machine (verify, export): its copy brought up to date
with the team's database first, this machine's evidence given to it and what others
collected fetched, each file checked against its hash."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from irtool.engine.custody import EVIDENCE_KINDS, named_files
from irtool.journal import JournalError
from irtool.journal.backends import open_journal
from irtool.journal.team import TeamJournal


@dataclass(frozen=True)
class Behind:
    """Why this machine's copy is not the team's record as it stands now."""

    why: str
    unsynced: int = 0  # events written here offline, not yet given to the database


def catch_up(incident: str, *, verify: bool = False) -> Behind | None:
    """None once the copy and its evidence are up to date with the database; else why not
    (the database cannot be reached, or the copy holds offline events: the copy is then read
    as it stands). `verify`: the database's chain is also recomputed whole, row by row,
    there: an event rewritten behind what this copy holds (its hash column left as it was)
    is found there, not only here. JournalError names what the database no longer holds as
    it was."""
    journal = open_journal(incident)
    try:
        if not isinstance(journal, TeamJournal):
            return None
        if journal.server is None:
            return Behind(journal.offline_reason or "the team's database is out of reach")
        if verify:
            found = journal.server.verify()
            if not found.ok:
                raise JournalError(f"event {found.first_bad_seq}: {found.problem}")
        # A local file altered is this machine's problem, and verify names it from the copy.
        with contextlib.suppress(JournalError):
            journal.share_evidence()
        wanted = {
            str(item.get("sha256"))
            for event in journal.events(kinds=EVIDENCE_KINDS)
            for _, item in named_files(event)
            if item.get("sha256")
        }
        journal.gather_evidence(wanted)
        waiting = journal.unsynced()
        if waiting:
            return Behind(
                f"this machine's copy holds {waiting} event(s) written offline that the team's "
                f"database does not (irtool sync {incident} gives them)",
                waiting,
            )
        return Behind(journal.offline_reason) if journal.offline_reason else None
    finally:
        journal.close()
