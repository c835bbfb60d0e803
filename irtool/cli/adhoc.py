"""`irtool incident collect`: a one-off command on chosen hosts, with the same custody.

Read-only by default. `--changes` says it changes the hosts: then it needs a reason, its
rollback (`--rollback`) or why it has none (`--irreversible`), and the responder confirms
it as an action, seeing exactly what runs where.
"""

from __future__ import annotations

import contextlib

import click

from irtool.cli.common import actor_option, incident_argument, json_option, who
from irtool.cli.incident import incident, play_scenario, session
from irtool.cli.remote import (
    _cancel_on_interrupt,
    _finish,
    _runner,
    _say,
    confirm_typed,
    pool_option,
    refusals_said,
)
from irtool.engine.adhoc import SHELLS


@incident.command()
@incident_argument
@click.option("--host", "hosts", multiple=True, required=True, metavar="HOST", help="Repeatable.")
@click.option("--shell", type=click.Choice([*SHELLS, "cmd"]), default="sh", show_default=True)
@click.option("--changes", is_flag=True, help="It changes the hosts: confirm it as an action.")
@click.option("--rollback", metavar="COMMAND", help="How to undo a --changes command.")
@click.option("--irreversible", metavar="REASON", help="Why a --changes command has no undo.")
@click.option("--reason", default="", help="Why (a --changes command needs one).")
@click.option("--timeout", type=click.IntRange(1, 86400), default=300, show_default=True)
@click.option("--yes", is_flag=True, help="A --changes command without the confirmation.")
@pool_option
@actor_option
@json_option
@click.argument("command", nargs=-1, required=True)
def collect(
    incident_id: str,
    hosts: tuple[str, ...],
    shell: str,
    changes: bool,
    rollback: str | None,
    irreversible: str | None,
    reason: str,
    timeout: int,
    yes: bool,
    pool: int,
    actor: str | None,
    as_json: bool,
    command: tuple[str, ...],
) -> None:
    """Run COMMAND (after --) on each --host; its output is kept as evidence, marked ad hoc.
    The words of COMMAND are joined with spaces and sent as typed: quote for the target shell."""
    typed = " ".join(command)
    current = session(incident_id)
    with refusals_said(current):
        runner = _runner(current, who(actor), pool, as_json)
        runner.on_warning = lambda text: _say(f"irtool: WARNING {text}")
        runner.ad_hoc_timeout = float(timeout)
        per_host = runner.ad_hoc_commands(list(hosts), typed, shell)
        if changes and not yes:
            undo = f"\nrollback: {rollback}" if rollback else f"\nirreversible: {irreversible}"
            confirm_typed(
                f"APPLY an ad-hoc change{undo}",
                {h: (shell, typed) for h in per_host},
                current,
            )
        with _cancel_on_interrupt(runner.cancel):
            report = runner.collect_ad_hoc(
                list(per_host),
                typed,
                shell,
                reason,
                changes=changes,
                rollback=rollback,
                irreversible=irreversible,
            )
        play_scenario(current, runner.actor)
    with contextlib.suppress(OSError):
        _finish(report, as_json, runner.redactor)
