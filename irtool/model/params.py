"""Typed runbook parameters, validated before any of them reaches a command."""

from __future__ import annotations

import ipaddress
import re
from enum import StrEnum
from typing import Self

from pydantic import Field, model_validator

from irtool.model.base import Model
from irtool.model.indicators import MAX_VALUE


class ParamType(StrEnum):
    IP = "ip"
    CIDR = "cidr"
    HOSTNAME = "hostname"
    USERNAME = "username"
    PATH = "path"
    STRING = "string"
    CHOICE = "choice"


_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
# sAMAccountName-style names, optionally DOMAIN\ qualified, or a UPN.
_USERNAME = re.compile(
    r"(?:[A-Za-z0-9][A-Za-z0-9._-]{0,63}\\)?"
    r"[A-Za-z0-9._$-](?:[A-Za-z0-9._$ -]{0,102}[A-Za-z0-9._$-])?"
    r"|[A-Za-z0-9._$-]{1,64}@[A-Za-z0-9.-]{1,253}"
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _hostname(value: str) -> bool:
    name = value[:-1] if value.endswith(".") else value
    return 0 < len(name) <= 253 and all(_LABEL.fullmatch(label) for label in name.split("."))


class Parameter(Model):
    """A value the responder supplies: when the incident is opened (`at_open`), or as it is
    learned (triage finds the attacker's address); a step that needs it asks for it."""

    type: ParamType
    description: str
    required: bool = True
    at_open: bool = Field(
        default=False,
        description="Must be given when the incident is opened; otherwise it may be set later.",
    )
    many: bool = Field(
        default=False,
        alias="list",
        description="Holds several values (two attacker addresses); each is typed and quoted.",
    )
    default: str | None = None
    choices: list[str] | None = None
    example: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.type is ParamType.CHOICE and not self.choices:
            raise ValueError("a choice parameter needs 'choices'")
        if self.type is not ParamType.CHOICE and self.choices is not None:
            raise ValueError(f"'choices' applies to choice parameters, not {self.type}")
        if self.default is not None:
            parse_value(self, self.default)
        return self


def parse_value(param: Parameter, raw: str) -> str:
    """The canonical value of `raw` for `param`, or ValueError saying why it is refused."""
    shown = repr(raw) if len(raw) <= 80 else repr(raw[:77] + "...")
    if "\x00" in raw:
        raise ValueError(f"{shown} contains a NUL character")
    if len(raw) > MAX_VALUE:
        raise ValueError(f"value is longer than {MAX_VALUE} characters")
    match param.type:
        case ParamType.IP:
            try:
                return str(ipaddress.ip_address(raw))
            except ValueError:
                raise ValueError(f"{shown} is not an IP address") from None
        case ParamType.CIDR:
            try:
                return str(ipaddress.ip_network(raw, strict=False))
            except ValueError:
                raise ValueError(
                    f"{shown} is not an address range such as 198.51.100.0/24"
                ) from None
        case ParamType.HOSTNAME:
            if not _hostname(raw):
                raise ValueError(f"{shown} is not a host name")
            return raw
        case ParamType.USERNAME:
            if not _USERNAME.fullmatch(raw):
                raise ValueError(f"{shown} is not a user name (user, DOMAIN\\user or user@domain)")
            return raw
        case ParamType.PATH:
            if not raw or _CONTROL.search(raw):
                raise ValueError(f"{shown} is not a path (empty, or has control characters)")
            return raw
        case ParamType.CHOICE:
            if raw not in (param.choices or []):
                raise ValueError(f"{shown} is not one of: {', '.join(param.choices or [])}")
            return raw
        case ParamType.STRING:
            return raw


Value = str | list[str] | None  # a parameter's value: one, several (`list: true`), or unset


def value_text(value: object) -> str:
    """A parameter's value as a responder reads it: several comma-separated, or `unset`."""
    if value is None or value == []:
        return "unset"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def parse_values(param: Parameter, raw: str | list[str] | tuple[str, ...]) -> str | list[str]:
    """The canonical value of one typed value, or of several for a `list: true` parameter;
    ValueError naming the element refused."""
    values = [raw] if isinstance(raw, str) else list(raw)
    if not param.many:
        if len(values) != 1:
            raise ValueError(f"takes one value, not {len(values)}")
        return parse_value(param, values[0])
    if not values:
        raise ValueError("needs at least one value")
    parsed: list[str] = []
    for index, value in enumerate(values, 1):
        try:
            canonical = parse_value(param, value)
        except ValueError as bad:
            raise ValueError(f"value {index}: {bad}") from None
        if canonical not in parsed:  # the same address typed twice is one indicator
            parsed.append(canonical)
    return parsed
