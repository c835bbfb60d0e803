"""Loading a runbook with the contacts and inventory it will run with, all three checked."""

from __future__ import annotations

from pathlib import Path

import click

from irtool.model.context import RunbookContext, load_context


def load_checked(
    runbook: Path, contacts: Path | None = None, inventory: Path | None = None
) -> RunbookContext:
    """Errors stop the command (exit 2); warnings are shown on stderr."""
    context, warnings = load_context(runbook, contacts, inventory)
    for problem in warnings:
        click.echo(str(problem), err=True)
    return context
