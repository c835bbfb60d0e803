"""Hunts: questions asked of the web-server requests and the Windows events, as data (YAML files),
found, checked and run.

Finding hunts: the shipped ones (``SHIPPED``, ``irtool/analysis/hunts/**/*.yaml``), then the
user's directories, searched recursively for ``*.yaml`` and ``*.yml``. A user hunt whose ``id``
is a shipped hunt's replaces it (a later directory's replaces an earlier one's); two files
with the same id in one directory are a problem.

Checking (``load_hunt``, ``load_hunts``): the file is read and validated as
``irtool.model.hunt.Hunt``, every problem located (``file:line:col``); then its query is run,
with its defaults, on empty ``requests`` and ``events`` tables (no file system access): a
query that DuckDB rejects, or whose result does not follow the convention below, is a problem
located on the ``query`` key (at the query's own line when DuckDB names one).

The result convention: every row the SELECT returns is ONE finding, with these columns (more
are allowed and ignored):

=============  ===========================================  ================================
column         type                                         meaning
=============  ===========================================  ================================
``summary``    VARCHAR                                      one line: who did what, where
``first_seen`` TIMESTAMP                                    the first matching request (UTC)
``last_seen``  TIMESTAMP                                    the last one
``hits``       an integer (BIGINT: ``count(*)``)            the matching requests
``refs``       STRUCT(sha256 VARCHAR, source VARCHAR,       the matching rows, first first;
               line BIGINT)[]                               the runner keeps ``MAX_REFS``
``hosts``      VARCHAR[]                                    the incident hosts (NULL: none)
``key``        VARCHAR                                      what makes it the same finding
                                                            again: stable (a client, a URI,
                                                            an hour), never a count
=============  ===========================================  ================================

Optional: ``indicators``, ``STRUCT(kind VARCHAR, value VARCHAR)[]``: what the finding names
that a sweep of other hosts can look for (a new account, a service's name and image path, a
task, a source address), each ``kind`` one of ``irtool.model.indicators.IOC_KINDS``; an item
with another kind or no value is dropped. An events hunt's ``refs`` name the record:
``{'sha256': evidence_sha256, 'source': source, 'line': line}`` (``line`` is the
EventRecordID).

The usual spelling::

    SELECT client || ' POSTed ' || count(*) || ' times to ' || cs_uri_stem AS summary,
           min(ts) AS first_seen, max(ts) AS last_seen, count(*) AS hits,
           min_by({'sha256': evidence_sha256, 'source': source, 'line': line},
                  {'ts': ts, 'line': line}, 50) AS refs,
           list(DISTINCT host) FILTER (WHERE host IS NOT NULL) AS hosts,
           client || ' ' || cs_uri_stem AS key
    FROM requests WHERE ts >= $window_start AND cs_method = 'POST' GROUP BY client, cs_uri_stem

``min_by(row, {'ts': ts, 'line': line}, 50)`` is the first 50 rows by time and line, kept in
bounded memory; ``list(row ORDER BY ts, line)[1:50]`` gives the same list but holds every
matching row of a group first (on a log of tens of millions of lines, more than the store's
memory limit: the hunt fails).

Parameters: each declared one (``$name``) gets its default, or the value given for the hunt
in ``run_hunts(params=...)``; a ``timestamp`` written as a duration (``24h``) is that long
before the last row of the hunt's ``table`` (``requests``: the last request; ``events``: the
last event record). ``$ioc_<kind>`` (``$ioc_ip``, ``$ioc_user_agent``, ...)
are the incident's indicators, lists of text (empty without an incident): write them
``$ioc_ip::VARCHAR[]``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from irtool.analysis.store import RequestStore, StoreError, events_table, requests_table
from irtool.model.hunt import BUILTIN_PARAMETERS, Hunt, coerce_parameter, worst_first
from irtool.model.indicators import IOC_KINDS
from irtool.model.loader import validate
from irtool.model.problems import InvalidFile, Mark, Problem
from irtool.model.yamlsource import Document, read

__all__ = [
    "INDICATORS_TYPE",
    "MAX_REFS",
    "RESULT_COLUMNS",
    "SHIPPED",
    "FindingDraft",
    "HuntError",
    "LoadedHunt",
    "hunt_files",
    "load_hunt",
    "load_hunts",
    "run_hunts",
]

#: The shipped hunts (package data).
SHIPPED: Path = Path(__file__).parent / "hunts"
#: References kept per finding (the rows after these are counted in `hits`, not listed).
MAX_REFS = 50
_REFS_TYPE = "STRUCT(sha256 VARCHAR, source VARCHAR, line BIGINT)[]"
#: The columns every hunt's SELECT returns, with their types (see the module docstring).
RESULT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("summary", "VARCHAR"),
    ("first_seen", "TIMESTAMP"),
    ("last_seen", "TIMESTAMP"),
    ("hits", "INTEGER"),  # any integer type
    ("refs", _REFS_TYPE),
    ("hosts", "VARCHAR[]"),
    ("key", "VARCHAR"),
)
#: The optional column of a hunt's result: the finding's indicators.
INDICATORS_TYPE = "STRUCT(kind VARCHAR, value VARCHAR)[]"
_INTEGERS = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT"}
_INTEGERS |= {"UINTEGER", "UBIGINT", "UHUGEINT"}
_SUFFIXES = (".yaml", ".yml")


class HuntError(Exception):
    """A hunt that could not run (its SQL failed, a parameter value is wrong), named."""


@dataclass(frozen=True)
class LoadedHunt:
    """A valid hunt with the file it came from."""

    hunt: Hunt
    path: Path
    doc: Document


@dataclass(frozen=True)
class FindingDraft:
    """One row of a hunt's result: what `finding.raised` records."""

    hunt: str
    version: str
    severity: str
    title: str
    summary: str  # one line, e.g. "185.220.101.47 POSTed 24 times to /x.aspx (200)"
    hosts: tuple[str, ...]  # incident hosts (empty offline)
    first_seen: str | None  # ISO 8601, UTC
    last_seen: str | None
    count: int  # matching requests
    refs: tuple[tuple[str, str, int], ...]  # (evidence sha256, source, line), at most MAX_REFS
    key: str  # "<hunt id>:<the row's key>": the same finding again has the same key
    # What the finding names that can be looked for elsewhere (an indicator sweep): (kind,
    # value), kind one of `irtool.model.indicators.IOC_KINDS` (ip, sha256, file, task, ...).
    indicators: tuple[tuple[str, str], ...] = ()
    # True for a finding about what a host HAS (a file unlike its release, a record unlike its
    # baseline or its peers, a sweep's hit): the same key is the same finding whatever output
    # showed it, so a new listing of the same web root raises nothing again. False (a log's
    # finding): more lines in a later log are news, raised again with that evidence.
    same_by_key: bool = False

    @classmethod
    def of_row(
        cls, row: Mapping[str, Any], *, hunt: str, version: str, severity: str, title: str,
        summary: str, key: str,
    ) -> FindingDraft:  # fmt: skip
        """A result row (the convention's hosts, first_seen, last_seen, hits, refs) as a draft;
        what it is called and about is the caller's (a hunt's, a Sigma rule's)."""
        return cls(
            hunt=hunt,
            version=version,
            severity=severity,
            title=title,
            summary=summary,
            hosts=tuple(sorted({str(h) for h in row.get("hosts") or () if h})),
            first_seen=_iso(row.get("first_seen")),
            last_seen=_iso(row.get("last_seen")),
            count=int(row.get("hits") or 0),
            refs=_refs(row.get("refs")),
            key=key,
            indicators=_indicators(row.get("indicators")),
        )


