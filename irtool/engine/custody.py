"""Checking the chain of custody: every evidence file an event names is there, whole.

Both checks read each event once, in the journal's order, and keep only what they must: the
files already hashed and the runs not yet finished. An export feeds them the events of its
one pass over the journal (`EvidenceCheck`, `OpenRuns`), as `verify` does its own."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


EVIDENCE_KINDS = (kinds.COMMAND_RAN, kinds.FILE_FETCHED, kinds.HOST_FACTS, kinds.HOST_WARNING)


def named_files(event: Event) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each evidence file `event` names: its stream, and what the event says of it."""
    if event.kind not in EVIDENCE_KINDS:
        return
    # What a host said it is on first contact (read or not) is evidence too.
    probe = event.kind in (kinds.HOST_FACTS, kinds.HOST_WARNING)
    for stream in ("output",) if probe else _STREAMS:
        item = event.data.get(stream)
        if item:
            yield stream, item


@dataclass
class EvidenceCheck:
    """Each evidence file hashed again, once however many events name it, and compared with
    its custody event."""

    store: EvidenceStore
    checked: int = 0
    problems: list[EvidenceProblem] = field(default_factory=list)
    # Digests of the files that matched, as 32 bytes each (a million files hold 50 MB of
    # hex text); what did not match, with why, by the name the event gave.
    _whole: set[bytes] = field(default_factory=set)
    _bad: dict[str, str] = field(default_factory=dict)

    def see(self, event: Event) -> None:
        for stream, item in named_files(event):
            problem = self._problem(item.get("sha256", ""), item.get("size"))
            if problem:
                self.problems.append(EvidenceProblem(event.seq, event.host, f"{stream}: {problem}"))

    def _problem(self, sha256: str, size: int | None) -> str | None:
        digest = _digest(sha256)
        if digest is not None and digest in self._whole:
            return None
        if sha256 in self._bad:
            return self._bad[sha256]
        self.checked += 1
        try:
            problem = self.store.check(sha256, size)
        except ValueError as bad:  # the event itself was tampered with
            problem = str(bad)
        if digest is not None and problem is None:
            self._whole.add(digest)
        else:  # kept by the name the event gave: an odd name is checked once too
            self._bad[sha256] = problem or ""
        return problem


def _digest(sha256: str) -> bytes | None:
    """The 32 bytes a SHA-256 names, when it is written as the store writes it."""
    if len(sha256) != 64:
        return None
    try:
        digest = bytes.fromhex(sha256)
    except ValueError:
        return None
    return digest if digest.hex() == sha256 else None


@dataclass
class OpenRuns:
    """The runs started and not (yet) finished, as the journal's order leaves them."""

    started: dict[int, Event] = field(default_factory=dict)

    def see(self, event: Event) -> None:
        if event.kind == kinds.RUN_STARTED:
            self.started[event.seq] = event
        elif event.kind == kinds.RUN_FINISHED:
            self.started.pop(event.data.get("run", -1), None)


def check_evidence(
    events: Iterable[Event], store: EvidenceStore
) -> tuple[int, list[EvidenceProblem]]:
    """(files checked, problems): each file hashed again and compared with its custody event."""
    check = EvidenceCheck(store)
    for event in events:
        check.see(event)
    return check.checked, check.problems


def gaps(incident_dir: Path, runs: OpenRuns, store: EvidenceStore) -> list[str]:
    """What the journal does not yet say: records waiting in the spool, runs with no end (in
    flight, or left by a process that died: `runs`, as the journal's events left them), and
    partial evidence files no record or marker accounts for. One line each; empty when the
    record is whole."""
    found = [
        f"PENDING {p.describe()}: not yet in the journal (irtool incident recover)"
        for p in Spool(incident_dir).pending()
    ]
    for seq, run in runs.started.items():
        live = is_running(incident_dir, run.step or "")
        state = "still running" if live else "interrupted: its process is gone"
        found.append(
            f"RUN {seq} ({run.data.get('purpose')} of {run.step} by {run.actor}, pid "
            f"{run.data.get('pid')}) has not finished: {state}"
        )
    accounted = {name for orphan in store.orphans() for name in orphan.names()}
    for path in sorted(store.leftovers(accounted)):
        found.append(
            f"LEFTOVER {path.name} ({path.stat().st_size} bytes) in the evidence directory: "
            "no record or run accounts for it"
        )
    return found
