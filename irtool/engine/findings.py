"""Findings in an incident: what the analysers find in its evidence, each hit a
`finding.raised` event, each analysis an `analysis.ran` event (what it read and ran, and what
it could not), and a responder's confirmation or dismissal of a finding an event too. An
analysis runs on demand (`irtool analyze ID`) or as a runbook's analyze step, which names the
collect steps whose evidence it reads.

What is read, and by what:
- web logs (evidence that starts like a W3C extended log: `#Software`, `#Fields`, ...) and
  Windows event logs (EVTX: `ElfFile`) are loaded, with the host they came from, into the
  incident's derived store (`analysis.duckdb` in its directory: delete it and the next analysis
  rebuilds it from the evidence), once per evidence file; the hunts and the Sigma rules run
  over them;
- the collectors' structured records are stacked across the hosts, compared with each host's
  baseline, and the web-root listings with the known-good manifest, YARA scanning the fetched
  files that differ (`irtool.engine.known_good`).

A finding is raised once for the same evidence: its `key` (the hunt and what it is about,
a client or a URI) and the evidence files its lines are in. More lines in a later log make
a new event; running the hunts again over the same logs writes nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from irtool.analysis.evtx import MAGIC as EVTX_MAGIC
from irtool.analysis.evtx import EvtxStats, read_evtx_stream
from irtool.analysis.hunts import FindingDraft, load_hunts, run_hunts, worst_first_drafts
from irtool.analysis.manifest import read_manifest
from irtool.analysis.sigma import RuleSet, SigmaRule, load_rules, run_rules
from irtool.analysis.store import RequestStore
from irtool.analysis.w3c import ReadStats, read_stream
from irtool.engine import kinds
from irtool.engine.known_good import Compared, compare_hosts
from irtool.engine.learned import Finding
from irtool.engine.refusal import Refused
from irtool.engine.session import IncidentSession
from irtool.engine.state import IncidentState
from irtool.evidence.store import EvidenceStore
from irtool.journal import Event, EventDraft
from irtool.model.hunt import worst_first as severity_rank
from irtool.model.problems import InvalidFile
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
    return _logs(state, store, reads, _W3C_STARTS)


def event_logs(
    state: IncidentState,
    store: EvidenceStore,
    reads: Callable[[str, str | None], bool] | None = None,
) -> list[WebLog]:
    """The incident's evidence files that are Windows event logs (EVTX), as `web_logs`."""
    return _logs(state, store, reads, (EVTX_MAGIC,))


def _logs(
    state: IncidentState,
    store: EvidenceStore,
    reads: Callable[[str, str | None], bool] | None,
    starts: tuple[bytes, ...],
) -> list[WebLog]:
    found: dict[str, WebLog] = {}
    for item in state.evidence:
        if item.purpose == "provided":
            continue  # a manifest or a baseline: read by its own analyser
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
            if start.startswith(starts):
                where = item.command if stream == "file" else f"{item.step}/{item.item or ''}"
                found[sha256] = WebLog(sha256, item.host, f"{item.host}:{where}")
    return list(found.values())


