"""The analytical store: web-server requests and Windows events in DuckDB, for hunts, Sigma rules
and pivots.

The store is DERIVED. It is rebuilt from the evidence at any time and is never a second
source of truth, nor evidence itself: every row keeps the SHA-256 of the evidence file it came
from and its line number there, so a finding always leads back to the evidence. Deleting the
store's file and loading the same evidence again gives the same rows; a store written by
another schema version is emptied when opened (its rows are simply loaded again), and a load
that was interrupted is removed when the store is next opened.

Tables:

- ``requests``: one row per log line. ``ts`` (TIMESTAMP, UTC, from the ``date`` and ``time``
  fields), the common IIS fields as typed columns (see ``COLUMNS``), ``extra`` (MAP of every
  other field, keyed by its canonical field name, e.g. ``extra['cs(x-custom)']``; NULL when
  the ``#Fields`` has no other field), ``raw`` (the line as written), ``evidence_sha256``,
  ``source``, ``line`` and ``host``. ``ts`` is NULL without both ``date`` and ``time``.
  ``client`` is computed when read (nothing stored): the last address of ``X-Forwarded-For``
  when the log has it (behind a proxy, the address the proxy saw), else ``c_ip``.
- ``events``: one row per Windows event log record (``EVENT_COLUMNS``, loaded by
  ``load_events`` from what ``irtool.analysis.evtx`` reads): ``ts`` (TimeCreated, UTC),
  ``channel``, ``provider``, ``event_id``, ``level``, ``computer``, ``data`` (MAP of the event
  data as text), ``raw`` (the record as JSON), ``evidence_sha256``, ``source``, ``line`` (the
  EventRecordID) and ``host``. Hunts match a record on channel AND provider AND event id: ids
  collide across providers.
- ``sources``: one row per source (a file, or a member of an archive) of each evidence file:
  ``evidence_sha256, source, host, rows, loaded_at`` (``loaded_at`` is NULL while loading).

Field names map to columns by :func:`column_name`: lowercased, ``cs(User-Agent)`` ->
``cs_user_agent``, ``cs(Referer)`` -> ``cs_referer``, ``cs-host``/``cs(Host)`` -> ``cs_host``,
``cs(X-Forwarded-For)``/``X-Forwarded-For`` -> ``x_forwarded_for``, ``-`` -> ``_``. A value that
does not fit its column's type (a status ``abc``, a port ``1.5``) is stored as NULL, counted
in :class:`LoadStats` and reported as a located warning: it never fails a load. ``-`` (no
value) is NULL and is not counted.

Speed: rows are not inserted one by one, nor converted value by value in Python. Each batch
(in pieces of `_CHUNK_ROWS`) is one INSERT ... SELECT whose parameter is the batch's raw lines
as ONE string: DuckDB splits the lines and their fields, decodes ('+' -> ' ', '-' -> NULL) and
types them. That is valid when a batch's raw lines are exactly its fields joined by single
spaces, as W3C writes them: the reader says so of its batches (``exact``: it checked every
line's count of values), and then their decoded columns are never made; for another batch it
is checked per batch, in bulk, and a batch that is not so is loaded from its decoded
``columns`` (list parameters: slower, same rows). Bad values: an exact batch's integers are
cast strictly (digits only) and, when the transaction commits, only the stored rows with a
NULL typed column are split again in SQL to count and locate the values that did not fit;
another batch's values are proved clean in bulk in Python (digits, known dates and times),
and only a batch that may hold bad values is checked value by value in SQL. The statements
run on a worker thread, so that the reader parses the next batch while DuckDB loads this one,
in transactions of up to `_COMMIT_ROWS` rows (large appends go straight to the database
file). DuckDB's memory is limited (``memory_limit``) and each statement's working set is
bounded by `_CHUNK_ROWS`.

Dedup: an evidence file (SHA-256) is loaded once. ``load`` (and ``load_events``) skips the
batches of an evidence file already in the store, or already loaded earlier in the same call,
and says so in :attr:`LoadStats.skipped`; the batches of one evidence file are expected one
after the other (as the reader yields them). ``forget`` drops an evidence file's rows (requests
and events). This bookkeeping per evidence file (skipping, the ``sources`` rows, transactions,
removing a partly loaded file) is `_EvidenceLoad`, the same for both tables; events are loaded
by :mod:`irtool.analysis.event_load`, as list parameters (one INSERT per piece of
`_CHUNK_ROWS` records), on the calling thread.

``query`` runs ONE ``SELECT`` with named parameters (``$name``) and returns dicts. The
connection has no file system access (``read_csv('/etc/passwd')`` is refused) and its
configuration is locked: a hunt or a rule reads the store and nothing else.
"""

from __future__ import annotations

import contextlib
import queue
import re
import shutil
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import duckdb

if TYPE_CHECKING:
    from irtool.analysis.event_load import EventBatchLike

__all__ = [
    "COLUMNS",
    "EVENT_COLUMNS",
    "BatchLike",
    "LoadStats",
    "LoadWarning",
    "RequestStore",
    "StoreError",
    "column_name",
    "events_table",
    "requests_table",
]

SCHEMA_VERSION = 3

