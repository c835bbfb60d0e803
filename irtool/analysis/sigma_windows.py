"""Sigma's Windows rules as DuckDB SQL over the store's `events` (one row per EVTX record): which
records a ``logsource`` means, the field mapping, and the backend that writes the SQL.

Which records (`branches`): a ``category`` the Sysmon and Security logs record is one or more
branches, each a scope over (channel, provider, event id) and the fields that branch's events
have: ``process_creation`` is Sysmon 1 or Security 4688 (provider
Microsoft-Windows-Security-Auditing; ``Image`` is its ``NewProcessName``, ``ParentImage`` its
``ParentProcessName``, ``User`` its ``SubjectUserName``, ``LogonId`` its ``SubjectLogonId``),
``ps_script`` is PowerShell 4104, ``ps_module`` 4103, ``registry_*``, ``file_*``,
``image_load``, ``network_connection``, ... are their Sysmon events. A ``service`` (when the
rule names no category) is its channels (pySigma's own table of them, `windows_logsource_mapping`,
``powershell`` also 'Windows PowerShell'), any event of them: the rule names its event ids and
providers. Anything else (``category: ps_classic_start``, a service no table names) is not
mapped: `branches` returns None and the loader counts the rule as one of another log source.

Fields: ``EventID`` -> ``event_id``, ``Channel`` -> ``channel``, ``Provider_Name`` ->
``provider``, ``Computer`` -> ``computer``; any other name is read from ``data`` (EventData by
its name, UserData flattened as ``Parent.Child``). A category's fields are a closed set (its
events' own names, the union over its branches): a name outside it is refused by name (a typo
never silently matches nothing); a name one branch lacks is NULL in that branch (4688 has no
``Hashes``). A service's fields are open: any name shaped like an XML name. ``md5``, ``sha1``,
``sha256`` and ``Imphash`` are read out of Sysmon's ``Hashes``.

Key case: a name is looked up as written first (Windows' own spelling, which Sigma rules
copy) and only when that key is absent case-insensitively (``map_entries``): measured on 2M
rows, the exact lookup costs 0.38 s, with the fallback 0.43 s where the key is present and
1.4 s where it never is; the scope (channel, event id) is tested first, so the fallback runs
only on the events a rule is about.

Keywords (values bound to no field) and ``|re`` without a field search the event's data
values, one per line (``raw`` is JSON, whose escaping of ``\\`` would hide every Windows path).
Matching is otherwise the web rules' (`irtool.analysis.sigma_sql`), but a ``+`` is a plus.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from sigma.conditions import ConditionFieldEqualsValueExpression, ConditionOR
from sigma.conversion.state import ConversionState
from sigma.pipelines.common import windows_logsource_mapping
from sigma.types import SigmaString, SpecialChars

from irtool.analysis.hunts import MAX_REFS
from irtool.analysis.sigma_sql import _RE2_SPECIAL, DuckDBBackend, FieldError, packed, quote
from irtool.model.indicators import ioc_value

__all__ = [
    "EVENTS",
    "EVENT_GROUPED",
    "EVENT_MATCH_COLUMNS",
    "KEYWORD_TEXT",
    "Branch",
    "EventsBackend",
    "branches",
    "data_value",
    "event_indicators",
    "event_summary",
    "shown_keys",
]

EVENTS = "events"
#: What keywords search: the event's data values, one per line.
KEYWORD_TEXT = "array_to_string(map_values(data), chr(10))"

# The record's own columns, by Sigma's names for them (matched case-insensitively).
_COLUMNS = {
    "eventid": ("event_id", "INTEGER"),
    "channel": ("channel", "VARCHAR"),
    "provider_name": ("provider", "VARCHAR"),
    "computer": ("computer", "VARCHAR"),
}
# An EventData name (XML's shape), a flattened UserData path, an unnamed `Data[2]`.
_OPEN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*(?:\[[0-9]+\])?$")
# Sysmon writes `Hashes` as "SHA1=...,MD5=...,SHA256=...,IMPHASH=...": Sigma's hash fields.
_HASHES = {"md5": "MD5", "sha1": "SHA1", "sha256": "SHA256", "imphash": "IMPHASH"}


def data_value(key: str) -> str:
    """SQL: the event's data value named `key`, as Windows spells it or else in any case."""
    exact = f"data[{quote(key)}]"
    # DuckDB: `lambda e: ...`; the key compared lowercased (a quoted literal).
    loose = f"list_filter(map_entries(data), lambda e: lower(e.key) = {quote(key.lower())})"
    return f"coalesce({exact}, {loose}[1].value)"


