"""One collector's output compared across hosts: the lines present on fewest hosts first.

On a fleet of similar servers the odd line out (a process, a listener, a scheduled task only
one host has) is usually what a responder is looking for. Each host's latest output of the
collector is streamed line by line, never read whole; a file too big to compare, or a host
with too many distinct lines, is left out or cut short, and the result says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from irtool.engine.state import Evidence, IncidentState
from irtool.evidence.store import EvidenceStore

SIZE_LIMIT = 64 << 20  # a host's output larger than this is not compared
LINES_LIMIT = 200_000  # distinct lines kept per host
LINE_LIMIT = 4096  # bytes of one line compared (the rest of a longer line is ignored)


@dataclass(frozen=True)
class SharedLine:
    text: str
    hosts: tuple[str, ...]  # the hosts whose output has this line, in host order


@dataclass
class Comparison:
    step: str | None
    item: str | None
    stream: str
    hosts: list[str]  # the hosts compared
    lines: list[SharedLine] = field(default_factory=list)  # fewest hosts first
    notes: list[str] = field(default_factory=list)  # hosts left out or cut short, and why


def _size(count: float) -> str:
    for unit in ("bytes", "KiB", "MiB"):
        if count < 1024 or unit == "MiB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    return ""


def collector(item: Evidence) -> tuple[str | None, str | None, str]:
    """What identifies a collector's output across hosts: step, item and purpose."""
    return item.step, item.item, item.purpose


def latest_per_host(state: IncidentState, of: Evidence) -> dict[str, Evidence]:
    """Each host's latest record of the collector `of` belongs to (a re-run replaces it)."""
    wanted = collector(of)
    latest: dict[str, Evidence] = {}
    for item in state.evidence:
        if collector(item) == wanted and (item.step is not None or item.command == of.command):
            latest[item.host] = item  # in seq order: a later run wins
    return latest


def _host_lines(path: Path, limit: int, cancelled: Callable[[], bool]) -> tuple[set[str], bool]:
    """The distinct lines of one file, and whether there were more than `limit`."""
    seen: set[str] = set()
    with path.open("rb") as source:
        while line := source.readline(LINE_LIMIT):
            if not line.endswith(b"\n"):  # a line cut at LINE_LIMIT: skip its rest
                while (rest := source.readline(LINE_LIMIT)) and not rest.endswith(b"\n"):
                    pass
            text = line.rstrip(b"\r\n").decode("utf-8", errors="replace").strip()
            if text and text not in seen:
                if len(seen) >= limit:
                    return seen, True
                seen.add(text)
            if len(seen) % 4096 == 0 and cancelled():
                break
    return seen, False


def compare(
    state: IncidentState,
    store: EvidenceStore,
    of: Evidence,
    stream: str = "stdout",
    *,
    size_limit: int = SIZE_LIMIT,
    lines_limit: int = LINES_LIMIT,
    cancelled: Callable[[], bool] = lambda: False,
) -> Comparison:
    """The lines of the collector's `stream` output on each host, rarest first; lines every
    host has come last. Blank lines and leading or trailing spaces are ignored."""
    latest = latest_per_host(state, of)
    result = Comparison(of.step, of.item, stream, [])
    holders: dict[str, list[str]] = {}
    for host in sorted(latest):
        record = latest[host].files.get(stream) or {}
        sha256, size = record.get("sha256"), int(record.get("size") or 0)
        if not sha256:
            result.notes.append(f"{host}: no {stream} was kept")
            continue
        if size > size_limit:
            result.notes.append(
                f"{host}: left out, its {stream} is {_size(size)} (over {_size(size_limit)})"
            )
            continue
        try:
            lines, cut = _host_lines(store.path(str(sha256)), lines_limit, cancelled)
        except OSError as failed:
            result.notes.append(f"{host}: its {stream} cannot be read: {failed.strerror}")
            continue
        if cut:
            result.notes.append(f"{host}: only its first {lines_limit} distinct lines compared")
        result.hosts.append(host)
        for line in lines:
            holders.setdefault(line, []).append(host)
    # Rarest first; among equals, alphabetical, so the same evidence always reads the same.
    ordered = sorted(holders.items(), key=lambda pair: (len(pair[1]), pair[0]))
    result.lines = [SharedLine(text, tuple(hosts)) for text, hosts in ordered]
    return result