# The typed columns of `requests` for IIS fields, in table order, with their SQL types.
_FIELD_COLUMNS: tuple[tuple[str, str], ...] = (
    ("s_ip", "VARCHAR"),
    ("cs_method", "VARCHAR"),
    ("cs_uri_stem", "VARCHAR"),
    ("cs_uri_query", "VARCHAR"),
    ("s_port", "INTEGER"),
    ("cs_username", "VARCHAR"),
    ("c_ip", "VARCHAR"),
    ("cs_user_agent", "VARCHAR"),
    ("cs_referer", "VARCHAR"),
    ("cs_cookie", "VARCHAR"),
    ("cs_host", "VARCHAR"),
    ("sc_status", "INTEGER"),
    ("sc_substatus", "INTEGER"),
    ("sc_win32_status", "BIGINT"),
    ("sc_bytes", "BIGINT"),
    ("cs_bytes", "BIGINT"),
    ("time_taken", "BIGINT"),
    ("s_sitename", "VARCHAR"),
    ("s_computername", "VARCHAR"),
    ("x_forwarded_for", "VARCHAR"),
)
_FIELD_TYPES = dict(_FIELD_COLUMNS)

# The columns a load writes, in order.
_STORED: tuple[tuple[str, str], ...] = (
    ("ts", "TIMESTAMP"),
    *_FIELD_COLUMNS,
    ("extra", "MAP(VARCHAR, VARCHAR)"),
    ("raw", "VARCHAR"),
    ("evidence_sha256", "VARCHAR"),
    ("source", "VARCHAR"),
    ("line", "BIGINT"),
    ("host", "VARCHAR"),
)
# Columns computed when read (nothing to load or keep): the client behind a proxy is the
# LAST address of X-Forwarded-For, the one the nearest proxy saw (the addresses before it are
# the client's own claim, which an attacker writes as they like), else c-ip.
_COMPUTED: tuple[tuple[str, str, str], ...] = (
    (
        "client",
        "VARCHAR",
        "coalesce(nullif(trim(string_split(x_forwarded_for, ',')[-1]), ''), c_ip)",
    ),
)

#: Every column of `requests`, in order, with its SQL type.
COLUMNS: tuple[tuple[str, str], ...] = (*_STORED, *((n, t) for n, t, _ in _COMPUTED))


#: The `events` table: one row per Windows event log record (EVTX). `data` holds the
#: record's EventData (named ``Data`` elements by their name, unnamed ones as ``Data[1]``,
#: ``Data[2]``, ...) and UserData (flattened, ``Parent.Child``) as text; `raw` is the record
#: as JSON (what the evtx parser gives); `line` is the record's EventRecordID, which a
#: finding's reference names (sha256, source, line) as it does a web log's line number.
EVENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("ts", "TIMESTAMP"),  # TimeCreated, UTC
    ("channel", "VARCHAR"),  # Security, System, Microsoft-Windows-Sysmon/Operational, ...
    ("provider", "VARCHAR"),  # Microsoft-Windows-Security-Auditing, Service Control Manager
    ("event_id", "INTEGER"),
    ("level", "INTEGER"),
    ("computer", "VARCHAR"),
    ("data", "MAP(VARCHAR, VARCHAR)"),
    ("raw", "VARCHAR"),
    ("evidence_sha256", "VARCHAR"),
    ("source", "VARCHAR"),
    ("line", "BIGINT"),  # the EventRecordID
    ("host", "VARCHAR"),
)


def events_table(name: str = "events") -> str:
    """The DDL of the events table (the store's, and the empty one queries are checked on)."""
    columns = [f"{column} {sql_type}" for column, sql_type in EVENT_COLUMNS]
    return f"CREATE TABLE IF NOT EXISTS {name} ({', '.join(columns)})"


# The statement that fills `events` from one batch's columns (list parameters, unnested side
# by side): it names no columns, so it follows EVENT_COLUMNS' order and lives beside it. The
# store hands it to the events loader (`irtool.analysis.event_load`).
_EVENTS_INSERT = (
    "INSERT INTO events SELECT TRY_CAST(ts AS TIMESTAMP), channel, provider, event_id, level, "
    "computer, json_transform(d, '\"MAP(VARCHAR, VARCHAR)\"'), raw, $sha, $source, line, "
    "$host FROM (SELECT "
    "unnest($ts::VARCHAR[]) AS ts, unnest($channel::VARCHAR[]) AS channel, "
    "unnest($provider::VARCHAR[]) AS provider, unnest($event_id::INTEGER[]) AS event_id, "
    "unnest($level::INTEGER[]) AS level, unnest($computer::VARCHAR[]) AS computer, "
    "unnest($data::VARCHAR[]) AS d, "
    "unnest($raw::VARCHAR[]) AS raw, unnest($lines::BIGINT[]) AS line)"
)


def requests_table(name: str = "requests") -> str:
    """The DDL of the requests table (the store's, and the empty one queries are checked on)."""
    stored = [f"{column} {sql_type}" for column, sql_type in _STORED]
    computed = [f"{c} {t} GENERATED ALWAYS AS ({sql}) VIRTUAL" for c, t, sql in _COMPUTED]
    return f"CREATE TABLE IF NOT EXISTS {name} ({', '.join(stored + computed)})"


_INTO = ", ".join(name for name, _ in _STORED)
_ALIASES = {"cs_x_forwarded_for": "x_forwarded_for"}
_HEADER_FIELD = re.compile(r"^(cs|sc|s|c)\((.*)\)$")
_TS_FORMATS = "['%Y-%m-%d %H:%M:%S', '%Y-%m-%d %H:%M:%S.%f']"
# Rows per transaction while loading one evidence file: large appends are written straight to
# the database file (not through the write-ahead log). The rows of an evidence file whose load
# was interrupted are removed (by the load itself, or when the store next opens).
_COMMIT_ROWS = 1_000_000
# Rows per INSERT statement: a batch is cut in pieces of this size, which bounds DuckDB's
# working memory (the statement's strings) whatever the reader's batch size.
_CHUNK_ROWS = 10_000
_EXAMPLES = 5  # located warnings per column and source; the rest are counted