@dataclass(frozen=True)
class Branch:
    """Events of one kind: `scope` (SQL) chooses them; `fields` maps Sigma's names
    (lowercased) to the data key each is read from (None: any name, as it is written);
    `known` is every name the category has (NULL in a branch without it); `what` names the
    events of the whole log source, in a refusal."""

    what: str
    scope: str
    fields: Mapping[str, str] | None = None
    known: frozenset[str] = frozenset()


def _scope(
    channels: tuple[str, ...], providers: tuple[str, ...] = (), ids: tuple[int, ...] = ()
) -> str:
    def among(column: str, values: tuple[Any, ...], literal: Any) -> str:
        if len(values) == 1:
            return f"{column} = {literal(values[0])}"
        return f"{column} IN ({', '.join(literal(v) for v in values)})"

    # The event id first: the cheapest test, and the one that rules out most events.
    parts = [among("event_id", ids, str)] if ids else []
    parts.append(among("channel", channels, quote))
    if providers:
        parts.append(among("provider", providers, quote))
    return " AND ".join(parts)


_SYSMON_CHANNEL = ("Microsoft-Windows-Sysmon/Operational",)
_SYSMON_PROVIDER = ("Microsoft-Windows-Sysmon",)
_PROCESS = ("RuleName", "UtcTime", "ProcessGuid", "ProcessId", "Image", "User")
_PE = ("FileVersion", "Description", "Product", "Company", "OriginalFileName")
_SIGNED = ("Hashes", "Signed", "Signature", "SignatureStatus", *_HASHES)
# Sysmon's events by Sigma category: (event ids, their EventData names).
_SYSMON: dict[str, tuple[tuple[int, ...], tuple[str, ...]]] = {
    "process_creation": (
        (1,),
        (
            *_PROCESS, *_PE, "CommandLine", "CurrentDirectory", "LogonGuid", "LogonId",
            "TerminalSessionId", "IntegrityLevel", "Hashes", *_HASHES, "ParentProcessGuid",
            "ParentProcessId", "ParentImage", "ParentCommandLine", "ParentUser",
        ),
    ),
    "file_change": ((2,), (*_PROCESS, "TargetFilename", "CreationUtcTime",
                           "PreviousCreationUtcTime")),
    "network_connection": (
        (3,),
        (
            *_PROCESS, "Protocol", "Initiated", "SourceIsIpv6", "SourceIp", "SourceHostname",
            "SourcePort", "SourcePortName", "DestinationIsIpv6", "DestinationIp",
            "DestinationHostname", "DestinationPort", "DestinationPortName",
        ),
    ),
    "process_termination": ((5,), _PROCESS),
    "driver_load": ((6,), ("RuleName", "UtcTime", "ImageLoaded", *_SIGNED)),
    "image_load": ((7,), (*_PROCESS, "ImageLoaded", *_PE, *_SIGNED)),
    "create_remote_thread": (
        (8,),
        (
            "RuleName", "UtcTime", "SourceProcessGuid", "SourceProcessId", "SourceImage",
            "TargetProcessGuid", "TargetProcessId", "TargetImage", "NewThreadId",
            "StartAddress", "StartModule", "StartFunction", "SourceUser", "TargetUser",
        ),
    ),
    "raw_access_thread": ((9,), (*_PROCESS, "Device")),
    "process_access": (
        (10,),
        (
            "RuleName", "UtcTime", "SourceProcessGUID", "SourceProcessId", "SourceThreadId",
            "SourceImage", "TargetProcessGUID", "TargetProcessId", "TargetImage",
            "GrantedAccess", "CallTrace", "SourceUser", "TargetUser",
        ),
    ),
    "file_event": ((11,), (*_PROCESS, "TargetFilename", "CreationUtcTime")),
    "registry_add": ((12,), (*_PROCESS, "EventType", "TargetObject")),
    "registry_delete": ((12,), (*_PROCESS, "EventType", "TargetObject")),
    "registry_set": ((13,), (*_PROCESS, "EventType", "TargetObject", "Details")),
    "registry_rename": ((14,), (*_PROCESS, "EventType", "TargetObject", "NewName")),
    "registry_event": ((12, 13, 14), (*_PROCESS, "EventType", "TargetObject", "Details",
                                      "NewName")),
    "create_stream_hash": ((15,), (*_PROCESS, "TargetFilename", "CreationUtcTime", "Hash",
                                   "Contents")),
    "pipe_created": ((17, 18), (*_PROCESS, "EventType", "PipeName")),
    "wmi_event": (
        (19, 20, 21),
        ("RuleName", "UtcTime", "EventType", "Operation", "User", "EventNamespace", "Name",
         "Query", "Type", "Destination", "Consumer", "Filter"),
    ),
    "dns_query": ((22,), (*_PROCESS, "QueryName", "QueryStatus", "QueryResults")),
    "file_delete": ((23, 26), (*_PROCESS, "TargetFilename", "Hashes", *_HASHES,
                               "IsExecutable", "Archived")),
    "process_tampering": ((25,), (*_PROCESS, "Type")),
}  # fmt: skip

