"""Who the team is: people, how to reach them, and the call tree of roles."""

from __future__ import annotations

import zoneinfo
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, model_validator

from irtool.model.base import Model, PersonId, RoleId


def _timezone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"'{value}' is not an IANA time zone such as Europe/London") from None
    return value


TimeZone = Annotated[str, AfterValidator(_timezone)]


def _public_key(value: str) -> str:
    from irtool.model.sshkeys import PublicKey

    return PublicKey.parse(value).openssh()  # ValueError: said at the key's line


PublicKeyLine = Annotated[str, AfterValidator(_public_key)]

CONTACT_METHODS = ("phone", "sms", "email", "chat", "pager")


class Person(Model):
    name: str
    timezone: TimeZone
    phone: str | None = None
    sms: str | None = None
    email: str | None = None
    chat: str | None = None
    pager: str | None = None
    prefer: list[str] = Field(
        default_factory=list, description="Contact methods in the order to try them."
    )
    notes: str = ""
    keys: list[PublicKeyLine] = Field(
        default_factory=list,
        description="Public SSH keys the person signs events with, as in a .pub or "
        "authorized_keys file: each event they write is signed with one through ssh-agent.",
    )

    @model_validator(mode="after")
    def _reachable(self) -> Self:
        if not self.methods():
            raise ValueError(
                f"{self.name} has no way to be reached: give {', '.join(CONTACT_METHODS)}"
            )
        for method in self.prefer:
            if getattr(self, method, None) is None if method in CONTACT_METHODS else True:
                raise ValueError(f"prefer names '{method}', which {self.name} has no value for")
        return self

    def methods(self) -> list[tuple[str, str]]:
        """(method, value) in the order to try them: preferred first, then the rest."""
        given = {m: v for m in CONTACT_METHODS if (v := getattr(self, m)) is not None}
        order = [m for m in self.prefer if m in given] + [m for m in given if m not in self.prefer]
        return [(m, given[m]) for m in order]


class Role(Model):
    title: str
    description: str = ""
    primary: PersonId
    backups: list[PersonId] = Field(default_factory=list, description="Tried in this order.")

    def call_order(self) -> list[str]:
        return [self.primary, *self.backups]


class Contacts(Model):
    team: str
    may_activate: list[PersonId] = Field(
        default_factory=list,
        description="People who may call the team into action, beyond the roles a runbook names.",
    )
    people: dict[PersonId, Person] = Field(min_length=1)
    roles: dict[RoleId, Role] = Field(min_length=1)
    signed_events: Literal["required", "optional"] = Field(
        default="optional",
        description="required: every event must be signed by its writer's key (listed under "
        "people.NAME.keys); an unsigned one is refused as it is written and fails verify.",
    )

    @model_validator(mode="after")
    def _keys_are_ones_own(self) -> Self:
        # A signature names the person whose key made it: a key two people list names neither.
        owners: dict[str, str] = {}
        for person, said in self.people.items():
            for line in said.keys:
                other = owners.setdefault(line.split()[1], person)
                if other != person:
                    raise ValueError(
                        f"{other} and {person} list the same key: a key is one person's"
                    )
        return self
