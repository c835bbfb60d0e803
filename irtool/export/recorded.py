"""An incident as an export reads it: the standing state, the verification, and the journal to
read the events from, section by section.

Read without writing: an export never adds to the journal it reports on. One pass in the
journal's order verifies the chain, folds the standing state (no evidence, notes, runs or calls:
those grow with every event) and checks the evidence; each section then streams the events it lists
from the same snapshot, so the memory an export takes does not grow with the incident.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from irtool.engine import kinds
from irtool.engine.custody import EvidenceCheck, EvidenceProblem, OpenRuns, gaps
from irtool.engine.state import Attempt, IncidentState, attempt_of
from irtool.evidence.store import EvidenceStore
from irtool.export.unfolded import Unfolded
from irtool.journal import Event
from irtool.journal.incidents import EVIDENCE_DIR, incident_dir, journal_path
from irtool.journal.reading import JournalSnapshot
from irtool.journal.store import Verification

_CUSTODY = frozenset({kinds.COMMAND_RAN, kinds.FILE_FETCHED})

# Kinds a section lists that a team writes by hand (a handful an hour, not one per command):
# the fold notes where each is, so a section reads them by seq instead of scanning the journal.
_NOTED = frozenset(
    {
        kinds.COMMAND_HANDED_OVER,
        kinds.HOST_FACTS,
        kinds.MEETING_CLOSED,
        kinds.RECONVENE_SET,
        kinds.DECISION_MADE,
        kinds.ACTION_REQUESTED,
        kinds.ACTION_APPROVED,
        kinds.ACTION_ROLLED_BACK,
        kinds.STEP_COMPLETED,
        kinds.POSTMORTEM_ANSWERED,
        kinds.CONTACT_ATTEMPTED,
        kinds.FINDING_RAISED,
    }
)


@dataclass
class Recorded:
    journal: JournalSnapshot  # open until `close`: every section reads from it
    opening: Event
    state: IncidentState  # the standing state: no evidence, notes, runs or calls (see `events`)
    verification: Verification
    evidence_files: int
    evidence_problems: list[EvidenceProblem]
    found: Unfolded
    counts: Counter[str]  # readable events by kind
    actors: set[str]  # everyone who wrote to the journal
    # The commands that applied or rolled back an action (a handful per action), and the first
    # command or fetch that collected something: what the sections and the review look up.
    containment: list[int]
    first_collected: int | None
    noted: dict[str, array[int]]  # where the events of each kind in _NOTED are
    # What the journal does not say yet (spooled records, runs whose process died, stray
    # partial files): stated, since an export never writes the recovery itself.
    gaps: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return self.verification.ok and not self.evidence_problems

    @property
    def events_read(self) -> int:
        """How many events could be read (past a break too, as they now read)."""
        return self.counts.total()

    def any(self, *of: str) -> bool:
        return any(self.counts[kind] for kind in of)

    def events(self, *of: str, order: Literal["seq", "time"] = "seq") -> Iterator[Event]:
        """The events of these kinds (all, when none is named), read as they are wanted. A
        kind the journal does not hold is not looked for."""
        wanted = [kind for kind in of if self.counts[kind]] if of else None
        if wanted == []:
            return iter(())
        if wanted and order == "seq" and _NOTED.issuperset(wanted):
            return self.at(sorted(seq for kind in wanted for seq in self.noted[kind]))
        v = self.verification
        written_in_order = v.ok and not v.backwards
        return self.journal.events(wanted, order, written_in_order=written_in_order)

    def at(self, seqs: Iterable[int]) -> Iterator[Event]:
        return self.journal.at(seqs)

    def attempts(self) -> dict[str, list[Attempt]]:
        """Every call made, by role, in order: calls a team makes by hand, not one per event."""
        found: dict[str, list[Attempt]] = {}
        for event in self.events(kinds.CONTACT_ATTEMPTED):
            found.setdefault(event.data["role"], []).append(attempt_of(event))
        return found

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

    def close(self) -> None:
        self.journal.close()

    def __enter__(self) -> Recorded:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_incident(incident: str) -> Recorded:
    """ValueError for a bad id, JournalError for an unreadable journal; a broken chain is data.
    The caller closes what it gets (`with read_incident(id) as recorded:`)."""
    path = journal_path(incident)
    if not path.exists():
        raise ValueError(f"no incident {incident}")
    journal = JournalSnapshot(path, incident)
    try:
        return _read(journal, incident)
    except BaseException:
        journal.close()
        raise


def _read(journal: JournalSnapshot, incident: str) -> Recorded:
    chain = journal.verifying()
    events = iter(chain)
    opening = next(events, None)
    if opening is None or opening.seq != 1 or opening.kind != kinds.INCIDENT_OPENED:
        # Without its opening event nothing can be folded: the runbook itself is in it.
        problem = chain.verification.problem
        raise ValueError(
            f"incident {incident} cannot be read: its opening event is missing or unreadable"
            + (f" ({problem})" if problem else "")
        )
    state = IncidentState.opened(opening, records=False)
    store = EvidenceStore(incident_dir(incident) / EVIDENCE_DIR, create=False)
    check, runs, found = EvidenceCheck(store), OpenRuns(), Unfolded()
    counts: Counter[str] = Counter({opening.kind: 1})
    actors = {opening.actor}
    containment: list[int] = []
    first_collected = None
    noted: dict[str, array[int]] = {kind: array("q") for kind in _NOTED}
    found.see(opening)
    for event in events:
        state.apply(event)
        check.see(event)
        runs.see(event)
        found.see(event)
        counts[event.kind] += 1
        actors.add(event.actor)
        if event.kind in _NOTED:
            noted[event.kind].append(event.seq)
        if event.kind in _CUSTODY:
            purpose = event.data.get("purpose")
            if purpose in ("action", "rollback") and event.kind == kinds.COMMAND_RAN:
                containment.append(event.seq)
            elif purpose == "collect" and first_collected is None:
                first_collected = event.seq if event.data.get("exit_status") == 0 else None
    return Recorded(
        journal,
        opening,
        state,
        chain.verification,
        check.checked,
        check.problems,
        found,
        counts,
        actors,
        containment,
        first_collected,
        noted,
        gaps(incident_dir(incident), runs, store),
    )
