"""The hub's key for team mode: give the team's database what this screen wrote while it
could not reach it (Y), without leaving the incident."""

from __future__ import annotations

from irtool.tui.commands.command import Command, Incident


def offline_events(hub: Incident) -> bool | str:
    said = hub.session.journal.connection or ""
    return "to sync" in said or "nothing written here waits for the team's database"


def sync_offline(hub: Incident) -> None:
    hub.sync_offline()


COMMANDS = [
    Command(
        "Y",
        "sync",
        "Sync",
        sync_offline,
        offline_events,
        "Give the team's database what was written here offline",
        footer=False,
        after_close=True,
    ),
]