def column_name(field_name: str) -> str | None:
    """The typed column of `requests` an IIS field goes to, or None (it goes to `extra`).
    `date` and `time` are not columns: together they make `ts`."""
    name = field_name.strip().lower()
    header = _HEADER_FIELD.match(name)
    if header:
        name = f"{header.group(1)}_{header.group(2)}"
    name = name.replace("-", "_")
    name = _ALIASES.get(name, name)
    return name if name in _FIELD_TYPES else None


class _EvidenceBatch(Protocol):
    """What `_EvidenceLoad` reads of any batch (`BatchLike`, `EventBatchLike`)."""

    @property
    def source(self) -> str: ...
    @property
    def sha256(self) -> str: ...
    @property
    def lines(self) -> Sequence[int]: ...


class BatchLike(_EvidenceBatch, Protocol):
    """What `load` reads of a batch: `irtool.analysis.w3c.Batch` is one."""

    @property
    def fields(self) -> Sequence[str]: ...
    @property
    def columns(self) -> Sequence[Sequence[str | None]]: ...
    @property
    def raw(self) -> Sequence[str]: ...


_B = TypeVar("_B", bound=_EvidenceBatch)


class StoreError(Exception):
    """A query the store refuses or DuckDB rejects, or a load DuckDB failed (rolled back),
    with DuckDB's message."""


@dataclass(frozen=True)
class LoadWarning:
    """A value that did not fit its column (stored as NULL), or a note about a source."""

    source: str
    line: int  # 0: about the whole source
    message: str

    def __str__(self) -> str:
        return (
            f"{self.source}:{self.line}: {self.message}"
            if self.line
            else (f"{self.source}: {self.message}")
        )


@dataclass
class LoadStats:
    """What one `load` call did."""

    rows: int = 0  # rows inserted into `requests` (`events` for `load_events`)
    batches: int = 0  # batches read (loaded or skipped)
    loaded: list[str] = field(default_factory=list)  # evidence SHA-256s loaded by this call
    sources: list[str] = field(default_factory=list)  # their sources (display names)
    skipped: list[str] = field(default_factory=list)  # sources skipped: evidence already loaded
    skipped_rows: int = 0
    invalid: dict[str, int] = field(default_factory=dict)  # column -> values stored as NULL
    warnings: list[LoadWarning] = field(default_factory=list)
    slow_batches: int = 0  # batches loaded from their decoded columns (raw did not match)
    seconds: float = 0.0

    @property
    def invalid_values(self) -> int:
        return sum(self.invalid.values())


@dataclass(frozen=True)
class _Layout:
    """How one `#Fields` line maps to `requests`."""

    fields: tuple[str, ...]
    date: int | None
    time: int | None
    typed: tuple[tuple[str, int], ...]  # (column, field index)
    extra: tuple[tuple[str, int], ...]  # (key, field index)

    @classmethod
    def of(cls, fields: Sequence[str]) -> _Layout:
        names = tuple(f.strip().lower() for f in fields)
        date = time_ = None
        typed: dict[str, int] = {}
        extra: dict[str, int] = {}
        for index, name in enumerate(names):
            if name == "date" and date is None:
                date = index
                continue
            if name == "time" and time_ is None:
                time_ = index
                continue
            column = column_name(name)
            if column is not None and column not in typed:
                typed[column] = index
            elif name not in extra:  # a field named twice: the first one counts
                extra[name] = index
        return cls(names, date, time_, tuple(typed.items()), tuple(extra.items()))


