"""What the team learned as the incident unfolded, folded into its state: parameters set or
amended, indicators, scope changes, steps started early, answers given late."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from irtool.engine import kinds
from irtool.journal import Event
from irtool.model.facts import HostFacts
from irtool.model.inventory import rescoped

if TYPE_CHECKING:
    from irtool.engine.state import IncidentState


@dataclass
class ParameterChange:
    seq: int
    at: str
    by: str
    name: str
    value: Any
    previous: Any
    reason: str


@dataclass
class IocChange:
    seq: int
    at: str
    by: str
    change: str  # add / remove
    kind: str
    value: str
    reason: str


@dataclass
class ScopeChange:
    seq: int
    at: str
    by: str
    host: str
    group: str
    change: str  # add / remove
    reason: str
    new_host: bool  # the host was not in the inventory before


def _answered(state: IncidentState, event: Event) -> None:
    step = state.steps.get(event.step or "")
    if step is not None:
        step.answers.update(event.data.get("answers", {}))


def _started_early(state: IncidentState, event: Event) -> None:
    step = state.steps.get(event.step or "")
    if step is not None:
        step.early = event.data.get("reason", "")


def _parameter_set(state: IncidentState, event: Event) -> None:
    data = event.data
    state.parameter_changes.append(
        ParameterChange(
            event.seq,
            event.occurred_at,
            event.actor,
            data["name"],
            data.get("value"),
            data.get("previous"),
            data.get("reason", ""),
        )
    )
    state.parameters[data["name"]] = data.get("value")


def _ioc(state: IncidentState, event: Event) -> None:
    data = event.data
    change = "add" if event.kind == kinds.IOC_ADDED else "remove"
    values = state.iocs.setdefault(data["kind"], [])
    if change == "add" and data["value"] not in values:
        values.append(data["value"])
    elif change == "remove" and data["value"] in values:
        values.remove(data["value"])
    if not values:
        del state.iocs[data["kind"]]
    state.ioc_changes.append(
        IocChange(
            event.seq,
            event.occurred_at,
            event.actor,
            change,
            data["kind"],
            data["value"],
            data.get("reason", ""),
        )
    )


def _scope(state: IncidentState, event: Event) -> None:
    data = event.data
    host, group, change = data["host"], data["group"], data["change"]
    state.inventory = rescoped(state.inventory, host, group, change == "add", data.get("new_host"))
    state.scope_changes.append(
        ScopeChange(
            event.seq,
            event.occurred_at,
            event.actor,
            host,
            group,
            change,
            data.get("reason", ""),
            bool(data.get("new_host")),
        )
    )


def _facts(state: IncidentState, event: Event) -> None:
    if event.host and isinstance(event.data.get("facts"), dict):
        state.facts[event.host] = HostFacts.model_validate(event.data["facts"])


LEARNED: dict[str, Callable[[IncidentState, Event], None]] = {
    kinds.HOST_FACTS: _facts,
    kinds.PARAMETER_SET: _parameter_set,
    kinds.IOC_ADDED: _ioc,
    kinds.IOC_REMOVED: _ioc,
    kinds.SCOPE_CHANGED: _scope,
    kinds.STEP_STARTED_EARLY: _started_early,
    kinds.POSTMORTEM_ANSWERED: _answered,
}
