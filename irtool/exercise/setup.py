"""Opening an exercise: the runbook, its scenario (given, shipped or generic) and the hosts played.

The scenario shipped with a runbook lives beside it, in `scenarios/<runbook
id>.yaml`. The hosts played are the inventory given (so a team rehearses on
its own host names), else the scenario's simulated hosts, else hosts made up
from the runbook's targets. Nothing here reaches a host.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from irtool.engine.session import IncidentSession
from irtool.exercise.generic import generic_scenario, simulated_hosts
from irtool.model.context import RunbookContext, load_context
from irtool.model.inventory import Inventory
from irtool.model.loader import Loaded, load_scenario
from irtool.model.params import Value
from irtool.model.problems import InvalidFile, Problem, errors
from irtool.model.scenario import Scenario
from irtool.model.scenario_lint import lint_scenario

SCENARIO_DIR = "scenarios"


@dataclass(frozen=True)
class ExerciseContext:
    context: RunbookContext
    scenario: Loaded[Scenario] | Scenario
    inventory: Loaded[Inventory] | Inventory

    @property
    def model(self) -> Scenario:
        return self.scenario.model if isinstance(self.scenario, Loaded) else self.scenario

    @property
    def generic(self) -> bool:
        return not isinstance(self.scenario, Loaded)

    def parameters(self, given: Mapping[str, str]) -> dict[str, str]:
        """The scenario's values, overridden by what the facilitator gives."""
        return {**self.model.parameters, **given}


def shipped_scenario(runbook: Path, runbook_id: str) -> Path | None:
    path = runbook.parent / SCENARIO_DIR / f"{runbook_id}.yaml"
    return path if path.is_file() else None


def load_exercise(
    runbook: Path,
    scenario: Path | None = None,
    contacts: Path | None = None,
    inventory: Path | None = None,
) -> tuple[ExerciseContext, list[Problem]]:
    """Load and check everything an exercise is played with; errors raise InvalidFile."""
    context, warnings = load_context(runbook, contacts, inventory)
    path = scenario or shipped_scenario(runbook, context.runbook.model.id)
    played: Loaded[Scenario] | Scenario
    if path is None:
        played = generic_scenario(context.runbook.model)
        model = played
    else:
        played = load_scenario(path)
        model = played.model
        found = lint_scenario(model, played.doc, context.runbook.model)
        if errors(found):
            raise InvalidFile(errors(found))
        warnings += found
        if contacts is None and model.contacts:  # the scenario's own cast
            context, warnings = load_context(runbook, path.parent / model.contacts, inventory)
            warnings += found
    hosts: Loaded[Inventory] | Inventory = (
        context.inventory
        or model.inventory()
        or Inventory(hosts=simulated_hosts(context.runbook.model))
    )
    return ExerciseContext(context, played, hosts), sorted(warnings, key=lambda p: p.mark)


def open_exercise(
    exercise: ExerciseContext,
    parameters: Mapping[str, Value],
    actor: str,
    clock: Callable[[], datetime] | None = None,
) -> IncidentSession:
    """A new exercise incident: marked as such in its opening event, scenario included."""
    return IncidentSession.new(
        exercise.context.runbook,
        dict(parameters),
        actor=actor,
        mode="exercise",
        contacts=exercise.context.contacts,
        inventory=exercise.inventory,
        scenario=exercise.scenario,
        generic=exercise.generic,
        clock=clock,
    )
