"""A tabletop scenario: simulated hosts, what they answer, and the injects a facilitator plays.

A scenario is written for one runbook (`runbook:` names its id) and played
with that very runbook: the team works the same steps it would for real,
while every command is answered from here and no host is ever contacted.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, model_validator

from irtool.model.base import Duration, GroupName, HostName, ItemId, Model, RoleId, StepId
from irtool.model.inventory import Host, Inventory
from irtool.model.steps import Selector


def _pattern(value: str) -> str:
    try:
        re.compile(value)
    except re.error as bad:
        raise ValueError(f"'{value}' is not a regular expression: {bad}") from None
    return value


Pattern = Annotated[str, AfterValidator(_pattern)]

# The ways a simulated host can fail; the names are the engine's failure kinds.
SimulatedFailure = Literal["unreachable", "timeout", "auth", "host-key", "tls", "error"]


class Reply(Model):
    """What a simulated host answers to the commands this reply matches (all filters must)."""

    hosts: list[Selector] = Field(
        default_factory=lambda: ["all"],
        description="Which hosts answer so: all, group:, host:, tag:",
    )
    step: StepId | None = Field(default=None, description="Only commands of this step.")
    item: ItemId | None = Field(default=None, description="Only this collector of the step.")
    purpose: Literal["collect", "action", "rollback", "fetch"] | None = None
    match: Pattern | None = Field(
        default=None, description="Regular expression searched for in the exact command sent."
    )
    stdout: str = ""
    stderr: str = ""
    exit: int = Field(default=0, ge=0, le=255)
    fail: SimulatedFailure | None = Field(
        default=None, description="The host fails this way instead of answering."
    )
    reason: str = Field(default="", description="The failure's message, as a transport says it.")
    delay: Duration = Field(
        default=timedelta(0), description="Exercise time before the answer comes (or the failure)."
    )


class Inject(Model):
    """News that reaches the team during the exercise, addressed to one role."""

    id: ItemId
    title: str = Field(description="What the role hears, in one line.")
    to: RoleId = Field(description="The role the news reaches first.")
    detail: str = Field(default="", description="Markdown: the whole message, what was seen.")
    at: Duration | None = Field(default=None, description="Offset from the start of the exercise.")
    after: StepId | None = Field(default=None, description="Fires when this step is finished.")
    delay: Duration = Field(
        default=timedelta(0), description="With 'after': this long after the step is finished."
    )
    expect: list[StepId] = Field(
        default_factory=list,
        description="Steps whose completion handles the inject (else a responder marks it).",
    )
    facilitator: str = Field(default="", description="For the facilitator: what good looks like.")

    @model_validator(mode="after")
    def _one_trigger(self) -> Self:
        if (self.at is None) == (self.after is None):
            raise ValueError("an inject fires either 'at' an offset or 'after' a step: give one")
        if self.at is not None and self.delay:
            raise ValueError("'delay' counts from the step named by 'after'")
        return self


class Scenario(Model):
    id: ItemId
    title: str
    runbook: ItemId = Field(description="Id of the runbook this scenario is played with.")
    version: str = "1"
    briefing: str = Field(default="", description="Markdown read out at the start.")
    speed: float = Field(
        default=1.0, ge=1.0, le=120.0, description="Clock speed-up: 10 plays an hour in 6 minutes."
    )
    parameters: dict[str, str] = Field(
        default_factory=dict, description="Parameter values the exercise opens with."
    )
    contacts: str | None = Field(
        default=None,
        description="Contacts file (relative to this scenario) the team calls, if none is given.",
    )
    groups: dict[GroupName, list[HostName]] = Field(default_factory=dict)
    hosts: dict[HostName, Host] = Field(
        default_factory=dict,
        description="Simulated hosts; without them the inventory given (or a generic one) is used.",
    )
    replies: list[Reply] = Field(
        default_factory=list,
        description="First match wins; a command no reply matches gets a generic answer.",
    )
    injects: list[Inject] = Field(default_factory=list)

    def inventory(self) -> Inventory | None:
        """The simulated hosts as an inventory, for the runbook's targets to select from."""
        if not self.hosts:
            return None
        return Inventory(groups=self.groups, hosts=self.hosts)

    def inject(self, inject_id: str) -> Inject | None:
        return next((i for i in self.injects if i.id == inject_id), None)
