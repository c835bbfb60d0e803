"""The plan: every step in order and, per target host, the exact command it would run."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from irtool.model.flow import following
from irtool.model.indicators import IOC_KINDS
from irtool.model.inventory import Inventory
from irtool.model.params import Value, parse_values
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
from irtool.model.templating import BUILTIN_NAMES, TemplateProblem, Unset, names_used, render


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


def resolve_parameters(
    runbook: Runbook, given: Mapping[str, str | list[str]], *, opening: bool = True
) -> dict[str, Value]:
    """Typed, validated parameter values; every refusal is collected before raising. A
    parameter not given stays unset (None) unless the runbook needs it `at_open`, or (not
    `opening`: a plan made without an incident) never."""
    messages: list[str] = []
    values: dict[str, Value] = {}
    for name in given:
        if name not in runbook.parameters:
            known = ", ".join(runbook.parameters) or "none"
            messages.append(
                f"parameter '{name}' is not declared by this runbook (declared: {known})"
            )
    for name, param in runbook.parameters.items():
        raw = given.get(name, param.default)
        if raw is None:
            if param.required and param.at_open and opening:
                messages.append(
                    f"parameter '{name}' ({param.type}) is required: {param.description}"
                )
            values[name] = None
            continue
        try:
            values[name] = parse_values(param, raw)
        except ValueError as bad:
            messages.append(f"parameter '{name}' ({param.type}): {bad}")
    if messages:
        raise PlanError(messages)
    return values


def step_sources(step: StepBase) -> list[tuple[str, Shell]]:
    """Every command template a step can send (collectors, action, rollback, rotations)."""
    if isinstance(step, CollectStep):
        return [(c.command, step.shell) for c in step.collectors()]
    if isinstance(step, ActionStep):
        return [(step.command, step.shell)] + (
            [(step.rollback, step.shell)] if step.rollback is not None else []
        )
    if isinstance(step, RotateStep):
        return [(r.command, r.shell) for r in step.items if r.command]
    return []


def parameters_used(step: StepBase) -> list[str]:
    """The names a step's commands read, in a stable order (built-ins left out)."""
    used: set[str] = set()
    for source, _shell in step_sources(step):
        try:
            used |= names_used(source)
        except TemplateProblem:
            continue  # lint reports it; a plan refuses it
    return sorted(used - BUILTIN_NAMES)


def template_values(
    params: Mapping[str, Value], iocs: Mapping[str, list[str]] | None = None
) -> dict[str, Any]:
    """What a template sees: parameters (an unset one shows as `<NAME: not set>`), and the
    incident's indicators as `iocs.KIND`, each a list (empty when there is none)."""
    values: dict[str, Any] = {
        name: Unset(name) if value is None else value for name, value in params.items()
    }
    values["iocs"] = {kind: list((iocs or {}).get(kind, [])) for kind in IOC_KINDS}
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
    runbook: Runbook,
    params: Mapping[str, Value],
    inventory: Inventory | None = None,
    iocs: Mapping[str, list[str]] | None = None,
) -> list[PlanRow]:
    rows: list[PlanRow] = []
    messages: list[str] = []
    after = following(runbook)
    # Every declared parameter is known to a template, set or not (unset: <NAME: not set>).
    context = template_values({**dict.fromkeys(runbook.parameters), **params}, iocs)

    def rendered(step: StepBase, source: str, shell: Shell, host: dict[str, Any]) -> str:
        try:
            return render(source, shell, {**context, "host": host})
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
