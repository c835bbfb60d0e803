"""`irtool plan`: every step in order and the exact command per host; nothing runs."""

from __future__ import annotations

import json
from pathlib import Path

import click

from irtool.cli.common import parse_param_values
from irtool.cli.context import load_checked
from irtool.cli.exits import Exit
from irtool.model.inventory import Inventory
from irtool.model.plan import PlanError, PlanRow, build_plan, resolve_parameters


def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line for line in text.splitlines() or [""])


def _form(row: PlanRow) -> str:
    """The shell, and which form of the command the host gets (and whether that is a guess)."""
    if row.variant is None:
        return str(row.shell)
    guess = ", assumed: its facts are not known until first contact" if row.assumed else ""
    return f"{row.shell}, variant {row.variant} for {row.fits}{guess}"


def _print(rows: list[PlanRow], inventory: Inventory | None) -> None:
    if inventory is None:
        click.echo("(no inventory: targets are shown as their selectors)\n")
    phase = None
    step = None
    for row in rows:
        if row.phase != phase:
            phase = row.phase
            click.echo(f"== {row.phase}")
        if row.step != step:
            step = row.step
            click.echo(f"  [{row.kind}] {row.step}: {row.title}")
        if row.unfit is not None:
            label = f"{row.item}: " if row.item else ""
            click.echo(f"      {label}{row.host}: NOT RUN: {row.unfit}")
        elif row.command is not None:
            label = f"{row.item}: " if row.item else ""
            click.echo(f"      {label}{row.host} ({_form(row)})")
            click.echo(_indent(row.command, "        | "))
            if row.rollback is not None:
                click.echo("        rollback:")
                click.echo(_indent(row.rollback, "        | "))
        elif row.kind == "decision":
            click.echo(f"      - {row.item} -> {row.next or 'end of runbook'}")
        elif row.item:
            click.echo(f"      - {row.item}")


@click.command()
@click.argument("runbook", type=click.Path(path_type=Path))
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help="A runbook parameter.")
@click.option("--inventory", type=click.Path(path_type=Path), help="Hosts to render commands for.")
@click.option(
    "--contacts", type=click.Path(path_type=Path), help="Contacts to check roles against."
)
@click.option("--examples", is_flag=True, help="Use each parameter's example for those not given.")
@click.option("--json", "as_json", is_flag=True, help="A list of objects, one per step and host.")
def plan(
    runbook: Path,
    params: tuple[str, ...],
    inventory: Path | None,
    contacts: Path | None,
    examples: bool,
    as_json: bool,
) -> None:
    """Show every step and the exact commands it would run on each host. Nothing runs."""
    given = parse_param_values(params)
    context = load_checked(runbook, contacts, inventory)
    loaded, hosts = context.runbook, context.inventory
    if examples:
        given = {
            **{n: p.example for n, p in loaded.model.parameters.items() if p.example is not None},
            **given,
        }
    try:
        values = resolve_parameters(loaded.model, given)
        rows = build_plan(loaded.model, values, hosts.model if hosts else None)
    except PlanError as bad:
        for message in bad.messages:
            click.echo(f"irtool: {message}", err=True)
        raise SystemExit(Exit.INVALID) from None
    if as_json:
        click.echo(json.dumps([row.as_dict() for row in rows], indent=2))
    else:
        _print(rows, hosts.model if hosts else None)
