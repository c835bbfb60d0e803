"""Team mode at the command line: where the team's database is, its password from the
keyring, and `irtool sync`."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import click

from irtool.cli.common import actor_option, fail, incident_argument, json_option, who
from irtool.cli.exits import Exit
from irtool.model.untrusted import visible

if TYPE_CHECKING:
    from irtool.engine.shared import Behind


def use_team_database(url: str | None, insecure: bool) -> None:
    """`--database URL` / `--insecure`, for this process and what it starts (the UI's
    commands, a run's workers): the URL goes in the environment, never a password (refused
    in the URL: journal.database); passwords are read from the keyring when connecting."""
    from irtool.journal.database import (
        DATABASE_ENV,
        INSECURE_ENV,
        DatabaseRefused,
        checked,
        use_secrets,
    )

    if url:
        os.environ[DATABASE_ENV] = url
    if insecure:
        os.environ[INSECURE_ENV] = "1"
    url = os.environ.get(DATABASE_ENV)
    if url:
        try:
            checked(url)  # refused before any command starts: bad input, as a bad file is
        except DatabaseRefused as refused:
            fail(str(refused))
        use_secrets(_keyring)


def _keyring(name: str) -> str | None:
    """A password from the OS keyring, None where there is none or no keyring: libpq then
    tries its own ways (a client certificate, ~/.pgpass)."""
    from irtool.secrets.store import NoKeyring, lookup

    try:
        return lookup(name)
    except NoKeyring:
        return None


def caught_up(incident: str, doing: str, *, verify: bool = False) -> Behind | None:
    """Before a team incident is read whole (verify, anchor, export): this machine's copy
    brought up to date with the database, its evidence given and fetched. None when it is;
    else why not, said on stderr with what the command is `doing` ("verifying"): the copy is
    then read as it stands. A database that no longer holds the chain the copy took from it
    is BROKEN: said, and exit 1, as verify says any broken chain."""
    from irtool.journal import JournalError
    from irtool.journal.backends import is_team

    if not is_team(incident):
        return None
    from irtool.engine.shared import catch_up

    try:
        behind = catch_up(incident, verify=verify)
    except JournalError as exc:
        click.echo(visible(f"BROKEN in the team's database: {exc}"), err=True)
        raise SystemExit(Exit.FAILED) from None
    if behind:
        said = f"irtool: {doing} this machine's copy as it stands: {behind.why}"
        click.echo(visible(said), err=True)
    return behind


@click.command()
@incident_argument
@actor_option
@json_option
def sync(incident_id: str, actor: str | None, as_json: bool) -> None:
    """Give the team's database what this machine wrote while it could not reach it.

    Each event keeps its origin (this device, its seq and hash offline), and the offline
    chain is kept beside the copy, where it still verifies. An offline event that conflicts
    with what the team did meanwhile (a step completed on both sides) is refused and becomes
    a note saying so: nothing is lost. Safe to run again.
    """
    from irtool.engine.refusal import Refused
    from irtool.engine.syncing import sync as give
    from irtool.journal import JournalError

    try:
        synced = give(incident_id, who(actor))
    except (Refused, JournalError) as exc:
        fail(str(exc))
        return
    if as_json:
        click.echo(
            json.dumps(
                {
                    "given": [e.seq for e in synced.given],
                    "refused": [e.seq for e in synced.refused],
                    "offline_copies": [p.name for p in synced.kept],
                }
            )
        )
        return
    click.echo(
        f"synced {incident_id}: {len(synced.given)} offline events given to the team's "
        f"database, {len(synced.refused)} refused as conflicts (each now a note)"
    )


@click.command("install-database")
@click.option(
    "--writer",
    "writers",
    multiple=True,
    metavar="ROLE",
    help="A PostgreSQL role responders connect as: it may INSERT and SELECT, nothing else "
    "(repeatable).",
)
def install_database(writers: tuple[str, ...]) -> None:
    """Make the team's database ready for irtool: its tables, their triggers, the grants.

    Run once by the database's administrator, with --database pointing at it as the role that
    will own the tables (its password, if any, from the keyring). Running it again changes
    nothing but the grants of the --writer roles named.
    """
    from irtool.journal import JournalError
    from irtool.journal.database import DATABASE_ENV, checked, first_line
    from irtool.journal.postgres import install

    url = os.environ.get(DATABASE_ENV)
    if not url:
        fail("say which database: --database URL (or IRTOOL_DATABASE)")
        return
    try:
        database = checked(url)
        with database.connect() as admin:
            install(admin, writers)
    except JournalError as exc:
        fail(str(exc))
        return
    except Exception as exc:  # psycopg's, with the server's words (a role that does not exist)
        fail(f"the database refused: {first_line(exc)}")
        return
    click.echo(
        f"{database.where()} is ready: irtool's tables, append-only, "
        f"{', '.join(writers) or 'no writer roles'} may INSERT and SELECT"
    )