# Security 4688 (Windows' own process audit): Sigma's names -> its EventData names. Its
# process ids are hexadecimal and its integrity level a SID: not Sigma's, so not mapped.
_SECURITY_4688 = {
    "Image": "NewProcessName",
    "ParentImage": "ParentProcessName",
    "CommandLine": "CommandLine",
    "User": "SubjectUserName",
    "LogonId": "SubjectLogonId",
}
_POWERSHELL = (
    ("Microsoft-Windows-PowerShell/Operational", "PowerShellCore/Operational"),
    ("Microsoft-Windows-PowerShell", "PowerShellCore"),
)
_PS_SCRIPT = ("ScriptBlockText", "ScriptBlockId", "Path", "MessageNumber", "MessageTotal")
_PS_MODULE = ("ContextInfo", "UserData", "Payload")


def _closed(what: str, scope: str, names: Mapping[str, str], known: frozenset[str]) -> Branch:
    return Branch(what, scope, {k.lower(): v for k, v in names.items()}, known)


def _categories() -> dict[str, tuple[Branch, ...]]:
    table: dict[str, tuple[Branch, ...]] = {}
    for category, (ids, names) in _SYSMON.items():
        known = frozenset(n.lower() for n in names)
        what = f"Sysmon {'/'.join(str(i) for i in ids)}"
        scope = _scope(_SYSMON_CHANNEL, _SYSMON_PROVIDER, ids)
        fields = {n: n for n in names if n not in _HASHES}
        table[category] = (_closed(what, scope, fields, known),)
    sysmon = table["process_creation"][0]
    security = _closed(
        "Security 4688",
        _scope(("Security",), ("Microsoft-Windows-Security-Auditing",), (4688,)),
        _SECURITY_4688,
        sysmon.known,
    )
    table["process_creation"] = (sysmon, security)
    for category, event_id, names in (("ps_script", 4104, _PS_SCRIPT),
                                      ("ps_module", 4103, _PS_MODULE)):  # fmt: skip
        known = frozenset(n.lower() for n in names)
        scope = _scope(*_POWERSHELL, (event_id,))
        table[category] = (_closed(f"PowerShell {event_id}", scope, {n: n for n in names}, known),)
    return {
        category: tuple(
            Branch(
                f"{category} events ({', '.join(b.what for b in found)})",
                b.scope,
                b.fields,
                b.known,
            )
            for b in found
        )
        for category, found in table.items()
    }


_CATEGORIES = _categories()


def _channels(service: str) -> tuple[str, ...] | None:
    channels = windows_logsource_mapping.get(service)
    if channels is None:
        return None
    found = (channels,) if isinstance(channels, str) else tuple(channels)
    # Sigma's older powershell rules (400, 600, 800) are of the classic log.
    return (*found, "Windows PowerShell") if service == "powershell" else found


