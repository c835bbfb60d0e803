"""Command groups whose commands load when asked for, as pip's do: a responder's `irtool
incident note` pays for the note's imports, not for every command's.

Listing a group (its --help) needs each command's one-line help. A group of `LazyGroup` says it
from a table (`summaries`), so `irtool --help` imports no command; tests/test_startup_imports.py
keeps each table entry equal to what the command's own docstring gives.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

import click

# Long enough that click's short help is the docstring's whole first sentence.
WHOLE = 10**6


def summary(command: click.Command) -> str:
    """A command's one-line help, unshortened: what a `summaries` table holds for it."""
    return command.get_short_help_str(WHOLE)


class LazyGroup(click.Group):
    """A group some of whose commands live in other modules, imported on demand.

    `extensions`: command name -> the module that adds it to this group (with
    `@group.command()` when imported). `summaries`: command name -> its one-line help, for
    every command; given, the listing imports nothing, else it imports every extension.
    """

    def __init__(
        self,
        *args: object,
        extensions: Mapping[str, str] | None = None,
        summaries: Mapping[str, str] | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.extensions = dict(extensions or {})
        self.summaries = dict(summaries or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.extensions})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.extensions:
            importlib.import_module(self.extensions[cmd_name])
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        if not self.summaries:
            super().format_commands(ctx, formatter)
            return
        # click's own listing, over stand-ins that carry only the one-line help: the same
        # rows, widths and shortening as the real commands would give.
        stand_ins = [
            click.Command(name, help=self.summaries[name]) for name in self.list_commands(ctx)
        ]
        click.Group(commands=stand_ins).format_commands(ctx, formatter)
