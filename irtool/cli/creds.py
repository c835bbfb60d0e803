"""`irtool creds set|delete|list`: secrets go into the OS keyring, from a hidden prompt or stdin.

Never from argv: a command line is visible to every user of the machine in `ps`.
"""

from __future__ import annotations

import sys

import click

from irtool.cli.exits import Exit
from irtool.secrets import store


def _fail(message: str, status: Exit = Exit.FAILED) -> None:
    click.echo(f"irtool: {message}", err=True)
    raise SystemExit(status)


@click.group()
def creds() -> None:
    """Credentials in the OS keyring, by the name inventories give as `credential:`."""


@creds.command("set")
@click.argument("name")
def set_(name: str) -> None:
    """Store the secret for NAME: typed at a hidden prompt, or read from stdin when piped."""
    if sys.stdin.isatty():
        secret = click.prompt(f"Secret for '{name}'", hide_input=True, confirmation_prompt=True)
    else:
        secret = sys.stdin.readline().rstrip("\r\n")
    if not secret:
        _fail("an empty secret was not stored", Exit.INVALID)
    try:
        store.store(name, secret)
    except store.NoKeyring as none:
        _fail(str(none))
    click.echo(f"stored '{name}' in the OS keyring")


@creds.command()
@click.argument("name")
def delete(name: str) -> None:
    """Remove the secret for NAME."""
    try:
        found = store.delete(name)
    except store.NoKeyring as none:
        _fail(str(none))
        return
    if not found:
        _fail(f"no secret stored for '{name}'")
    click.echo(f"deleted '{name}'")


@creds.command("list")
def list_() -> None:
    """The names of the stored credentials (never their values)."""
    try:
        for name in store.names():
            click.echo(name)
    except store.NoKeyring as none:
        _fail(str(none))
