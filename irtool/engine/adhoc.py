"""Ad-hoc commands: what triage asks for that no runbook foresaw, with the same custody.

A one-off read-only command runs like a collector: its output is evidence, its record says
ad hoc. One that changes a host is containment by another name: it is confirmed like an
action and carries its rollback, or the reason it has none; while applied, it is listed
when the incident closes (as `ad-hoc-SEQ`, SEQ its run), and `rollback` undoes it.
"""

from __future__ import annotations

from typing import Any

from irtool.engine.refusal import Refused
from irtool.engine.runner_parts import RunnerParts
from irtool.engine.runreport import ACTION, COLLECT, ROLLBACK, Command, RunReport
from irtool.engine.state import AD_HOC
from irtool.model.inventory import OsFamily
from irtool.model.plan import PlanRow
from irtool.model.quoting import powershell_literal
from irtool.model.steps import Shell

SHELLS = ("sh", "powershell", "cmd")

# A cmd line goes to a Windows host inside PowerShell, which starts cmd.exe with the line as
# its verbatim command line (`/s /c "LINE"` runs LINE exactly as typed). PowerShell's own
# argument passing would re-quote it differently from one version to the next; the line
# reaches the script as a quoted literal, so nothing in it is PowerShell syntax.
_CMD_WRAPPER = """$line = {line}
$start = New-Object System.Diagnostics.ProcessStartInfo
$start.FileName = Join-Path $env:SystemRoot 'System32\\cmd.exe'
$start.Arguments = '/d /s /c "' + $line + '"'
$start.UseShellExecute = $false
$start.RedirectStandardOutput = $true
$start.RedirectStandardError = $true
$cmd = [System.Diagnostics.Process]::Start($start)
$errors = $cmd.StandardError.ReadToEndAsync()
while ($null -ne ($out = $cmd.StandardOutput.ReadLine())) {{ $out }}
$cmd.WaitForExit()
if ($errors.Result) {{ [Console]::Error.Write($errors.Result) }}
exit $cmd.ExitCode
"""


def cmd_script(line: str) -> str:
    """The PowerShell that runs `line` under cmd.exe on a Windows host, as typed."""
    if "\n" in line.strip("\r\n") or "\r" in line.strip("\r\n"):
        raise Refused("a cmd command is one line: write a longer one for powershell")
    return _CMD_WRAPPER.format(line=powershell_literal(line.strip("\r\n")))


def ad_hoc_run(name: str) -> int | None:
    """The run seq `ad-hoc-SEQ` names, or None when `name` is a step id."""
    prefix = f"{AD_HOC}-"
    if name.startswith(prefix) and name[len(prefix) :].isdigit():
        return int(name[len(prefix) :])
    return None


def _command(typed: str, shell: str) -> Command:
    """What goes to the host: a cmd line inside its PowerShell wrapper, the rest as typed."""
    if shell == "cmd":
        return Command(None, cmd_script(typed), Shell.POWERSHELL)
    return Command(None, typed, Shell(shell))


class AdHocRuns(RunnerParts):
    """The ad-hoc half of Runner."""

    def ad_hoc_commands(
        self, hosts: list[str], command: str, shell: str = "sh"
    ) -> dict[str, list[PlanRow]]:
        """What an ad-hoc command sends, per host, exactly as typed: for a confirmation."""
        state = self.session.state
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
        if shell == "cmd":
            linux = [h for h in hosts if inventory.resolve(h).os is OsFamily.LINUX]
            if linux:
                raise Refused(f"cmd runs on Windows hosts; {', '.join(linux)} run Linux")
            cmd_script(command)  # refuses what cmd cannot take before anyone confirms
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
        work = {h: [_command(command, shell)] for h in per_host}
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
        work = {h: [_command(rollback, shell)] for h in chosen}
        marks = {"ad_hoc": True, "shell": shell, "undoes": run_seq}
        return self._run(None, ROLLBACK, work, reason, marks)
