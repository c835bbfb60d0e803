"""Mutated runbooks never make an exception escape the loader: only located problems."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from irtool.model.lint import lint_runbook
from irtool.model.loader import Kind, load
from irtool.model.problems import InvalidFile
from irtool.model.yamlsource import parse
from tests.conftest import ROOT

SEEDS = [ROOT / "tests/corpus/valid/every-kind.yaml", *sorted((ROOT / "runbooks").glob("*.yaml"))]
SEED_TEXT = {p: p.read_text() for p in SEEDS}
SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def check(path: Path) -> None:
    """Loading either succeeds (and lint runs) or fails with located problems in real files."""
    try:
        loaded = load(path, Kind.RUNBOOK)
    except InvalidFile as invalid:
        assert invalid.problems  # noqa: PT017 - either outcome is fine; a crash is not
        for problem in invalid.problems:
            assert problem.mark.line >= 1
            assert problem.mark.col >= 1
            assert problem.message
        return
    lint_runbook(loaded.model, loaded.doc)  # type: ignore[arg-type]


YAML_NOISE = st.sampled_from(
    [
        "\t",
        ":",
        "- ",
        "[",
        "]",
        "{",
        "}",
        "&a ",
        "*a",
        "!!python/object ",
        "'",
        '"',
        "\n",
        "  ",
        "#",
        "|",
        ">",
        "~",
        "%",
        "@",
        "`",
        "\x00",
        "\ufeff",
        "\u2028",
        "? ",
        "---\n",
        "<<: ",
    ]
)


@given(
    seed=st.sampled_from(SEEDS),
    edits=st.lists(
        st.tuples(st.floats(0, 1), st.one_of(YAML_NOISE, st.text(max_size=5)), st.integers(0, 8)),
        min_size=1,
        max_size=6,
    ),
)
@SETTINGS
def test_text_mutations(
    tmp_path_factory: Any, seed: Path, edits: list[tuple[float, str, int]]
) -> None:
    text = SEED_TEXT[seed]
    for where, insert, delete in edits:
        at = int(where * len(text))
        text = text[:at] + insert + text[at + delete :]
    path = tmp_path_factory.mktemp("m") / seed.name
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    check(path)


def _paths(data: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [at]
    if isinstance(data, dict):
        for key, value in data.items():
            found += _paths(value, (*at, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found += _paths(value, (*at, i))
    return found


JUNK = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


@given(seed=st.sampled_from(SEEDS), choice=st.floats(0, 1), junk=JUNK, drop=st.booleans())
@SETTINGS
def test_structure_mutations(
    tmp_path_factory: Any, seed: Path, choice: float, junk: Any, drop: bool
) -> None:
    data = parse(SEED_TEXT[seed], str(seed)).data
    paths = _paths(data)[1:]
    target = paths[int(choice * (len(paths) - 1))]
    parent = data
    for element in target[:-1]:
        parent = parent[element]
    if drop:
        del parent[target[-1]]
    else:
        parent[target[-1]] = junk
    path = tmp_path_factory.mktemp("s") / seed.name
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    check(path)
