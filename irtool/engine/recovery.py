"""What a dead or blocked writer left behind, made part of the record.

Run by every command that opens an incident for writing, and by
`irtool incident recover`:
1. custody records waiting in the spool (the journal was busy or full) are appended;
2. a command whose irtool process died mid-run (kill -9, a closed terminal) left a
   marker and its partial output: the output is kept as evidence and a `command.ran`
   marked `interrupted` records it, so an action that may have changed a host can be
   seen and rolled back;
3. a run with no `run.finished` whose process is gone (its step's run lock is free) is
   finished as `interrupted`, naming what it had collected.
A run still in flight in another process holds its lock and is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from irtool.engine import kinds
from irtool.engine.session import IncidentSession
from irtool.engine.state import RunState
from irtool.evidence.store import EvidenceStore, Orphan
from irtool.journal import EventDraft, JournalError
from irtool.journal.incidents import EVIDENCE_DIR
from irtool.journal.runlock import is_running
from irtool.journal.spool import Pending

# On open, how long to wait for a busy journal before leaving the records spooled: a
# command that only reads must not hang behind another writer.
OPEN_WAIT_S = 0.5


@dataclass
class Recovery:
    appended: int = 0  # spooled records now in the journal
    commands: int = 0  # interrupted commands recorded with what they had collected
    runs: list[int] = field(default_factory=list)  # runs finished as interrupted
    pending: list[Pending] = field(default_factory=list)  # still waiting for the journal
    problem: str | None = None  # why they wait

    def lines(self) -> list[str]:
        """What a face tells the responder, one line each."""
        said = []
        if self.appended:
            said.append(f"appended {self.appended} custody record(s) that were waiting")
        if self.commands:
            said.append(f"kept the output of {self.commands} interrupted command(s) as evidence")
        for run in self.runs:
            said.append(f"run {run} was interrupted: its process ended before it finished")
        if self.pending:
            why = self.problem or "not yet appended"
            said.append(f"{len(self.pending)} custody record(s) pending: {why}")
        return said


def recover(
    session: IncidentSession, actor: str, busy_timeout: float | None = OPEN_WAIT_S
) -> Recovery:
    found = Recovery()
    if session.journal.read_only:
        found.pending = session.spool.pending()
        found.problem = "the incident directory is read-only"
        return found
    try:
        found.appended = len(session.append_pending(busy_timeout))
        store = EvidenceStore(session.directory / EVIDENCE_DIR, create=False)
        for orphan in list(store.orphans()):
            found.commands += _keep(session, store, orphan, actor, busy_timeout)
        for run in session.state.unfinished_runs():
            if not is_running(session.directory, run.step):
                _finish(session, run.seq, actor, busy_timeout)
                found.runs.append(run.seq)
    except JournalError as busy:
        found.problem = str(busy)
    found.pending = session.spool.pending()
    return found


def _keep(
    session: IncidentSession,
    store: EvidenceStore,
    orphan: Orphan,
    actor: str,
    busy_timeout: float | None,
) -> int:
    """Record what a dead process left of one host's commands; how many were recorded."""
    facts = orphan.facts
    step = str(facts.get("step", ""))
    if is_running(session.directory, step):
        return 0  # a live run's host
    run, host = facts.get("run"), facts.get("host")
    recorded = {(e.run, e.host, e.item) for e in session.state.evidence}
    count = 0
    for index, command in enumerate(facts.get("commands", [])):
        # Recorded already (the process died after its record), or never started.
        if (run, host, command.get("item")) in recorded or not orphan.started(store, index):
            continue
        kept = store.keep_orphan(orphan, index)
        data = {key: facts.get(key) for key in _HOST_FACTS}
        data.update(
            item=command.get("item"),
            shell=command.get("shell"),
            command=command.get("command"),
            **({"variant": command["variant"]} if command.get("variant") else {}),
            started_at=None,  # the marker knows the host's start, not the command's
            ended_at=None,
            exit_status=None,
            failure=(
                f"interrupted: the irtool process (pid {facts.get('pid')}) ended before the "
                "command finished; what it had received is kept"
            ),
            interrupted=True,
            recovered_by=actor,
            **{stream: item.as_dict() for stream, item in kept.items()},
        )
        session.record_custody(
            EventDraft(kinds.COMMAND_RAN, actor, data, step=step, host=str(host)), busy_timeout
        )
        count += 1
    orphan.marker.unlink(missing_ok=True)
    return count


_HOST_FACTS = (
    "run", "purpose", "transport", "address", "port", "identity", "collected_by",
)  # fmt: skip


def _finish(session: IncidentSession, seq: int, actor: str, busy_timeout: float | None) -> None:
    state = session.state
    run = state.open_runs[seq]
    mine = [e for e in state.evidence if e.run == seq]
    ok = sorted(
        h
        for h in run.hosts
        if (done := [e for e in mine if e.host == h])
        and all(e.exit_status == 0 and not e.interrupted for e in done)
    )
    failed = {h: "interrupted before the host finished" for h in run.hosts if h not in ok}
    session.record_custody(
        EventDraft(
            kinds.RUN_FINISHED,
            actor,
            {
                "run": seq,
                "purpose": run.purpose,
                "ok": ok,
                "failed": failed,
                "cancelled": False,
                "interrupted": True,
                "reason": (
                    f"the irtool process that ran it (pid {run.pid} on {run.machine}) ended "
                    "before the run finished"
                ),
                "collected": len(mine),
            },
            step=run.step,
        ),
        busy_timeout,
    )


def unfinished(session: IncidentSession) -> list[tuple[RunState, bool]]:
    """Runs with no run.finished, each with whether a live process still holds it."""
    return [
        (run, is_running(session.directory, run.step)) for run in session.state.unfinished_runs()
    ]
