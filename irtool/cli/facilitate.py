"""`irtool incident inject|handled|pause|resume|observe|injects|review`: running an exercise.

The facilitator's side of a tabletop exercise, headless: fire an inject now
(one of the scenario's, or one made up on the spot), pause and resume the
exercise clock, record observations, see what has fired and what is coming,
and read the after-action review. A live incident refuses all of them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click

from irtool.cli.common import actor_option, fail, incident_argument, json_option, who
from irtool.cli.incident import incident, play_scenario, run_command, session
from irtool.exercise import director


@incident.command()
@incident_argument
@click.argument("inject")
@click.option("--title", default="", help="A new inject: what the role hears.")
@click.option("--to", "to", default="", help="A new inject: the role it reaches.")
@click.option("--detail", default="", help="A new inject: the whole message.")
@actor_option
@json_option
def inject(
    incident_id: str,
    inject: str,
    title: str,
    to: str,
    detail: str,
    actor: str | None,
    as_json: bool,
) -> None:
    """Fire INJECT now: one of the scenario's, or (with --title and --to) a new one."""
    run_command(
        incident_id,
        as_json,
        lambda s: s.fire_inject(inject, who(actor), title=title, to=to, detail=detail),
        f"inject '{inject}' fired (event {{seq}})",
    )


@incident.command()
@incident_argument
@click.argument("inject")
@click.option("--note", required=True, help="How the team answered it.")
@actor_option
@json_option
def handled(incident_id: str, inject: str, note: str, actor: str | None, as_json: bool) -> None:
    """Record that the team has handled INJECT, and how."""
    run_command(
        incident_id,
        as_json,
        lambda s: s.handle_inject(inject, who(actor), note),
        f"inject '{inject}' handled (event {{seq}})",
    )


@incident.command()
@incident_argument
@click.option("--reason", default="", help="Why (a discussion, a break).")
@actor_option
@json_option
def pause(incident_id: str, reason: str, actor: str | None, as_json: bool) -> None:
    """Pause the exercise clock: no inject fires until it is resumed."""
    run_command(
        incident_id,
        as_json,
        lambda s: s.pause_clock(who(actor), reason),
        "exercise clock paused (event {seq})",
    )


@incident.command()
@incident_argument
@actor_option
@json_option
def resume(incident_id: str, actor: str | None, as_json: bool) -> None:
    """Start the exercise clock again."""
    run_command(
        incident_id,
        as_json,
        lambda s: s.resume_clock(who(actor)),
        "exercise clock running (event {seq})",
    )


@incident.command()
@incident_argument
@click.argument("text")
@actor_option
@json_option
def observe(incident_id: str, text: str, actor: str | None, as_json: bool) -> None:
    """Record a facilitator's observation for the after-action review."""
    run_command(
        incident_id,
        as_json,
        lambda s: s.observe(text, who(actor)),
        "observation recorded (event {seq})",
    )


@incident.command()
@incident_argument
@actor_option
@json_option
def injects(incident_id: str, actor: str | None, as_json: bool) -> None:
    """The exercise clock, the injects fired and those to come (firing what is due first)."""
    current = session(incident_id, records=False)
    try:
        if current.state.exercise is None:
            fail(f"incident {incident_id} is live: it has no injects")
        play_scenario(current, who(actor))
        data = director.status(current.state, datetime.now(UTC))
    finally:
        current.close_journal()
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    paused = "  PAUSED" if data["paused"] else ""
    click.echo(f"exercise clock T+{data['clock']} ({data['speed']:g}x){paused}")
    for f in data["fired"]:
        state = f"handled T+{f['handled']}" if f["handled"] else "WAITING for an answer"
        click.echo(f"  fired T+{f['at']}  {f['id']} -> {f['to']}: {f['title']}  [{state}]")
    for c in data["coming"]:
        click.echo(f"  due {c['due']}  {c['id']} -> {c['to']}: {c['title']}")


@incident.command(name="review")
@incident_argument
def review_command(incident_id: str) -> None:
    """The after-action review of an exercise, as markdown."""
    # Here: the review and the markdown export are for this command alone, not the
    # facilitator's writes.
    from irtool.exercise.review import review
    from irtool.export.markdown import review_markdown

    current = session(incident_id)
    current.close_journal()
    if current.state.exercise is None:
        fail(f"incident {incident_id} is live: the after-action review is for exercises")
    click.echo(review_markdown(review(current.state)), nl=False)
