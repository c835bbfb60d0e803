"""The hub's keys for what the team learns as a live incident unfolds: parameters (P),
indicators (I), scope (S), a one-off command (x), and the hosts of a run (R)."""

from __future__ import annotations

from irtool.tui.commands import adhoc, hosts, indicators, parameters, scope
from irtool.tui.commands.command import Command, Incident
from irtool.tui.commands.runs import can_run


def has_parameters(hub: Incident) -> bool | str:
    return bool(hub.state.runbook.parameters) or "this runbook has no parameters"


def has_inventory(hub: Incident) -> bool | str:
    return hub.state.inventory is not None or "this incident was opened without an inventory"


COMMANDS = [
    Command(
        "P",
        "parameters",
        "Parameters",
        parameters.set_parameter,
        has_parameters,
        "Set or amend a parameter as it is learned",
        footer=False,
    ),
    Command(
        "I",
        "indicators",
        "Indicators",
        indicators.indicators,
        tooltip="The incident's indicators: add, remove",
        footer=False,
    ),
    Command(
        "S",
        "scope",
        "Scope",
        scope.change_scope,
        has_inventory,
        "Add a host to a group (affected...) or take it out",
        footer=False,
    ),
    Command(
        "x",
        "ad_hoc",
        "Ad hoc",
        adhoc.collect,
        has_inventory,
        "Run a one-off command on chosen hosts",
        footer=False,
    ),
    Command(
        "R",
        "pick_hosts",
        "Run on…",
        hosts.pick_hosts,
        can_run,
        "Run on hosts you pick; f in it picks the ones that failed",
        footer=False,
    ),
]
