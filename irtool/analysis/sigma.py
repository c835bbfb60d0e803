"""Sigma rules over the web-server requests: loaded with pySigma, converted to DuckDB SQL, run
over the analytical store in one scan, each hit a finding like a hunt's.

Which rules: the shipped ones (``SHIPPED_RULES``, ``irtool/analysis/sigma/**/*.yml``), then each
directory given (``*.yml`` and ``*.yaml``, recursively: a checkout of the public Sigma repository
works). Only rules with ``logsource: category: webserver`` run (any product or service: the
fields are Sigma's web-server taxonomy whatever wrote the log); the rest are counted in
``RuleSet.skipped_other_sources``, as are rules whose status is ``deprecated`` or
``unsupported`` in ``RuleSet.skipped_status``. A rule whose ``id`` was already loaded replaces
the earlier one (a user's rule overrides a shipped one, a later directory an earlier one).

A rule that cannot run is never dropped silently: it is listed in ``RuleSet.unconvertible`` as
``path:line:col: reason`` (YAML errors, a rule pySigma refuses, correlations and ``| count()``
aggregations, a field that no web-server log has, a regular expression DuckDB's RE2 refuses).

Fields (the processing pipeline, `column_of`): Sigma's web-server names and IIS's spellings
go to the store's typed columns (``cs-user-agent`` and ``cs(User-Agent)`` ->
``cs_user_agent``, ``c-ip`` -> ``c_ip``, ...); ``cs-uri`` is ``cs_uri_stem`` with ``?`` and
``cs_uri_query`` when there is one; any other W3C-shaped name (``x-foo``, ``cs(X-Custom)``) is
read from ``extra`` (keyed by the lowercased name), NULL where the log has no such field.
``date`` and ``time`` (they are ``ts``) and names of other taxonomies (``Image``) are refused.

Matching follows Sigma: strings are case-insensitive unless ``|cased``, wildcards ``*``/``?``
are the only special characters, ``|re`` is RE2 (``regexp_matches``, case-sensitive unless
``(?i)``), numbers compare numerically, and ``not`` of a missing field is true. A ``+`` in a
field's value is a space, as the store decodes it (W3C writes a value's spaces as ``+``).
Keywords (values bound to no field, ``keywords:``) are found anywhere in the ``raw`` line,
case-insensitively, by RE2; a space in a keyword matches a space or a ``+``. Values reach SQL
only as quoted literals (quotes doubled, LIKE metacharacters escaped), never as SQL.

One scan: ``run_rules`` is ONE SELECT over ``requests``. Every rule has a cheap prefilter (its
condition with each keyword test replaced by one shared RE2 pass over ``raw`` for all the
rules' keywords: the costly part of a scan, done once); only the lines some prefilter keeps
are tested with each rule's exact condition.

Findings: ``run_rules`` returns `FindingDraft` s, ONE per rule and client address (the store's
``client``: behind a proxy, the X-Forwarded-For address it saw; what a responder acts on:
block or trace that client), with ``hunt`` = ``sigma:<file stem>`` (the
rule's id when two rules share a stem), ``version`` = the rule's ``modified`` or ``date``
(``"1"`` without either), ``severity`` from ``level`` (informational -> info; medium without
a level), and ``key`` = ``sigma:<rule id>:<client>`` (stable over renames of the file).
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

from irtool.analysis.hunts import MAX_REFS, FindingDraft, worst_first_drafts
from irtool.analysis.sigma_sql import (
    KEYWORDS,
    DuckDBBackend,
    FieldError,
    packed,
    pipeline,
    quote,
)
from irtool.analysis.store import RequestStore, StoreError, requests_table
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


class RuleError(Exception):
    """A rule whose SQL failed while running (after it was checked when loaded), named."""


@dataclass(frozen=True)
class SigmaRule:
    """A web-server Sigma rule, converted: `query` is a boolean SQL condition over `requests`."""

    id: str  # the rule's own id (a UUID), or its file stem without one
    hunt: str  # the findings' hunt id: "sigma:<file stem>" (or "sigma:<id>")
    title: str
    level: str  # irtool's severity: info, low, medium, high, critical
    version: str
    path: Path
    query: str
    # A condition true wherever `query` is (and cheap): its keywords read the column
    # `_irtool_keywords`, one regex over the raw line for every rule's `keywords` (RE2).
    prefilter: str = ""
    keywords: tuple[str, ...] = ()
    description: str = ""
    tags: tuple[str, ...] = ()
    falsepositives: tuple[str, ...] = ()
    references: tuple[str, ...] = ()


@dataclass
class RuleSet:
    """What `load_rules` found."""

    rules: list[SigmaRule] = field(default_factory=list)
    unconvertible: list[str] = field(default_factory=list)  # "path:line:col: reason"
    skipped_other_sources: int = 0  # rules of another logsource than webserver
    skipped_status: int = 0  # webserver rules marked deprecated or unsupported

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
        # Cheap and exact: a web-server rule names its category; most of a checkout of the
        # Sigma repository does not, and is counted without being parsed.
        if b"webserver" not in raw:
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
        if not isinstance(category, str) or category.lower() != "webserver":
            self.result.skipped_other_sources += 1
            return
        if str(data.get("status", "")).lower() in _SKIPPED_STATUS:
            self.result.skipped_status += 1
            return
        rule = self.convert(path, doc)
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

    def translate(self, data: dict[str, Any], prefilter: bool) -> tuple[PySigmaRule, list[str]]:
        """The rule parsed (errors collected) and converted, exactly or as a prefilter."""
        parsed = PySigmaRule.from_dict(data, collect_errors=True, policy=_POLICY)
        if parsed.errors:
            return parsed, []
        self.backend.prefilter = prefilter
        self.backend.fragments = []
        self.backend.keywords_negated = False
        return parsed, self.backend.convert_rule(parsed)

    def convert(self, path: Path, doc: Document) -> SigmaRule | None:
        data = doc.data
        if "id" in data and not isinstance(data["id"], str):  # pySigma trips on it
            self.problem(doc.mark(("id",)), "id: a rule's id is a string (a UUID)")
            return None
        try:
            parsed, queries = self.translate(data, prefilter=False)
            for error in parsed.errors:
                self.problem(_where(doc, error), _reason(error))
            if parsed.errors:
                return None
            _, prefilters = self.translate(data, prefilter=True)
            keywords = tuple(self.backend.fragments)
            if self.backend.keywords_negated:
                prefilters, keywords = queries, ()
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
        if not queries:
            self.problem(doc.mark(("detection",), key=True), "the detection converts to nothing")
            return None
        condition = " OR ".join(f"({q})" for q in queries)
        prefilter = " OR ".join(f"({q})" for q in prefilters)
        refused = self.check_sql(condition, ()) or self.check_sql(prefilter, keywords)
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
        )

    def check_sql(self, condition: str, keywords: Sequence[str]) -> str | None:
        """DuckDB's complaint about the condition (bind errors, RE2 syntax), or None; it runs
        on one row of every column so that the functions are run, not only bound."""
        # The condition is pySigma's output through this backend: values are quoted literals.
        sql = f"SELECT count(*) FROM {_source(keywords)} WHERE {condition}"  # noqa: S608
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
    return con


def load_rules(dirs: Sequence[Path] = (), *, shipped: bool = True) -> RuleSet:
    """The web-server rules of the shipped set (unless `shipped` is False) and of `dirs`,
    converted; what does not run is counted or listed (see `RuleSet`), never raised."""
    backend = DuckDBBackend(pipeline())  # pySigma's __new__ types keywords wrongly
    loader = _Loader(backend, _check_connection())
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


# -- running ----------------------------------------------------------------------------------


def _source(keywords: Sequence[str]) -> str:
    """`requests` with the prefilter's column: whether the line has any of the keywords."""
    patterns = packed([f"(?:{k})" for k in dict.fromkeys(keywords)], "")
    found = " OR ".join(f"regexp_matches(raw, {quote(p)})" for p in patterns) or "false"
    return f"(SELECT *, ({found}) AS {KEYWORDS} FROM requests)"  # noqa: S608 - quoted


