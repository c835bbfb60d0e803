"""What the team learned as the incident unfolded, folded into its state: parameters set or
amended, indicators, scope changes, steps started early, answers given late."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from irtool.engine import kinds
from irtool.journal import Event

if TYPE_CHECKING:
    from irtool.engine.state import IncidentState


@dataclass
class ParameterChange:
    seq: int
    at: str
    by: str
    name: str
    value: Any
    previous: Any
    reason: str


@dataclass
class IocChange:
    seq: int
    at: str
    by: str
    change: str  # add / remove
    kind: str
    value: str
    reason: str


@dataclass
class ScopeChange:
    seq: int
    at: str
    by: str
    host: str
    group: str
    change: str  # add / remove
    reason: str
    new_host: bool  # the host was not in the inventory before
    entry: dict[str, Any] | None = None  # that new host's inventory entry, as the event gave it


def _answered(state: IncidentState, event: Event) -> None:
    step = state.steps.get(event.step or "")
    if step is not None:
        step.answers.update(event.data.get("answers", {}))


def _started_early(state: IncidentState, event: Event) -> None:
    step = state.steps.get(event.step or "")
    if step is not None:
        step.early = event.data.get("reason", "")


def _parameter_set(state: IncidentState, event: Event) -> None:
    data = event.data
    state.parameter_changes.append(
        ParameterChange(
            event.seq,
            event.occurred_at,
            event.actor,
            data["name"],
            data.get("value"),
            data.get("previous"),
            data.get("reason", ""),
        )
    )
    state.parameters[data["name"]] = data.get("value")


def _ioc(state: IncidentState, event: Event) -> None:
    data = event.data
    change = "add" if event.kind == kinds.IOC_ADDED else "remove"
    values = state.iocs.setdefault(data["kind"], [])
    if change == "add" and data["value"] not in values:
        values.append(data["value"])
    elif change == "remove" and data["value"] in values:
        values.remove(data["value"])
    if not values:
        del state.iocs[data["kind"]]
    state.ioc_changes.append(
        IocChange(
            event.seq,
            event.occurred_at,
            event.actor,
            change,
            data["kind"],
            data["value"],
            data.get("reason", ""),
        )
    )


def _scope(state: IncidentState, event: Event) -> None:
    data = event.data
    host, group, change = data["host"], data["group"], data["change"]
    state.rescope(
        ScopeChange(
            event.seq,
            event.occurred_at,
            event.actor,
            host,
            group,
            change,
            data.get("reason", ""),
            bool(data.get("new_host")),
            data.get("new_host"),
        )
    )


@dataclass
class Finding:
    """A hunt's hit, as raised, and what a responder said of it."""

    seq: int
    at: str
    hunt: str
    version: str
    severity: str
    title: str
    summary: str
    hosts: list[str]
    first_seen: str | None
    last_seen: str | None
    count: int
    key: str
    refs: list[dict[str, Any]]
    step: str | None = None  # the analyze step that raised it, if one did
    # (kind, value) pairs an indicator sweep can look for on other hosts
    indicators: list[tuple[str, str]] = field(default_factory=list)
    status: str = "open"  # open, confirmed, dismissed
    judged_by: str = ""
    reason: str = ""

    @property
    def evidence(self) -> set[str]:
        return {str(r.get("sha256")) for r in self.refs}


def _finding(state: IncidentState, event: Event) -> None:
    data = event.data
    state.findings[event.seq] = Finding(
        event.seq,
        event.occurred_at,
        str(data.get("hunt", "")),
        str(data.get("version", "")),
        str(data.get("severity", "")),
        str(data.get("title", "")),
        str(data.get("summary", "")),
        list(data.get("hosts") or []),
        data.get("first_seen"),
        data.get("last_seen"),
        int(data.get("count") or 0),
        str(data.get("key", "")),
        list(data.get("refs") or []),
        data.get("step"),
        [
            (str(pair[0]), str(pair[1]))
            for pair in data.get("indicators") or []
            if isinstance(pair, list | tuple) and len(pair) == 2
        ],
    )


@dataclass(frozen=True)
class Analysis:
    """One run of the hunts and rules over the evidence, as recorded."""

    seq: int
    at: str
    actor: str
    step: str | None
    evidence: list[str]
    requests: int
    hunts: list[str]
    rules: list[str]
    unconvertible: list[str]
    findings: list[int]
    warnings: int
    events: int = 0  # Windows event log records read over
    records_from: list[str] = field(default_factory=list)  # hosts whose records were compared
    manifest: str | None = None  # the known-good manifest's SHA-256, when one was used
    baselines: dict[str, str] = field(default_factory=dict)  # host -> its baseline's SHA-256
    captured: bool = False  # those baselines were kept by this analysis (an admission)


def _analysis(state: IncidentState, event: Event) -> None:
    data = event.data
    state.analyses.append(
        Analysis(
            event.seq,
            event.occurred_at,
            event.actor,
            data.get("step"),
            list(data.get("evidence") or []),
            int(data.get("requests") or 0),
            list(data.get("hunts") or []),
            list(data.get("rules") or []),
            list(data.get("unconvertible") or []),
            [int(s) for s in data.get("findings") or []],
            int(data.get("warnings") or 0),
            int(data.get("events") or 0),
            list(data.get("records_from") or []),
            data.get("manifest"),
            dict(data.get("baselines") or {}),
            bool(data.get("baselines_captured")),
        )
    )


def _verdict(state: IncidentState, event: Event) -> None:
    finding = state.findings.get(int(event.data.get("finding", -1)))
    if finding is not None:
        finding.status = "confirmed" if event.kind == kinds.FINDING_CONFIRMED else "dismissed"
        finding.judged_by, finding.reason = event.actor, str(event.data.get("reason", ""))


def _facts(state: IncidentState, event: Event) -> None:
    if event.host and isinstance(event.data.get("facts"), dict):
        state.learned_facts(event.host, event.data["facts"])


LEARNED: dict[str, Callable[[IncidentState, Event], None]] = {
    kinds.HOST_FACTS: _facts,
    kinds.FINDING_RAISED: _finding,
    kinds.FINDING_CONFIRMED: _verdict,
    kinds.FINDING_DISMISSED: _verdict,
    kinds.ANALYSIS_RAN: _analysis,
    kinds.PARAMETER_SET: _parameter_set,
    kinds.IOC_ADDED: _ioc,
    kinds.IOC_REMOVED: _ioc,
    kinds.SCOPE_CHANGED: _scope,
    kinds.STEP_STARTED_EARLY: _started_early,
    kinds.POSTMORTEM_ANSWERED: _answered,
}