def branches(logsource: Any) -> tuple[Branch, ...] | None:
    """The events a rule's ``logsource`` means (`product: windows`), or None: not mapped."""
    if not isinstance(logsource, dict):
        return None
    if str(logsource.get("product", "")).lower() != "windows":
        return None
    category, service = logsource.get("category"), logsource.get("service")
    if category is not None:
        return _CATEGORIES.get(str(category).lower())
    if service is None:
        return None
    channels = _channels(str(service).lower())
    if channels is None:
        return None
    return (Branch(f"{service} events", _scope(channels)),)


class EventsBackend(DuckDBBackend):
    """The DuckDB backend over `events`, for one `branch` at a time (the loader sets it)."""

    name: ClassVar[str] = "irtool DuckDB events"
    formats: ClassVar[dict[str, str]] = {"default": "a boolean SQL condition over events"}
    keyword_text: ClassVar[str] = KEYWORD_TEXT
    keyword_space: ClassVar[str] = " "
    decode_plus: ClassVar[bool] = False

    branch: Branch = Branch("events", "true")
    # The data keys the rule reads, in order (what a finding shows of its first event).
    keys: list[str]

    def _column(self, field_name: str) -> str:  # type: ignore[override]
        """The SQL of the field as text (a column, a data value, or NULL in this branch)."""
        lowered = field_name.strip().lower()
        if lowered in _COLUMNS:
            return _COLUMNS[lowered][0]
        branch = self.branch
        if branch.fields is None:
            if not _OPEN_NAME.match(field_name):
                raise FieldError(field_name, f"field '{field_name}' is not an event data name")
            return self._data(field_name)
        if lowered in _HASHES and "hashes" in branch.fields:
            # regexp_extract gives '' where the hash is not listed: NULL, as a missing field.
            hashes = self._data(branch.fields["hashes"])
            pattern = quote(f"(?i)(?:^|,){_HASHES[lowered]}=([^,]*)")
            return f"nullif(regexp_extract({hashes}, {pattern}, 1), '')"
        if lowered in branch.fields:
            return self._data(branch.fields[lowered])
        if lowered in branch.known:
            return "CAST(NULL AS VARCHAR)"
        raise FieldError(field_name, f"field '{field_name}' is not a field of {branch.what}")

    def _data(self, key: str) -> str:
        if key not in self.keys:
            self.keys.append(key)
        return data_value(key)

    def escape_and_quote_field(self, field_name: str) -> str:
        column = self._column(field_name)
        if column == "event_id":
            return "CAST(event_id AS VARCHAR)"
        return column

    def _numeric(self, field_name: str) -> str:
        column = self._column(field_name)
        if column == "event_id":
            return column
        return f"TRY_CAST({column} AS DOUBLE)"

    def _is_uri(self, field_name: str) -> bool:
        return False

    # A list of values of one field (`ScriptBlockText|contains: [...]`) is ONE case-insensitive
    # RE2 pass over the field, not one `lower(...)` and data lookup per value: measured on 1M
    # events (250k script blocks), the PowerShell rule's 20 values took 6.2 s one by one, 0.7 s
    # as one regex (CPU shared, so roughly).
    def convert_condition_or(self, cond: ConditionOR, state: ConversionState) -> Any:
        args = cond.args
        fields = {a.field for a in args if isinstance(a, ConditionFieldEqualsValueExpression)}
        if (
            len(args) < 2
            or len(fields) != 1
            or not all(
                isinstance(a, ConditionFieldEqualsValueExpression)
                and type(a.value) is SigmaString  # not |cased, nor a number or a regex
                for a in args
            )
        ):
            return super().convert_condition_or(cond, state)
        values = [a.value for a in args if isinstance(a, ConditionFieldEqualsValueExpression)]
        pieces = [_anchored(self._parts(v)) for v in values if isinstance(v, SigmaString)]
        text = self.escape_and_quote_field(next(iter(fields)))
        patterns = packed(pieces, "(?is)")
        return "(" + " OR ".join(f"regexp_matches({text}, {quote(p)})" for p in patterns) + ")"


