"""`irtool sweep ID --finding SEQ --targets SELECTOR`: look for a finding's indicators on other
hosts, read-only, as an ad-hoc collection with the same custody; each hit is a finding.

`--dry-run` prints exactly the script each shell's hosts would get, and contacts no host.
Exit 0 when every host was swept, 1 when one failed (or stopped before its summary line).
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import click

from irtool.cli.common import actor_option, incident_argument, json_option, who
from irtool.cli.exits import Exit
from irtool.cli.incident import play_scenario, session
from irtool.cli.remote import _cancel_on_interrupt, _runner, _say, pool_option, refusals_said
from irtool.engine.sweep import SweepPlan, SweepResult, plan_sweep, sweep_finding
from irtool.model.indicators import IOC_KINDS
from irtool.model.untrusted import visible


def _plan_text(plan: SweepPlan) -> str:
    """What runs where, as `irtool plan` shows a step: per shell, its hosts, then the script."""
    wanted = ", ".join(f"{k} {v!r}" for k, v in plan.indicators)
    lines = [f"sweep for finding {plan.finding}: {wanted}"]
    lines += [f"  not swept: {k} {v!r}: {why}" for k, v, why in plan.invalid]
    for shell, (hosts, script) in plan.scripts.items():
        lines.append(f"--- {shell} on {', '.join(hosts)}:")
        lines += [f"  not looked for here: {k} {v!r}" for k, v, _ in plan.unchecked[shell]]
        lines.append(script.rstrip("\n"))
    return "\n".join(lines)


def _as_dict(result: SweepResult) -> dict[str, Any]:
    return {
        "finding": result.plan.finding,
        "indicators": [list(i) for i in result.plan.indicators],
        "runs": {str(shell): run for shell, run in result.runs.items()},
        "hits": result.hits,
        "failed": result.failed,
        "warnings": result.warnings,
        "unchecked": {
            str(shell): [list(i) for i in items] for shell, items in result.plan.unchecked.items()
        },
        "raised": [
            {"seq": e.seq, "hosts": e.data.get("hosts"), "summary": e.data.get("summary")}
            for e in result.raised
        ],
    }


def _say_result(result: SweepResult) -> None:
    runs = ", ".join(f"{run} ({shell})" for shell, run in result.runs.items())
    click.echo(f"sweep for finding {result.plan.finding}: {runs}")
    for host, count in sorted(result.hits.items()):
        if host not in result.failed:
            click.echo(visible(f"  {host}: {count} hit(s)"))
    for host, why in sorted(result.failed.items()):
        click.echo(visible(f"  FAILED {host}: {why}"))
    for host, warnings in sorted(result.warnings.items()):
        for warning in warnings:
            click.echo(visible(f"  {host}: warning: {warning}"))
    for shell, items in result.plan.unchecked.items():
        for kind, value, why in items:
            click.echo(visible(f"  {shell} hosts: {kind} {value!r} {why}"))
    for event in result.raised:
        click.echo(visible(f"  finding {event.seq}: {event.data.get('summary', '')}"))
    if not result.raised:
        click.echo("  no new finding")


@click.command()
@incident_argument
@click.option("--finding", "finding_seq", type=int, required=True, help="The finding's number.")
@click.option(
    "--targets",
    multiple=True,
    required=True,
    metavar="SELECTOR",
    help="A host, group:G, tag:T or all (repeatable).",
)
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    metavar="KIND",
    help=f"Only indicators of this kind (repeatable): {', '.join(IOC_KINDS)}.",
)
@click.option("--with-iocs", is_flag=True, help="Also the incident's own indicators.")
@click.option("--webroot", metavar="PATH", help="Where files are looked for.")
@click.option(
    "--also",
    multiple=True,
    metavar="PATH",
    help="Another folder files are looked for in (repeatable; default: the temp folders).",
)
@click.option(
    "--days",
    type=click.IntRange(1, 366),
    default=7,
    show_default=True,
    help="Days of web logs searched for URLs, domains and user agents (PowerShell).",
)
@click.option("--reason", default="", help="Why (recorded with the run).")
@click.option("--timeout", type=click.IntRange(1, 86400), default=600, show_default=True)
@click.option("--dry-run", is_flag=True, help="Print the script per shell; nothing runs.")
@pool_option
@actor_option
@json_option
def sweep(
    incident_id: str,
    finding_seq: int,
    targets: tuple[str, ...],
    kinds: tuple[str, ...],
    with_iocs: bool,
    webroot: str | None,
    also: tuple[str, ...],
    days: int,
    reason: str,
    timeout: int,
    dry_run: bool,
    pool: int,
    actor: str | None,
    as_json: bool,
) -> None:
    """Look for finding SEQ's indicators (hash, file name, task, service, module, address) on
    the --targets hosts, read-only; what is found there becomes a finding."""
    current = session(incident_id)
    with refusals_said(current):
        options: dict[str, Any] = {
            "kinds": list(kinds) or None,
            "with_iocs": with_iocs,
            "webroot": webroot,
            "also": list(also) or None,
            "log_days": days,
        }
        plan = plan_sweep(current.state, finding_seq, list(targets), **options)
        if dry_run:
            click.echo(visible(_plan_text(plan), lines=True))
            return
        runner = _runner(current, who(actor), pool, as_json)
        runner.on_warning = lambda text: _say(f"irtool: WARNING {text}")
        runner.ad_hoc_timeout = float(timeout)
        with _cancel_on_interrupt(runner.cancel):
            result = sweep_finding(runner, plan, reason)
        play_scenario(current, runner.actor)
    with contextlib.suppress(OSError):  # the terminal may be gone: the records are kept
        if as_json:
            click.echo(json.dumps(_as_dict(result), sort_keys=True))
        else:
            _say_result(result)
    if result.failed:
        raise SystemExit(Exit.FAILED)
