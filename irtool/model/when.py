"""Times as a responder reads and types them: one human format with its zone, and the short
forms people say at 02:00 ("in 30m", "19:30").

The journal keeps UTC ISO 8601 with microseconds (`2026-12-06T18:49:46.109947Z`) so that text
order is time order; nobody should have to read that. Every face shows a moment through
`shown` and a length of time through `span`, and reads a typed time through `parse_when`.
The responder's zone is IRTOOL_TZ (an IANA name such as Europe/Paris), else TZ, else the
machine's own.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

FORMAT = "%Y-%m-%d %H:%M:%S"
EXAMPLES = "30m, 2h, 1h30m, -15m (ago), 19:30 (today), or 2026-11-21T03:10+01:00"
_SPAN = re.compile(r"(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m(?:in)?)?(?:(?P<s>\d+)s)?")
_CLOCK = re.compile(r"(?P<h>[01]?\d|2[0-3]):(?P<m>[0-5]\d)(?::(?P<s>[0-5]\d))?")


def zone() -> tzinfo:
    """The responder's zone: IRTOOL_TZ, else TZ, else the machine's local zone."""
    for name in (os.environ.get("IRTOOL_TZ"), os.environ.get("TZ")):
        if name:
            try:
                return ZoneInfo(name.lstrip(":"))
            except (ZoneInfoNotFoundError, ValueError):
                continue
    local = datetime.now().astimezone().tzinfo
    return local or UTC


def _moment(at: str | datetime) -> datetime | None:
    if isinstance(at, datetime):
        return at if at.tzinfo else at.replace(tzinfo=UTC)
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _zone_name(moment: datetime) -> str:
    name = moment.tzname() or ""
    if not name or name[0] in "+-" or (name.startswith("UTC") and len(name) > 3):
        offset = moment.utcoffset() or timedelta()
        if not offset:
            return "UTC"
        sign = "-" if offset < timedelta() else "+"
        minutes = abs(int(offset.total_seconds())) // 60
        return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"
    return name


def shown(at: str | datetime | None, where: tzinfo | None = None, *, seconds: bool = True) -> str:
    """`2026-12-06 19:49:46 CET`: the one way a moment is shown. Text that is not a time is
    returned as it is (a journal never holds one; an import might)."""
    if at is None or at == "":
        return ""
    moment = _moment(at)
    if moment is None:
        return str(at)
    local = moment.astimezone(where or zone())
    text = local.strftime(FORMAT if seconds else FORMAT[:-3])
    return f"{text} {_zone_name(local)}"


def clock(at: str | datetime | None, where: tzinfo | None = None) -> str:
    """`19:49:46`: the time of day alone, for a column whose heading names the zone."""
    moment = _moment(at) if at else None
    if moment is None:
        return "" if not at else str(at)
    return moment.astimezone(where or zone()).strftime("%H:%M:%S")


def zone_label(where: tzinfo | None = None, at: datetime | None = None) -> str:
    """The zone's short name as `shown` writes it (CET, UTC, UTC+05:30)."""
    return _zone_name((at or datetime.now(UTC)).astimezone(where or zone()))


def span(delta: timedelta | float | None) -> str:
    """`1h 30m`, `45s`, `2d 3h`: a length of time as people say it ("every 1h", not 1:00:00)."""
    if delta is None:
        return ""
    seconds = round(delta.total_seconds() if isinstance(delta, timedelta) else delta)
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if n]
    if secs or not parts:
        parts.append(f"{secs}s")
    return sign + " ".join(parts[:2])


def parse_span(text: str) -> timedelta | None:
    """`30m`, `2h`, `1h30m`, `90s`, `1d`; None when `text` is not one."""
    compact = text.replace(" ", "").lower()
    match = _SPAN.fullmatch(compact)
    if not compact or match is None or not any(match.groupdict().values()):
        return None
    parts = {k: int(v) for k, v in match.groupdict().items() if v}
    return timedelta(
        days=parts.get("d", 0),
        hours=parts.get("h", 0),
        minutes=parts.get("m", 0),
        seconds=parts.get("s", 0),
    )


def parse_when(
    text: str, now: datetime, *, ahead: bool = True, where: tzinfo | None = None
) -> datetime:
    """A typed time, timezone-aware; ValueError naming the accepted forms.

    - `now`;
    - a span (`30m`, `1h30m`): that long after `now` when `ahead` (a reconvene time), before it
      otherwise (a note's back-dated time); `+30m` and `-30m` (or `30m ago`) say so outright;
    - a time of day (`19:30`): today in the responder's zone;
    - ISO 8601, where a time without an offset is UTC, as IIS logs write it.
    """
    raw = text.strip()
    lowered = raw.lower()
    if lowered == "now":
        return now
    sign = 1 if ahead else -1
    body = lowered
    if body.endswith(" ago") or body.endswith("ago"):
        sign, body = -1, body.removesuffix("ago").strip()
    elif body[:1] in "+-":
        sign, body = (1 if body[0] == "+" else -1), body[1:].strip()
    delta = parse_span(body)
    if delta is not None:
        return now + sign * delta
    match = _CLOCK.fullmatch(raw)
    if match:
        local_zone = where or zone()
        today = now.astimezone(local_zone).date()
        moment = time(int(match["h"]), int(match["m"]), int(match["s"] or 0))
        return datetime.combine(today, moment, tzinfo=local_zone)
    try:
        moment_iso = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"'{text}' is not a time: try {EXAMPLES}") from None
    return moment_iso if moment_iso.tzinfo else moment_iso.replace(tzinfo=UTC)