# One scan: the prefilters (cheap, and one regex for every keyword) choose the lines, and
# only on those is each rule's exact condition evaluated; a line can match several rules.
_MATCHES = """
SELECT rule, client, ts, host, evidence_sha256, source, line, cs_uri_stem, sc_status
FROM (SELECT unnest(list_filter([{cases}], lambda r: r IS NOT NULL)) AS rule, *
      FROM {source} WHERE {any})
"""
_GROUPED = f"""
SELECT rule, client, min(ts) AS first_seen, max(ts) AS last_seen, count(*) AS hits,
       min_by({{'sha256': evidence_sha256, 'source': source, 'line': line}},
              {{'ts': ts, 'line': line}}, {MAX_REFS}) AS refs,
       list(DISTINCT host ORDER BY host) FILTER (WHERE host IS NOT NULL) AS hosts,
       count(DISTINCT cs_uri_stem) AS uris,
       list(DISTINCT cs_uri_stem ORDER BY cs_uri_stem)[1:3] AS some_uris,
       list(DISTINCT sc_status ORDER BY sc_status) FILTER (WHERE sc_status IS NOT NULL)
           AS statuses
FROM matches GROUP BY rule, client
"""  # noqa: S608 - constants


def _sql(rules: Sequence[SigmaRule]) -> str:
    cases = ", ".join(f"CASE WHEN {r.query} THEN {i} END" for i, r in enumerate(rules))
    any_rule = " OR ".join(f"({r.prefilter or r.query})" for r in rules)
    source = _source([k for r in rules for k in r.keywords])
    matches = _MATCHES.format(cases=cases, source=source, any=any_rule)
    return f"WITH matches AS ({matches}) {_GROUPED} ORDER BY rule, client"


