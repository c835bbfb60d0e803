"""`irtool incident meet|adjourn|action-item`: what the team's meetings decide.

A meeting on the standing agenda is opened, then adjourned with an outcome per topic (the
threat and vulnerabilities identified, the tactical strategy, ...) and the time to reconvene.
Action items carry an owner and may carry a due date: the post-mortem lists them.
"""

from __future__ import annotations

from datetime import datetime

import click

from irtool.cli.common import actor_option, incident_argument, json_option, parse_params, who
from irtool.cli.incident import incident, parse_time, run_command


@incident.command()
@incident_argument
@click.argument("step")
@actor_option
@json_option
def meet(incident_id: str, step: str, actor: str | None, as_json: bool) -> None:
    """Open the meeting of agenda step STEP."""
    run_command(
        incident_id,
        as_json,
        lambda s: s.open_meeting(step, who(actor)),
        f"meeting of {step} open (event {{seq}})",
    )


@incident.command()
@incident_argument
@click.option(
    "--outcome",
    "outcomes",
    multiple=True,
    metavar="TOPIC=TEXT",
    help="What the meeting found or decided on a topic of its agenda (repeatable).",
)
@click.option(
    "--reconvene", "at", metavar="TIME", help="When the team meets again (at most 30 days ahead)."
)
@actor_option
@json_option
def adjourn(
    incident_id: str, outcomes: tuple[str, ...], at: str | None, actor: str | None, as_json: bool
) -> None:
    """Close the open meeting with its outcomes, and when to reconvene."""
    found = parse_params(outcomes, "--outcome", "TOPIC=TEXT")
    when = parse_time(at, ahead=True) if at else None
    run_command(
        incident_id,
        as_json,
        lambda s: s.close_meeting(who(actor), found, when),
        "meeting closed (event {seq})",
    )


@incident.command("action-item")
@incident_argument
@click.argument("text")
@click.option("--owner", required=True, help="Who sees it done.")
@click.option("--due", type=click.DateTime(["%Y-%m-%d"]), help="By when (YYYY-MM-DD).")
@actor_option
@json_option
def action_item(
    incident_id: str, text: str, owner: str, due: datetime | None, actor: str | None, as_json: bool
) -> None:
    """Record a follow-up for the post-mortem, with its owner."""
    day = due.date() if due else None  # click gives a datetime
    run_command(
        incident_id,
        as_json,
        lambda s: s.assign_action_item(text, owner, who(actor), day),
        f"action item for {owner} (event {{seq}})",
    )
