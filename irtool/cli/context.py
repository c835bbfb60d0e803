"""Loading a runbook with the contacts and inventory it will run with, all three checked."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click

from irtool.model.contacts import Contacts
from irtool.model.inventory import Inventory
from irtool.model.lint import lint_contacts, lint_inventory, lint_runbook
from irtool.model.loader import Loaded, load_contacts, load_inventory, load_runbook
from irtool.model.problems import InvalidFile, errors
from irtool.model.runbook import Runbook


@dataclass(frozen=True)
class RunbookContext:
    runbook: Loaded[Runbook]
    contacts: Loaded[Contacts] | None
    inventory: Loaded[Inventory] | None


def load_checked(
    runbook: Path, contacts: Path | None = None, inventory: Path | None = None
) -> RunbookContext:
    """Every command that acts on a runbook goes through here: errors stop it (exit 2),
    warnings are shown on stderr, so an unsafe inventory is refused everywhere alike."""
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
    for problem in sorted(found, key=lambda p: p.mark):
        click.echo(str(problem), err=True)
    return RunbookContext(loaded, people, hosts)
