"""Running converted Sigma rules over the store: each table's rules (web-server rules over
`requests`, Windows ones over `events`) in ONE scan of it, each rule's matches grouped into
findings. `irtool.analysis.sigma` loads and converts the rules (and re-exports this module's
`run_rules`, `SigmaRule` and `RuleError`); its docstring says the semantics."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from irtool.analysis.hunts import MAX_REFS, FindingDraft, worst_first_drafts
from irtool.analysis.sigma_sql import KEYWORDS, packed, quote
from irtool.analysis.sigma_windows import (
    EVENT_GROUPED,
    EVENT_MATCH_COLUMNS,
    EVENTS,
    KEYWORD_TEXT,
    event_indicators,
    event_summary,
)
from irtool.analysis.store import RequestStore, StoreError

__all__ = ["RuleError", "SigmaRule", "run_rules", "table_source"]


class RuleError(Exception):
    """A rule whose SQL failed while running (after it was checked when loaded), named."""


@dataclass(frozen=True)
class SigmaRule:
    """A Sigma rule, converted: `query` is a boolean SQL condition over `table` (`requests`
    for a web-server rule, `events` for a Windows one)."""

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
    table: str = "requests"
    # A Windows rule's data keys whose values its finding shows (of the first event): the
    # rule's own `fields:` list, else the keys its detection reads.
    shown: tuple[str, ...] = ()


# -- running ----------------------------------------------------------------------------------


def table_source(keywords: Sequence[str], table: str = "requests") -> str:
    """The table with the prefilter's column: whether the record has any of the keywords."""
    text = KEYWORD_TEXT if table == EVENTS else "raw"
    patterns = packed([f"(?:{k})" for k in dict.fromkeys(keywords)], "")
    found = " OR ".join(f"regexp_matches({text}, {quote(p)})" for p in patterns) or "false"
    return f"(SELECT *, ({found}) AS {KEYWORDS} FROM {table})"  # noqa: S608 - quoted


# One scan: the prefilters (cheap, and one regex for every keyword) choose the lines, and
# only on those is each rule's exact condition evaluated; a line can match several rules.
_MATCHES = """
SELECT {columns}
FROM (SELECT unnest(list_filter([{cases}], lambda r: r IS NOT NULL)) AS rule, *
      FROM {source} WHERE {any})
"""
_WEB_COLUMNS = "rule, client, ts, host, evidence_sha256, source, line, cs_uri_stem, sc_status"
_WEB_GROUPED = f"""
SELECT rule, client, min(ts) AS first_seen, max(ts) AS last_seen, count(*) AS hits,
       min_by({{'sha256': evidence_sha256, 'source': source, 'line': line}},
              {{'ts': ts, 'line': line}}, {MAX_REFS}) AS refs,
       list(DISTINCT host ORDER BY host) FILTER (WHERE host IS NOT NULL) AS hosts,
       count(DISTINCT cs_uri_stem) AS uris,
       list(DISTINCT cs_uri_stem ORDER BY cs_uri_stem)[1:3] AS some_uris,
       list(DISTINCT sc_status ORDER BY sc_status) FILTER (WHERE sc_status IS NOT NULL)
           AS statuses
FROM matches GROUP BY rule, client ORDER BY rule, client
"""  # noqa: S608 - constants


def _sql(rules: Sequence[SigmaRule], table: str = "requests") -> str:
    cases = ", ".join(f"CASE WHEN {r.query} THEN {i} END" for i, r in enumerate(rules))
    any_rule = " OR ".join(f"({r.prefilter or r.query})" for r in rules)
    source = table_source([k for r in rules for k in r.keywords], table)
    web = table == "requests"
    matches = _MATCHES.format(
        columns=_WEB_COLUMNS if web else EVENT_MATCH_COLUMNS,
        cases=cases,
        source=source,
        any=any_rule,
    )
    return f"WITH matches AS ({matches}) {_WEB_GROUPED if web else EVENT_GROUPED}"


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


def _rows(
    store: RequestStore, rules: Sequence[SigmaRule], table: str
) -> list[tuple[SigmaRule, dict[str, Any]]]:
    """The rules' grouped matches over `table`, in one scan."""
    try:
        return [(rules[int(row["rule"])], row) for row in store.query(_sql(rules, table))]
    except StoreError:
        # The combined query names no rule (or is too large for RE2 while each rule is not):
        # each rule alone, one scan each, the failing one named.
        rows = []
        for rule in rules:
            try:
                rows += [(rule, row) for row in store.query(_sql([rule], table))]
            except StoreError as e:
                raise RuleError(f"Sigma rule {rule.hunt} ({rule.path}) failed: {e}") from e
        return rows


def _has_events(store: RequestStore) -> bool:
    found = store.query(
        "SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'events'"
    )
    return bool(found[0]["n"])


def _draft(rule: SigmaRule, row: dict[str, Any]) -> FindingDraft:
    if rule.table == EVENTS:
        who = row.get("who") or "-"
        summary = event_summary(rule.title, row, rule.shown)
    else:
        who = row.get("client") or "-"
        summary = _summary(rule, row)
    draft = FindingDraft.of_row(
        row,
        hunt=rule.hunt,
        version=rule.version,
        severity=rule.level,
        title=rule.title,
        summary=summary,
        key=f"sigma:{rule.id}:{who}",
    )
    if rule.table == EVENTS:
        return replace(draft, indicators=event_indicators(row, rule.shown))
    return draft


def run_rules(store: RequestStore, rules: Sequence[SigmaRule]) -> list[FindingDraft]:
    """Every rule over its table in one scan of it (web-server rules over `requests`, Windows
    ones over `events`); one finding per rule and client (web) or host (Windows: the
    incident's host, else the record's computer), sorted as `run_hunts` sorts. Raises
    RuleError naming a rule whose SQL fails."""
    web = [r for r in rules if r.table != EVENTS]
    windows = [r for r in rules if r.table == EVENTS]
    rows = _rows(store, web, "requests") if web else []
    # A store written before the events table existed has no Windows records to match.
    if windows and _has_events(store):
        rows += _rows(store, windows, EVENTS)
    return worst_first_drafts([_draft(rule, row) for rule, row in rows])
