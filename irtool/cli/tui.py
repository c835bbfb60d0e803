"""`irtool`, `irtool start RUNBOOK` and `irtool open [ID]`: the terminal UI's way in.

Files are loaded and checked here first, so a broken runbook is a
`path:line:col: message` list and exit 2 before any screen is drawn.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from irtool.cli.common import IncidentId, actor_option, fail, parse_params, who
from irtool.cli.exits import Exit


def _need_terminal() -> None:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        fail(
            "the terminal UI needs a terminal; without one use `irtool incident ...`",
            Exit.INVALID,
        )


def launch(**settings: Any) -> None:
    _need_terminal()
    from irtool.tui.app import IrtoolApp  # textual loads only for the UI

    IrtoolApp(**settings).run()


def home(
    runbook_dirs: tuple[Path, ...], contacts: Path | None, inventory: Path | None, actor: str | None
) -> None:
    dirs = list(runbook_dirs) or [p for p in (Path("runbooks"),) if p.is_dir()]
    launch(actor=who(actor), runbook_dirs=dirs, contacts=contacts, inventory=inventory)


@click.command()
@click.argument("runbook", type=click.Path(path_type=Path))
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE")
@click.option("--inventory", type=click.Path(path_type=Path))
@click.option("--contacts", type=click.Path(path_type=Path))
@actor_option
def start(
    runbook: Path,
    params: tuple[str, ...],
    inventory: Path | None,
    contacts: Path | None,
    actor: str | None,
) -> None:
    """Open a live incident from RUNBOOK in the terminal UI (a form asks for missing values)."""
    # Here, not at the top: `irtool open` and `irtool` need neither, and start-up is measured.
    from irtool.cli.context import load_checked

    context = load_checked(runbook, contacts, inventory)
    given = parse_params(params)
    unknown = [name for name in given if name not in context.runbook.model.parameters]
    if unknown:
        fail(f"parameter '{unknown[0]}' is not declared by {runbook}")
    launch(actor=who(actor), context=context, params=given)


@click.command()
@click.argument("runbook", type=click.Path(path_type=Path))
@click.option(
    "--scenario",
    type=click.Path(path_type=Path),
    help="Default: the runbook's own (scenarios/<runbook id>.yaml beside it), else a generic one.",
)
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE")
@click.option("--inventory", type=click.Path(path_type=Path), help="Rehearse on these host names.")
@click.option("--contacts", type=click.Path(path_type=Path))
@actor_option
def exercise(
    runbook: Path,
    scenario: Path | None,
    params: tuple[str, ...],
    inventory: Path | None,
    contacts: Path | None,
    actor: str | None,
) -> None:
    """Play a tabletop exercise of RUNBOOK in the terminal UI: simulated hosts, the scenario's
    injects. No host is contacted and no secret is read."""
    from irtool.cli.context import load_exercise_checked

    played = load_exercise_checked(runbook, scenario, contacts, inventory)
    given = parse_params(params)
    unknown = [name for name in given if name not in played.context.runbook.model.parameters]
    if unknown:
        fail(f"parameter '{unknown[0]}' is not declared by {runbook}")
    launch(actor=who(actor), exercise=played, params=given)


@click.command(name="open")
@click.argument("incident_id", metavar="[ID]", required=False, type=IncidentId())
@actor_option
def open_incident(incident_id: str | None, actor: str | None) -> None:
    """Resume incident ID (a unique prefix is enough) in the terminal UI, exactly where it
    stands. Without ID: the most recent open incident."""
    if incident_id is None:
        incident_id = _latest_open()
    launch(actor=who(actor), incident=incident_id)


def _latest_open() -> str:
    """The incident opened last of those still open; none open: say which there are."""
    from irtool.engine.listing import list_incidents

    rows = [row for row in list_incidents() if not row.problem]
    still_open = [row for row in rows if not row.closed]
    if still_open:
        return still_open[-1].id  # ids sort by opening time
    if not rows:
        fail("no incident yet: irtool start RUNBOOK opens one")
    listing = "\n".join(f"  {row.id}  {row.title} (closed)" for row in rows[-10:])
    fail(f"no open incident; the latest closed ones:\n{listing}")
    raise AssertionError  # unreachable
