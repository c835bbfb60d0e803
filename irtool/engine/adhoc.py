"""Ad-hoc commands: what triage asks for that no runbook foresaw, with the same custody.

A one-off read-only command runs like a collector: its output is evidence, its record says
ad hoc. One that changes a host is containment by another name: it is confirmed like an
action and carries its rollback, or the reason it has none; while applied, it is listed
when the incident closes (as `ad-hoc-SEQ`, SEQ its run), and `rollback` undoes it.
"""

from __future__ import annotations

from typing import Any

from irtool.engine.refusal import Refused
from irtool.engine.runreport import ACTION, COLLECT, ROLLBACK, Command, RunReport
from irtool.engine.session import IncidentSession
from irtool.engine.state import AD_HOC, IncidentState
from irtool.model.inventory import Inventory
from irtool.model.plan import PlanRow
from irtool.model.steps import Shell

SHELLS = ("sh", "powershell")


def ad_hoc_run(name: str) -> int | None:
    """The run seq `ad-hoc-SEQ` names, or None when `name` is a step id."""
    prefix = f"{AD_HOC}-"
    if name.startswith(prefix) and name[len(prefix) :].isdigit():
        return int(name[len(prefix) :])
    return None


class AdHocRuns:
    """The ad-hoc half of Runner (which provides what is declared here)."""

    session: IncidentSession
    ad_hoc_timeout: float

    def _inventory(self, state: IncidentState) -> Inventory:
        raise NotImplementedError

    def _run(
        self,
        step_id: str | None,
        purpose: str,
        work: dict[str, list[Command]],
        reason: str,
        marks: dict[str, Any] | None = None,
    ) -> RunReport:
        raise NotImplementedError

    def ad_hoc_commands(
        self, hosts: list[str], command: str, shell: str = "sh"
    ) -> dict[str, list[PlanRow]]:
        """What an ad-hoc command sends, per host, exactly as typed: for a confirmation."""
        state = self.session.state
        if shell == "cmd":
            raise Refused("cmd is not a shell irtool runs: write it for powershell (cmd /c ...)")
        if shell not in SHELLS:
            raise Refused(f"shell must be one of {', '.join(SHELLS)}")
        if not command.strip():
            raise Refused("an ad-hoc command needs the command")
        if not hosts:
            raise Refused("which hosts? (--host, once per host)")
        inventory = self._inventory(state)
        unknown = [h for h in hosts if h not in inventory.hosts]
        if unknown:
            raise Refused(
                f"no host {', '.join(unknown)} in this incident's inventory "
                f"({', '.join(inventory.hosts)}); add it with irtool incident scope"
            )
        return {
            host: [PlanRow(AD_HOC, "", AD_HOC, "ad-hoc command", None, host, shell, command, None)]
            for host in dict.fromkeys(hosts)
        }

    def collect_ad_hoc(
        self,
        hosts: list[str],
        command: str,
        shell: str = "sh",
        reason: str = "",
        *,
        changes: bool = False,
        rollback: str | None = None,
        irreversible: str | None = None,
    ) -> RunReport:
        """Run one command, typed now, on `hosts`; `changes`: it changes them, so it needs a
        reason and a rollback or the reason there is none."""
        per_host = self.ad_hoc_commands(hosts, command, shell)
        if self.session.state.closed:
            raise Refused(f"incident {self.session.state.id} is closed: nothing runs now")
        if changes:
            if not reason.strip():
                raise Refused("a command that changes hosts needs a reason (--reason)")
            if not (rollback or "").strip() and not (irreversible or "").strip():
                raise Refused(
                    "a command that changes hosts needs its rollback (--rollback COMMAND) "
                    "or the reason it has none (--irreversible REASON)"
                )
        elif rollback or irreversible:
            raise Refused("--rollback and --irreversible are for a command that changes hosts")
        marks: dict[str, Any] = {"ad_hoc": True, "shell": shell, "command": command}
        if changes:
            marks |= {"rollback": rollback or None, "irreversible": irreversible or None}
        work = {h: [Command(None, command, Shell(shell))] for h in per_host}
        return self._run(None, ACTION if changes else COLLECT, work, reason, marks)

    def ad_hoc_rollback(self, run_seq: int) -> tuple[str, str, list[str]]:
        """The rollback of ad-hoc change `run_seq`: (command, shell, hosts it is applied on)."""
        state = self.session.state
        run = state.runs.get(run_seq)
        if run is None or not run.ad_hoc or run.purpose != ACTION:
            raise Refused(f"{AD_HOC}-{run_seq} is not an ad-hoc command that changed hosts")
        if not run.rollback:
            raise Refused(f"{AD_HOC}-{run_seq} is irreversible: {run.irreversible}")
        applied = sorted(state.applied.get(f"{AD_HOC}-{run_seq}", {}))
        if not applied:
            raise Refused(f"{AD_HOC}-{run_seq} is not applied on any host: nothing to roll back")
        return run.rollback, run.shell or "sh", applied

    def rollback_ad_hoc(
        self, run_seq: int, hosts: list[str] | None = None, reason: str = ""
    ) -> RunReport:
        """Undo ad-hoc change `run_seq` on the hosts it is applied on (or those of them)."""
        rollback, shell, applied = self.ad_hoc_rollback(run_seq)
        chosen = [h for h in applied if not hosts or h in hosts]
        if hosts and (missing := [h for h in hosts if h not in applied]):
            raise Refused(f"{AD_HOC}-{run_seq} is not applied on {', '.join(missing)}")
        work = {h: [Command(None, rollback, Shell(shell))] for h in chosen}
        marks = {"ad_hoc": True, "shell": shell, "undoes": run_seq}
        return self._run(None, ROLLBACK, work, reason, marks)
