"""`irtool incident set | ioc | scope | start`: what the team learns as the incident unfolds."""

from __future__ import annotations

from typing import Any

import click

from irtool.cli.common import actor_option, incident_argument, json_option, parse_params, who
from irtool.cli.incident import incident, run_command

reason_option = click.option(
    "--reason", required=True, help="Why: the timeline keeps it beside the change."
)


@incident.command(name="set")
@incident_argument
@click.argument("name")
@click.argument("values", nargs=-1, required=True, metavar="VALUE...")
@reason_option
@actor_option
@json_option
def set_parameter(
    incident_id: str,
    name: str,
    values: tuple[str, ...],
    reason: str,
    actor: str | None,
    as_json: bool,
) -> None:
    """Set or amend parameter NAME (several VALUEs for a `list: true` parameter). Commands
    already run keep, in their custody, the values they ran with; the plan re-renders."""
    run_command(
        incident_id,
        as_json,
        lambda s: s.set_parameter(name, list(values), who(actor), reason),
        f"parameter '{name}' set (event {{seq}})",
    )


@incident.command()
@incident_argument
@click.argument("change", type=click.Choice(["add", "remove"]))
@click.argument("kind", metavar="KIND")
@click.argument("value")
@reason_option
@actor_option
@json_option
def ioc(
    incident_id: str,
    change: str,
    kind: str,
    value: str,
    reason: str,
    actor: str | None,
    as_json: bool,
) -> None:
    """Add or remove an indicator of compromise. KIND: ip, cidr, domain, url, sha256, file,
    user_agent, account, task, service, module. Runbook commands read them as
    {{ iocs.KIND }}, a quoted list."""
    run_command(
        incident_id,
        as_json,
        lambda s: s.change_ioc(change, kind, value, who(actor), reason),
        f"indicator {'added' if change == 'add' else 'removed'} (event {{seq}})",
    )


@incident.command()
@incident_argument
@click.option("--add", "added", metavar="HOST", help="Put HOST in the group.")
@click.option("--remove", "removed", metavar="HOST", help="Take HOST out of the group.")
@click.option("--group", required=True, help="The group, e.g. affected.")
@reason_option
@click.option("--address", help="A host not yet in the inventory: its address.")
@click.option("--transport", type=click.Choice(["winrm", "ssh", "local"]))
@click.option("--port", type=int)
@click.option("--user")
@click.option("--credential", help="Keyring entry holding the password (never the password).")
@click.option("--host-key", help="SSH: the host's public key, pinned.")
@click.option("--thumbprint", help="WinRM: the server certificate's SHA-256, pinned.")
@click.option("--os", "os_family", type=click.Choice(["windows", "linux"]))
@actor_option
@json_option
def scope(
    incident_id: str,
    added: str | None,
    removed: str | None,
    group: str,
    reason: str,
    address: str | None,
    transport: str | None,
    port: int | None,
    user: str | None,
    credential: str | None,
    host_key: str | None,
    thumbprint: str | None,
    os_family: str | None,
    actor: str | None,
    as_json: bool,
) -> None:
    """Put a host in a group (--add) or take it out (--remove). A host the inventory does not
    know needs --address and --transport; it is checked as the inventory file is. Later runs
    target the new scope."""
    if bool(added) == bool(removed):
        raise click.UsageError("give one of --add HOST or --remove HOST")
    host = added or removed or ""
    given: dict[str, Any] = {
        "address": address,
        "transport": transport,
        "port": port,
        "user": user,
        "credential": credential,
        "host_key": host_key,
        "tls": {"thumbprint": thumbprint} if thumbprint else None,
        "os": os_family,
    }
    entry = {k: v for k, v in given.items() if v is not None} or None
    if entry is not None and "address" not in entry:
        raise click.UsageError("a new host needs --address")
    if entry is not None:
        entry["groups"] = [group]
    run_command(
        incident_id,
        as_json,
        lambda s: s.change_scope(host, group, bool(added), who(actor), reason, entry),
        f"{host} {'added to' if added else 'removed from'} {group} (event {{seq}})",
    )


@incident.command()
@incident_argument
@click.argument("step")
@reason_option
@actor_option
@json_option
def start(incident_id: str, step: str, reason: str, actor: str | None, as_json: bool) -> None:
    """Start STEP before the steps ahead of it are done (unless the runbook marks it strict):
    then it can be run, decided or completed as if reached."""
    run_command(
        incident_id,
        as_json,
        lambda s: s.start_early(step, who(actor), reason),
        f"step '{step}' started early (event {{seq}})",
    )


@incident.command()
@incident_argument
@click.argument("step")
@click.option("--answer", "answers", multiple=True, required=True, metavar="N=TEXT")
@actor_option
@json_option
def answer(
    incident_id: str, step: str, answers: tuple[str, ...], actor: str | None, as_json: bool
) -> None:
    """Answer post-mortem questions of STEP by number, also once the step is done or the
    incident closed (the review comes within two weeks)."""
    given = parse_params(answers, "--answer", "N=TEXT")
    run_command(
        incident_id,
        as_json,
        lambda s: s.answer(step, given, who(actor)),
        f"{len(given)} answer(s) recorded (event {{seq}})",
    )
