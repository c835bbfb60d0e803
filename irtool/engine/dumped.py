"""The incident's runbook, contacts, inventory and host facts as the journal holds them: the
JSON their models were dumped to, already validated when it was written.

The standing state keeps that data and makes the models from it the first time something
reads them: a scribe's note, which needs neither, never imports pydantic or builds a
validator, and a checkpoint pickles plain data. What the fold itself needs of them (the
steps, the call order of each role) is read straight off the data here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from irtool.engine.learned import ScopeChange
    from irtool.model.contacts import Contacts
    from irtool.model.facts import HostFacts
    from irtool.model.inventory import Inventory
    from irtool.model.runbook import Runbook

Data = dict[str, Any]


def dumped_contacts(opening: Data) -> Data | None:
    """The contacts model the opening event's data holds, if it holds one; what is not shaped
    as one (a tampered journal, which verify names) gives none rather than a crash."""
    source = opening.get("contacts")
    model = source.get("model") if isinstance(source, dict) else None
    return model if isinstance(model, dict) else None


def steps_of(runbook: Data) -> Iterator[tuple[str, Data]]:
    """(phase id, step) for every step of a dumped runbook, in document order."""
    for phase in runbook["phases"]:
        for step in phase["steps"]:
            yield phase["id"], step


def call_order(contacts: Data | None, role: str) -> list[str]:
    """Who to call for `role`, in turn, as a dumped contacts file lists them."""
    found = (contacts or {}).get("roles", {}).get(role)
    return [found["primary"], *found.get("backups", [])] if found else []


def runbook(data: Data) -> Runbook:
    from irtool.model.runbook import Runbook

    return Runbook.model_validate(data)


def contacts(data: Data | None) -> Contacts | None:
    from irtool.model.contacts import Contacts

    return Contacts.model_validate(data) if data is not None else None


def inventory(data: Data | None, changes: Iterable[ScopeChange]) -> Inventory | None:
    """The inventory as opened, with each scope change since applied in order."""
    from irtool.model.inventory import Inventory

    made = Inventory.model_validate(data) if data is not None else None
    for change in changes:
        made = rescoped(made, change)
    return made


def rescoped(made: Inventory | None, change: ScopeChange) -> Inventory | None:
    from irtool.model.inventory import rescoped as apply

    return apply(made, change.host, change.group, change.change == "add", change.entry)


def facts(data: dict[str, Data]) -> dict[str, HostFacts]:
    from irtool.model.facts import HostFacts

    return {host: HostFacts.model_validate(said) for host, said in data.items()}
