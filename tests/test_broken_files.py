"""Each broken file yields its own located error, exit status 2, and never a traceback."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

BROKEN = sorted((ROOT / "tests" / "corpus" / "broken").glob("*.yaml"))


def expectations(path: Path) -> list[str]:
    return [
        line.removeprefix(b"# expect: ").decode()
        for line in path.read_bytes().splitlines()
        if line.startswith(b"# expect: ")
    ]


def validate(*args: str) -> subprocess.CompletedProcess[str]:
    # A real process: what a responder sees, including anything printed on the way out.
    return subprocess.run(
        [sys.executable, "-m", "irtool", "validate", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_corpus_is_there() -> None:
    assert len(BROKEN) >= 25
    assert all(expectations(p) for p in BROKEN), "every broken file names its expected error"


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.stem)
def test_broken_file_is_refused_at_the_right_node(path: Path) -> None:
    relative = path.relative_to(ROOT).as_posix()
    result = validate(relative)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.splitlines()
    for expected in expectations(path):
        where, message = expected.split(": ", 1)
        assert any(
            line.startswith(f"{relative}:{where}: ") and message in line for line in lines
        ), f"expected {relative}:{expected}\ngot:\n{result.stderr}"
    located = [line for line in lines if re.match(r".+:\d+:\d+: ", line)]
    assert located
    assert all(line.startswith(relative) for line in located)


def test_all_problems_of_a_file_are_reported_at_once() -> None:
    result = validate("tests/corpus/broken/wrong-type.yaml")
    assert result.returncode == 2
    assert "triggers:" in result.stderr
    assert "timeout:" in result.stderr


def test_one_line_per_problem_across_many_files() -> None:
    result = validate("tests/corpus/broken")
    assert result.returncode == 2
    problems = [line for line in result.stderr.splitlines() if re.match(r".+:\d+:\d+: ", line)]
    files_reported = {line.split(":", 1)[0] for line in problems}
    assert len(files_reported) == len(BROKEN)


def test_alias_bomb_is_refused_quickly() -> None:
    from time import perf_counter

    from irtool.model.loader import load
    from irtool.model.problems import InvalidFile

    started = perf_counter()
    with pytest.raises(InvalidFile, match="alias bomb"):
        load(ROOT / "tests/corpus/broken/alias-bomb.yaml")
    assert perf_counter() - started < 1.0


def test_a_missing_file_is_a_located_error() -> None:
    result = validate("no/such/runbook.yaml")
    assert result.returncode == 2
    assert result.stderr.startswith("no/such/runbook.yaml:1:1: cannot read")


def test_a_key_in_the_wrong_place_is_told_where_it_belongs_never_itself() -> None:
    """`address` is a host's key, not one of the defaults every host shares: the message once
    read `unknown key 'address' (did you mean 'address'?)`."""
    result = validate("tests/corpus/broken/inventory-address-in-defaults.yaml")
    assert result.returncode == 2
    assert "(did you mean 'address'?)" not in result.stderr
    assert "unknown key 'address' under 'defaults': it belongs under hosts.NAME" in result.stderr
