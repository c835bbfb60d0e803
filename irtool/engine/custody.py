"""Checking the chain of custody: every evidence file an event names is there, whole."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from irtool.engine import kinds
from irtool.evidence.store import EvidenceStore
from irtool.journal import Event

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
        if event.kind not in (kinds.COMMAND_RAN, kinds.FILE_FETCHED):
            continue
        for stream in _STREAMS:
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
