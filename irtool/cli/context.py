"""Loading a runbook with the contacts and inventory it will run with (and, for an exercise,
its scenario), all checked."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from irtool.model.context import RunbookContext, load_context

if TYPE_CHECKING:
    from irtool.exercise.setup import ExerciseContext


def load_checked(
    runbook: Path, contacts: Path | None = None, inventory: Path | None = None
) -> RunbookContext:
    """Errors stop the command (exit 2); warnings are shown on stderr."""
    context, warnings = load_context(runbook, contacts, inventory)
    for problem in warnings:
        click.echo(str(problem), err=True)
    return context


def load_exercise_checked(
    runbook: Path,
    scenario: Path | None = None,
    contacts: Path | None = None,
    inventory: Path | None = None,
) -> ExerciseContext:
    """The same for an exercise: the runbook with its scenario (given, shipped or generic)."""
    # Here: an exercise's setup brings the simulated hosts and the session, which `plan` and
    # `incident new` of a live incident do not need.
    from irtool.exercise.setup import load_exercise

    exercise, warnings = load_exercise(runbook, scenario, contacts, inventory)
    for problem in warnings:
        click.echo(str(problem), err=True)
    return exercise