class _Sql:
    """SQL over one batch. `fast`: the batch's raw lines as one string parameter `$raw`, each
    split into its tokens `f[1]`, `f[2]`, ... (undecoded); otherwise the decoded columns as
    list parameters `$c0`, `$c1`, ... . `strict`: integers are checked to be digits (TRY_CAST
    alone takes '1.5', '1e3', '0x1F' and '1_000'); a batch proved clean needs no check."""

    def __init__(self, layout: _Layout, fast: bool, strict: bool, consecutive: bool) -> None:
        self.layout = layout
        self.fast = fast
        self.strict = strict
        self.consecutive = consecutive

    def tok(self, i: int) -> str:
        return f"f[{i + 1}]" if self.fast else f"c{i}"

    def text(self, i: int) -> str:
        t = self.tok(i)
        return f"nullif(replace({t}, '+', ' '), '-')" if self.fast else t

    def present(self, i: int) -> str:
        t = self.tok(i)
        return f"({t} <> '-')" if self.fast else f"({t} IS NOT NULL)"

    def integer(self, i: int, sql_type: str, strict: bool | None = None) -> str:
        t = self.tok(i)
        if self.strict if strict is None else strict:
            return (
                f"(CASE WHEN regexp_full_match({t}, '[0-9]+') THEN TRY_CAST({t} AS {sql_type}) END)"
            )
        return f"TRY_CAST({t} AS {sql_type})"

    def ts(self) -> str | None:
        d, t = self.layout.date, self.layout.time
        if d is None or t is None:
            return None
        return f"try_strptime({self.tok(d)} || ' ' || {self.tok(t)}, {_TS_FORMATS})"

    def checks(self) -> list[tuple[str, str, str]]:
        """(column, bad-value condition, the value as written) for each typed column."""
        out: list[tuple[str, str, str]] = []
        d, t, ts = self.layout.date, self.layout.time, self.ts()
        if d is not None and t is not None and ts is not None:
            present = f"({self.present(d)} OR {self.present(t)})"
            value = f"{self.tok(d)} || ' ' || {self.tok(t)}"
            out.append(("ts", f"{present} AND {ts} IS NULL", value))
        for column, i in self.layout.typed:
            sql_type = _FIELD_TYPES[column]
            if sql_type != "VARCHAR":
                bad = f"{self.present(i)} AND {self.integer(i, sql_type, strict=True)} IS NULL"
                out.append((column, bad, self.tok(i)))
        return out

    def select(self) -> str:
        typed = dict(self.layout.typed)
        parts = [f"{self.ts() or 'NULL'}::TIMESTAMP"]
        for column, sql_type in _FIELD_COLUMNS:
            i = typed.get(column)
            if i is None:
                parts.append(f"NULL::{sql_type}")
            elif sql_type == "VARCHAR":
                parts.append(self.text(i))
            else:
                parts.append(self.integer(i, sql_type))
        if self.layout.extra:
            values = ", ".join(f"{self.text(i)}::VARCHAR" for _, i in self.layout.extra)
            parts.append(f"MAP($keys::VARCHAR[], [{values}])")
        else:
            parts.append("NULL::MAP(VARCHAR, VARCHAR)")
        parts += ["raw", "$sha", "$source", "line", "$host"]
        return "SELECT " + ", ".join(parts)

    def source(self) -> str:
        """The batch as a relation of (raw, line, and f or c0, c1, ...)."""
        if self.fast:
            if self.consecutive:
                line = "unnest(range($first, $first + $n))"
            else:
                line = "unnest(string_split($lines, ','))::BIGINT"
            rows = f"SELECT unnest(string_split($raw, chr(10))) AS raw, {line} AS line"
            return f"(SELECT raw, line, string_split(raw, ' ') AS f FROM ({rows}))"  # noqa: S608
        columns = "".join(
            f", unnest($c{i}::VARCHAR[]) AS c{i}" for i in range(len(self.layout.fields))
        )
        return f"(SELECT unnest($raw::VARCHAR[]) AS raw, unnest($lines::BIGINT[]) AS line{columns})"

    @staticmethod
    def params(batch: BatchLike, text: str | None) -> tuple[bool, dict[str, Any]]:
        """(consecutive, the parameters of `source()`) for a batch."""
        lines = batch.lines
        if text is None:
            values: dict[str, Any] = {"raw": list(batch.raw), "lines": list(lines)}
            for i, column in enumerate(batch.columns):
                values[f"c{i}"] = list(column)
            return False, values
        first, n = lines[0], len(lines)
        if lines[-1] - first == n - 1 and list(lines) == list(range(first, first + n)):
            return True, {"raw": text, "first": first, "n": n}
        return False, {"raw": text, "lines": ",".join(map(str, lines))}


