"""Pivots: every request of one client, one URI or one user agent, from the incident's store.

A responder looking at a finding asks next "what else did this client do?", "who else reached
this page?", "what else came with this user agent?". The answer is read from the incident's
derived store (`analysis.duckdb`, built by `irtool analyze`, see `irtool.engine.findings`),
each request with the evidence file and line it stands on, so the viewer can open it.

The store is opened read-only, queried and closed at once: DuckDB lets one process have a database
file, so a store held open here would lock `irtool analyze` out in another terminal (and the
other way round: while it loads, a pivot says so and asks to try again). A missing store is
said as such, never created here: "run analyze" when the incident has web logs to load.

The pivot's column is one of `PIVOTS` (a fixed name, never the responder's text); the value
is always a query parameter, never written into the SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from irtool.analysis.evtx import MAGIC as EVTX_MAGIC
from irtool.analysis.store import RequestStore, StoreError
from irtool.engine.findings import STORE_FILE, web_logs
from irtool.evidence.store import EvidenceStore
from irtool.journal.incidents import EVIDENCE_DIR

if TYPE_CHECKING:
    from irtool.engine.state import IncidentState

__all__ = [
    "LIMIT",
    "PIVOTS",
    "Pivot",
    "PivotUnavailable",
    "Request",
    "event_records",
    "is_event_log",
    "pivot",
    "pivot_on_ref",
    "request_at",
]

#: What can be pivoted on: the store's column, and what a responder calls it.
PIVOTS: dict[str, str] = {
    "client": "client",
    "cs_uri_stem": "URI",
    "cs_user_agent": "user agent",
}
#: Requests returned at most; the rest are counted (`Pivot.more`).
LIMIT = 2000

_FIELDS = (
    "ts, host, client, cs_method, cs_uri_stem, cs_uri_query, sc_status, sc_substatus, "
    "cs_user_agent, evidence_sha256, source, line"
)


class PivotUnavailable(Exception):
    """The store cannot answer now (missing, in use, broken): the message says what to do."""


@dataclass(frozen=True)
class Request:
    """One request, with the evidence line it was read from."""

    ts: datetime | None  # UTC, naive as the store keeps it
    host: str  # the incident host whose log it is
    client: str
    method: str
    stem: str  # cs-uri-stem
    query: str  # cs-uri-query ("" when none)
    status: str  # `200`, `401.1`
    user_agent: str
    sha256: str
    source: str
    line: int  # 1-based, in `source`

    @property
    def uri(self) -> str:
        """The stem, and `?query` when there is one."""
        return f"{self.stem}?{self.query}" if self.query else self.stem

    def value(self, column: str) -> str | None:
        """This request's value of a pivot column (None: the log has no such field)."""
        return {
            "client": self.client,
            "cs_uri_stem": self.stem,
            "cs_user_agent": self.user_agent,
        }[column] or None


@dataclass(frozen=True)
class Pivot:
    column: str
    value: str
    requests: list[Request]  # oldest first, at most the limit asked for
    total: int  # every matching request in the store
    unloaded: int = 0  # the incident's web logs not in the store yet (analyze loads them)

    @property
    def more(self) -> int:
        """Matching requests not in `requests` (over the limit)."""
        return self.total - len(self.requests)

    @property
    def what(self) -> str:
        """`client 10.1.7.23`, as a title says it."""
        return f"{PIVOTS[self.column]} {self.value}"


def _request(row: dict[str, Any]) -> Request:
    status = "" if row["sc_status"] is None else str(row["sc_status"])
    if status and row["sc_substatus"]:
        status += f".{row['sc_substatus']}"
    return Request(
        row["ts"],
        row["host"] or "",
        row["client"] or "",
        row["cs_method"] or "",
        row["cs_uri_stem"] or "",
        row["cs_uri_query"] or "",
        status,
        row["cs_user_agent"] or "",
        row["evidence_sha256"],
        row["source"],
        int(row["line"]),
    )


def _open(directory: Path, state: IncidentState | None) -> RequestStore:
    path = directory / STORE_FILE
    incident = state.id if state is not None else directory.name
    if not path.exists():
        # Opening would create it: an empty store answers nothing and misleads.
        if state is not None:
            evidence = EvidenceStore(directory / EVIDENCE_DIR, create=False)
            logs = len(web_logs(state, evidence))
            if not logs:
                raise PivotUnavailable(
                    f"incident {incident} has no web logs in its evidence: nothing to pivot on"
                )
            raise PivotUnavailable(
                f"the requests are not loaded yet: run `irtool analyze {incident}` "
                f"(it loads the {logs} web log(s) in the evidence)"
            )
        raise PivotUnavailable(f"{path}: no analysis store: run `irtool analyze {incident}`")
    try:
        return RequestStore(path, read_only=True)
    except StoreError as error:
        if "lock" in str(error).lower() or "different configuration" in str(error):
            # Another process loading it, or an analysis loading it in this one.
            raise PivotUnavailable(
                f"{path}: in use by another process (an `irtool analyze` still loading?): "
                "try again once it is done"
            ) from error
        raise PivotUnavailable(f"{error}: delete it and run `irtool analyze {incident}`") from error


