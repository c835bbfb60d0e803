"""The `irtool` command line: every failure maps to an exit status, never to a traceback."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any

import click

from irtool import __version__
from irtool.cli.exits import Exit
from irtool.model.problems import InvalidFile
from irtool.remote.limits import raise_descriptor_limit

# name -> (module, attribute). Loaded when asked for, as pip does, so `irtool open` pays for
# the terminal UI's imports and not for every other command's.
COMMANDS = {
    "analyze": ("irtool.cli.analyze", "analyze"),
    "baseline": ("irtool.cli.baseline", "baseline"),
    "creds": ("irtool.cli.creds", "creds"),
    "discover": ("irtool.cli.discover", "discover"),
    "evidence": ("irtool.cli.evidence", "evidence"),
    "exercise": ("irtool.cli.tui", "exercise"),
    "export": ("irtool.cli.export", "export"),
    "findings": ("irtool.cli.analyze", "findings"),
    "incident": ("irtool.cli.incident", "incident"),
    "manifest": ("irtool.cli.manifest", "manifest"),
    "open": ("irtool.cli.tui", "open_incident"),
    "plan": ("irtool.cli.plan", "plan"),
    "schema": ("irtool.cli.schema", "schema"),
    "stack": ("irtool.cli.stack", "stack"),
    "start": ("irtool.cli.tui", "start"),
    "sweep": ("irtool.cli.sweep", "sweep"),
    "validate": ("irtool.cli.validate", "validate"),
    "verify": ("irtool.cli.incident", "verify"),
}

# Modules that add commands to a group: run, rollback, fetch; the facilitator's commands;
# meetings and action items; what is learned as it unfolds; ad-hoc commands.
EXTENSIONS = {
    "incident": (
        "irtool.cli.remote",
        "irtool.cli.facilitate",
        "irtool.cli.minutes",
        "irtool.cli.unfolding",
        "irtool.cli.adhoc",
    )
}


class IrtoolGroup(click.Group):
    """Turns located file problems into exit 2 and anything unexpected into a one-line report."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attribute = COMMANDS[cmd_name]
        for extension in EXTENSIONS.get(cmd_name, ()):
            importlib.import_module(extension)
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except InvalidFile as invalid:
            for problem in invalid.problems:
                click.echo(str(problem), err=True)
            ctx.exit(Exit.INVALID)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except BrokenPipeError:
            # The reader went away (`irtool plan ... | head`): stop quietly, as git does.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            ctx.exit(141)
        except KeyboardInterrupt:
            click.echo("irtool: interrupted", err=True)
            ctx.exit(130)
        except Exception as exc:
            if os.environ.get("IRTOOL_DEBUG"):
                raise
            click.echo(
                f"irtool: internal error: {type(exc).__name__}: {exc}\n"
                "Please report it; IRTOOL_DEBUG=1 shows the traceback.",
                err=True,
            )
            ctx.exit(Exit.INTERNAL)


@click.group(
    cls=IrtoolGroup,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="irtool")
@click.option(
    "--runbooks",
    "runbook_dirs",
    multiple=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Where the home screen looks for runbooks (default: ./runbooks).",
)
@click.option("--inventory", type=click.Path(path_type=Path), help="For incidents started here.")
@click.option("--contacts", type=click.Path(path_type=Path), help="For incidents started here.")
@click.option("--as", "actor", metavar="NAME", help="Who is at the keyboard.")
@click.pass_context
def cli(
    ctx: click.Context,
    runbook_dirs: tuple[Path, ...],
    inventory: Path | None,
    contacts: Path | None,
    actor: str | None,
) -> None:
    """Incident-response runbooks for IIS estates: validate, plan, respond, export.

    Without a command: the home screen of the terminal UI (open incidents, runbooks).
    """
    if ctx.invoked_subcommand is None:
        from irtool.cli.tui import home

        home(runbook_dirs, contacts, inventory, actor)


def main(argv: list[str] | None = None) -> None:
    # Before anything opens a descriptor: a run of many hosts needs more than the usual 1024.
    raise_descriptor_limit()
    cli.main(args=argv, prog_name="irtool")
    sys.exit(0)  # pragma: no cover - click exits itself
