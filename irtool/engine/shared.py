"""A team incident read whole on this machine (verify, export): its copy brought up to date
with the team's database first, this machine's evidence given to it and what others
collected fetched, each file checked against its hash."""

from __future__ import annotations

from irtool.engine.custody import EVIDENCE_KINDS, named_files
from irtool.journal import JournalError
from irtool.journal.backends import open_journal
from irtool.journal.team import TeamJournal


def catch_up(incident: str, *, verify: bool = False) -> str | None:
    """None once the copy and its evidence are up to date; else why not (the database cannot
    be reached: the copy is read as it stands). `verify`: the database's chain is also
    recomputed whole, row by row, there: an event rewritten behind what this copy holds
    (its hash column left as it was) is found there, not only here. JournalError names what
    the database no longer holds as it was."""
    journal = open_journal(incident)
    try:
        if not isinstance(journal, TeamJournal) or journal.server is None:
            return journal.offline_reason if isinstance(journal, TeamJournal) else None
        if verify:
            found = journal.server.verify()
            if not found.ok:
                raise JournalError(f"event {found.first_bad_seq}: {found.problem}")
        journal.share_evidence()
        wanted = {
            str(item.get("sha256"))
            for event in journal.events(kinds=EVIDENCE_KINDS)
            for _, item in named_files(event)
            if item.get("sha256")
        }
        journal.gather_evidence(wanted)
        return journal.offline_reason
    finally:
        journal.close()
