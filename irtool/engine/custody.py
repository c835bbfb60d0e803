"""Checking the chain of custody: every evidence file an event names is there, whole."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from irtool.engine import kinds
from irtool.evidence.store import EvidenceStore
from irtool.journal import Event
from irtool.journal.runlock import is_running
from irtool.journal.spool import Spool

_STREAMS = ("stdout", "stderr", "file")


@dataclass(frozen=True)
class EvidenceProblem:
    seq: int
    host: str | None
    problem: str

    def __str__(self) -> str:
        return f"event {self.seq} ({self.host}): {self.problem}"


def check_evidence(
    events: Iterable[Event], store: EvidenceStore
) -> tuple[int, list[EvidenceProblem]]:
    """(files checked, problems): each file hashed again and compared with its custody event."""
    checked, problems = 0, []
    seen: dict[str, str | None] = {}
    for event in events:
        probe = event.kind in (kinds.HOST_FACTS, kinds.HOST_WARNING)
        if event.kind not in (kinds.COMMAND_RAN, kinds.FILE_FETCHED) and not probe:
            continue
        # What a host said it is on first contact (read or not) is evidence too.
        for stream in ("output",) if probe else _STREAMS:
            item = event.data.get(stream)
            if not item:
                continue
            sha256, size = item.get("sha256", ""), item.get("size")
            if sha256 not in seen:
                checked += 1
                try:
                    seen[sha256] = store.check(sha256, size)
                except ValueError as bad:  # the event itself was tampered with
                    seen[sha256] = str(bad)
            if seen[sha256]:
                problems.append(EvidenceProblem(event.seq, event.host, f"{stream}: {seen[sha256]}"))
    return checked, problems


def custody_gaps(incident_dir: Path, events: Iterable[Event], store: EvidenceStore) -> list[str]:
    """What the journal does not yet say: records waiting in the spool, runs with no end
    (in flight, or left by a process that died), and partial evidence files no record or
    marker accounts for. One line each; empty when the record is whole."""
    gaps = [
        f"PENDING {p.describe()}: not yet in the journal (irtool incident recover)"
        for p in Spool(incident_dir).pending()
    ]
    started: dict[int, Event] = {}
    for event in events:
        if event.kind == kinds.RUN_STARTED:
            started[event.seq] = event
        elif event.kind == kinds.RUN_FINISHED:
            started.pop(event.data.get("run", -1), None)
    for seq, run in started.items():
        live = is_running(incident_dir, run.step or "")
        state = "still running" if live else "interrupted: its process is gone"
        gaps.append(
            f"RUN {seq} ({run.data.get('purpose')} of {run.step} by {run.actor}, pid "
            f"{run.data.get('pid')}) has not finished: {state}"
        )
    accounted = {name for orphan in store.orphans() for name in orphan.names()}
    for path in sorted(store.leftovers(accounted)):
        gaps.append(
            f"LEFTOVER {path.name} ({path.stat().st_size} bytes) in the evidence directory: "
            "no record or run accounts for it"
        )
    return gaps
