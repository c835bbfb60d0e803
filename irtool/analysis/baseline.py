"""Baselines: a known-good host's records, kept in a file, and what is new against them.

A baseline is captured when a host is known good (at admission, after a rebuild) from the
records its collectors emitted, and read at incident time: a user, service, task, module or
application pool identity that the host has now and did not have then is a finding.

The file (JSON, ``format: irtool-baseline``, ``version: 1``)::

    {"format": "irtool-baseline", "version": 1, "host": "web01",
     "captured_at": "2026-01-05T10:00:00Z",
     "from": {"incident": "...", "runbook": "...", "evidence": ["<sha256>", ...]},
     "records": {"service": [{"identity": "w3svc|...", "fields": {...}}, ...], ...}}

A kind listed under ``records`` (even with no records) was captured: only those kinds are
compared, so a collector that did not run then raises nothing now.

Which kinds are compared (`BASELINE_KINDS`), and why: what an attacker adds to stay
(``local-user``, ``local-admin``, ``service``, ``scheduled-task``, ``autorun``,
``wmi-subscription``), and what they add to the web server to run inside it
(``global-module``, ``site-module``, ``handler``, ``isapi-filter``), and the account an
application pool runs as (``app-pool``: its key holds the identity, so a changed account is
a new record). Not compared: ``loaded-dll`` (every patch and deployment changes it: stacking
across hosts judges it better) and ``webroot-file`` (the web root is compared with its
deployment artifacts, not with an earlier state of a server that may have been compromised
already).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from irtool.analysis.hunts import MAX_REFS, FindingDraft
from irtool.analysis.records import Record
from irtool.analysis.stacking import indicators
from irtool.model.problems import InvalidFile, Mark, Problem

__all__ = [
    "BASELINE_KINDS",
    "FORMAT",
    "VERSION",
    "Baseline",
    "baseline_drafts",
    "capture",
    "read_baseline",
    "write_baseline",
]

FORMAT = "irtool-baseline"
VERSION = 1
BASELINE_KINDS = frozenset(
    {
        "local-user",
        "local-admin",
        "service",
        "scheduled-task",
        "autorun",
        "wmi-subscription",
        "global-module",
        "site-module",
        "handler",
        "isapi-filter",
        "app-pool",
    }
)
# A new one of these runs code inside the web server or holds the host's keys.
_HIGH = frozenset({"local-admin", "global-module", "isapi-filter", "wmi-subscription"})
# A baseline bigger than this is not one a collector produced.
MAX_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class Baseline:
    """A known-good host's records by kind: identity -> fields."""

    host: str
    captured_at: str
    records: Mapping[str, Mapping[str, Mapping[str, Any]]]
    incident: str | None = None
    runbook: str | None = None
    evidence: tuple[str, ...] = field(default=())

    def counts(self) -> dict[str, int]:
        """Records per kind, kinds sorted."""
        return {kind: len(self.records[kind]) for kind in sorted(self.records)}


def capture(
    host: str,
    records: Iterable[Record],
    *,
    kinds: Iterable[str] = (),
    incident: str | None = None,
    runbook: str | None = None,
    evidence: Iterable[str] = (),
    captured_at: str | None = None,
) -> Baseline:
    """A baseline of `host` from its records; `kinds` are captured too when none of their
    records are (a host with no WMI subscription has that as its known good)."""
    by_kind: dict[str, dict[str, Mapping[str, Any]]] = {kind: {} for kind in kinds}
    for record in records:
        by_kind.setdefault(record.kind, {}).setdefault(record.identity, dict(record.fields))
    when = captured_at or datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return Baseline(host, when, by_kind, incident, runbook, tuple(sorted(set(evidence))))


def write_baseline(baseline: Baseline, path: Path) -> None:
    """Write `baseline` to `path` whole or not at all (a temporary file, then renamed)."""
    document = {
        "format": FORMAT,
        "version": VERSION,
        "host": baseline.host,
        "captured_at": baseline.captured_at,
        "from": {
            "incident": baseline.incident,
            "runbook": baseline.runbook,
            "evidence": list(baseline.evidence),
        },
        "records": {
            kind: [
                {"identity": identity, "fields": baseline.records[kind][identity]}
                for identity in sorted(baseline.records[kind])
            ]
            for kind in sorted(baseline.records)
        },
    }
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(document, indent=1, sort_keys=True, default=str) + "\n")
    os.replace(partial, path)


