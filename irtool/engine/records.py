"""Which evidence of an incident holds records, and the records each host's holds.

A collector that declares `records:` (see `irtool.model.records`) prints structured rows;
its kept stdout on each host is read as that spec says. Only the latest output of each
collector on each host counts (a collector run again supersedes what it said before), and
only a run that ended well (exit status 0: a failed one may have printed half a document).
A cmd.exe variant prints the raw output of appcmd, reg and wmic, not records: it is named
as a problem, to be read by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from irtool.analysis.records import Record, RecordsRead, read_records
from irtool.engine.state import Evidence, IncidentState
from irtool.evidence.store import EvidenceStore
from irtool.model.problems import Mark, Problem, Severity
from irtool.model.records import RecordSpec
from irtool.model.steps import Collector, CollectStep, Shell

__all__ = [
    "HostRecords",
    "by_host",
    "host_records",
    "hosts_per_kind",
    "record_collectors",
    "records_of",
]


@dataclass(frozen=True)
class HostRecords:
    """The records one collector's output on one host held, and where it is kept."""

    host: str
    step: str
    item: str | None
    spec: RecordSpec
    sha256: str
    source: str  # "<host>:<step>/<collector>", as findings name evidence
    read: RecordsRead

    @property
    def records(self) -> list[Record]:
        return self.read.records

    @property
    def readable(self) -> bool:
        """Whether the output said what the host has: records were read, or it had none
        (not a cmd variant's raw text, not a document that could not be read)."""
        return self.read.format != "raw" and not any(p.is_error for p in self.read.problems)


def record_collectors(state: IncidentState) -> list[str]:
    """The collectors of the incident's runbook that emit records, as `step/collector`."""
    found = []
    for _phase, step in state.runbook.steps():
        if isinstance(step, CollectStep):
            found += [f"{step.id}/{c.id}" for c in step.collectors() if c.records is not None]
    return found


def host_records(
    state: IncidentState,
    evidence: EvidenceStore,
    *,
    reads: Callable[[str, str | None], bool] | None = None,
    hosts: Iterable[str] | None = None,
) -> dict[str, list[HostRecords]]:
    """Per host (sorted), the records of each collector that declares them, read from its
    latest kept output; `reads` (an analyze step's) and `hosts` narrow what is read."""
    wanted = set(hosts) if hosts is not None else None
    latest: dict[tuple[str, str, str | None], tuple[Evidence, Collector]] = {}
    for item in state.evidence:
        if item.purpose != "collect" or item.ad_hoc or not item.step:
            continue
        if wanted is not None and item.host not in wanted:
            continue
        if reads is not None and not reads(item.step, item.item):
            continue
        collector = _collector(state, item)
        if collector is None or collector.records is None:
            continue
        latest[(item.host, item.step, item.item)] = (item, collector)
    found: dict[str, list[HostRecords]] = {}
    for (host, _step, _item), (item, collector) in latest.items():
        shell = _shell(state, item, collector)
        for spec in collector.records or ():
            got = records_of(item, collector, evidence, shell, spec)
            if got is not None:
                found.setdefault(host, []).append(got)
    return {host: found[host] for host in sorted(found)}


def records_of(
    item: Evidence,
    collector: Collector,
    evidence: EvidenceStore,
    shell: Shell | None = None,
    spec: RecordSpec | None = None,
) -> HostRecords | None:
    """The records (of `spec`, default the collector's first) of one kept output (None: it
    kept no output, or failed)."""
    spec = spec or (collector.records[0] if collector.records else None)
    kept = item.files.get("stdout") or {}
    sha256 = str(kept.get("sha256") or "")
    if spec is None or item.exit_status != 0 or item.interrupted:
        return None
    source = f"{item.host}:{item.step}/{item.item or collector.id}"
    if shell is Shell.CMD:
        read = RecordsRead(
            format="raw",
            problems=[
                Problem(
                    Mark(source, 1, 1),
                    f"the {item.variant or 'cmd'} variant prints cmd.exe's raw output, not "
                    "records: read it by hand",
                    Severity.WARNING,
                )
            ],
        )
    elif not sha256 or not kept.get("size"):
        read = RecordsRead()
    else:
        try:
            data = evidence.path(sha256).read_bytes()
        except OSError as gone:
            problem = Problem(Mark(source, 1, 1), f"evidence {sha256[:12]}: {gone.strerror}")
            read = RecordsRead(problems=[problem])
        else:
            read = read_records(data, spec, source=source, sha256=sha256)
    return HostRecords(item.host, item.step or "", item.item, spec, sha256, source, read)


def _collector(state: IncidentState, item: Evidence) -> Collector | None:
    step = state.runbook.step(item.step or "")
    if not isinstance(step, CollectStep):
        return None
    collectors: Sequence[Collector] = step.collectors()
    if item.item is None:
        return collectors[0] if len(collectors) == 1 else None
    return next((c for c in collectors if c.id == item.item), None)


def _shell(state: IncidentState, item: Evidence, collector: Collector) -> Shell | None:
    step = state.runbook.step(item.step or "")
    base = step.shell if isinstance(step, CollectStep) else None
    for variant in collector.variants or []:
        if variant.id == item.variant:
            return variant.shell or base
    return base


def by_host(found: dict[str, list[HostRecords]]) -> dict[str, list[Record]]:
    """Every record of each host, as stacking takes them."""
    return {host: [r for got in outputs for r in got.records] for host, outputs in found.items()}


def hosts_per_kind(found: dict[str, list[HostRecords]]) -> dict[str, int]:
    """Per kind, the hosts whose output of it could be read: the group a record of that
    kind is rare in (a host whose collector failed, or printed raw text, is not counted)."""
    hosts: dict[str, set[str]] = {}
    for host, outputs in found.items():
        for got in outputs:
            if got.readable:
                hosts.setdefault(got.spec.kind, set()).add(host)
    return {kind: len(names) for kind, names in sorted(hosts.items())}