def worst_first_drafts(drafts: list[FindingDraft]) -> list[FindingDraft]:
    """Most severe first, then the first seen: the order findings are raised in."""
    return sorted(
        drafts, key=lambda d: (worst_first(d.severity), d.first_seen or "", d.hunt, d.key)
    )


# -- finding ----------------------------------------------------------------------------------


def _files_in(directory: Path) -> list[Path]:
    if directory.is_file():
        return [directory]
    if not directory.is_dir():
        raise InvalidFile([Problem(Mark(str(directory), 1, 1), "no such directory of hunts")])
    return sorted(p for p in directory.rglob("*") if p.suffix in _SUFFIXES and p.is_file())


def _file_id(path: Path) -> str:
    """The hunt id a file declares; its name when it cannot be read (loading says why)."""
    try:
        data = read(path).data
    except InvalidFile:
        return path.stem
    if isinstance(data, dict) and isinstance(data.get("id"), str):
        return str(data["id"])
    return path.stem


def _scan(extra_dirs: Sequence[Path]) -> tuple[list[Path], list[Problem]]:
    chosen: dict[str, Path] = {}
    problems: list[Problem] = []
    for directory in (SHIPPED, *extra_dirs):
        here: dict[str, Path] = {}
        for path in _files_in(Path(directory)):
            hunt_id = _file_id(path)
            if hunt_id in here:
                problems.append(
                    Problem(
                        Mark(str(path), 1, 1),
                        f"hunt '{hunt_id}' is also defined in {here[hunt_id]}",
                    )
                )
                continue
            here[hunt_id] = path
            chosen.pop(hunt_id, None)  # overridden: the user's comes after the shipped ones
            chosen[hunt_id] = path
    return list(chosen.values()), problems