def _anchored(parts: list[str | SpecialChars]) -> str:
    """RE2 matching a whole value as the Sigma string does (`*` and `?` its only wildcards),
    without the anchors a leading or trailing `*` makes useless (a contains is a search)."""
    body = [
        (".*" if p == SpecialChars.WILDCARD_MULTI else ".")
        if isinstance(p, SpecialChars)
        else _RE2_SPECIAL.sub(r"\\\1", p)
        for p in parts
    ]
    start = "" if body[:1] == [".*"] else "^"
    end = "" if body[-1:] == [".*"] and len(body) > 1 else "$"
    if not start:
        body = body[1:]
    if not end:
        body = body[:-1]
    return f"(?:{start}{''.join(body)}{end})"


# -- findings ---------------------------------------------------------------------------------

#: What a scan keeps of each matching event (see `irtool.analysis.sigma._sql`).
EVENT_MATCH_COLUMNS = (
    "rule, coalesce(host, computer) AS who, ts, host, evidence_sha256, source, line, "
    "channel, event_id, data"
)
#: One row per rule and host (the incident's, else the record's computer).
EVENT_GROUPED = f"""
SELECT rule, who, min(ts) AS first_seen, max(ts) AS last_seen, count(*) AS hits,
       min_by({{'sha256': evidence_sha256, 'source': source, 'line': line}},
              {{'ts': ts, 'line': line}}, {MAX_REFS}) AS refs,
       list(DISTINCT host ORDER BY host) FILTER (WHERE host IS NOT NULL) AS hosts,
       list(DISTINCT channel || ' ' || event_id ORDER BY channel || ' ' || event_id)[1:3]
           AS kinds,
       min_by(data, {{'ts': ts, 'line': line}}) AS first_data
FROM matches GROUP BY rule, who ORDER BY rule, who
"""  # noqa: S608 - constants
_SHOWN = 4  # data values a summary shows
_VALUE_MAX = 120  # characters of each (a script block is long)
# Data keys whose value is an indicator a sweep of other hosts can look for. Not a program's
# path: the rules' programs are Windows' own (cmd.exe), found on every host.
_INDICATOR_KEYS = {
    "servicename": "service",
    "taskname": "task",
    "membersid": "account",
}


def shown_keys(rule: Mapping[str, Any], read: list[str]) -> tuple[str, ...]:
    """The data keys a finding shows: the rule's own ``fields:`` list, then those its
    detection reads (a 4688 event has no ``Image``: its ``NewProcessName`` is read)."""
    fields = rule.get("fields")
    listed = [f for f in fields if isinstance(f, str)] if isinstance(fields, list) else []
    return tuple(dict.fromkeys(k for k in (*listed, *read) if k.lower() not in _COLUMNS))


def _values(row: Mapping[str, Any], keys: tuple[str, ...]) -> list[tuple[str, str]]:
    """The first event's (key, value) for `keys` it has (in any case), "-" and empty left out."""
    data = row.get("first_data") or {}
    by_lower = {str(k).lower(): (str(k), v) for k, v in dict(data).items()}
    found = []
    for key in keys:
        name, value = by_lower.get(key.lower(), (key, None))
        if value is not None and str(value).strip() not in ("", "-"):
            found.append((name, str(value)))
    return found


def event_summary(title: str, row: Mapping[str, Any], shown: tuple[str, ...]) -> str:
    """One line: how many events on which host, of what, and the first one's values."""
    hits = int(row.get("hits") or 0)
    text = f"{title}: {hits} event{'s' * (hits != 1)} on {row.get('who') or 'an unknown host'}"
    kinds = [str(k) for k in row.get("kinds") or () if k]
    if kinds:
        text += f" ({', '.join(kinds)})"
    values = _values(row, shown)[:_SHOWN]
    if values:
        cut = [(k, v if len(v) <= _VALUE_MAX else v[: _VALUE_MAX - 3] + "...") for k, v in values]
        text += ": " + ", ".join(f"{k}={' '.join(v.split())}" for k, v in cut)
    return text


def event_indicators(row: Mapping[str, Any], shown: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """The first event's values a sweep can look for (a service, a task, an account added),
    of the keys the finding shows."""
    found: dict[tuple[str, str], None] = {}
    for key, value in _values(row, shown):
        kind = _INDICATOR_KEYS.get(key.lower())
        if kind is None:
            continue
        try:
            found[(kind, ioc_value(kind, value))] = None
        except ValueError:
            continue  # not a value of that kind (too long, control characters)
    return tuple(found)
