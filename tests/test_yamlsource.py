"""Reading YAML safely, with a line and column for every node."""

from __future__ import annotations

import pytest

from irtool.model.problems import InvalidFile
from irtool.model.yamlsource import parse


def test_scalars_follow_the_yaml_1_2_core_schema() -> None:
    doc = parse("a: no\nb: on\nc: 2024-01-01\nd: 1.0\ne: true\nf: ~\ng: 0x1F\nh: '5'\n", "f.yaml")
    assert doc.data == {
        "a": "no",  # YAML 1.1 would make these booleans and a date
        "b": "on",
        "c": "2024-01-01",
        "d": 1.0,
        "e": True,
        "f": None,
        "g": 31,
        "h": "5",
    }


def test_every_value_and_key_has_its_position() -> None:
    doc = parse("top:\n  - name: x\n    list: [a, b]\n", "f.yaml")
    assert str(doc.mark(("top", 0, "list", 1))) == "f.yaml:3:15"
    assert str(doc.mark(("top", 0, "name"), key=True)) == "f.yaml:2:5"
    # A loc that goes past the data lands on the deepest node that exists.
    assert str(doc.mark(("top", 0, "missing", "deeper"))) == "f.yaml:2:5"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("a: !!python/name:os.system x\n", "is not allowed"),
        ("a: !custom x\n", "is not allowed"),
        ("a: !!binary aGk=\n", "is not allowed"),
        ("a: !!set {x}\n", "is not allowed"),
        ("a: &x [*x]\n", "recursive alias"),
        ("<<: {a: 1}\n", "merge keys"),
        ("? [a]\n: 1\n", "plain scalar"),
        ("a: !!int twelve\n", "not an integer"),
    ],
)
def test_only_plain_data_is_accepted(source: str, message: str) -> None:
    with pytest.raises(InvalidFile, match=message):
        parse(source, "f.yaml")


def test_aliases_to_plain_data_are_fine() -> None:
    doc = parse("base: &b [x, y]\nuse: *b\n", "f.yaml")
    assert doc.data["use"] == ["x", "y"]


def test_deep_nesting_is_refused_not_crashed() -> None:
    with pytest.raises(InvalidFile, match="nesting"):
        parse("a: " + "[" * 200 + "]" * 200 + "\n", "f.yaml")


def test_all_duplicate_keys_are_reported() -> None:
    with pytest.raises(InvalidFile) as caught:
        parse("a: 1\na: 2\nb:\n  c: 1\n  c: 2\n", "f.yaml")
    assert [str(p) for p in caught.value.problems] == [
        "f.yaml:2:1: duplicate key 'a' (first at line 1)",
        "f.yaml:5:3: duplicate key 'c' (first at line 4)",
    ]


def test_byte_order_mark_is_accepted() -> None:
    assert parse("\ufeffa: 1\n".encode(), "f.yaml").data == {"a": 1}
