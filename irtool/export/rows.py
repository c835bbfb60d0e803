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
import io
import json
from collections.abc import Iterator
from datetime import UTC
from typing import Any

from irtool.engine.timeline import describe
from irtool.export.recorded import Recorded
from irtool.export.unfolded import Unfolded, in_time_order, unfold
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
        + (" (written after closing)" if late else ""),
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


def rows(recorded: Recorded) -> Iterator[dict[str, Any]]:
    broken_at = None if recorded.verification.ok else recorded.verification.first_bad_seq
    found = unfold(recorded.events)
    for event in in_time_order(recorded.events):
        yield row(event, recorded.state.mode, broken_at, found)


def as_csv(recorded: Recorded) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows(recorded))
    return out.getvalue()


def as_jsonl(recorded: Recorded) -> str:
    """Timesketch's JSONL: one object per line, keys in a fixed order."""
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows(recorded))