class RequestStore:
    """The requests of web-server logs in DuckDB: a file (created if missing) or ':memory:'."""

    def __init__(
        self, path: Path | str, *, memory_limit: str = "128MB", read_only: bool = False
    ) -> None:
        """`read_only`: only to query an existing store (a pivot): nothing is created, dropped
        or cleaned up, and other read-only readers may hold it at the same time."""
        self.path = path
        self.read_only = read_only
        self._tmp: str | None = None
        database = str(path)
        # No file system access for SQL (read_csv, COPY, ATTACH): hunts and rules read the
        # store and nothing else. Set when the database opens, so that every connection to it
        # in this process (DuckDB shares one instance per file) has it.
        config: dict[str, Any] = {"memory_limit": memory_limit, "enable_external_access": False}
        if database == ":memory:":
            # DuckDB spills to `.tmp` in the working directory otherwise.
            self._tmp = tempfile.mkdtemp(prefix="irtool-store-")
            config["temp_directory"] = self._tmp
        try:
            self._con = duckdb.connect(database, read_only=read_only, config=config)
        except duckdb.Error as e:
            self._cleanup()
            raise StoreError(f"{database}: cannot open the store: {e}") from e
        try:
            # No progress bar: DuckDB draws one on standard output for a query of more than
            # two seconds (a hunt over a large log), in the middle of `analyze --json`'s output.
            self._con.execute("SET enable_progress_bar = false")
            # Locked, so that no SQL can turn file access back on.
            self._con.execute("SET lock_configuration = true")
        except duckdb.InvalidInputException:
            # A second connection to a database this process has open: its first connection
            # locked the configuration already (file access is off for all of them).
            pass
        try:
            self._setup()
        except BaseException:
            self.close()
            raise

    # -- schema -------------------------------------------------------------------------------

    def _setup(self) -> None:
        con = self._con
        if self.read_only:
            try:
                row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            except duckdb.Error as e:
                raise StoreError(f"{self.path}: not a store of requests: {e}") from e
            if row is None or row[0] != str(SCHEMA_VERSION):
                raise StoreError(f"{self.path}: written by another version of irtool")
            return
        con.execute("CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
        row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is not None and row[0] != str(SCHEMA_VERSION):
            # Derived data from another version: drop it; the evidence loads again.
            con.execute("DROP TABLE IF EXISTS requests")
            con.execute("DROP TABLE IF EXISTS events")
            con.execute("DROP TABLE IF EXISTS sources")
        con.execute(requests_table())
        con.execute(events_table())
        con.execute(
            "CREATE TABLE IF NOT EXISTS sources (evidence_sha256 VARCHAR NOT NULL, "
            "source VARCHAR NOT NULL, host VARCHAR, rows BIGINT NOT NULL, loaded_at TIMESTAMP)"
        )
        con.execute(
            "INSERT OR REPLACE INTO meta VALUES ('schema_version', $v)", {"v": str(SCHEMA_VERSION)}
        )
        # A load that was interrupted (the process killed) left rows of an evidence file that
        # is not marked loaded: remove them, it loads again.
        for (sha,) in con.execute(
            "SELECT DISTINCT evidence_sha256 FROM sources WHERE loaded_at IS NULL"
        ).fetchall():
            self.forget(sha)

    # -- loading ------------------------------------------------------------------------------

    def loaded(self, sha256: str) -> bool:
        """Whether the evidence file with this SHA-256 is in the store (completely loaded)."""
        row = self._con.execute(
            "SELECT count(*) FROM sources WHERE evidence_sha256 = $sha AND loaded_at IS NOT NULL",
            {"sha": sha256},
        ).fetchone()
        return bool(row and row[0])

    def forget(self, sha256: str) -> None:
        """Drop an evidence file's rows (to load it again, or because it is gone)."""
        con = self._con
        con.execute("BEGIN")
        try:
            con.execute("DELETE FROM requests WHERE evidence_sha256 = $sha", {"sha": sha256})
            con.execute("DELETE FROM events WHERE evidence_sha256 = $sha", {"sha": sha256})
            con.execute("DELETE FROM sources WHERE evidence_sha256 = $sha", {"sha": sha256})
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def load(
        self,
        batches: Iterable[BatchLike],
        host: str | None = None,
        *,
        on_warning: Callable[[LoadWarning], None] | None = None,
    ) -> LoadStats:
        """Load batches (as `irtool.analysis.w3c.read_paths` yields them) into `requests`.

        An evidence file already in the store is skipped (`LoadStats.skipped`); each evidence
        file is marked loaded once its last batch is in. If the batches raise (or DuckDB does),
        the rows of the evidence file being loaded are removed and the error propagates.
        `on_warning` is called in the calling thread, as the load goes. Pass
        `skip=store.loaded` to `read_paths` not to even read what is already loaded."""
        return _Loader(self, host, on_warning).run(batches)

    def load_events(
        self,
        batches: Iterable[EventBatchLike],
        host: str | None = None,
        *,
        on_warning: Callable[[LoadWarning], None] | None = None,
    ) -> LoadStats:
        """Load Windows event log batches (as `irtool.analysis.evtx.read_evtx_paths` yields
        them) into `events`, with the same guarantees as `load`: an evidence file already in
        the store is skipped (`LoadStats.skipped`), one is marked loaded once its last batch
        is in, and if the batches raise (or DuckDB does) the rows of the evidence file being
        loaded are removed and the error propagates. A record whose time cannot be read is
        kept with a NULL `ts` and warned about."""
        # Imported here: the events loader builds on this module's `_EvidenceLoad`.
        from irtool.analysis.event_load import EventLoader

        return EventLoader(self, host, on_warning, _EVENTS_INSERT).run(batches)

    # -- reading ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def only(self, evidence: Iterable[str]) -> Iterator[None]:
        """Within it, `requests` and `events` hold only these evidence files' rows: an analyze
        step's hunts and rules read its sources' logs, not every log the incident's store
        holds."""
        con = self._con
        catalog = str(con.execute("SELECT current_database()").fetchone()[0])  # type: ignore[index]
        schema = '"' + catalog.replace('"', '""') + '".main.'
        con.execute("CREATE TEMP TABLE _only_evidence (sha256 VARCHAR)")
        views: list[str] = []
        try:
            shas = [[sha] for sha in evidence]
            if shas:  # none: the step's sources kept no log, and the tables are seen empty
                con.executemany("INSERT INTO _only_evidence VALUES (?)", shas)
            for table in ("requests", "events"):
                # A temporary view is found before the table of the same name.
                con.execute(
                    f"CREATE TEMP VIEW {table} AS SELECT * FROM {schema}{table} "  # noqa: S608 - our own names
                    "WHERE evidence_sha256 IN (SELECT sha256 FROM temp._only_evidence)"
                )
                views.append(table)
            yield
        finally:
            for table in views:
                con.execute(f"DROP VIEW temp.{table}")
            con.execute("DROP TABLE temp._only_evidence")

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run one SELECT with named parameters (`$name`); rows as dicts, in the query's column
        order. Parameters the query does not name are ignored (a hunt passes all its
        thresholds); one it names but is not given is an error."""
        try:
            statements = self._con.extract_statements(sql)
        except duckdb.Error as e:
            raise StoreError(str(e)) from e
        if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
            raise StoreError("a query is one SELECT statement")
        names = set(statements[0].named_parameters)
        given = dict(params or {})
        missing = sorted(names - given.keys())
        if missing:
            raise StoreError("no value for parameter(s): " + ", ".join(f"${n}" for n in missing))
        try:
            cursor = self._con.execute(sql, {n: given[n] for n in names} if names else None)
            header = [d[0] for d in cursor.description or ()]
            return [dict(zip(header, row, strict=True)) for row in cursor.fetchall()]
        except duckdb.Error as e:
            raise StoreError(str(e)) from e

    # -- lifetime -----------------------------------------------------------------------------

    def close(self) -> None:
        try:
            self._con.close()
        finally:
            self._cleanup()

    def _cleanup(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self) -> RequestStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@dataclass
class _Slice:
    """Rows [start, stop) of a batch."""

    source: str
    sha256: str
    fields: Sequence[str]
    columns: Sequence[Sequence[str | None]]
    lines: Sequence[int]
    raw: Sequence[str]
    exact: bool = False

    @classmethod
    def of(cls, batch: BatchLike, start: int, stop: int) -> _Slice:
        exact = getattr(batch, "exact", False)
        return cls(
            batch.source,
            batch.sha256,
            batch.fields,
            # an exact batch's columns are not made (see `_Loader.insert`)
            [] if exact else [column[start:stop] for column in batch.columns],
            batch.lines[start:stop],
            batch.raw[start:stop],
            exact,
        )


class _Worker:
    """Runs the load's DuckDB statements, in order, on a thread of their own: DuckDB releases
    the GIL while it works, so the reader parses the next batch meanwhile. A failed job is
    raised in the loading thread at the next `submit` or `drain`; later jobs are dropped."""

    def __init__(self) -> None:
        self.jobs: queue.Queue[Callable[[], None] | None] = queue.Queue(maxsize=1)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self.run, name="irtool-store-load", daemon=True)
        self.thread.start()

    def run(self) -> None:
        while True:
            job = self.jobs.get()
            try:
                if job is None:
                    return
                if self.error is None:
                    job()
            except BaseException as e:  # handed to the loading thread
                self.error = e
            finally:
                self.jobs.task_done()

    def submit(self, job: Callable[[], None]) -> None:
        self.raise_error()
        self.jobs.put(job)

    def drain(self) -> None:
        self.jobs.join()
        self.raise_error()

    def raise_error(self) -> None:
        if self.error is not None:
            error, self.error = self.error, None
            raise error

    def close(self) -> None:
        self.jobs.put(None)
        self.thread.join()


class _EvidenceLoad(Generic[_B]):
    """One load call's bookkeeping per evidence file, the same whichever table it fills.

    Batches come grouped by evidence file (SHA-256). One already in the store, or finished
    earlier in the call, is skipped (`LoadStats.skipped`); rows of an earlier, interrupted
    load of it are removed first. Rows go in in transactions of up to `_COMMIT_ROWS` rows,
    each of which writes the evidence file's `sources` rows too (``loaded_at`` NULL), so that
    a load killed half-way is found and removed when the store next opens; the last one sets
    ``loaded_at`` (complete). If the batches raise (or DuckDB does), the transaction is rolled
    back and what was committed of the current evidence file is removed.

    A subclass inserts a batch's rows (`put`), and may run its statements elsewhere than on
    the calling thread (`execute`, with `drain`, `deliver` and `close`), prepare a commit
    (`before_commit`) and look over an evidence file once it is in (`finished`)."""

    what = "the batches"  # named by an error raised before the first evidence file

    def __init__(
        self,
        store: RequestStore,
        host: str | None,
        on_warning: Callable[[LoadWarning], None] | None,
    ) -> None:
        self.store = store
        self.con = store._con
        self.host = host
        self.on_warning = on_warning
        self.stats = LoadStats()
        self.sha: str | None = None  # the evidence file being read
        self.skipping = False  # ... and it is already in the store
        self.committed = False  # ... and some of its rows are committed
        self.done: set[str] = set()  # evidence files finished in this call
        self.source_rows: dict[str, int] = {}  # rows per source of the current evidence file
        self.in_tx = False
        self.tx_rows = 0

    def run(self, batches: Iterable[_B]) -> LoadStats:
        start = time.perf_counter()
        try:
            for batch in batches:
                self.add(batch)
                self.deliver()
            self.finish_evidence()
        except duckdb.Error as e:
            self.abort()
            raise StoreError(f"loading {self.sha or self.what}: {e}") from e
        except BaseException:
            self.abort()
            raise
        finally:
            self.close()
            self.stats.seconds = time.perf_counter() - start
        self.deliver()
        return self.stats

    # -- what a loader changes ------------------------------------------------------------

    def put(self, batch: _B) -> None:
        """Insert the rows of a batch (not empty) of the current evidence file, within the
        open transaction."""
        raise NotImplementedError

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        """Run a statement of the load (in order with the others)."""
        self.con.execute(sql, params)

    def drain(self) -> None:
        """Wait for the statements given to `execute` (the connection is free after)."""

    def deliver(self) -> None:
        """Hand the warnings found elsewhere than in the loading thread to `warn`."""

    def close(self) -> None:
        """The load is over (done or failed)."""

    def before_commit(self) -> None:
        """The current transaction is about to commit."""

    def finished(self) -> None:
        """The current evidence file is in (committed, statements drained)."""

    # -- the bookkeeping ------------------------------------------------------------------

    def warn(self, warning: LoadWarning) -> None:
        self.stats.warnings.append(warning)
        if self.on_warning is not None:
            self.on_warning(warning)

    def add(self, batch: _B) -> None:
        self.stats.batches += 1
        n = len(batch.lines)
        if batch.sha256 != self.sha:
            self.finish_evidence()
            self.start_evidence(batch.sha256)
        if self.skipping:
            if batch.source not in self.stats.skipped:
                self.stats.skipped.append(batch.source)
            self.stats.skipped_rows += n
            return
        if n == 0:
            return
        if not self.in_tx:
            self.execute("BEGIN")
            self.in_tx = True
        self.put(batch)
        if batch.source not in self.source_rows:
            self.source_rows[batch.source] = 0
            self.stats.sources.append(batch.source)
        self.source_rows[batch.source] += n
        self.stats.rows += n
        self.tx_rows += n
        if self.tx_rows >= _COMMIT_ROWS:
            self.commit(final=False)

    def start_evidence(self, sha: str) -> None:
        self.drain()  # the store is read here, on the calling thread
        self.sha = sha
        self.committed = False
        row = self.con.execute(
            "SELECT count(*), count(loaded_at) FROM sources WHERE evidence_sha256 = $sha",
            {"sha": sha},
        ).fetchone()
        present, complete = row if row is not None else (0, 0)
        self.skipping = sha in self.done or complete > 0
        if present and not complete:
            # Rows of an earlier, interrupted load of this file would be doubled.
            self.store.forget(sha)

    def commit(self, final: bool) -> None:
        """Record the current evidence file's sources (loaded when `final`) and commit."""
        if not self.in_tx:
            self.execute("BEGIN")
        self.before_commit()
        loaded_at = datetime.now(UTC).replace(tzinfo=None) if final else None
        self.execute("DELETE FROM sources WHERE evidence_sha256 = $sha", {"sha": self.sha})
        for source, rows in self.source_rows.items():
            self.execute(
                "INSERT INTO sources VALUES ($sha, $source, $host, $rows, $at)",
                {
                    "sha": self.sha,
                    "source": source,
                    "host": self.host,
                    "rows": rows,
                    "at": loaded_at,
                },
            )
        self.execute("COMMIT")
        self.in_tx = False
        self.committed = True
        self.tx_rows = 0

    def finish_evidence(self) -> None:
        """The current evidence file's last batch is in: mark it loaded, commit."""
        if self.sha is None:
            return
        if not self.skipping:
            if self.source_rows:
                self.commit(final=True)
                self.stats.loaded.append(self.sha)
            elif self.in_tx:
                self.execute("COMMIT")
                self.in_tx = False
            self.drain()
            self.finished()
        self.done.add(self.sha)
        self.sha = None
        self.skipping = False
        self.source_rows = {}

    def abort(self) -> None:
        """The batches (or the load) raised: remove what was loaded of the current evidence
        file. The statements are drained first (an error of theirs is dropped here)."""
        with contextlib.suppress(Exception):  # the error being handled matters more
            self.drain()
        try:
            if self.in_tx:
                self.in_tx = False
                self.con.execute("ROLLBACK")
        except duckdb.Error:
            pass  # no transaction left (the failed statement ended it)
        try:
            if self.sha is not None and not self.skipping and self.committed:
                self.store.forget(self.sha)
        except duckdb.Error:
            pass  # the original error matters more; the next open removes the rows


class _Loader(_EvidenceLoad[BatchLike]):
    """One `load` call into `requests`: each batch (or piece of `_CHUNK_ROWS` lines) one
    INSERT ... SELECT, run by a `_Worker` while the reader parses the next batch, and the
    values that did not fit their column counted and located (`check`)."""

    def __init__(
        self,
        store: RequestStore,
        host: str | None,
        on_warning: Callable[[LoadWarning], None] | None,
    ) -> None:
        super().__init__(store, host, on_warning)
        # Written by the worker, read by the loading thread after a drain:
        self.examples: dict[tuple[str, str], int] = {}  # (source, column) -> warned
        self.invalid: dict[tuple[str, str], int] = {}  # (source, column) -> values
        self.pending: deque[LoadWarning] = deque()  # warnings to hand to on_warning
        # [source, layout, first line, last line] inserted since the last commit, unchecked
        self.segments: list[list[Any]] = []
        self.worker = _Worker()

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        def job() -> None:
            self.con.execute(sql, params)

        self.worker.submit(job)

    def drain(self) -> None:
        self.worker.drain()

    def close(self) -> None:
        self.worker.close()

    def start_evidence(self, sha: str) -> None:
        super().start_evidence(sha)
        self.segments = []

    def put(self, batch: BatchLike) -> None:
        n = len(batch.lines)
        if n > _CHUNK_ROWS:  # DuckDB's working memory follows the statement's size
            for i in range(0, n, _CHUNK_ROWS):
                self.insert(_Slice.of(batch, i, i + _CHUNK_ROWS))
        else:
            self.insert(batch)

    def insert(self, batch: BatchLike) -> None:
        fields = tuple(batch.fields)
        layout = _layout(fields)
        exact = getattr(batch, "exact", False)
        if exact:
            # The reader's common case: the raw lines are the fields joined by single spaces
            # (checked line by line as it split them). Its columns are never made: the integers
            # are cast strictly and the values that did not fit are counted over the stored
            # rows when the transaction commits (`check_stored`).
            text: str | None = "\n".join(batch.raw)
            dirty = True
        else:
            text = _fast_text(batch)
            dirty = not _clean(batch, layout)
        if text is None:
            self.stats.slow_batches += 1
        consecutive, params = _Sql.params(batch, text)
        sql = _Sql(layout, text is not None, dirty, consecutive)
        insert = dict(params, sha=self.sha, source=batch.source, host=self.host)
        if layout.extra:
            insert["keys"] = [key for key, _ in layout.extra]
        self.execute(f"INSERT INTO requests ({_INTO}) {sql.select()} FROM {sql.source()}", insert)
        if exact:
            self.stored(batch.source, layout, batch.lines[0], batch.lines[-1])
        elif dirty:
            source = batch.source
            self.worker.submit(lambda: self.check(sql, sql.source(), params, source))

    def stored(self, source: str, layout: _Layout, first: int, last: int) -> None:
        """Rows of lines [first, last] of `source` went in under `layout`, to be checked for
        values that did not fit when the transaction commits."""
        if self.segments:
            previous = self.segments[-1]
            if previous[0] == source and previous[1] is layout and previous[3] < first:
                previous[3] = last
                return
        self.segments.append([source, layout, first, last])

    def check_stored(self, segments: list[list[Any]], sha: str | None) -> None:
        """Count the values of the rows inserted since the last commit that did not fit their
        column (`stored`): only the rows with a NULL typed column are read again, split from
        their raw line. Runs on the worker."""
        for source, layout, first, last in segments:
            sql = _Sql(layout, fast=True, strict=True, consecutive=False)
            checks = sql.checks()
            if not checks:
                continue
            nulls = " OR ".join(f"{column} IS NULL" for column, _, _ in checks)
            rows = (
                "(SELECT raw, line, string_split(raw, ' ') AS f FROM requests "  # noqa: S608
                "WHERE evidence_sha256 = $sha AND source = $source "
                f"AND line BETWEEN $first AND $last AND ({nulls}))"
            )
            params = {"sha": sha, "source": source, "first": first, "last": last}
            self.check(sql, rows, params, source)

    def before_commit(self) -> None:
        # The rows inserted since the last commit are checked for values that did not fit,
        # in the transaction that commits them.
        if self.segments:
            segments, sha, self.segments = self.segments, self.sha, []
            self.worker.submit(lambda: self.check_stored(segments, sha))

    def check(self, sql: _Sql, rows: str, params: dict[str, Any], source: str) -> None:
        """Count the values of `rows` (`sql.source()`, or stored rows split again) that did
        not fit their column (stored as NULL); warn with the first few of each column and
        source. Runs on the worker."""
        checks = sql.checks()
        if not checks:
            return
        counts = ", ".join(f"count(*) FILTER (WHERE {bad})" for _, bad, _ in checks)
        # Built from our own column names and field indices; values are parameters.
        row = self.con.execute(f"SELECT {counts} FROM {rows}", params).fetchone()  # noqa: S608
        assert row is not None
        for (column, bad, value), count in zip(checks, row, strict=True):
            if not count:
                continue
            self.stats.invalid[column] = self.stats.invalid.get(column, 0) + count
            self.invalid[(source, column)] = self.invalid.get((source, column), 0) + count
            warned = self.examples.get((source, column), 0)
            if warned >= _EXAMPLES:
                continue
            examples = self.con.execute(
                f"SELECT line, {value} FROM {rows} WHERE {bad} ORDER BY line LIMIT $k",  # noqa: S608
                dict(params, k=_EXAMPLES - warned),
            ).fetchall()
            self.examples[(source, column)] = warned + len(examples)
            kind = "a date and time" if column == "ts" else "an integer"
            for line, text in examples:
                message = f"{column}: {text!r} is not {kind}: stored as NULL"
                self.pending.append(LoadWarning(source, line, message))

    def deliver(self) -> None:
        """Hand the warnings found so far to `on_warning`, in the loading thread."""
        while self.pending:
            self.warn(self.pending.popleft())

    def finished(self) -> None:
        """One warning per source and column whose bad values were not all listed."""
        for (source, column), count in self.invalid.items():
            warned = self.examples.get((source, column), 0)
            if count > warned:
                message = (
                    f"{column}: {count} values did not fit and are stored as NULL "
                    f"(the first {warned} are listed)"
                )
                self.pending.append(LoadWarning(source, 0, message))
        self.invalid.clear()
        self.examples.clear()
        self.deliver()


_layouts: dict[tuple[str, ...], _Layout] = {}


def _layout(fields: tuple[str, ...]) -> _Layout:
    layout = _layouts.get(fields)
    if layout is None:
        if len(_layouts) > 1000:
            _layouts.clear()
        layout = _layouts[fields] = _Layout.of(fields)
    return layout


_DIGITS = {"INTEGER": 9, "BIGINT": 18}  # at most this many digits always fit
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_TIME = re.compile(r"([01]\d|2[0-3]):[0-5]\d:[0-5]\d")
_good_dates: set[str] = set()
_good_times: set[str] = set()


def _good_date(text: str) -> bool:
    m = _DATE.fullmatch(text)
    if m is None:
        return False
    try:
        date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return False
    return True


def _clean(batch: BatchLike, layout: _Layout) -> bool:
    """True when every typed value of the batch certainly fits its column, proved in bulk
    (C-speed string operations, distinct dates and times): then the load need not look for
    bad values in SQL. False means "maybe not": SQL counts them exactly."""
    columns = batch.columns
    for column, i in layout.typed:
        digits = _DIGITS.get(_FIELD_TYPES[column])
        if digits is None:
            continue
        values = columns[i]
        if "" in values:
            return False
        present = list(filter(None, values))
        if not present:
            continue
        joined = "".join(present)
        if not (joined.isascii() and joined.isdigit()) or max(map(len, present)) > digits:
            return False
    if layout.date is not None and layout.time is not None:
        for values, good, check in (
            (columns[layout.date], _good_dates, _good_date),
            (columns[layout.time], _good_times, _TIME.fullmatch),
        ):
            distinct = set(values)
            new = distinct - good
            if None in new:
                return False
            for text in new:
                if not check(text):  # type: ignore[arg-type]
                    return False
            if len(good) < 200_000:
                good.update(new)  # type: ignore[arg-type]
    return True


def _fast_text(batch: BatchLike) -> str | None:
    """The batch's raw lines joined by newlines if they are its fields joined by single spaces,
    so that DuckDB can split and decode them ('+' -> ' ', '-' -> NULL) itself; else None.
    Checked in bulk: the number of spaces and newlines of the whole batch, no tab, and the
    first and last rows compared with the decoded columns."""
    n, width = len(batch.raw), len(batch.fields)
    if width == 0 or len(batch.columns) != width or len(batch.lines) != n:
        return None
    text = "\n".join(batch.raw)
    if text.count("\n") != n - 1 or text.count(" ") != n * (width - 1) or "\t" in text:
        return None
    for row in {0, n - 1}:
        tokens = batch.raw[row].split(" ")
        decoded = [None if t == "-" else t.replace("+", " ") for t in tokens]
        if decoded != [column[row] for column in batch.columns]:
            return None
    return text
