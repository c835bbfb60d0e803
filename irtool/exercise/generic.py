"""A scenario for a runbook that ships none: every target gets a simulated host that answers.

So any runbook can be rehearsed at once. The hosts are made from the runbook's
own targets (`group:affected` becomes `affected-01` in group `affected`), on
documentation addresses (RFC 5737) that nothing could ever reach anyway.
"""

from __future__ import annotations

import re
from datetime import timedelta

from irtool.model.inventory import Host, OsFamily, Transport
from irtool.model.runbook import Runbook
from irtool.model.scenario import Inject, Scenario
from irtool.model.steps import CommandStep, RotateStep, Shell, command_templates

_HOST_VAR = re.compile(r"host\.vars\.([A-Za-z0-9_]+)")
# What a host variable most likely names; anything else gets a made-up value.
_LIKELY = {"site": "Default Web Site", "app_pool": "DefaultAppPool"}


def generic_scenario(runbook: Runbook) -> Scenario:
    return Scenario(
        id="generic",
        title=f"Generic exercise: {runbook.title}",
        runbook=runbook.id,
        briefing=(
            "No scenario ships with this runbook: every host answers plausibly and nothing is "
            "found. Play the runbook's steps, calls and decisions as you would for real."
        ),
        parameters={
            name: str(param.example)
            for name, param in runbook.parameters.items()
            if param.example is not None and param.default is None
        },
        hosts=simulated_hosts(runbook),
        injects=[
            Inject(
                id="status-request",
                title="Management asks for a status update: what is known, what is contained, "
                "and when is the next update?",
                to=runbook.roles[0],
                at=timedelta(minutes=20),
            )
        ],
    )


def simulated_hosts(runbook: Runbook) -> dict[str, Host]:
    """One simulated host per group, tag or host the runbook targets, on the shell it expects."""
    wanted: dict[str, Shell] = {}
    for _, step in runbook.steps():
        if isinstance(step, CommandStep):
            for selector in step.targets:
                wanted.setdefault(selector, step.shell)
        elif isinstance(step, RotateStep):
            for item in step.items:
                for selector in item.targets or []:
                    wanted.setdefault(selector, item.shell)
    variables = {
        name: _LIKELY.get(name, f"simulated-{name}")
        for _, step in runbook.steps()
        for _, template, _ in command_templates(step)
        for name in _HOST_VAR.findall(template)
    }
    hosts: dict[str, Host] = {}
    for selector, shell in wanted.items():
        kind, _, value = selector.partition(":")
        name = {"group": f"{value}-01", "tag": f"{value}-01", "host": value}.get(kind, "host-01")
        if name in hosts:
            continue
        windows = shell is Shell.POWERSHELL
        hosts[name] = Host(
            address=f"192.0.2.{len(hosts) + 10}",
            transport=Transport.WINRM if windows else Transport.SSH,
            os=OsFamily.WINDOWS if windows else OsFamily.LINUX,
            groups=[value] if kind == "group" else [],
            tags=[value] if kind == "tag" else [],
            description="simulated",
            vars=variables,
        )
    return hosts or {"host-01": Host(address="192.0.2.10", description="simulated", vars=variables)}
