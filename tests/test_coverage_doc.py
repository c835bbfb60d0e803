"""docs/coverage.md maps every item of the checklist behind irtool to the steps that do it.

Every item, 1 to 40, has a row; every step a row names exists in the runbook it names; and
every item is covered by at least one step (a row may add a note on what stays a person's).
"""

from __future__ import annotations

import re

from irtool.model.loader import load_runbook
from tests.conftest import ROOT

COVERAGE = ROOT / "docs" / "coverage.md"
ITEMS = 40
# | 8 | Find rogue web servers by scanning | rogue-server: discover-web-servers, ... | note |
_ROW = re.compile(r"^\|\s*(\d+)\s*\|([^|]*)\|([^|]*)\|")
_REF = re.compile(r"`?([a-z0-9-]+)`?\s*:\s*([^;]+)")


def _rows() -> dict[int, tuple[str, str]]:
    rows: dict[int, tuple[str, str]] = {}
    for line in COVERAGE.read_text(encoding="utf-8").splitlines():
        found = _ROW.match(line)
        if found:
            number = int(found[1])
            assert number not in rows, f"item {number} is mapped twice"
            rows[number] = (found[2].strip(), found[3].strip())
    return rows


def _steps(runbook_id: str) -> set[str]:
    path = ROOT / "runbooks" / f"{runbook_id}.yaml"
    assert path.exists(), f"docs/coverage.md names runbook {runbook_id!r}, which is not shipped"
    return {step.id for _, step in load_runbook(path).model.steps()}


def test_every_checklist_item_is_mapped_once() -> None:
    assert sorted(_rows()) == list(range(1, ITEMS + 1))


def test_every_step_the_map_names_exists_and_every_item_has_one() -> None:
    known: dict[str, set[str]] = {}
    for number, (item, where) in _rows().items():
        refs = _REF.findall(where)
        assert refs, f"item {number} ({item}) names no step"
        for runbook_id, steps in refs:
            have = known.setdefault(runbook_id, _steps(runbook_id))
            for step in re.findall(r"[a-z0-9][a-z0-9_-]*", steps.replace("`", "")):
                assert step in have, f"item {number}: {runbook_id} has no step {step!r}"