def hunt_files(extra_dirs: Sequence[Path] = ()) -> list[Path]:
    """The hunt files in force: the shipped ones, then the user's (a user hunt with a shipped
    hunt's id replaces it)."""
    return _scan(extra_dirs)[0]


# -- checking ---------------------------------------------------------------------------------


def _check_connection() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    con.execute(requests_table())
    con.execute(events_table())
    return con


def _sample_values(hunt: Hunt) -> dict[str, Any]:
    values: dict[str, Any] = {name: [] for name in BUILTIN_PARAMETERS}
    for name, value in hunt.defaults().items():
        values[name] = datetime(2000, 1, 1) if isinstance(value, timedelta) else value
    return values


def _type_ok(column: str, wanted: str, got: str) -> bool:
    if column == "hits":
        return got in _INTEGERS
    return got.replace('"', "") == wanted


_LINE = re.compile(r"\nLINE (\d+):")


def _query_mark(doc: Document, sql_line: int | None) -> Mark:
    """The mark of the `query` value, moved to the query's own line in a block scalar."""
    mark = doc.mark(("query",))
    if sql_line is None or not doc.sources:
        return mark
    lines = doc.sources[0][1].decode("utf-8-sig", "replace").splitlines()
    text = lines[mark.line - 1][mark.col - 1 :] if 0 < mark.line <= len(lines) else ""
    if text[:1] in ("|", ">") and mark.line + sql_line <= len(lines):
        target = lines[mark.line + sql_line - 1]
        return Mark(mark.path, mark.line + sql_line, len(target) - len(target.lstrip()) + 1)
    return mark


def _check_query(hunt: Hunt, doc: Document, con: duckdb.DuckDBPyConnection) -> list[Problem]:
    sql = hunt.query
    try:
        statements = con.extract_statements(sql)
        if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
            return [Problem(doc.mark(("query",)), "query: a hunt's query is ONE SELECT")]
        names = set(statements[0].named_parameters)
        values = _sample_values(hunt)
        cursor = con.execute(sql, {n: values[n] for n in names} if names else None)
        described = {d[0]: str(d[1]) for d in cursor.description or ()}
        cursor.fetchall()
    except duckdb.Error as e:
        message = str(e)
        line = _LINE.search(message)
        first = message.split("\n", 1)[0]
        return [Problem(_query_mark(doc, int(line.group(1)) if line else None), f"query: {first}")]
    except KeyError as e:  # a parameter DuckDB reads that our scan did not (in a string?)
        return [Problem(doc.mark(("query",)), f"query: parameter ${e.args[0]} is not declared")]
    problems = []
    indicators = described.get("indicators")
    if indicators is not None and indicators.replace('"', "") != INDICATORS_TYPE:
        shown = indicators.replace('"', "")
        problems.append(
            Problem(
                doc.mark(("query",)),
                f"query: column 'indicators' is {shown}, not {INDICATORS_TYPE}",
            )
        )
    for column, wanted in RESULT_COLUMNS:
        got = described.get(column)
        if got is None:
            problems.append(
                Problem(doc.mark(("query",)), f"query: returns no column '{column}' ({wanted})")
            )
        elif not _type_ok(column, wanted, got):
            want = "an integer" if column == "hits" else wanted
            shown = got.replace('"', "")
            problems.append(
                Problem(doc.mark(("query",)), f"query: column '{column}' is {shown}, not {want}")
            )
    return problems


def _load(path: Path, con: duckdb.DuckDBPyConnection) -> LoadedHunt:
    doc = read(path)
    hunt = validate(doc, Hunt)
    problems = _check_query(hunt, doc, con)
    if problems:
        raise InvalidFile(problems)
    return LoadedHunt(hunt, path, doc)


def load_hunt(path: Path | str) -> LoadedHunt:
    """Read, validate and check one hunt file; InvalidFile with every located problem."""
    con = _check_connection()
    try:
        return _load(Path(path), con)
    finally:
        con.close()


