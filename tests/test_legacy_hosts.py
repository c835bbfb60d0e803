"""The shipped runbooks on the estates irtool exists for: Server 2008, 2008 R2, 2012 R2, 2019.

`plan` for an inventory of those four hosts gives each the form its PowerShell can run:
never a PowerShell feature newer than the host's, never PowerShell on a host without it, and
on 2008 R2 (PowerShell 2.0, IIS 7.5) the compromise runbook's triage, containment and
eradication all run. A stock 2008 without PowerShell still gets its version, a configuration
backup, its logs and the inbound block through cmd.exe.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from irtool.model.facts import HostFacts
from irtool.model.inventory import Inventory
from irtool.model.loader import load_runbook
from irtool.model.plan import PlanRow, build_plan, resolve_parameters
from irtool.model.psfeatures import too_new
from irtool.model.runbook import Runbook
from irtool.model.steps import ActionStep, CollectStep
from tests.conftest import ROOT

RUNBOOKS = sorted((ROOT / "runbooks").glob("*.yaml"))
WINDOWS = {
    "web2008": HostFacts(os="windows", windows="6.0", build=6002, iis="7.0"),
    "web2008r2": HostFacts(os="windows", windows="6.1", build=7601, powershell="2.0", iis="7.5"),
    "web2012r2": HostFacts(os="windows", windows="6.3", build=9600, powershell="4.0", iis="8.5"),
    "web2019": HostFacts(os="windows", windows="10.0", build=17763, powershell="5.1", iis="10.0"),
}
GATEWAY = HostFacts(os="linux", name="Debian GNU/Linux 12 (bookworm)")


def _inventory(runbook: Runbook) -> Inventory:
    """The four Windows hosts in every group the runbook targets; a Linux gateway in the
    groups of its sh steps (nftables)."""
    windows_groups: set[str] = set()
    linux_groups: set[str] = set()
    for _, step in runbook.steps():
        if isinstance(step, CollectStep | ActionStep):
            groups = {t.split(":", 1)[1] for t in step.targets if t.startswith("group:")}
            (linux_groups if step.shell == "sh" else windows_groups).update(groups)
    hosts = {
        name: {
            "address": f"10.0.0.{i + 10}",
            "transport": "winrm",
            "user": "CORP\\ir-collect",
            "facts": facts.model_dump(exclude_none=True),
            "vars": {"site": "Default Web Site", "webroot": "C:\\inetpub\\wwwroot"},
        }
        for i, (name, facts) in enumerate(WINDOWS.items())
    }
    hosts["gw01"] = {
        "address": "10.0.0.1",
        "transport": "ssh",
        "user": "irops",
        "facts": GATEWAY.model_dump(exclude_none=True),
    }
    groups = {g: list(WINDOWS) for g in windows_groups - linux_groups}
    groups |= {g: ["gw01"] for g in linux_groups}
    return Inventory.model_validate({"groups": groups, "hosts": hosts})


def _plan(path: Path) -> tuple[Runbook, list[PlanRow]]:
    runbook = load_runbook(path).model
    examples = {n: p.example for n, p in runbook.parameters.items() if p.example is not None}
    rows = build_plan(
        runbook,
        resolve_parameters(runbook, examples),
        _inventory(runbook),
        incident="ir-20261207-010000-abcd",
    )
    return runbook, rows


@pytest.mark.parametrize("path", RUNBOOKS, ids=lambda p: p.stem)
def test_each_host_gets_a_form_its_powershell_runs(path: Path) -> None:
    _, rows = _plan(path)
    wrong = []
    for row in rows:
        if row.host not in WINDOWS or row.command is None:
            continue
        facts = WINDOWS[row.host]
        if row.shell == "powershell":
            if facts.powershell is None:
                wrong.append(f"{row.step}/{row.item or ''} on {row.host}: PowerShell, none there")
                continue
            for text in (row.command, row.rollback or ""):
                for use in too_new(text, facts.powershell, facts.windows):
                    feature = use.feature
                    wrong.append(
                        f"{row.step}/{row.item or ''} on {row.host} (PowerShell "
                        f"{facts.powershell}), line {use.line}: {feature.name} needs "
                        f"PowerShell {feature.powershell}"
                        + (f" on Windows {feature.windows}" if feature.windows else "")
                    )
        assert row.shell in ("powershell", "cmd", "fetch"), (row.step, row.host, row.shell)
    assert not wrong, "\n".join(wrong)


def test_server_2008_r2_gets_the_whole_compromise_response() -> None:
    _, rows = _plan(ROOT / "runbooks" / "iis-compromise.yaml")
    unfit = [
        f"{r.step}/{r.item or ''}: {r.unfit}" for r in rows if r.host == "web2008r2" and r.unfit
    ]
    assert not unfit, "\n".join(unfit)
    windows_steps = {r.step for r in rows if r.host in WINDOWS}
    reached = {r.step for r in rows if r.host == "web2008r2" and r.command}
    assert windows_steps == reached, f"not for 2008 R2: {sorted(windows_steps - reached)}"


def test_server_2008_without_powershell_still_gets_version_backup_logs_and_block() -> None:
    runbooks = {p.stem: _plan(p)[1] for p in RUNBOOKS}
    cmd = [r for rows in runbooks.values() for r in rows if r.host == "web2008" and r.command]
    assert cmd, "no command at all for a Server 2008 without PowerShell"
    text = "\n".join(f"{r.command}\n{r.rollback or ''}" for r in cmd if r.shell == "cmd")
    assert re.search(r"reg query \S*InetStp", text, re.IGNORECASE)  # the IIS version
    assert "appcmd" in text.lower() and "add backup" in text.lower()  # configuration backup
    assert "advfirewall firewall add rule" in text.lower()  # the inbound block
    assert "advfirewall firewall delete rule" in text.lower()  # and its rollback
    assert re.search(r"wevtutil(\.exe)? epl", text, re.IGNORECASE)  # its event logs
    assert re.search(r"inetpub\\logs\\LogFiles\\", text, re.IGNORECASE)  # its web logs
