"""One row per event, as Timesketch imports it (CSV or JSONL): `message`, `datetime` (ISO 8601
with its offset), `timestamp` (microseconds since the epoch), `timestamp_desc`, then the
incident's own columns. The message is the timeline's own line for the event. Rows come in
the order things happened (then the journal's order); `corrected_by` names the events that
correct a row, and a row written after the incident closed says so in its message.

Every text cell is made `visible` (a host's words are in the message; nothing in a cell may
act on the terminal that shows the file), and a cell a spreadsheet would read as a formula
(it starts with = + - @, a tab or a carriage return) is prefixed with a single quote, the
OWASP rule: `--as "=cmd|' /C calc'!A0"` is a name, never a command."""

from __future__ import annotations

import csv
import heapq
import json
from collections.abc import Iterator
from datetime import UTC
from typing import Any, TextIO

from irtool.engine import kinds
from irtool.engine.timeline import describe
from irtool.export.recorded import Recorded
from irtool.export.unfolded import Unfolded
from irtool.journal import Event
from irtool.journal.events import parse_moment
from irtool.model.untrusted import visible

COLUMNS = (
    "message",
    "datetime",
    "timestamp",
    "timestamp_desc",
    "incident",
    "mode",
    "seq",
    "kind",
    "actor",
    "step",
    "host",
    "evidence_sha256",
    "recorded_at",
    "corrected_by",
    "hash",
    "chain",
)
_EPOCH_US = 1_000_000
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> object:
    """A cell safe to show and to open in a spreadsheet; numbers stay numbers."""
    if not isinstance(value, str):
        return value
    text = visible(value)
    return "'" + text if text.startswith(_FORMULA) else text


def _evidence(event: Event) -> str:
    """Every evidence file the event records, stdout first: space-separated SHA-256s."""
    found = [
        event.data[stream]["sha256"]
        for stream in ("stdout", "stderr", "file")
        if isinstance(event.data.get(stream), dict) and event.data[stream].get("sha256")
    ]
    return " ".join(found)


def row(
    event: Event, mode: str, broken_at: int | None = None, found: Unfolded | None = None
) -> dict[str, Any]:
    occurred = parse_moment(event.occurred_at).astimezone(UTC)
    whole = int(occurred.timestamp())
    micros = whole * _EPOCH_US + occurred.microsecond
    back_dated = event.occurred_at != event.recorded_at
    late = found is not None and event.seq in found.after_close
    corrected_by = found.corrections(event.seq) if found else []
    cells = {
        "message": f"[{mode.upper()}] {describe(event)}"
        + (" (written after closing)" if late else "")
        + (" (unsigned)" if found is not None and found.unsigned(event) else ""),
        "datetime": occurred.isoformat(timespec="microseconds"),
        "timestamp": micros,
        "timestamp_desc": "Occurred (back-dated)" if back_dated else "Occurred",
        "incident": event.incident,
        "mode": mode,
        "seq": event.seq,
        "kind": event.kind,
        "actor": event.actor,
        "step": event.step or "",
        "host": event.host or "",
        "evidence_sha256": _evidence(event),
        "recorded_at": event.recorded_at,
        "corrected_by": " ".join(str(seq) for seq in corrected_by),
        "hash": event.hash,
        # A broken chain is said on every row from the break on, so no import can miss it.
        "chain": "verified"
        if broken_at is None or event.seq < broken_at
        else f"UNVERIFIED: the chain is broken at event {broken_at}",
    }
    return {name: cell(value) for name, value in cells.items()}


def first_seen_row(event: Event, mode: str, broken_at: int | None = None) -> dict[str, Any] | None:
    """A finding's second row: at its first matching request, where an investigator's
    timeline wants it (the raised row is when irtool found it, often days later)."""
    first = event.data.get("first_seen")
    if event.kind != kinds.FINDING_RAISED or not first:
        return None
    cells = row(event, mode, broken_at)
    try:
        seen = parse_moment(str(first)).astimezone(UTC)
    except ValueError:
        return None  # a hunt's own time that is not one: the raised row stands alone
    refs = event.data.get("refs") or []
    cells.update(
        message=cell(
            f"[{mode.upper()}] first request of finding {event.seq} "
            f"({event.data.get('severity')}, {event.data.get('hunt')}): "
            f"{event.data.get('summary', '')}"
        ),
        datetime=seen.isoformat(timespec="microseconds"),
        timestamp=int(seen.timestamp()) * _EPOCH_US + seen.microsecond,
        timestamp_desc="First seen",
        host=cell(" ".join(str(h) for h in event.data.get("hosts") or [])),
        evidence_sha256=" ".join(dict.fromkeys(str(r.get("sha256")) for r in refs)),
    )
    return cells


def rows(recorded: Recorded) -> Iterator[dict[str, Any]]:
    """Every event's row in time order, and each finding's first-seen row among them."""
    broken_at = None if recorded.verification.ok else recorded.verification.first_bad_seq
    found, mode = recorded.found, recorded.state.mode
    first_seen = sorted(
        (
            r
            for e in recorded.events(kinds.FINDING_RAISED)
            if (r := first_seen_row(e, mode, broken_at))
        ),
        key=lambda r: (r["timestamp"], r["seq"]),
    )
    events = (row(e, mode, broken_at, found) for e in recorded.events(order="time"))
    # Both are in time order: merged, not sorted again (an incident has 100,000s of events).
    yield from heapq.merge(first_seen, events, key=lambda r: r["timestamp"])


def as_csv(recorded: Recorded, out: TextIO) -> None:
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows(recorded))


def as_jsonl(recorded: Recorded, out: TextIO) -> None:
    """Timesketch's JSONL: one object per line, keys in a fixed order."""
    lines: list[str] = []
    for r in rows(recorded):
        lines.append(json.dumps(r, ensure_ascii=False) + "\n")
        if len(lines) == 1000:
            out.write("".join(lines))
            lines = []
    out.write("".join(lines))