def load_hunts(extra_dirs: Sequence[Path] = (), only: Sequence[str] = ()) -> list[Hunt]:
    """The hunts in force (`hunt_files`), checked; `only` keeps those ids, in that order.

    Raises InvalidFile with the located problems of every bad file (a bad hunt is never
    skipped silently), and ValueError for an id in `only` that no hunt has."""
    paths, problems = _scan(extra_dirs)
    hunts: dict[str, Hunt] = {}
    con = _check_connection()
    try:
        for path in paths:
            try:
                hunt = _load(path, con).hunt
            except InvalidFile as invalid:
                problems += invalid.problems
                continue
            hunts[hunt.id] = hunt
    finally:
        con.close()
    if problems:
        raise InvalidFile(problems)
    if not only:
        return list(hunts.values())
    unknown = [h for h in only if h not in hunts]
    if unknown:
        raise ValueError(
            f"no hunt {', '.join(repr(u) for u in unknown)}; known: {', '.join(sorted(hunts))}"
        )
    return [hunts[h] for h in dict.fromkeys(only)]


# -- running ----------------------------------------------------------------------------------


def _naive_utc(value: datetime) -> datetime:
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return _naive_utc(value).replace(tzinfo=UTC).isoformat()
    return str(value)


def _values(
    hunt: Hunt,
    overrides: Mapping[str, Any],
    iocs: Mapping[str, list[str]],
    end: datetime | None,
) -> dict[str, Any]:
    unknown = sorted(set(overrides) - set(hunt.parameters))
    if unknown:
        raise HuntError(
            f"hunt {hunt.id}: no parameter {', '.join(unknown)} "
            f"(it has: {', '.join(hunt.parameters) or 'none'})"
        )
    values: dict[str, Any] = {name: list(iocs.get(name[4:], ())) for name in BUILTIN_PARAMETERS}
    for name, parameter in hunt.parameters.items():
        raw = overrides.get(name, parameter.default)
        try:
            value = coerce_parameter(parameter.type, raw)
        except ValueError as e:
            raise HuntError(f"hunt {hunt.id}: parameter {name}: {e}") from None
        if isinstance(value, timedelta):
            value = (end or datetime.now(UTC).replace(tzinfo=None)) - value
        elif isinstance(value, datetime):
            value = _naive_utc(value)
        values[name] = value
    return values


def _refs(value: Any) -> tuple[tuple[str, str, int], ...]:
    refs = []
    for ref in (value or ())[:MAX_REFS]:
        if ref and ref.get("sha256") is not None and ref.get("line") is not None:
            refs.append((str(ref["sha256"]), str(ref.get("source") or ""), int(ref["line"])))
    return tuple(refs)


def _indicators(value: Any) -> tuple[tuple[str, str], ...]:
    """A result's indicators: known kinds with a value, each once, in order."""
    out: dict[tuple[str, str], None] = {}
    for item in value or ():
        if not item:
            continue
        kind, text = item.get("kind"), item.get("value")
        if kind in IOC_KINDS and text is not None and str(text).strip():
            out[(str(kind), str(text).strip())] = None
    return tuple(out)


def run_hunts(
    store: RequestStore,
    hunts: Sequence[Hunt],
    params: Mapping[str, Mapping[str, Any]] | None = None,
    iocs: Mapping[str, list[str]] | None = None,
) -> list[FindingDraft]:
    """Run each hunt over the store; its findings sorted by severity (critical first), then
    first seen. `params`: hunt id -> {parameter: value} (text is read as the type wants);
    `iocs`: kind -> values (the incident's indicators). Raises HuntError naming the hunt whose
    SQL or parameters fail."""
    params = params or {}
    iocs = iocs or {}
    ends: dict[str, datetime | None] = {}
    drafts: list[FindingDraft] = []
    for hunt in hunts:
        if hunt.table not in ends:  # durations count back from the last row of its table
            rows = store.query(f"SELECT max(ts) AS end_ts FROM {hunt.table}")  # noqa: S608
            ends[hunt.table] = rows[0]["end_ts"] if rows else None
        values = _values(hunt, params.get(hunt.id, {}), iocs, ends[hunt.table])
        try:
            result = store.query(hunt.query, values)
        except StoreError as e:
            raise HuntError(f"hunt {hunt.id} (version {hunt.version}) failed: {e}") from e
        for row in result:
            hits = row.get("hits")
            if not hits:
                continue  # an aggregate over nothing
            drafts.append(
                FindingDraft.of_row(
                    row,
                    hunt=hunt.id,
                    version=hunt.version,
                    severity=hunt.severity,
                    title=hunt.title,
                    summary=" ".join(str(row.get("summary") or hunt.title).split()),
                    key=f"{hunt.id}:{row.get('key')}",
                )
            )
    return worst_first_drafts(drafts)