def read_baseline(path: Path) -> Baseline:
    """The baseline in `path`; InvalidFile, located, when it is not one."""
    name = str(path)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise InvalidFile([Problem(Mark(name, 1, 1), f"cannot read: {exc.strerror}")]) from None
    if len(raw) > MAX_BYTES:
        raise InvalidFile([Problem(Mark(name, 1, 1), f"larger than {MAX_BYTES} bytes")])
    try:
        document = json.loads(raw.decode("utf-8-sig"))
    except RecursionError:
        raise InvalidFile([Problem(Mark(name, 1, 1), "nested too deep: not a baseline")]) from None
    except UnicodeDecodeError as bad:
        line = raw.count(b"\n", 0, bad.start) + 1
        col = bad.start - (raw.rfind(b"\n", 0, bad.start) + 1) + 1
        raise InvalidFile([Problem(Mark(name, line, col), "not UTF-8: not a baseline")]) from None
    except json.JSONDecodeError as bad:
        raise InvalidFile(
            [Problem(Mark(name, bad.lineno, bad.colno), f"not JSON ({bad.msg}): not a baseline")]
        ) from None
    return _baseline(document, name, raw.decode("utf-8-sig"))


def _baseline(document: Any, name: str, text: str) -> Baseline:
    at = _Locator(name, text)
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise InvalidFile([Problem(at("format"), f"not a baseline: 'format' is not '{FORMAT}'")])
    if document.get("version") != VERSION:
        said = f"baseline version {document.get('version')!r}: this irtool reads {VERSION}"
        raise InvalidFile([Problem(at("version"), said)])
    problems: list[Problem] = []
    host, captured_at = document.get("host"), document.get("captured_at")
    for key, value in (("host", host), ("captured_at", captured_at)):
        if not isinstance(value, str) or not value:
            problems.append(Problem(at(key), f"'{key}' is missing or not text"))
    origin = document.get("from") or {}
    if not isinstance(origin, dict):
        problems.append(Problem(at("from"), "'from' is not an object"))
        origin = {}
    records: dict[str, dict[str, Mapping[str, Any]]] = {}
    given = document.get("records")
    if not isinstance(given, dict):
        problems.append(Problem(at("records"), "'records' is not an object of kinds"))
        given = {}
    for kind, entries in given.items():
        if not isinstance(entries, list):
            problems.append(Problem(at(kind, "records"), f"records of '{kind}' are not a list"))
            continue
        records[kind] = {}
        for index, entry in enumerate(entries, 1):
            ok = isinstance(entry, dict) and isinstance(entry.get("identity"), str)
            if not ok or not isinstance(entry.get("fields", {}), dict):
                problems.append(
                    Problem(
                        at(kind, "records"), f"record {index} of '{kind}' has no identity or fields"
                    )
                )
                continue
            records[kind][entry["identity"]] = entry.get("fields") or {}
    if problems:
        raise InvalidFile(problems)
    evidence = origin.get("evidence") or []
    return Baseline(
        str(host),
        str(captured_at),
        records,
        _text(origin.get("incident")),
        _text(origin.get("runbook")),
        tuple(str(e) for e in evidence if isinstance(e, str)),
    )


class _Locator:
    """The line and column of a key's first appearance: close enough to point at it."""

    def __init__(self, name: str, text: str) -> None:
        self.name, self.text = name, text

    def __call__(self, key: str, after: str | None = None) -> Mark:
        start = self.text.find(json.dumps(after)) if after else 0
        found = self.text.find(json.dumps(key), max(start, 0))
        if found < 0:
            return Mark(self.name, 1, 1)
        line = self.text.count("\n", 0, found) + 1
        return Mark(self.name, line, found - (self.text.rfind("\n", 0, found) + 1) + 1)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def baseline_drafts(
    baseline: Baseline, records: Iterable[Record], *, host: str
) -> list[FindingDraft]:
    """A finding for each record of a compared kind the baseline captured whose identity
    it does not hold: new since the host was known good."""
    new: dict[tuple[str, str], list[Record]] = {}
    for record in records:
        known = baseline.records.get(record.kind)
        if record.kind not in BASELINE_KINDS or known is None or record.identity in known:
            continue
        new.setdefault((record.kind, record.identity), []).append(record)
    drafts = []
    for (kind, identity), found in sorted(new.items()):
        refs = sorted({r.ref for r in found if r.sha256})[:MAX_REFS]
        drafts.append(
            FindingDraft(
                hunt=f"baseline:{kind}",
                version=str(VERSION),
                severity="high" if kind in _HIGH else "medium",
                title=f"A {kind} the known-good baseline does not have",
                summary=f"{kind} {found[0].show} on {host} is not in its baseline of "
                f"{baseline.captured_at}",
                hosts=(host,),
                first_seen=None,
                last_seen=None,
                count=len(found),
                refs=tuple(refs),
                key=f"baseline:{host}:{kind}:{identity}",
                indicators=indicators(found),
                same_by_key=True,
            )
        )
    return drafts