@dataclass(frozen=True)
class Analyzed:
    """What one analysis did: the findings it raised (new ones only), the requests and event
    log records it read over, the read counts, the Sigma rules as loaded (with those that
    cannot run, located), what the host comparisons read and noted, and its `analysis.ran`
    event (which `state.analyses` folds)."""

    raised: list[Event]
    requests: int
    stats: ReadStats
    rules: RuleSet
    record: Event
    events: int = 0
    compared: Compared | None = None


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
    yara_dirs: Sequence[Path] = (),
    manifest: Path | None = None,
    baselines: Mapping[str, Path] | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> Analyzed:
    """Load the incident's web and event logs not yet in its store, run the hunts and the
    Sigma rules, compare the hosts' records (with each other, their baselines, the known-good
    manifest given now or earlier, YARA over the fetched files that differ), raise each new
    finding, and record the analysis (`analysis.ran`).

    With `step` (an analyze step of the runbook), the step says what is read: the logs and
    records its sources kept, its hunts and its rules; the hunts and rules see only those
    logs. Otherwise all of the incident's evidence, the hunts `only` names and the Sigma rules
    `rules` names: None is every one loaded, an empty list none."""
    warn = on_warning or (lambda text: None)
    if manifest is not None:
        read_manifest(manifest)  # not a manifest: refused (located) before anything is read
    state = session.state
    reads = None
    spec: AnalyzeStep | None = None
    if step is not None:
        found = state.runbook.step(step)
        if not isinstance(found, AnalyzeStep):
            raise Refused(f"'{step}' is not an analyze step of runbook {state.runbook.id}")
        spec = found
        reads = spec.reads
        only, rules = spec.hunts, spec.rules
    hunts = [] if only is not None and not only else load_hunts(hunt_dirs, only or ())
    rule_set = load_rules(sigma_dirs)
    chosen = chosen_rules(rule_set.rules, rules)
    stats, event_stats = ReadStats(), EvtxStats()
    logs = web_logs(state, evidence, reads)
    evtx = event_logs(state, evidence, reads)
    capturing = spec is not None and spec.baseline == "capture"
    with RequestStore(session.directory / STORE_FILE) as store:
        _load(store, evidence, logs, evtx, stats, event_stats, warn)
        with _scope(store, [log.sha256 for log in (*logs, *evtx)] if reads else None):
            total = int(store.query("SELECT count(*) AS n FROM requests")[0]["n"])
            events = int(store.query("SELECT count(*) AS n FROM events")[0]["n"])
            drafts: list[FindingDraft] = []
            if (total or events) and not capturing:
                drafts += run_hunts(store, hunts, params, state.iocs)
                drafts += run_rules(store, chosen) if chosen else []
    compared = compare_hosts(
        session, evidence, actor, step=spec, manifest=manifest, baselines=baselines,
        yara_dirs=yara_dirs,
    )  # fmt: skip
    for note in compared.notes:
        warn(note)
    raised = raise_findings(session, actor, worst_first_drafts(drafts + compared.drafts), step)
    record = record_analysis(
        session,
        actor,
        step=step,
        evidence=[log.sha256 for log in (*logs, *evtx)],
        requests=total,
        hunts=[f"{h.id}@{h.version}" for h in hunts],
        rules=[f"{r.hunt}@{r.version}" for r in chosen],
        unconvertible=list(rule_set.unconvertible),
        findings=[e.seq for e in raised],
        warnings=stats.invalid + stats.torn + event_stats.warnings,
        events=events,
        compared=compared,
    )
    return Analyzed(raised, total, stats, rule_set, record, events, compared)


def _load(
    store: RequestStore,
    evidence: EvidenceStore,
    logs: Sequence[WebLog],
    evtx: Sequence[WebLog],
    stats: ReadStats,
    event_stats: EvtxStats,
    warn: Callable[[str], None],
) -> None:
    """Load the web and event logs not yet in the store."""
    for log in logs:
        if store.loaded(log.sha256):
            continue
        with evidence.path(log.sha256).open("rb") as stream:
            batches = read_stream(
                stream, source=log.source, sha256=log.sha256,
                on_warning=lambda w: warn(str(w)), stats=stats,
            )  # fmt: skip
            store.load(batches, host=log.host, on_warning=lambda w: warn(str(w)))
    for log in evtx:
        if store.loaded(log.sha256):
            continue
        with evidence.path(log.sha256).open("rb") as stream:
            try:
                records = read_evtx_stream(
                    stream, source=log.source, sha256=log.sha256,
                    on_warning=lambda w: warn(str(w)), stats=event_stats,
                )  # fmt: skip
                store.load_events(records, host=log.host, on_warning=lambda w: warn(str(w)))
            except InvalidFile as broken:  # no EVTX after all: said, the rest goes on
                for problem in broken.problems:
                    warn(str(problem))


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
    events: int = 0,
    compared: Compared | None = None,
) -> Event:
    """`analysis.ran`: what an analysis read and ran, and the findings it raised (by seq).
    Hunts and rules are named `id@version`: a finding is judged by the hunt that raised it."""
    data: dict[str, Any] = {
        "step": step,
        "evidence": evidence,
        "requests": requests,
        "hunts": hunts,
        "rules": rules,
        "unconvertible": unconvertible,
        "findings": findings,
        "warnings": warnings,
    }
    if events:
        data["events"] = events
    if compared is not None and (compared.hosts or compared.manifest or compared.baselines):
        data["records_from"] = compared.hosts
        if compared.manifest:
            data["manifest"] = compared.manifest
        if compared.baselines:
            data["baselines"] = compared.baselines
            if compared.captured:
                data["baselines_captured"] = True
        if compared.scanned:
            data["yara_scanned"] = compared.scanned
        if compared.notes:
            data["notes"] = compared.notes[:50]
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
    if draft.same_by_key:
        return draft.key, ()
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
                f.key == key and (not shas or tuple(sorted(f.evidence)) == shas)
                for f in state.findings.values()
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
