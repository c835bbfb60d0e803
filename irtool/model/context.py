"""A runbook with the contacts and inventory it will run with, all three loaded and linted."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from irtool.model.contacts import Contacts
from irtool.model.inventory import Inventory
from irtool.model.lint import lint_contacts, lint_inventory, lint_runbook
from irtool.model.loader import Loaded, load_contacts, load_inventory, load_runbook
from irtool.model.problems import InvalidFile, Problem, errors
from irtool.model.runbook import Runbook


@dataclass(frozen=True)
class RunbookContext:
    runbook: Loaded[Runbook]
    contacts: Loaded[Contacts] | None
    inventory: Loaded[Inventory] | None


def load_context(
    runbook: Path, contacts: Path | None = None, inventory: Path | None = None
) -> tuple[RunbookContext, list[Problem]]:
    """Every face that acts on a runbook loads it here, so an unsafe inventory is refused
    everywhere alike: errors raise InvalidFile, warnings are returned to be shown."""
    loaded = load_runbook(runbook)
    people = load_contacts(contacts) if contacts else None
    hosts = load_inventory(inventory) if inventory else None
    found = lint_runbook(
        loaded.model, loaded.doc, people.model if people else None, hosts.model if hosts else None
    )
    if people:
        found += lint_contacts(people.model, people.doc)
    if hosts:
        found += lint_inventory(hosts.model, hosts.doc)
    if errors(found):
        raise InvalidFile(errors(found))
    return RunbookContext(loaded, people, hosts), sorted(found, key=lambda p: p.mark)
