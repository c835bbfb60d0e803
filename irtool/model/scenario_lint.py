"""Checks beyond the schema: what a valid-looking scenario gets wrong about its runbook."""

from __future__ import annotations

from pathlib import Path

from irtool.model.inventory import Inventory
from irtool.model.plan import PlanError, resolve_parameters
from irtool.model.problems import Problem, Severity
from irtool.model.runbook import Runbook
from irtool.model.scenario import Scenario
from irtool.model.steps import ActionStep, CollectStep, CommandStep
from irtool.model.yamlsource import Document, NodePath


def lint_scenario(
    scenario: Scenario, doc: Document, runbook: Runbook | None = None
) -> list[Problem]:
    """Problems of the scenario alone, and (given its runbook) of how the two fit together."""
    problems: list[Problem] = []

    def add(at: NodePath, message: str, severity: Severity = Severity.ERROR) -> None:
        problems.append(Problem(doc.mark(at), message, severity))

    for group, members in scenario.groups.items():
        for i, member in enumerate(members):
            if member not in scenario.hosts:
                add(("groups", group, i), f"group '{group}' names no simulated host '{member}'")
    if scenario.contacts and not (Path(doc.path).parent / scenario.contacts).is_file():
        add(("contacts",), f"no contacts file '{scenario.contacts}' beside this scenario")
    seen: set[str] = set()
    for i, inject in enumerate(scenario.injects):
        if inject.id in seen:
            add(("injects", i, "id"), f"duplicate inject id '{inject.id}'")
        seen.add(inject.id)
    inventory = scenario.inventory()
    if inventory:
        for i, reply in enumerate(scenario.replies):
            if not inventory.select(reply.hosts):
                add(("replies", i, "hosts"), "selects no simulated host", Severity.WARNING)
    if runbook is not None:
        problems += _against_runbook(scenario, doc, runbook, inventory)
    return problems


def _against_runbook(
    scenario: Scenario, doc: Document, runbook: Runbook, inventory: Inventory | None
) -> list[Problem]:
    problems: list[Problem] = []

    def add(at: NodePath, message: str, severity: Severity = Severity.ERROR) -> None:
        problems.append(Problem(doc.mark(at), message, severity))

    if scenario.runbook != runbook.id:
        add(("runbook",), f"this scenario is for runbook '{scenario.runbook}', not '{runbook.id}'")
        return problems  # every other check would only repeat that
    try:
        resolve_parameters(runbook, scenario.parameters)
    except PlanError as bad:
        for message in bad.messages:
            add(("parameters",), message)
    for i, reply in enumerate(scenario.replies):
        if reply.step is None:
            continue
        step = runbook.step(reply.step)
        if step is None:
            add(("replies", i, "step"), f"no step '{reply.step}' in runbook {runbook.id}")
        elif not isinstance(step, CommandStep):
            add(
                ("replies", i, "step"),
                f"step '{reply.step}' is a {step.type} step: it runs nothing",
            )
        elif reply.item and isinstance(step, CollectStep):
            items = [c.id for c in step.collectors()]
            if reply.item not in items:
                add(
                    ("replies", i, "item"),
                    f"step '{reply.step}' has no collector '{reply.item}' ({', '.join(items)})",
                )
        elif reply.purpose in ("action", "rollback") and not isinstance(step, ActionStep):
            add(("replies", i, "purpose"), f"step '{reply.step}' is not an action")
    roles = set(runbook.roles)
    for i, inject in enumerate(scenario.injects):
        if inject.to not in roles:
            add(
                ("injects", i, "to"),
                f"no role '{inject.to}' in runbook {runbook.id} "
                f"(roles: {', '.join(runbook.roles)})",
            )
        for field, steps in (
            ("after", [inject.after] if inject.after else []),
            ("expect", inject.expect),
        ):
            for j, step_id in enumerate(steps):
                if runbook.step(step_id) is None:
                    at: NodePath = (
                        ("injects", i, field) if field == "after" else ("injects", i, field, j)
                    )
                    add(at, f"no step '{step_id}' in runbook {runbook.id}")
    if inventory:
        for _, step in runbook.steps():
            if isinstance(step, CommandStep) and not inventory.select(step.targets):
                add(
                    ("hosts",),
                    f"no simulated host is a target of step '{step.id}' "
                    f"({', '.join(step.targets)}): it will have nothing to run on",
                    Severity.WARNING,
                )
    return problems
