"""Stacking: what is rare across the hosts of a group, least frequent first.

Hosts built alike (the web farm behind one balancer, the servers of one build) hold the same
global modules, services, tasks and administrators. A record only one of them has is what a
responder reviews first: an IIS module an attacker installed on the host they reached, a
service nobody deployed. `stack` counts, per kind and identity, the hosts that have a
record; `rare_drafts` makes a finding of each one on fewer hosts than a threshold.

Stacking needs a group to compare: with fewer than `MIN_HOSTS` hosts, "rare" means nothing
(on two hosts everything either host has alone would be rare), so there are no findings and
the result says why.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from irtool.analysis.hunts import MAX_REFS, FindingDraft
from irtool.analysis.records import Record, field_values
from irtool.model.indicators import ioc_value

__all__ = [
    "HIGH_KINDS",
    "MIN_HOSTS",
    "Rare",
    "Stack",
    "indicators",
    "rare_drafts",
    "stack",
]

#: Hosts a group needs before a record on few of them is a finding.
MIN_HOSTS = 3
#: Kinds whose rare record is high severity: code inside the web server's worker process,
#: or an account with the keys to the host.
HIGH_KINDS = frozenset({"global-module", "loaded-dll", "local-admin"})
VERSION = "1"

# Per kind, the record fields that name something a sweep of other hosts can look for:
# (indicator kind, field name). SHA-256 values are taken from every kind (`_HASH_FIELDS`).
_INDICATOR_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "global-module": (("module", "name"), ("file", "image"), ("file", "files.path")),
    "site-module": (("module", "name"), ("module", "added_or_changed.name")),
    "handler": (("module", "name"), ("file", "script_processor")),
    "isapi-filter": (("module", "name"), ("file", "path")),
    "app-pool": (("account", "user_name"),),
    "scheduled-task": (("task", "path"),),
    "service": (("service", "name"), ("file", "service_dll")),
    "local-user": (("account", "name"),),
    "local-admin": (("account", "name"),),
    "loaded-dll": (("file", "path"),),
    "webroot-file": (("file", "relative_path"),),
}
_HASH_FIELDS = ("sha256", "files.sha256", "file.sha256")


@dataclass(frozen=True)
class Stack:
    """One kind and identity across the group: the hosts that have it, and its records."""

    kind: str
    identity: str
    hosts: tuple[str, ...]  # sorted
    records: tuple[Record, ...]  # every host's, host by host

    @property
    def count(self) -> int:
        return len(self.hosts)


@dataclass(frozen=True)
class Rare:
    """What stacking found: the findings, and why there are none when it could not stack."""

    drafts: list[FindingDraft]
    hosts_total: int
    threshold: int
    note: str | None = None  # set when the group is too small to stack


def stack(by_host: Mapping[str, Sequence[Record]]) -> list[Stack]:
    """Per kind and identity, the hosts that have a record of it: the rarest first."""
    groups: dict[tuple[str, str], tuple[set[str], list[Record]]] = {}
    for host in sorted(by_host):
        for record in by_host[host]:
            at = (record.kind, record.identity)
            group = groups.get(at)
            if group is None:
                groups[at] = group = (set(), [])
            group[0].add(host)
            group[1].append(record)
    stacks = [
        Stack(kind, identity, tuple(sorted(hosts)), tuple(found))
        for (kind, identity), (hosts, found) in groups.items()
    ]
    return sorted(stacks, key=lambda s: (s.count, s.kind, s.identity))


def rare_drafts(
    stacks: Iterable[Stack], *, hosts_total: int | Mapping[str, int], threshold: int = 2
) -> Rare:
    """A finding for each record on fewer than `threshold` hosts of the group (default 2:
    on one host only), never for one every host has; none when the group has fewer than
    `MIN_HOSTS` hosts. `hosts_total`: the hosts compared, or per kind the hosts whose
    output of that kind was read (a host whose collector failed is not one of them)."""
    totals: dict[str, int] | None = None
    if isinstance(hosts_total, Mapping):
        totals = dict(hosts_total)
        biggest = max(totals.values(), default=0)
    else:
        biggest = hosts_total
    if biggest < MIN_HOSTS:
        note = (
            f"no stacking: {biggest} host(s) with records; what is rare needs a group of "
            f"{MIN_HOSTS} or more"
        )
        return Rare([], biggest, threshold, note)
    drafts = []
    for found in stacks:
        total = totals.get(found.kind, 0) if totals is not None else biggest
        if total >= MIN_HOSTS and found.count < threshold and found.count < total:
            drafts.append(_draft(found, total))
    return Rare(drafts, biggest, threshold)


def _draft(found: Stack, hosts_total: int) -> FindingDraft:
    first = found.records[0]
    where = ", ".join(found.hosts)
    refs = sorted({r.ref for r in found.records if r.sha256})[:MAX_REFS]
    return FindingDraft(
        hunt=f"stack:{found.kind}",
        version=VERSION,
        severity="high" if found.kind in HIGH_KINDS else "medium",
        title=f"A {found.kind} few hosts of the group have",
        summary=f"{found.kind} {first.show} on {found.count} of {hosts_total} hosts ({where})",
        hosts=found.hosts,
        first_seen=None,
        last_seen=None,
        count=len(found.records),
        refs=tuple(refs),
        key=f"stack:{found.kind}:{found.identity}",
        indicators=indicators(found.records),
        same_by_key=True,
    )


def indicators(records: Iterable[Record]) -> tuple[tuple[str, str], ...]:
    """What the records name that a sweep can look for (module, service, task and file
    names, accounts, SHA-256s), each checked as `irtool.model.indicators` checks it."""
    found: dict[tuple[str, str], None] = {}
    for record in records:
        pairs = [*_INDICATOR_FIELDS.get(record.kind, ()), *(("sha256", f) for f in _HASH_FIELDS)]
        for kind, name in pairs:
            for value in field_values(record.fields, name, fold=False):
                try:
                    found[(kind, ioc_value(kind, value))] = None
                except ValueError:
                    continue  # an error text where a hash was expected, an empty cell
    return tuple(found)
