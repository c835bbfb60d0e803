"""Typed parameters are checked before any of them reaches a command."""

from __future__ import annotations

import pytest

from irtool.model.params import Parameter, ParamType, parse_value


def param(kind: str, **extra: object) -> Parameter:
    return Parameter.model_validate({"type": kind, "description": "d", **extra})


@pytest.mark.parametrize(
    ("kind", "raw", "expected"),
    [
        ("ip", "203.0.113.7", "203.0.113.7"),
        ("ip", "2001:DB8::1", "2001:db8::1"),
        ("cidr", "198.51.100.0/24", "198.51.100.0/24"),
        ("cidr", "198.51.100.7/24", "198.51.100.0/24"),
        ("cidr", "203.0.113.9", "203.0.113.9/32"),
        ("hostname", "web01.corp.example.org", "web01.corp.example.org"),
        ("hostname", "web01.", "web01."),
        ("username", "CORP\\svc-web", "CORP\\svc-web"),
        ("username", "mallory@corp.example.org", "mallory@corp.example.org"),
        ("username", "IUSR", "IUSR"),
        ("path", "C:\\inetpub\\wwwroot\\x y.aspx", "C:\\inetpub\\wwwroot\\x y.aspx"),
        ("string", "anything 'at' all; $(x)", "anything 'at' all; $(x)"),
    ],
)
def test_valid_values_are_accepted_and_normalised(kind: str, raw: str, expected: str) -> None:
    assert parse_value(param(kind), raw) == expected


@pytest.mark.parametrize(
    ("kind", "raw", "message"),
    [
        ("ip", "1.2.3.4; calc", "is not an IP address"),
        ("ip", "1.2.3.4 ", "is not an IP address"),
        ("ip", "$(whoami)", "is not an IP address"),
        ("cidr", "10.0.0.0/33", "is not an address range"),
        ("hostname", "web01;calc", "is not a host name"),
        ("hostname", "-web", "is not a host name"),
        ("hostname", "a" * 64 + ".example", "is not a host name"),
        ("username", "bob'; drop", "is not a user name"),
        ("username", "a\nb", "is not a user name"),
        ("path", "C:\\x\nRemove-Item", "is not a path"),
        ("path", "", "is not a path"),
        ("string", "a\x00b", "NUL"),
    ],
)
def test_hostile_values_are_refused_with_a_reason(kind: str, raw: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_value(param(kind), raw)


def test_choices() -> None:
    choice = param("choice", choices=["block", "observe"])
    assert parse_value(choice, "block") == "block"
    with pytest.raises(ValueError, match="is not one of: block, observe"):
        parse_value(choice, "ignore")
    with pytest.raises(ValueError, match="needs 'choices'"):
        param("choice")
    with pytest.raises(ValueError, match="'choices' applies to choice"):
        param("ip", choices=["x"])


def test_a_default_must_be_valid_for_its_type() -> None:
    with pytest.raises(ValueError, match="not an IP address"):
        param("ip", default="nope")
    assert param(ParamType.IP, default="192.0.2.1").default == "192.0.2.1"
