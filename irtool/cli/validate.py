"""`irtool validate`: check runbooks, contacts and inventories, and how they fit together."""

from __future__ import annotations

from pathlib import Path

import click
from pydantic import BaseModel

from irtool.cli.exits import Exit
from irtool.model.contacts import Contacts
from irtool.model.inventory import Inventory
from irtool.model.lint import lint_contacts, lint_inventory, lint_runbook
from irtool.model.loader import Kind, Loaded, load, load_contacts, load_inventory
from irtool.model.problems import InvalidFile, Problem
from irtool.model.runbook import Runbook
from irtool.model.scenario import Scenario
from irtool.model.scenario_lint import lint_scenario
from irtool.model.steps import AnalyzeStep
from irtool.model.yamlsource import Document

YAML_SUFFIXES = (".yaml", ".yml")


def expand(paths: tuple[Path, ...]) -> list[Path]:
    """Files as given, and the YAML files under every folder given (hidden ones skipped)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(
                p
                for p in path.rglob("*")
                if p.suffix in YAML_SUFFIXES
                and p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        else:
            files.append(path)
    return files


def _only(loaded: list[Loaded[BaseModel]], kind: Kind) -> Loaded[BaseModel] | None:
    found = [item for item in loaded if item.kind is kind]
    return found[0] if len(found) == 1 else None


def _analyses(runbook: Runbook, doc: Document) -> list[Problem]:
    """An analyze step's hunts and Sigma rules are ones irtool has (shipped ones: a user's
    folders are given when the analysis runs)."""
    named = [
        (at, step)
        for at, step in _analyze_steps(runbook)
        if step.hunts or step.rules  # None (all) and [] (none) name nothing to look up
    ]
    if not named:
        return []
    # Imported here: DuckDB costs every other validation its start-up.
    from irtool.analysis.hunts import load_hunts
    from irtool.analysis.sigma import load_rules

    hunts = {h.id for h in load_hunts()}
    loaded = load_rules().rules
    rules = {r.id for r in loaded} | {r.hunt for r in loaded}
    rules |= {r.hunt.removeprefix("sigma:") for r in loaded}
    problems = []
    for at, step in named:
        for field, known, what in (("hunts", hunts, "hunt"), ("rules", rules, "Sigma rule")):
            for i, name in enumerate(getattr(step, field) or []):
                if name not in known:
                    problems.append(
                        Problem(
                            doc.mark((*at, field, i)),
                            f"no {what} '{name}' (known: {', '.join(sorted(known))})",
                        )
                    )
    return problems


def _analyze_steps(runbook: Runbook) -> list[tuple[tuple[str | int, ...], AnalyzeStep]]:
    return [
        (("phases", p, "steps", s), step)
        for p, phase in enumerate(runbook.phases)
        for s, step in enumerate(phase.steps)
        if isinstance(step, AnalyzeStep)
    ]


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--contacts", type=click.Path(path_type=Path), help="Contacts to check roles against."
)
@click.option(
    "--inventory", type=click.Path(path_type=Path), help="Inventory to check targets against."
)
def validate(paths: tuple[Path, ...], contacts: Path | None, inventory: Path | None) -> None:
    """Check files or folders of runbooks, contacts, inventories and scenarios.

    Runbooks are checked against the contacts and inventory given with
    --contacts/--inventory, or against the one contacts file and the one
    inventory among PATHS; a scenario against its runbook when that is among
    PATHS. Exit 0 when valid, 2 with every problem located as path:line:col.
    """
    problems: list[Problem] = []
    loaded: list[Loaded[BaseModel]] = []
    for path in expand(paths):
        try:
            loaded.append(load(path))
        except InvalidFile as invalid:
            problems += invalid.problems
    people = load_contacts(contacts) if contacts else _only(loaded, Kind.CONTACTS)
    hosts = load_inventory(inventory) if inventory else _only(loaded, Kind.INVENTORY)
    runbooks = {item.model.id: item.model for item in loaded if isinstance(item.model, Runbook)}
    for item in loaded:
        if isinstance(item.model, Runbook):
            problems += lint_runbook(
                item.model,
                item.doc,
                people.model if people and isinstance(people.model, Contacts) else None,
                hosts.model if hosts and isinstance(hosts.model, Inventory) else None,
            )
            problems += _analyses(item.model, item.doc)
        elif isinstance(item.model, Contacts):
            problems += lint_contacts(item.model, item.doc)
        elif isinstance(item.model, Inventory):
            problems += lint_inventory(item.model, item.doc)
        elif isinstance(item.model, Scenario):
            problems += lint_scenario(item.model, item.doc, runbooks.get(item.model.runbook))
        elif item.kind is Kind.HUNT:
            # Its query is checked by running it on an empty store (analysis, DuckDB).
            from irtool.analysis.hunts import load_hunt

            try:
                load_hunt(item.doc.path)
            except InvalidFile as invalid:
                problems += invalid.problems
    unique = sorted({(p.mark, p.message): p for p in problems}.values(), key=lambda p: p.mark)
    for problem in unique:
        click.echo(str(problem), err=True)
    failed = sum(p.is_error for p in unique)
    counts = ", ".join(
        f"{sum(i.kind is k for i in loaded)} {k}" for k in Kind if any(i.kind is k for i in loaded)
    )
    warnings = len(unique) - failed
    if failed:
        click.echo(f"{failed} error(s), {warnings} warning(s)", err=True)
        raise SystemExit(Exit.INVALID)
    click.echo(f"valid: {counts or 'no files'}" + (f" ({warnings} warning(s))" if warnings else ""))
