"""What every command shares: who is acting, --json, NAME=VALUE pairs, and failing with one
line and a status.

Kept apart so `irtool open` loads this and not every command's imports.
"""

from __future__ import annotations

import getpass
import os

import click

from irtool.cli.exits import Exit
from irtool.model.names import responder_problem
from irtool.model.untrusted import visible


class IncidentId(click.ParamType):  # type: ignore[type-arg]
    """An incident's id, or a prefix of it that only one incident has."""

    name = "ID"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> str:
        from irtool.journal.incidents import resolve_id

        try:
            if os.environ.get("IRTOOL_DATABASE"):  # a prefix of the team's incidents too
                from irtool.journal.backends import every_incident

                return resolve_id(str(value), every_incident)
            return resolve_id(str(value))
        except ValueError as bad:
            self.fail(str(bad), param, ctx)


incident_argument = click.argument("incident_id", metavar="ID", type=IncidentId())
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
actor_option = click.option(
    "--as",
    "actor",
    metavar="NAME",
    help="Who is acting (default: $IRTOOL_RESPONDER, else the OS user).",
)


def who(actor: str | None) -> str:
    """The responder acting; a name the record cannot hold (a control or format character,
    which could repaint a terminal or pass for another name) stops the command here."""
    if actor is not None:
        name, given = actor, "--as"
    elif os.environ.get("IRTOOL_RESPONDER"):
        name, given = os.environ["IRTOOL_RESPONDER"], "IRTOOL_RESPONDER"
    else:
        name, given = getpass.getuser(), "the OS user name"
    problem = responder_problem(name)
    if problem:
        fail(f"{given}: {problem}")
    return name


def parse_params(
    pairs: tuple[str, ...], option: str = "--param", form: str = "NAME=VALUE"
) -> dict[str, str]:
    """`--param NAME=VALUE` (or another option's pairs: `--answer N=TEXT`), one value a name."""
    params: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"'{pair}' is not {form}", param_hint=option)
        params[name] = value
    return params


def parse_param_values(pairs: tuple[str, ...]) -> dict[str, str | list[str]]:
    """`--param NAME=VALUE`, where a name given more than once holds several values (for a
    `list: true` parameter; any other refuses them)."""
    values: dict[str, str | list[str]] = {}
    for pair in pairs:
        ((name, value),) = parse_params((pair,)).items()
        held = values.get(name)
        if held is None:
            values[name] = value
        else:
            values[name] = [*([held] if isinstance(held, str) else held), value]
    return values


def fail(message: str, status: Exit = Exit.INVALID) -> None:
    # A refusal may quote what a host said (why no form fits it): written out, never acted on.
    click.echo(f"irtool: {visible(message)}", err=True)
    raise SystemExit(status)
