"""Findings in an incident: the hunts and Sigma rules run over the web logs its evidence
holds, each hit a `finding.raised` event, each analysis an `analysis.ran` event (what it read
and ran, and which rules it could not convert), and a responder's confirmation or dismissal of
a finding an event too. An analysis runs on demand (`irtool analyze ID`) or as a runbook's
analyze step, which names the collect steps whose logs it reads.

Which evidence is a web log: a fetched file (or a collector's output) that starts like a
W3C extended log (`#Software`, `#Version`, `#Date`, `#Fields`). It is loaded, with the host
it came from, into the incident's derived store (`analysis.duckdb` in its directory:
delete it and the next analysis rebuilds it from the evidence), once per evidence file.

A finding is raised once for the same evidence: its `key` (the hunt and what it is about,
a client or a URI) and the evidence files its lines are in. More lines in a later log make
a new event; running the hunts again over the same logs writes nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from irtool.analysis.hunts import FindingDraft, load_hunts, run_hunts
from irtool.analysis.sigma import RuleSet, SigmaRule, load_rules, run_rules
from irtool.analysis.store import RequestStore
from irtool.analysis.w3c import ReadStats, read_stream
from irtool.engine import kinds
from irtool.engine.learned import Finding
from irtool.engine.refusal import Refused
from irtool.engine.session import IncidentSession
from irtool.engine.state import IncidentState
from irtool.evidence.store import EvidenceStore
from irtool.journal import Event, EventDraft
from irtool.model.hunt import worst_first as severity_rank
from irtool.model.steps import AnalyzeStep

STORE_FILE = "analysis.duckdb"
_W3C_STARTS = (b"#Software", b"#Version", b"#Date", b"#Fields", b"\xef\xbb\xbf#")
FINDING_STATES = ("confirmed", "dismissed")


@dataclass(frozen=True)
class WebLog:
    """One evidence file that is a web log: where it came from and where it is kept."""

    sha256: str
    host: str
    source: str  # the host's own path (or the step/item of a collector's output)


def web_logs(
    state: IncidentState,
    store: EvidenceStore,
    reads: Callable[[str, str | None], bool] | None = None,
) -> list[WebLog]:
    """The incident's evidence files that are W3C logs, each once, in the order collected;
    with `reads`, only those kept by the collect steps (and collectors) it accepts."""
    found: dict[str, WebLog] = {}
    for item in state.evidence:
        if reads is not None and not (item.step and reads(item.step, item.item)):
            continue
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


@dataclass(frozen=True)
class Analyzed:
    """What one analysis did: the findings it raised (new ones only), the requests it read
    over, the read counts, the Sigma rules as loaded (with those that cannot run, located),
    and its `analysis.ran` event (which `state.analyses` folds)."""

    raised: list[Event]
    requests: int
    stats: ReadStats
    rules: RuleSet
    record: Event


def analyze_incident(
    session: IncidentSession,
    evidence: EvidenceStore,
    actor: str,
    *,
    step: str | None = None,
    only: Sequence[str] | None = None,
    hunt_dirs: Sequence[Path] = (),
    params: dict[str, dict[str, Any]] | None = None,
    rules: Sequence[str] | None = None,
    sigma_dirs: Sequence[Path] = (),
    on_warning: Callable[[str], None] | None = None,
) -> Analyzed:
    """Load the incident's web logs not yet in its store, run the hunts and the Sigma rules,
    raise each new finding, and record the analysis (`analysis.ran`).

    With `step` (an analyze step of the runbook), the step says what is read: the web logs
    its sources kept, its hunts and its rules; the hunts and rules see only those logs'
    requests. Otherwise every web log of the incident, the hunts `only` names and the Sigma
    rules `rules` names: None is every one loaded, an empty list none."""
    warn = on_warning or (lambda text: None)
    state = session.state
    reads = None
    if step is not None:
        spec = state.runbook.step(step)
        if not isinstance(spec, AnalyzeStep):
            raise Refused(f"'{step}' is not an analyze step of runbook {state.runbook.id}")
        reads = spec.reads
        only, rules = spec.hunts, spec.rules
    hunts = [] if only is not None and not only else load_hunts(hunt_dirs, only or ())
    rule_set = load_rules(sigma_dirs)
    chosen = chosen_rules(rule_set.rules, rules)
    stats = ReadStats()
    logs = web_logs(state, evidence, reads)
    with RequestStore(session.directory / STORE_FILE) as requests:
        for log in logs:
            if requests.loaded(log.sha256):
                continue
            with evidence.path(log.sha256).open("rb") as stream:
                batches = read_stream(
                    stream,
                    source=log.source,
                    sha256=log.sha256,
                    on_warning=lambda w: warn(str(w)),
                    stats=stats,
                )
                requests.load(batches, host=log.host, on_warning=lambda w: warn(str(w)))
        with _scope(requests, [log.sha256 for log in logs] if reads else None):
            total = int(requests.query("SELECT count(*) AS n FROM requests")[0]["n"])
            drafts = run_hunts(requests, hunts, params, state.iocs) if total else []
            drafts += run_rules(requests, chosen) if total and chosen else []
    raised = raise_findings(session, actor, drafts, step)
    record = record_analysis(
        session,
        actor,
        step=step,
        evidence=[log.sha256 for log in logs],
        requests=total,
        hunts=[f"{h.id}@{h.version}" for h in hunts],
        rules=[f"{r.hunt}@{r.version}" for r in chosen],
        unconvertible=list(rule_set.unconvertible),
        findings=[e.seq for e in raised],
        warnings=stats.invalid + stats.torn,
    )
    return Analyzed(raised, total, stats, rule_set, record)


def record_analysis(
    session: IncidentSession,
    actor: str,
    *,
    step: str | None,
    evidence: list[str],
    requests: int,
    hunts: list[str],
    rules: list[str],
    unconvertible: list[str],
    findings: list[int],
    warnings: int,
) -> Event:
    """`analysis.ran`: what an analysis read and ran, and the findings it raised (by seq).
    Hunts and rules are named `id@version`: a finding is judged by the hunt that raised it."""
    data = {
        "step": step,
        "evidence": evidence,
        "requests": requests,
        "hunts": hunts,
        "rules": rules,
        "unconvertible": unconvertible,
        "findings": findings,
        "warnings": warnings,
    }
    return session._write(lambda _state: EventDraft(kinds.ANALYSIS_RAN, actor, data))


def chosen_rules(loaded: Sequence[SigmaRule], wanted: Sequence[str] | None) -> list[SigmaRule]:
    """The rules `wanted` names, by the rule's id (its UUID) or its name as its findings
    show it (`sigma:<file stem>`, the prefix optional); None is every one loaded."""
    if wanted is None:
        return list(loaded)
    by_name: dict[str, SigmaRule] = {}
    for rule in loaded:
        by_name.update({rule.id: rule, rule.hunt: rule, rule.hunt.removeprefix("sigma:"): rule})
    unknown = [w for w in wanted if w not in by_name]
    if unknown:
        known = ", ".join(sorted(r.hunt for r in loaded)) or "none"
        raise ValueError(f"no Sigma rule {', '.join(unknown)} (rules: {known})")
    return list({id(by_name[w]): by_name[w] for w in wanted}.values())


@contextlib.contextmanager
def _scope(requests: RequestStore, shas: list[str] | None) -> Iterator[None]:
    """Hunts and rules see only these evidence files' requests (None: all of them)."""
    if shas is None:
        yield
        return
    with requests.only(shas):
        yield


def _identity(draft: FindingDraft) -> tuple[str, tuple[str, ...]]:
    return draft.key, tuple(sorted({sha for sha, _source, _line in draft.refs}))


def raise_findings(
    session: IncidentSession, actor: str, drafts: Sequence[FindingDraft], step: str | None = None
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
                    **(
                        {"indicators": [list(i) for i in draft.indicators]}
                        if draft.indicators
                        else {}
                    ),
                    **({"step": step} if step else {}),
                },
            )

        try:
            written.append(session._write(decide))
        except _AlreadyRaised:
            continue
    return written


class _AlreadyRaised(Exception):
    """The same finding on the same evidence: nothing to write."""


def worst_first(findings: Iterable[Finding]) -> list[Finding]:
    """The incident's findings as a responder reads them: the most severe first, then the
    first seen first."""
    return sorted(findings, key=lambda f: (severity_rank(f.severity), f.first_seen or "", f.seq))


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
