"""The plan: every step in order and, per target host, the exact command it would run."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from irtool.model.flow import following
from irtool.model.inventory import Inventory
from irtool.model.params import parse_value
from irtool.model.runbook import Runbook
from irtool.model.steps import (
    ActionStep,
    CollectStep,
    CommandStep,
    DecisionStep,
    RotateStep,
    Shell,
    StepBase,
)
from irtool.model.templating import TemplateProblem, render


class PlanError(Exception):
    """Parameters or templates that keep a plan from being made; one message per problem."""

    def __init__(self, messages: list[str]) -> None:
        self.messages = messages
        super().__init__("\n".join(messages))


@dataclass(frozen=True)
class PlanRow:
    step: str
    phase: str
    kind: str
    title: str
    item: str | None = None
    host: str | None = None
    shell: str | None = None
    command: str | None = None
    rollback: str | None = None
    next: str | None = None  # where a decision's option leads

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_parameters(runbook: Runbook, given: Mapping[str, str]) -> dict[str, str | None]:
    """Typed, validated parameter values; every refusal is collected before raising."""
    messages: list[str] = []
    values: dict[str, str | None] = {}
    for name in given:
        if name not in runbook.parameters:
            known = ", ".join(runbook.parameters) or "none"
            messages.append(
                f"parameter '{name}' is not declared by this runbook (declared: {known})"
            )
    for name, param in runbook.parameters.items():
        raw = given.get(name, param.default)
        if raw is None:
            if param.required:
                messages.append(
                    f"parameter '{name}' ({param.type}) is required: {param.description}"
                )
            values[name] = None
            continue
        try:
            values[name] = parse_value(param, raw)
        except ValueError as bad:
            messages.append(f"parameter '{name}' ({param.type}): {bad}")
    if messages:
        raise PlanError(messages)
    return values


class _Placeholders(dict[str, str]):
    """Host variables when no inventory is given: each shows as <host.vars.NAME>."""

    def __missing__(self, key: str) -> str:
        return f"<host.vars.{key}>"


def _hosts(selectors: list[str], inventory: Inventory | None) -> list[tuple[str, dict[str, Any]]]:
    if inventory is None:
        return [
            (s, {"name": s, "address": s, "groups": [], "tags": [], "vars": _Placeholders()})
            for s in selectors
        ]
    hosts = []
    for name in inventory.select(selectors):
        host = inventory.resolve(name)
        context = {
            "name": name,
            "address": host.address,
            "os": str(host.os),
            "groups": host.groups,
            "tags": host.tags,
            "vars": host.vars,
        }
        hosts.append((name, context))
    return hosts


def build_plan(
    runbook: Runbook, params: Mapping[str, str | None], inventory: Inventory | None = None
) -> list[PlanRow]:
    rows: list[PlanRow] = []
    messages: list[str] = []
    after = following(runbook)

    def rendered(step: StepBase, source: str, shell: Shell, host: dict[str, Any]) -> str:
        try:
            return render(source, shell, {**params, "host": host})
        except TemplateProblem as bad:
            messages.append(f"step '{step.id}' on {host['name']}: {bad}")
            return ""

    for phase, step in runbook.steps():
        base = {"step": step.id, "phase": phase.id, "kind": step.type, "title": step.title}
        if isinstance(step, CommandStep):
            hosts = _hosts(step.targets, inventory)
            if isinstance(step, CollectStep):
                commands = [
                    (c.id if c.id != step.id else None, c.command) for c in step.collectors()
                ]
            elif isinstance(step, ActionStep):
                commands = [(None, step.command)]
            for label, source in commands:
                for name, host in hosts:
                    rollback = getattr(step, "rollback", None)
                    rows.append(
                        PlanRow(
                            **base,
                            item=label,
                            host=name,
                            shell=str(step.shell),
                            command=rendered(step, source, step.shell, host),
                            rollback=rendered(step, rollback, step.shell, host)
                            if rollback is not None
                            else None,
                        )
                    )
        elif isinstance(step, RotateStep):
            for rotation in step.items:
                if rotation.command and rotation.targets:
                    for name, host in _hosts(rotation.targets, inventory):
                        rows.append(
                            PlanRow(
                                **base,
                                item=rotation.id,
                                host=name,
                                shell=str(rotation.shell),
                                command=rendered(step, rotation.command, rotation.shell, host),
                            )
                        )
                else:
                    rows.append(PlanRow(**base, item=rotation.id))
        elif isinstance(step, DecisionStep):
            rows.extend(
                PlanRow(**base, item=option.id, next=option.next or after[step.id])
                for option in step.options
            )
        else:
            rows.append(PlanRow(**base))
    if messages:
        raise PlanError(messages)
    return rows
