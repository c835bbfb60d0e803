"""What every command shares: who is acting, --json, and failing with one line and a status.

Kept apart so `irtool open` loads this and not every command's imports.
"""

from __future__ import annotations

import getpass
import os

import click

from irtool.cli.exits import Exit

json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
actor_option = click.option(
    "--as",
    "actor",
    metavar="NAME",
    help="Who is acting (default: $IRTOOL_RESPONDER, else the OS user).",
)


def who(actor: str | None) -> str:
    return actor or os.environ.get("IRTOOL_RESPONDER") or getpass.getuser()


def fail(message: str, status: Exit = Exit.INVALID) -> None:
    click.echo(f"irtool: {message}", err=True)
    raise SystemExit(status)
