"""Indicators of compromise an incident keeps: their kinds, and what each value must look like.

Indicators are data the team gathers (an address, a web shell's hash, a scheduled task's
name) and runbook commands can use as `{{ iocs.KIND }}`: a list, each value quoted for its
shell like any parameter. Each kind is checked as it is added, so a command never receives a
hash that is not one.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

MAX_VALUE = 4096  # the longest parameter or indicator value, in characters

IOC_KINDS = (
    "ip",
    "cidr",
    "domain",
    "url",
    "sha256",
    "file",
    "user_agent",
    "account",
    "task",
    "service",
    "module",
)
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# People write the kind as they say it: "file name", "user agent", "user-agent".
_SPELLINGS = {k.replace("_", " "): k for k in IOC_KINDS} | {
    k.replace("_", "-"): k for k in IOC_KINDS
}
_SPELLINGS |= {"file name": "file", "filename": "file", "file_name": "file", "hash": "sha256"}


def ioc_kind(text: str) -> str:
    """The kind named by `text`, or ValueError listing the kinds."""
    key = text.strip().lower()
    kind = key if key in IOC_KINDS else _SPELLINGS.get(key)
    if kind is None:
        raise ValueError(f"'{text}' is not a kind of indicator ({', '.join(IOC_KINDS)})")
    return kind


def ioc_value(kind: str, raw: str) -> str:
    """The canonical value of an indicator of `kind`, or ValueError saying why not."""
    value = raw.strip()
    shown = repr(value) if len(value) <= 80 else repr(value[:77] + "...")
    if not value:
        raise ValueError("an indicator needs a value")
    if len(value) > MAX_VALUE:
        raise ValueError(f"value is longer than {MAX_VALUE} characters")
    if _CONTROL.search(value):
        raise ValueError(f"{shown} has control characters")
    match kind:
        case "ip":
            try:
                return str(ipaddress.ip_address(value))
            except ValueError:
                raise ValueError(f"{shown} is not an IP address") from None
        case "cidr":
            try:
                return str(ipaddress.ip_network(value, strict=False))
            except ValueError:
                raise ValueError(f"{shown} is not an address range") from None
        case "domain":
            name = value.lower().rstrip(".")
            if not 0 < len(name) <= 253 or not all(_LABEL.fullmatch(p) for p in name.split(".")):
                raise ValueError(f"{shown} is not a domain name")
            return name
        case "url":
            parts = urlsplit(value)
            if value.startswith("/"):
                return value  # a path as IIS logs it (cs-uri-stem)
            if not parts.scheme or not (parts.netloc or parts.path):
                raise ValueError(f"{shown} is not a URL (scheme://host/path, or a path)")
            return value
        case "sha256":
            if not _SHA256.fullmatch(value):
                raise ValueError(f"{shown} is not a SHA-256 (64 hex digits)")
            return value.lower()
        case _:
            return value
