"""A runbook reuses one collector of a fragment (`include: FILE#STEP/COLLECTOR` in a collect
step's commands): the admission baseline reads what the triage reads, with no copy to drift."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from irtool.model.loader import load_runbook
from irtool.model.problems import InvalidFile
from tests.support.runbooks import runbook

ROOT = Path(__file__).resolve().parent.parent

FRAGMENT = textwrap.dedent(
    """\
    steps:
      - id: triage
        type: collect
        title: Triage
        targets: [all]
        shell: sh
        commands:
          - id: users
            title: Local users
            command: cat /etc/passwd
            records: {kind: local-user, key: [name]}
          - id: services
            title: Services
            command: systemctl list-units --type=service
    """
)


def _runbook(tmp_path: Path, commands: str) -> Path:
    (tmp_path / "fragment.yaml").write_text(FRAGMENT)
    steps = f"""\
- id: admit
  type: collect
  title: Admit
  targets: [all]
  shell: sh
  commands:
{textwrap.indent(textwrap.dedent(commands), "    ")}"""
    path = tmp_path / "rb.yaml"
    path.write_text(runbook("rb", "RB", steps))
    return path


def test_a_collector_of_a_fragment_is_spliced_with_its_records(tmp_path: Path) -> None:
    path = _runbook(
        tmp_path,
        """\
        - include: fragment.yaml#triage/users
        - id: own
          title: Its own
          command: uname -a
        """,
    )
    step = load_runbook(path).model.step("admit")
    collectors = step.collectors()  # type: ignore[union-attr]
    assert [c.id for c in collectors] == ["users", "own"]
    assert collectors[0].command == "cat /etc/passwd"
    assert [spec.kind for spec in collectors[0].records or ()] == ["local-user"]


def test_an_unknown_collector_is_located(tmp_path: Path) -> None:
    path = _runbook(tmp_path, "- include: fragment.yaml#triage/nope\n")
    with pytest.raises(InvalidFile) as invalid:
        load_runbook(path)
    shown = [str(p) for p in invalid.value.problems]
    assert any(
        p.startswith(f"{path}:") and "triage/nope is not a collector there" in p for p in shown
    ), shown


def test_a_whole_fragment_is_not_a_collector(tmp_path: Path) -> None:
    path = _runbook(tmp_path, "- include: fragment.yaml\n")
    with pytest.raises(InvalidFile) as invalid:
        load_runbook(path)
    assert any("FILE#STEP/COLLECTOR" in str(p) for p in invalid.value.problems)


@pytest.mark.parametrize("name", ["rogue-server", "iis-unsupported-version"])
def test_the_admission_steps_read_the_triage_collectors(name: str) -> None:
    book = load_runbook(ROOT / "runbooks" / f"{name}.yaml").model
    triage = {
        c.id: c
        for step in ("triage-persistence", "triage-iis-config")
        for c in load_runbook(ROOT / "runbooks/iis-compromise.yaml").model.step(step).collectors()  # type: ignore[union-attr]
    }
    admitted = book.step("admission-records").collectors()  # type: ignore[union-attr]
    assert admitted
    for collector in admitted:
        assert collector == triage[collector.id]
    assert book.step("admission-baseline").baseline == "capture"  # type: ignore[union-attr]
