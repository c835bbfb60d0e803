"""Sigma rules over the web-server requests and the Windows event logs: loaded with pySigma,
converted to DuckDB SQL, run over the analytical store in one scan of each table, each hit a
finding like a hunt's.

Which rules: the shipped ones (``SHIPPED_RULES``, ``irtool/analysis/sigma/**/*.yml``), then each
directory given (``*.yml`` and ``*.yaml``, recursively: a checkout of the public Sigma repository
works). Rules with ``logsource: category: webserver`` run over ``requests`` (any product or
service: the fields are Sigma's web-server taxonomy whatever wrote the log); rules with
``product: windows`` whose category or service `irtool.analysis.sigma_windows.branches` maps run
over ``events`` (the EVTX records; that module says which records and fields). The rest are
counted in ``RuleSet.skipped_other_sources``, as are rules whose status is ``deprecated`` or
``unsupported`` in ``RuleSet.skipped_status``. A rule whose ``id`` was already loaded replaces
the earlier one (a user's rule overrides a shipped one, a later directory an earlier one).

A rule that cannot run is never dropped silently: it is listed in ``RuleSet.unconvertible`` as
``path:line:col: reason`` (YAML errors, a rule pySigma refuses, correlations and ``| count()``
aggregations, a field that no web-server log (or no event of the log source) has, a regular
expression DuckDB's RE2 refuses).

Fields of a web rule (the processing pipeline, `column_of`): Sigma's web-server names and
IIS's spellings go to the store's typed columns (``cs-user-agent`` and ``cs(User-Agent)`` ->
``cs_user_agent``, ``c-ip`` -> ``c_ip``, ...); ``cs-uri`` is ``cs_uri_stem`` with ``?`` and
``cs_uri_query`` when there is one; any other W3C-shaped name (``x-foo``, ``cs(X-Custom)``) is
read from ``extra`` (keyed by the lowercased name), NULL where the log has no such field.
``date`` and ``time`` (they are ``ts``) and names of other taxonomies (``Image``) are refused.
A Windows rule's fields: see `irtool.analysis.sigma_windows`.

Matching follows Sigma: strings are case-insensitive unless ``|cased``, wildcards ``*``/``?``
are the only special characters, ``|re`` is RE2 (``regexp_matches``, case-sensitive unless
``(?i)``), numbers compare numerically, and ``not`` of a missing field is true. A ``+`` in a
field's value is a space, as the store decodes it (W3C writes a value's spaces as ``+``).
Keywords (values bound to no field, ``keywords:``) are found anywhere in the ``raw`` line,
case-insensitively, by RE2; a space in a keyword matches a space or a ``+``. Values reach SQL
only as quoted literals (quotes doubled, LIKE metacharacters escaped), never as SQL. Over
events the same, but a ``+`` is a plus and keywords search the event's data values.

One scan: ``run_rules`` is ONE SELECT over ``requests`` (and one over ``events``). Every rule
has a cheap prefilter (its condition with each keyword test replaced by one shared RE2 pass
over ``raw`` for all the rules' keywords: the costly part of a scan, done once); only the
lines some prefilter keeps are tested with each rule's exact condition.

Findings: ``run_rules`` returns `FindingDraft` s, ONE per rule and client address (the store's
``client``: behind a proxy, the X-Forwarded-For address it saw; what a responder acts on:
block or trace that client) for a web rule, ONE per rule and host (the incident's host, else
the record's computer) for a Windows rule (its summary shows the first event's values of the
rule's ``fields:``, its indicators a service, task or account added), with ``hunt`` =
``sigma:<file stem>`` (the rule's id when two rules share a stem), ``version`` = the rule's
``modified`` or ``date`` (``"1"`` without either), ``severity`` from ``level``
(informational -> info; medium without a level), and ``key`` =
``sigma:<rule id>:<client or host>`` (stable over renames of the file).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
from sigma.exceptions import (
    SigmaConditionError,
    SigmaDateError,
    SigmaDetectionError,
    SigmaError,
    SigmaIdentifierError,
    SigmaLevelError,
    SigmaLogsourceError,
    SigmaModifiedError,
    SigmaStatusError,
    SigmaTitleError,
)
from sigma.policy import SigmaPolicy
from sigma.policy.regex_engine import PythonRegexEngine
from sigma.rule import SigmaRule as PySigmaRule

from irtool.analysis.sigma_run import RuleError, SigmaRule, run_rules, table_source
from irtool.analysis.sigma_sql import (
    DuckDBBackend,
    FieldError,
    pipeline,
)
from irtool.analysis.sigma_windows import (
    EVENTS,
    Branch,
    EventsBackend,
    branches,
    shown_keys,
)
from irtool.analysis.store import events_table, requests_table
from irtool.model.problems import InvalidFile, Mark
from irtool.model.yamlsource import Document, read

__all__ = [
    "SHIPPED_RULES",
    "RuleError",
    "RuleSet",
    "SigmaRule",
    "load_rules",
    "run_rules",
]

#: The shipped rules (package data).
SHIPPED_RULES: Path = Path(__file__).parent / "sigma"
_SUFFIXES = (".yml", ".yaml")
_LEVELS = {
    "informational": "info",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "critical": "critical",
}
# pySigma checks each |re by compiling it. Its RE2 engine (google-re2) writes its errors to
# the process's stderr, past Python; Python's engine only compiles (no matching, so no ReDoS)
# and the check that counts is DuckDB's own RE2 (`check_sql`), whose refusal is listed.
_POLICY = SigmaPolicy(regex_engine=PythonRegexEngine())
_SKIPPED_STATUS = ("deprecated", "unsupported")


@dataclass
class RuleSet:
    """What `load_rules` found."""

    rules: list[SigmaRule] = field(default_factory=list)
    unconvertible: list[str] = field(default_factory=list)  # "path:line:col: reason"
    # rules of another logsource than webserver and the Windows ones `branches` maps
    skipped_other_sources: int = 0
    skipped_status: int = 0  # rules that would run, marked deprecated or unsupported

    def notes(self) -> list[str]:
        """One line per kind of rule that does not run, for the responder."""
        lines = []
        if self.skipped_other_sources:
            lines.append(f"{self.skipped_other_sources} rules of other log sources skipped")
        if self.skipped_status:
            lines.append(f"{self.skipped_status} deprecated or unsupported rules skipped")
        if self.unconvertible:
            lines.append(f"{len(self.unconvertible)} rules cannot be converted (listed)")
        return lines


# -- loading ----------------------------------------------------------------------------------


def _files_in(directory: Path) -> Iterator[Path]:
    if directory.is_file():
        yield directory
        return
    yield from sorted(p for p in directory.rglob("*") if p.suffix in _SUFFIXES and p.is_file())


def _text(value: Any) -> str:
    return " ".join(str(value).split()) if value is not None else ""


def _texts(value: Any) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(_text(v) for v in value if v is not None)
    return (_text(value),) if value else ()


# pySigma's error classes -> the key of the rule file the error is about.
_ERROR_KEYS: tuple[tuple[type[SigmaError], tuple[str, ...]], ...] = (
    (SigmaConditionError, ("detection", "condition")),
    (SigmaDetectionError, ("detection",)),
    (SigmaLogsourceError, ("logsource",)),
    (SigmaLevelError, ("level",)),
    (SigmaStatusError, ("status",)),
    (SigmaDateError, ("date",)),
    (SigmaModifiedError, ("modified",)),
    (SigmaIdentifierError, ("id",)),
    (SigmaTitleError, ("title",)),
)


def _where(doc: Document, error: Exception) -> Mark:
    """The mark of what `error` is about: the detection item whose field or modifier it names
    (in quotes), the key its kind concerns, or the detection."""
    message = str(error.args[0]) if error.args else ""
    named = set(re.findall(r"'([^']+)'", message))
    if isinstance(error, FieldError):
        named = {error.field}
    if named:
        for path, mark in sorted(doc.key_marks.items(), key=lambda kv: (kv[1].line, kv[1].col)):
            key = path[-1] if path else None
            if path[:1] == ("detection",) and isinstance(key, str) and named & set(key.split("|")):
                return mark
        for path, mark in sorted(doc.marks.items(), key=lambda kv: (kv[1].line, kv[1].col)):
            if path[:1] == ("detection",) and _value_at(doc.data, path) in named:
                return mark
    for kind, key_path in _ERROR_KEYS:
        if isinstance(error, kind):
            return doc.mark(key_path, key=True)
    return doc.mark(("detection",), key=True)


def _value_at(data: Any, path: tuple[str | int, ...]) -> Any:
    for element in path:
        try:
            data = data[element]
        except (KeyError, IndexError, TypeError):
            return None
    return data if isinstance(data, str) else None


def _reason(error: Exception) -> str:
    message = str(error.args[0]) if error.args else type(error).__name__
    return " ".join(message.split())


@dataclass
class _Loader:
    backend: DuckDBBackend
    events: EventsBackend
    check: duckdb.DuckDBPyConnection
    result: RuleSet = field(default_factory=RuleSet)
    by_id: dict[str, SigmaRule] = field(default_factory=dict)
    stems: dict[str, str] = field(default_factory=dict)  # hunt id -> rule id

    def problem(self, mark: Mark, reason: str) -> None:
        self.result.unconvertible.append(f"{mark}: {reason}")

    def file(self, path: Path, seen_here: dict[str, Path]) -> None:
        try:
            raw = path.read_bytes()
        except OSError as e:
            self.problem(Mark(str(path), 1, 1), f"cannot read: {e.strerror}")
            return
        # Cheap and exact: a web-server rule names its category, a Windows rule its product;
        # the rest of a checkout of the Sigma repository does not, and is counted unparsed.
        if b"webserver" not in raw and b"windows" not in raw.lower():
            if any(key in raw for key in (b"logsource", b"detection", b"correlation")):
                self.result.skipped_other_sources += 1
            # else: not a Sigma rule at all (a CI workflow or a config file of the checkout)
            return
        try:
            doc = read(path)
        except InvalidFile as invalid:
            for problem in invalid.problems:
                message = problem.message
                if "expected a single document" in message:
                    message = "several YAML documents in one file (correlations and rule "
                    message += "collections are not supported): " + problem.message
                self.problem(problem.mark, message)
            return
        data = doc.data
        if not isinstance(data, dict):
            self.problem(Mark(str(path), 1, 1), "a Sigma rule is a YAML mapping")
            return
        if "correlation" in data:
            self.problem(
                doc.mark(("correlation",), key=True), "correlation rules are not supported"
            )
            return
        logsource = data.get("logsource")
        category = logsource.get("category") if isinstance(logsource, dict) else None
        web = isinstance(category, str) and category.lower() == "webserver"
        windows = None if web else branches(logsource)
        if not web and windows is None:
            self.result.skipped_other_sources += 1
            return
        if str(data.get("status", "")).lower() in _SKIPPED_STATUS:
            self.result.skipped_status += 1
            return
        rule = self.convert(path, doc, windows)
        if rule is None:
            return
        if rule.id in seen_here:
            self.problem(
                doc.mark(("id",)), f"rule id {rule.id} is also used by {seen_here[rule.id]}"
            )
            return
        seen_here[rule.id] = path
        self.by_id.pop(rule.id, None)  # a later directory's rule replaces an earlier one
        self.by_id[rule.id] = rule

    def translate(
        self, data: dict[str, Any], prefilter: bool, backend: DuckDBBackend
    ) -> tuple[PySigmaRule, list[str]]:
        """The rule parsed (errors collected) and converted, exactly or as a prefilter."""
        parsed = PySigmaRule.from_dict(data, collect_errors=True, policy=_POLICY)
        if parsed.errors:
            return parsed, []
        backend.prefilter = prefilter
        backend.fragments = []
        backend.keywords_negated = False
        return parsed, backend.convert_rule(parsed)

    def conditions(
        self, data: dict[str, Any], windows: tuple[Branch, ...] | None
    ) -> tuple[PySigmaRule, str, str, tuple[str, ...]]:
        """The rule parsed, its condition, its prefilter and its keyword patterns (empty
        conditions when pySigma found errors in it). A Windows rule is converted once per
        branch of its log source (each has its own field names), each within its scope."""
        parts: list[tuple[Branch | None, DuckDBBackend]] = [(None, self.backend)]
        if windows is not None:
            self.events.keys = []
            parts = [(branch, self.events) for branch in windows]
        condition: list[str] = []
        prefilter: list[str] = []
        keywords: list[str] = []
        parsed = None
        for branch, backend in parts:
            if branch is not None:
                self.events.branch = branch
            parsed, queries = self.translate(data, prefilter=False, backend=backend)
            if parsed.errors or not queries:
                return parsed, "", "", ()
            _, prefilters = self.translate(data, prefilter=True, backend=backend)
            found = tuple(backend.fragments)
            if backend.keywords_negated:
                prefilters, found = queries, ()
            exact = " OR ".join(f"({q})" for q in queries)
            cheap = " OR ".join(f"({q})" for q in prefilters)
            if branch is not None:
                exact, cheap = f"({branch.scope}) AND ({exact})", f"({branch.scope}) AND ({cheap})"
            condition.append(exact)
            prefilter.append(cheap)
            keywords += found
        assert parsed is not None  # a log source has at least one branch
        if len(parts) == 1:
            return parsed, condition[0], prefilter[0], tuple(keywords)
        joined = " OR ".join(f"({c})" for c in condition)
        return parsed, joined, " OR ".join(f"({c})" for c in prefilter), tuple(keywords)

    def convert(
        self, path: Path, doc: Document, windows: tuple[Branch, ...] | None
    ) -> SigmaRule | None:
        data = doc.data
        if "id" in data and not isinstance(data["id"], str):  # pySigma trips on it
            self.problem(doc.mark(("id",)), "id: a rule's id is a string (a UUID)")
            return None
        try:
            parsed, condition, prefilter, keywords = self.conditions(data, windows)
            for error in parsed.errors:
                self.problem(_where(doc, error), _reason(error))
            if parsed.errors:
                return None
        except SigmaError as e:
            self.problem(_where(doc, e), _reason(e))
            return None
        except NotImplementedError as e:  # a feature the backend lacks
            self.problem(_where(doc, e), f"not supported: {_reason(e)}")
            return None
        except Exception as e:
            # pySigma fails on some malformed rules with its own bugs (an integer id raises
            # AttributeError): a user's rule is listed, whatever broke, never a traceback.
            self.problem(_where(doc, e), f"pySigma cannot read it: {type(e).__name__}: {e}")
            return None
        if not condition:
            self.problem(doc.mark(("detection",), key=True), "the detection converts to nothing")
            return None
        table = "requests" if windows is None else EVENTS
        refused = self.check_sql(condition, (), table) or self.check_sql(prefilter, keywords, table)
        if refused:
            self.problem(doc.mark(("detection",), key=True), f"DuckDB refuses it: {refused}")
            return None
        rule_id = str(parsed.id) if parsed.id else path.stem
        hunt = f"sigma:{path.stem}"
        if self.stems.setdefault(hunt, rule_id) != rule_id:
            hunt = f"sigma:{rule_id}"
        version = parsed.modified or parsed.date
        level = str(parsed.level.name).lower() if parsed.level else "medium"
        return SigmaRule(
            id=rule_id,
            hunt=hunt,
            title=_text(parsed.title) or path.stem,
            level=_LEVELS.get(level, "medium"),
            version=version.isoformat() if version else "1",
            path=path,
            query=condition,
            prefilter=prefilter,
            keywords=keywords,
            description=_text(parsed.description),
            tags=tuple(f"{t.namespace}.{t.name}" for t in parsed.tags),
            falsepositives=_texts(data.get("falsepositives")),
            references=_texts(data.get("references")),
            table=table,
            shown=() if windows is None else shown_keys(data, self.events.keys),
        )

    def check_sql(self, condition: str, keywords: Sequence[str], table: str) -> str | None:
        """DuckDB's complaint about the condition (bind errors, RE2 syntax), or None; it runs
        on one row of every column so that the functions are run, not only bound."""
        # The condition is pySigma's output through this backend: values are quoted literals.
        sql = f"SELECT count(*) FROM {table_source(keywords, table)} WHERE {condition}"  # noqa: S608
        try:
            statements = self.check.extract_statements(sql)
            if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
                return "not one SELECT"
            if statements[0].named_parameters:
                return "the SQL has parameters"
            self.check.execute(sql).fetchall()
        except duckdb.Error as e:
            return _reason(e).split(" LINE ")[0]
        return None


def _check_connection() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    con.execute(requests_table())
    con.execute(
        "INSERT INTO requests (ts, cs_uri_stem, cs_uri_query, raw, sc_status, extra) VALUES "
        "(TIMESTAMP '2000-01-01', '/a', 'b=1', 'x', 200, MAP {'x-a': 'b'})"
    )
    con.execute(events_table())
    con.execute(
        "INSERT INTO events (ts, channel, provider, event_id, computer, data, raw) VALUES "
        "(TIMESTAMP '2000-01-01', 'Security', 'p', 1, 'c', MAP {'A': 'b'}, '{}')"
    )
    return con


def load_rules(dirs: Sequence[Path] = (), *, shipped: bool = True) -> RuleSet:
    """The web-server and Windows rules of the shipped set (unless `shipped` is False) and of
    `dirs`, converted; what does not run is counted or listed (see `RuleSet`), never raised."""
    backend = DuckDBBackend(pipeline())  # pySigma's __new__ types keywords wrongly
    loader = _Loader(backend, EventsBackend(), _check_connection())
    try:
        for directory in (SHIPPED_RULES,) * shipped + tuple(Path(d) for d in dirs):
            if not directory.exists():
                loader.problem(Mark(str(directory), 1, 1), "no such directory of Sigma rules")
                continue
            seen_here: dict[str, Path] = {}
            for path in _files_in(directory):
                loader.file(path, seen_here)
    finally:
        loader.check.close()
    loader.result.rules = list(loader.by_id.values())
    return loader.result
