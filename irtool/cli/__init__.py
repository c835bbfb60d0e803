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
from irtool.cli.lazy import LazyGroup
from irtool.remote.limits import raise_descriptor_limit

# name -> (module, attribute). Loaded when asked for, as pip does, so `irtool open` pays for
# the terminal UI's imports and not for every other command's.
COMMANDS = {
    "analyze": ("irtool.cli.analyze", "analyze"),
    "anchor": ("irtool.cli.incident", "anchor"),
    "baseline": ("irtool.cli.baseline", "baseline"),
    "creds": ("irtool.cli.creds", "creds"),
    "discover": ("irtool.cli.discover", "discover"),
    "evidence": ("irtool.cli.evidence", "evidence"),
    "exercise": ("irtool.cli.tui", "exercise"),
    "export": ("irtool.cli.export", "export"),
    "findings": ("irtool.cli.analyze", "findings"),
    "incident": ("irtool.cli.incident", "incident"),
    "install-database": ("irtool.cli.team", "install_database"),
    "manifest": ("irtool.cli.manifest", "manifest"),
    "open": ("irtool.cli.tui", "open_incident"),
    "plan": ("irtool.cli.plan", "plan"),
    "schema": ("irtool.cli.schema", "schema"),
    "stack": ("irtool.cli.stack", "stack"),
    "start": ("irtool.cli.tui", "start"),
    "sweep": ("irtool.cli.sweep", "sweep"),
    "sync": ("irtool.cli.team", "sync"),
    "validate": ("irtool.cli.validate", "validate"),
    "verify": ("irtool.cli.incident", "verify"),
}

# Each command's one-line help, for `irtool --help`, which then imports no command: the first
# sentence of its docstring (tests/test_startup_imports.py keeps the two the same).
SUMMARIES = {
    "anchor": "Print the incident's head as one line to keep elsewhere: verify --head checks it.",
    "analyze": "Hunt web server logs (IIS W3C) and Windows event logs (EVTX) with the hunts and "
    "the Sigma rules: an incident's (ID), or logs handed to you (files, folders, .gz and .zip "
    "archives of web logs), offline.",
    "baseline": "Known-good baselines of a host's records (users, services, tasks, modules).",
    "creds": "Credentials in the OS keyring, by the name inventories give as `credential:`.",
    "discover": "Find web servers in RANGE...",
    "evidence": "Print or save one evidence file, checked against its SHA-256 as it is copied.",
    "exercise": "Play a tabletop exercise of RUNBOOK in the terminal UI: simulated hosts, the "
    "scenario's injects.",
    "export": "Export incident ID: a post-mortem (markdown, html) or a timeline (json, csv, "
    "timesketch).",
    "findings": "An incident's findings, most severe first; --confirm or --dismiss one, with a "
    "reason.",
    "incident": "Open and work an incident without the terminal UI.",
    "install-database": "Make the team's database ready for irtool: its tables, their "
    "triggers, the grants.",
    "manifest": "Known-good manifests of a web root, and what a server has that they do not.",
    "open": "Resume incident ID (a unique prefix is enough) in the terminal UI, exactly where it "
    "stands.",
    "plan": "Show every step and the exact commands it would run on each host.",
    "schema": "Print the JSON Schema of a runbook, contacts, inventory or fragment file.",
    "stack": "The records of incident ID's hosts, per kind, the fewest hosts first.",
    "start": "Open a live incident from RUNBOOK in the terminal UI (a form asks for missing "
    "values).",
    "sweep": "Look for finding SEQ's indicators (hash, file name, task, service, module, "
    "address) on the --targets hosts, read-only; what is found there becomes a finding.",
    "sync": "Give the team's database what this machine wrote while it could not reach it.",
    "validate": "Check files or folders of runbooks, contacts, inventories and scenarios.",
    "verify": "Recompute the hash chain and every evidence file's hash.",
}


class IrtoolGroup(LazyGroup):
    """Turns located file problems into exit 2 and anything unexpected into a one-line report."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attribute = COMMANDS[cmd_name]
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
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
            # Imported when one is raised: every command would import it to start with.
            from irtool.model.problems import InvalidFile

            if isinstance(exc, InvalidFile):
                for problem in exc.problems:
                    click.echo(str(problem), err=True)
                ctx.exit(Exit.INVALID)
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
    summaries=SUMMARIES,
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
@click.option(
    "--database",
    metavar="URL",
    envvar="IRTOOL_DATABASE",
    help="Team mode: keep incidents in this PostgreSQL database (a libpq URL, no password: "
    "it is read from the keyring).",
)
@click.option(
    "--insecure",
    is_flag=True,
    help="Accept a database connection whose certificate is not checked (sslmode below "
    "verify-full) to a host other than this one.",
)
@click.pass_context
def cli(
    ctx: click.Context,
    runbook_dirs: tuple[Path, ...],
    inventory: Path | None,
    contacts: Path | None,
    actor: str | None,
    database: str | None,
    insecure: bool,
) -> None:
    """Incident-response runbooks for IIS estates: validate, plan, respond, export.

    Without a command: the home screen of the terminal UI (open incidents, runbooks).
    """
    if database or insecure:
        from irtool.cli.team import use_team_database

        use_team_database(database, insecure)
    if ctx.invoked_subcommand is None:
        from irtool.cli.tui import home

        home(runbook_dirs, contacts, inventory, actor)


def main(argv: list[str] | None = None) -> None:
    # Before anything opens a descriptor: a run of many hosts needs more than the usual 1024.
    raise_descriptor_limit()
    cli.main(args=argv, prog_name="irtool")
    sys.exit(0)  # pragma: no cover - click exits itself
