"""The runbooks irtool ships are valid, complete, and their PowerShell parses."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from irtool.cli import cli
from irtool.model.loader import load_inventory, load_runbook
from irtool.model.plan import build_plan, resolve_parameters
from irtool.model.runbook import Runbook
from irtool.model.steps import AgendaStep, PostmortemStep
from tests.conftest import ROOT
from tests.support.powershell import string_problems, syntax_problems

RUNBOOKS = sorted((ROOT / "runbooks").glob("*.yaml"))
SHIPPED = {
    "iis-compromise.yaml",
    "iis-emergency-patch.yaml",
    "iis-unsupported-version.yaml",
    "rogue-server.yaml",
}


def test_every_promised_runbook_is_shipped() -> None:
    assert {p.name for p in RUNBOOKS} >= SHIPPED


def test_shipped_files_validate_cleanly_together() -> None:
    result = CliRunner().invoke(
        cli,
        [
            "validate",
            str(ROOT / "runbooks"),
            str(ROOT / "contacts.example.yaml"),
            str(ROOT / "inventory.example.yaml"),
        ],
    )
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if "warning:" in line]
    # The example inventory's IIS 7.0 host is insecure on purpose, and is warned about by design.
    assert all("legacy-iis7: marked insecure" in line for line in warnings), warnings


def _runbook(path: Path) -> Runbook:
    return load_runbook(path).model


@pytest.mark.parametrize("path", RUNBOOKS, ids=lambda p: p.stem)
def test_runbook_has_what_a_team_needs(path: Path) -> None:
    runbook = _runbook(path)
    steps = [step for _, step in runbook.steps()]
    assert runbook.triggers
    assert runbook.activation.may_activate
    assert any(isinstance(s, AgendaStep) for s in steps), "standing agenda missing"
    assert any(isinstance(s, PostmortemStep) for s in steps), "post-mortem missing"
    for name, param in runbook.parameters.items():
        assert param.example is not None, f"parameter {name} has no example"


@pytest.mark.parametrize("path", RUNBOOKS, ids=lambda p: p.stem)
def test_every_powershell_command_parses(path: Path) -> None:
    runbook = _runbook(path)
    inventory = load_inventory(ROOT / "inventory.example.yaml").model
    examples = {n: p.example for n, p in runbook.parameters.items() if p.example is not None}
    values = resolve_parameters(runbook, examples)
    # With the example inventory each host gets one form; without one, every form is shown.
    rows = build_plan(runbook, values, inventory) + build_plan(runbook, values)
    checked = 0
    for row in rows:
        if row.shell != "powershell":
            continue
        for label, script in (("command", row.command), ("rollback", row.rollback)):
            if script is None:
                continue
            problems = syntax_problems(script) + string_problems(script)
            assert not problems, f"{row.step}/{row.item or ''} {label} on {row.host}: {problems}"
            checked += 1
    assert checked or not any(r.shell == "powershell" for r in rows)
