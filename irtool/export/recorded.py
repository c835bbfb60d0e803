"""An incident as an export reads it: every event, the folded state, and the verification.

Read once, without writing: an export never adds to the journal it reports on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from irtool.engine.custody import EvidenceProblem, check_evidence, custody_gaps
from irtool.engine.state import IncidentState
from irtool.evidence.store import EvidenceStore
from irtool.journal import Event, Journal
from irtool.journal.incidents import EVIDENCE_DIR, incident_dir, journal_path
from irtool.journal.store import Verification


@dataclass(frozen=True)
class Recorded:
    events: list[Event]
    state: IncidentState
    verification: Verification
    evidence_files: int
    evidence_problems: list[EvidenceProblem]
    # What the journal does not say yet (spooled records, runs whose process died, stray
    # partial files): stated, since an export never writes the recovery itself.
    gaps: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return self.verification.ok and not self.evidence_problems

    def broken(self) -> list[str]:
        """What is wrong, one line each; empty when the journal and evidence are intact."""
        lines = []
        if not self.verification.ok:
            lines.append(
                f"journal chain BROKEN at event {self.verification.first_bad_seq}: "
                f"{self.verification.problem}"
            )
        lines += [f"evidence {problem}" for problem in self.evidence_problems]
        return lines


def read_incident(incident: str) -> Recorded:
    """ValueError for a bad id, JournalError for an unreadable journal; a broken chain is data."""
    path = journal_path(incident)
    if not path.exists():
        raise ValueError(f"no incident {incident}")
    with Journal(path, incident) as journal:
        verification, events = journal.verified_events()
    if not events or events[0].seq != 1 or events[0].kind != "incident.opened":
        # Without its opening event nothing can be folded: the runbook itself is in it.
        raise ValueError(
            f"incident {incident} cannot be read: its opening event is missing or unreadable"
            + (f" ({verification.problem})" if verification.problem else "")
        )
    state = IncidentState.opened(events[0])
    for event in events[1:]:
        state.apply(event)
    store = EvidenceStore(incident_dir(incident) / EVIDENCE_DIR, create=False)
    files, problems = check_evidence(iter(events), store)
    gaps = custody_gaps(incident_dir(incident), events, store)
    return Recorded(events, state, verification, files, problems, gaps)
