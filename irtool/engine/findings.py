"""Findings in an incident: the hunts run over the web logs its evidence holds, each hit a
`finding.raised` event, and a responder's confirmation or dismissal of it an event too.

Which evidence is a web log: a fetched file (or a collector's output) that starts like a
W3C extended log (`#Software`, `#Version`, `#Date`, `#Fields`). It is loaded, with the host
it came from, into the incident's derived store (`analysis.duckdb` in its directory:
delete it and the next analysis rebuilds it from the evidence), once per evidence file.

A finding is raised once for the same evidence: its `key` (the hunt and what it is about,
a client or a URI) and the evidence files its lines are in. More lines in a later log make
a new event; running the hunts again over the same logs writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from irtool.analysis.hunts import FindingDraft, load_hunts, run_hunts
from irtool.analysis.store import RequestStore
from irtool.analysis.w3c import ReadStats, ReadWarning, read_stream
from irtool.engine import kinds
from irtool.engine.refusal import Refused
from irtool.engine.session import IncidentSession
from irtool.engine.state import IncidentState
from irtool.evidence.store import EvidenceStore
from irtool.journal import Event, EventDraft

STORE_FILE = "analysis.duckdb"
_W3C_STARTS = (b"#Software", b"#Version", b"#Date", b"#Fields", b"\xef\xbb\xbf#")
FINDING_STATES = ("confirmed", "dismissed")


@dataclass(frozen=True)
class WebLog:
    """One evidence file that is a web log: where it came from and where it is kept."""

    sha256: str
    host: str
    source: str  # the host's own path (or the step/item of a collector's output)


def web_logs(state: IncidentState, store: EvidenceStore) -> list[WebLog]:
    """The incident's evidence files that are W3C logs, each once, in the order collected."""
    found: dict[str, WebLog] = {}
    for item in state.evidence:
        for stream, kept in item.files.items():
            sha256 = str(kept.get("sha256") or "")
            if not sha256 or sha256 in found or not kept.get("size"):
                continue
            try:
                with store.path(sha256).open("rb") as head:
                    start = head.read(16)
            except OSError:
                continue  # verify reports a missing evidence file; analysis reads what is there
            if start.startswith(_W3C_STARTS):
                where = item.command if stream == "file" else f"{item.step}/{item.item or ''}"
                found[sha256] = WebLog(sha256, item.host, f"{item.host}:{where}")
    return list(found.values())


def analyze_incident(
    session: IncidentSession,
    evidence: EvidenceStore,
    actor: str,
    *,
    only: Sequence[str] = (),
    hunt_dirs: Sequence[Path] = (),
    params: dict[str, dict[str, Any]] | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> tuple[list[Event], int, ReadStats]:
    """Load the incident's web logs not yet in its store, run the hunts, and raise each new
    finding; returns the events written, the requests in the store, and the read counts."""
    warn = on_warning or (lambda text: None)
    state = session.state
    hunts = load_hunts(hunt_dirs, only)
    stats = ReadStats()
    with RequestStore(session.directory / STORE_FILE) as requests:
        for log in web_logs(state, evidence):
            if requests.loaded(log.sha256):
                continue
            with evidence.path(log.sha256).open("rb") as stream:

                def said(w: ReadWarning) -> None:
                    warn(str(w))

                batches = read_stream(
                    stream, source=log.source, sha256=log.sha256, on_warning=said, stats=stats
                )
                requests.load(batches, host=log.host, on_warning=lambda w: warn(str(w)))
        total = requests.query("SELECT count(*) AS n FROM requests")[0]["n"]
        drafts = run_hunts(requests, hunts, params, state.iocs) if total else []
    return raise_findings(session, actor, drafts), int(total), stats


def _identity(draft: FindingDraft) -> tuple[str, tuple[str, ...]]:
    return draft.key, tuple(sorted({sha for sha, _source, _line in draft.refs}))


def raise_findings(
    session: IncidentSession, actor: str, drafts: Sequence[FindingDraft]
) -> list[Event]:
    """A `finding.raised` per draft not raised before for the same evidence."""
    written: list[Event] = []
    for draft in drafts:

        def decide(state: IncidentState, draft: FindingDraft = draft) -> EventDraft:
            key, shas = _identity(draft)
            if any(
                f.key == key and tuple(sorted(f.evidence)) == shas for f in state.findings.values()
            ):
                raise _AlreadyRaised()
            return EventDraft(
                kinds.FINDING_RAISED,
                actor,
                {
                    "hunt": draft.hunt,
                    "version": draft.version,
                    "severity": draft.severity,
                    "title": draft.title,
                    "summary": draft.summary,
                    "hosts": list(draft.hosts),
                    "first_seen": draft.first_seen,
                    "last_seen": draft.last_seen,
                    "count": draft.count,
                    "key": draft.key,
                    "refs": [{"sha256": s, "source": src, "line": n} for s, src, n in draft.refs],
                },
            )

        try:
            written.append(session._write(decide))
        except _AlreadyRaised:
            continue
    return written


class _AlreadyRaised(Exception):
    """The same finding on the same evidence: nothing to write."""


def judge_finding(
    session: IncidentSession, seq: int, verdict: str, actor: str, reason: str
) -> Event:
    """A responder confirms or dismisses finding `seq`, with why."""
    if verdict not in FINDING_STATES:
        raise Refused(f"a finding is confirmed or dismissed, not {verdict!r}")
    if not reason.strip():
        raise Refused(f"why is the finding {verdict}? (--reason)")

    def decide(state: IncidentState) -> EventDraft:
        finding = state.findings.get(seq)
        if finding is None:
            known = ", ".join(str(s) for s in state.findings) or "none yet"
            raise Refused(f"no finding {seq} in incident {state.id} (findings: {known})")
        kind = kinds.FINDING_CONFIRMED if verdict == "confirmed" else kinds.FINDING_DISMISSED
        return EventDraft(kind, actor, {"finding": seq, "reason": reason.strip()})

    return session._write(decide)
