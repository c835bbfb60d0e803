"""What every section of the post-mortem writes the same way: a moment, a link to an event, a
link to an evidence file."""

from __future__ import annotations

import os
from datetime import tzinfo

from irtool.export.report import TARGET, Code, Inline, Link, Span
from irtool.journal import Event
from irtool.model.when import shown, zone


def moment(at: str | None) -> str:
    """A moment as a responder reads it (`2026-11-21 03:24:00 CET`); the machine exports keep
    the journal's ISO 8601 UTC."""
    return shown(at, _zone())


_ZONES: dict[tuple[str | None, str | None], tzinfo] = {}


def _zone() -> tzinfo:
    """The responder's zone, found once for the settings that name it (not once a row: a
    timeline of a million rows would look it up a million times)."""
    said = (os.environ.get("IRTOOL_TZ"), os.environ.get("TZ"))
    found = _ZONES.get(said)
    if found is None:
        found = _ZONES[said] = zone()
    return found


def or_empty(value: object) -> str:
    return "" if value is None else str(value)


def event_link(seq: int, text: str) -> Link:
    return Link(text, f"#event-{seq}")


def evidence_link(sha256: str, text: str | Code) -> Span:
    """A link to the evidence file; a value that is no SHA-256 (a tampered journal) is shown
    as it is, unlinked."""
    href = f"evidence/{sha256}"
    return Link(text, href) if TARGET.fullmatch(href) else text


def evidence_links(event: Event) -> Inline:
    links: list[Span] = []
    for stream in ("stdout", "stderr", "file"):
        item = event.data.get(stream)
        if isinstance(item, dict) and item.get("sha256"):
            links += [" "] if links else []
            links.append(evidence_link(item["sha256"], stream))
    return tuple(links)