def _request_in(store: RequestStore, sha256: str, source: str, line: int) -> Request | None:
    rows = store.query(
        f"SELECT {_FIELDS} FROM requests "  # noqa: S608 - constant names; values are parameters
        "WHERE evidence_sha256 = $sha AND source = $source AND line = $line LIMIT 1",
        {"sha": sha256, "source": source, "line": line},
    )
    return _request(rows[0]) if rows else None


def _pivot_in(store: RequestStore, column: str, value: str, limit: int) -> Pivot:
    if column not in PIVOTS:
        raise ValueError(f"no pivot on {column!r} (pivots: {', '.join(PIVOTS)})")
    # `column` is one of PIVOTS' own names: the only text of the query not a parameter.
    rows = store.query(
        f"SELECT {_FIELDS}, count(*) OVER () AS total FROM requests WHERE {column} = $value "  # noqa: S608
        "ORDER BY ts NULLS LAST, evidence_sha256, source, line LIMIT $limit",
        {"value": value, "limit": max(0, limit)},
    )
    if rows:
        total = int(rows[0]["total"])
    else:  # over no row the window says nothing: the limit may be 0
        counted = store.query(
            f"SELECT count(*) AS n FROM requests WHERE {column} = $value",  # noqa: S608
            {"value": value},
        )
        total = int(counted[0]["n"])
    return Pivot(column, value, [_request(r) for r in rows], total)


def _unloaded(store: RequestStore, directory: Path, state: IncidentState | None) -> int:
    """Web logs kept since the last analysis: their requests are not in the answer."""
    if state is None:
        return 0
    loaded = {
        r["evidence_sha256"]
        for r in store.query(
            "SELECT DISTINCT evidence_sha256 FROM sources WHERE loaded_at IS NOT NULL"
        )
    }
    evidence = EvidenceStore(directory / EVIDENCE_DIR, create=False)
    return sum(log.sha256 not in loaded for log in web_logs(state, evidence))


def request_at(
    directory: Path, sha256: str, source: str, line: int, state: IncidentState | None = None
) -> Request | None:
    """The request read from `source` line `line` of evidence `sha256` (None: not in the
    store). `directory` is the incident's; `state` lets a missing store be explained."""
    with _open(directory, state) as store:
        return _request_in(store, sha256, source, line)


def pivot(
    directory: Path,
    column: str,
    value: str,
    *,
    limit: int = LIMIT,
    state: IncidentState | None = None,
) -> Pivot:
    """Every request whose `column` (one of `PIVOTS`) is `value`, oldest first, at most
    `limit` of them (`Pivot.total` counts them all). PivotUnavailable when the store cannot
    answer; ValueError for a column that is not a pivot. With `state`, `Pivot.unloaded`
    counts the incident's web logs kept since the store was last loaded."""
    if column not in PIVOTS:
        raise ValueError(f"no pivot on {column!r} (pivots: {', '.join(PIVOTS)})")
    with _open(directory, state) as store:
        found = _pivot_in(store, column, value, limit)
        return replace(found, unloaded=_unloaded(store, directory, state))


def pivot_on_ref(
    directory: Path,
    column: str,
    ref: dict[str, Any],
    *,
    limit: int = LIMIT,
    state: IncidentState | None = None,
) -> Pivot:
    """The pivot on the value `column` has in the request a finding's reference points at
    (`{"sha256", "source", "line"}`), in one opening of the store."""
    if column not in PIVOTS:
        raise ValueError(f"no pivot on {column!r} (pivots: {', '.join(PIVOTS)})")
    sha256, source, line = str(ref.get("sha256")), str(ref.get("source")), int(ref.get("line", 0))
    with _open(directory, state) as store:
        request = _request_in(store, sha256, source, line)
        if request is None:
            raise PivotUnavailable(
                f"{source}:{line}: not in the analysis store (was it rebuilt from other "
                "evidence?): run `irtool analyze` again"
            )
        value = request.value(column)
        if value is None:
            raise PivotUnavailable(f"{source}:{line}: the request has no {PIVOTS[column]}")
        found = _pivot_in(store, column, value, limit)
        return replace(found, unloaded=_unloaded(store, directory, state))


def event_records(
    directory: Path, state: IncidentState | None, refs: list[tuple[str, str, int]]
) -> list[tuple[str, int, str]]:
    """The Windows event log records a finding names ((sha256, source, record id) refs), as
    the store keeps them: (source, record id, the record as JSON). An EVTX file is binary: a
    responder reads its records, not its bytes."""
    store = _open(directory, state)
    try:
        found = []
        for sha256, source, line in refs:
            rows = store.query(
                "SELECT raw FROM events WHERE evidence_sha256 = $sha AND line = $line LIMIT 1",
                {"sha": sha256, "line": line},
            )
            if rows:
                found.append((source, line, str(rows[0]["raw"])))
        return found
    except StoreError as error:
        raise PivotUnavailable(f"{error}: run the analysis again") from error
    finally:
        store.close()


def is_event_log(directory: Path, sha256: str) -> bool:
    """Whether an incident's evidence file is a Windows event log (EVTX), by its first bytes:
    a finding's references into it are record numbers, read from the store."""
    try:
        with EvidenceStore(directory / EVIDENCE_DIR, create=False).path(sha256).open("rb") as f:
            return f.read(len(EVTX_MAGIC)) == EVTX_MAGIC
    except (OSError, ValueError):
        return False