def _summary(rule: SigmaRule, row: dict[str, Any]) -> str:
    hits = int(row["hits"])
    client = row.get("client") or "an unknown client"
    uris = [u for u in row.get("some_uris") or () if u]
    more = int(row.get("uris") or 0) - len(uris)
    where = " ".join(uris) + (f" and {more} more" if more > 0 else "")
    statuses = ", ".join(str(s) for s in row.get("statuses") or ())
    text = f"{rule.title}: {hits} request{'s' * (hits != 1)} from {client}"
    if where:
        text += f" to {where}"
    if statuses:
        text += f" ({statuses})"
    return text


def run_rules(store: RequestStore, rules: Sequence[SigmaRule]) -> list[FindingDraft]:
    """Every rule over the store in one scan; one finding per rule and client, sorted as
    `run_hunts` sorts. Raises RuleError naming a rule whose SQL fails."""
    if not rules:
        return []
    try:
        rows = [(rules[int(row["rule"])], row) for row in store.query(_sql(rules))]
    except StoreError:
        # The combined query names no rule (or is too large for RE2 while each rule is not):
        # each rule alone, one scan each, the failing one named.
        rows = []
        for rule in rules:
            try:
                rows += [(rule, row) for row in store.query(_sql([rule]))]
            except StoreError as e:
                raise RuleError(f"Sigma rule {rule.hunt} ({rule.path}) failed: {e}") from e
    drafts = [
        FindingDraft.of_row(
            row,
            hunt=rule.hunt,
            version=rule.version,
            severity=rule.level,
            title=rule.title,
            summary=_summary(rule, row),
            key=f"sigma:{rule.id}:{row.get('client') or '-'}",
        )
        for rule, row in rows
    ]
    return worst_first_drafts(drafts)
