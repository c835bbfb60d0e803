"""A runbook: what triggers it, who may activate the team, and the phases of steps to follow."""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum

from pydantic import Field

from irtool.model.base import Model, ParamName, RoleId, StepId
from irtool.model.params import Parameter
from irtool.model.steps import Step, StepBase


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class Activation(Model):
    may_activate: list[RoleId] = Field(
        min_length=1, description="Roles allowed to call the team into action."
    )
    criteria: str = ""


class Phase(Model):
    id: StepId
    title: str
    description: str = ""
    steps: list[Step] = Field(min_length=1)


class Runbook(Model):
    id: StepId
    title: str
    version: str
    severity: Severity
    summary: str
    applies_to: list[str] = []
    triggers: list[str] = Field(min_length=1)
    activation: Activation
    roles: list[RoleId] = Field(min_length=1)
    parameters: dict[ParamName, Parameter] = {}
    phases: list[Phase] = Field(min_length=1)
    references: list[str] = []

    def steps(self) -> Iterator[tuple[Phase, StepBase]]:
        """Every step in document order, with its phase."""
        for phase in self.phases:
            for step in phase.steps:
                yield phase, step

    def step(self, step_id: str) -> StepBase | None:
        return next((s for _, s in self.steps() if s.id == step_id), None)


class Fragment(Model):
    """Steps kept in their own file so several runbooks can include them."""

    description: str = ""
    steps: list[Step] = Field(min_length=1)
