"""A hunt file: one question asked of the web-server requests or the Windows events, as data.

A hunt is a YAML file (shipped under ``irtool/analysis/hunts/``, or the user's own) whose
``query`` is ONE DuckDB ``SELECT`` over its ``table`` of the analytical store
(``irtool.analysis.store``): ``requests`` (web-server logs, the default) or ``events``
(Windows event log records); each row it returns is one finding. What the rows must hold, and
how hunts are found, checked and run, is in ``irtool.analysis.hunts``.

Parameters are named ``$name`` in the SQL and declared under ``parameters`` with a type, a
default and a description, so that a responder can change a threshold without editing SQL::

    parameters:
      window_start: {type: timestamp, default: 24h, description: the incident window starts}
      min_posts: {type: integer, default: 20, description: POSTs in one hour to report}

A ``timestamp`` default is an ISO 8601 time (UTC) or a duration (``24h``, ``90m``, ``2d``):
that long before the last row of the hunt's table (the last request, or the last event).
``ioc_<kind>`` (``ioc_ip``, ``ioc_user_agent``, one per kind of indicator) are given by the
runner, as lists of text, and are not declared.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, ValidationInfo, field_validator

from irtool.model.base import ItemId, Model, ParamName, parse_duration
from irtool.model.indicators import IOC_KINDS

__all__ = [
    "BUILTIN_PARAMETERS",
    "SEVERITIES",
    "Hunt",
    "HuntParameter",
    "ParameterType",
    "named_parameters",
    "worst_first",
]

SEVERITIES: tuple[str, ...] = ("info", "low", "medium", "high", "critical")


def worst_first(severity: str) -> int:
    """A sort key: critical 0, ... info 4; an unknown severity after them all."""
    return SEVERITIES[::-1].index(severity) if severity in SEVERITIES else len(SEVERITIES)


Severity = Literal["info", "low", "medium", "high", "critical"]
ParameterType = Literal["integer", "number", "text", "timestamp", "list"]

#: Parameters the runner gives every hunt: the incident's indicators, by kind.
BUILTIN_PARAMETERS: tuple[str, ...] = tuple(f"ioc_{kind}" for kind in IOC_KINDS)

_TECHNIQUE = re.compile(r"T\d{4}(\.\d{3})?")
# `$name` outside quotes and comments; good enough to tell a hunt's author about a typo before
# DuckDB does (the load-time check runs the query too).
_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_STRINGS = re.compile(r"'(?:[^']|'')*'|--[^\n]*|/\*.*?\*/", re.DOTALL)


def _technique(value: str) -> str:
    if not _TECHNIQUE.fullmatch(value):
        raise ValueError(
            f"'{value}' is not an ATT&CK technique id: write T#### or T####.### (T1505.003)"
        )
    return value


Technique = Annotated[str, AfterValidator(_technique)]


def named_parameters(sql: str) -> set[str]:
    """The `$name` parameters a query names (outside strings and comments)."""
    return set(_PARAM.findall(_STRINGS.sub(" ", sql)))


def _as_timestamp(value: Any) -> datetime | timedelta:
    """A timestamp default or value: an ISO 8601 time, or a duration before the data's end."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text and text[0].isdigit() and ("-" in text or "T" in text):
            try:
                return datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                pass
    try:
        return parse_duration(value)  # type: ignore[no-any-return]
    except ValueError:
        pass
    raise ValueError(
        f"'{value}' is not a timestamp: write an ISO 8601 time (2024-03-03T06:00:00Z) or a "
        "duration before the last request (24h)"
    )


def coerce_parameter(kind: str, value: Any) -> Any:
    """A parameter's value as its type wants it (ValueError saying why not). A `timestamp` is a
    datetime or a timedelta (before the last request); a `list` is a list of text."""
    if isinstance(value, bool):
        raise ValueError(f"expected {_TYPE_WORDS[kind]}, found the boolean {str(value).lower()}")
    if kind == "integer":
        if isinstance(value, int):
            return value
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            return int(value)
    elif kind == "number":
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif kind == "text":
        if isinstance(value, str | int | float):
            return str(value)
    elif kind == "timestamp":
        return _as_timestamp(value)
    elif kind == "list":
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, list | tuple) and all(isinstance(v, str | int) for v in value):
            return [str(v) for v in value]
    raise ValueError(f"expected {_TYPE_WORDS[kind]}, found {value!r}")


_TYPE_WORDS = {
    "integer": "a whole number",
    "number": "a number",
    "text": "text",
    "timestamp": "a timestamp or a duration",
    "list": "a list of text",
}


class HuntParameter(Model):
    """A named value of the query (`$name`): a threshold, a window, a pattern."""

    type: ParameterType
    default: Any
    description: str

    @field_validator("default")
    @classmethod
    def _default_fits(cls, value: Any, info: ValidationInfo) -> Any:
        kind = info.data.get("type")
        if kind is not None:
            coerce_parameter(kind, value)
        return value


class Hunt(Model):
    """A hunt file. `query` is ONE SELECT over its `table` (`requests`, or `events`); each row
    it returns is a finding."""

    id: ItemId
    version: str
    title: str = Field(min_length=1)
    severity: Severity
    # What the hunt reads: a duration parameter counts back from this table's last row.
    table: Literal["requests", "events"] = "requests"
    attack: list[Technique]
    description: str
    next_steps: str
    parameters: dict[ParamName, HuntParameter] = Field(default_factory=dict)
    query: str = Field(min_length=1)

    @field_validator("parameters")
    @classmethod
    def _not_builtin(cls, value: dict[str, HuntParameter]) -> dict[str, HuntParameter]:
        for name in value:
            if name in BUILTIN_PARAMETERS:
                raise ValueError(f"'{name}' is given by irtool: do not declare it")
        return value

    @field_validator("query")
    @classmethod
    def _parameters_declared(cls, value: str, info: ValidationInfo) -> str:
        if "parameters" not in info.data:
            return value  # the parameters are wrong: that is the problem to report
        declared = set(info.data["parameters"])
        undeclared = sorted(named_parameters(value) - declared - set(BUILTIN_PARAMETERS))
        if undeclared:
            names = ", ".join(f"${n}" for n in undeclared)
            raise ValueError(
                f"names {names}, not declared under 'parameters' (irtool gives only "
                f"{', '.join('$' + b for b in BUILTIN_PARAMETERS)})"
            )
        return value

    def defaults(self) -> dict[str, Any]:
        """Each declared parameter's default, coerced to its type."""
        return {n: coerce_parameter(p.type, p.default) for n, p in self.parameters.items()}
