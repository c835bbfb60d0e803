"""The hosts of a run, chosen: all of the step's hosts, some, or only those that failed last
time ("retry the failed hosts"); an action already applied on a chosen host is said first."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text as RichText
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Label, SelectionList

from irtool.model.steps import ActionStep, CollectStep
from irtool.model.untrusted import visible
from irtool.tui.commands.hub import Hub, planner
from irtool.tui.guard import guarded
from irtool.tui.screens.prompts import Prompt
from irtool.tui.screens.run import RunRequest


@dataclass(frozen=True)
class Hosts:
    hosts: list[str]


class HostPicker(Prompt[Hosts]):
    """Space ticks a host; `f` ticks exactly the hosts that failed last time, `a` all."""

    AUTO_FOCUS = "SelectionList"
    BINDINGS = [
        Binding("f", "failed", "Failed ones", id="hosts.failed", tooltip="Retry the failed hosts"),
        Binding("a", "all", "All", id="hosts.all", tooltip="Every host of the step"),
    ]
    DEFAULT_CSS = "HostPicker SelectionList { max-height: 16; }"

    def __init__(
        self,
        title: str,
        hosts: list[str],
        *,
        failed: list[str],
        applied: list[str],
        chosen: list[str],
    ) -> None:
        super().__init__(title, "Run")
        self.hosts, self.failed, self.applied = hosts, failed, applied
        self.chosen = chosen
        self.warned: set[str] = set()  # re-applying on these was said once: again goes on

    def fields(self) -> ComposeResult:
        hint = "space ticks a host; f: only the failed ones; a: all"
        yield Label(hint if self.failed else "space ticks a host; a: all")
        items = []
        for host in self.hosts:
            marks = [
                mark
                for mark, among in (("failed last time", self.failed), ("applied", self.applied))
                if host in among
            ]
            label = RichText(visible(host))
            if marks:
                label.append(f"  ({', '.join(marks)})", style="bold")
            items.append((label, host, host in self.chosen))
        yield SelectionList[str](*items, id="hosts")

    def action_failed(self) -> None:
        picker = self.query_one("#hosts", SelectionList)
        picker.deselect_all()
        for host in self.failed:
            picker.select(host)

    def action_all(self) -> None:
        self.query_one("#hosts", SelectionList).select_all()

    def submit(self) -> Hosts | str:
        picker = self.query_one("#hosts", SelectionList)
        chosen = [h for h in self.hosts if h in picker.selected]  # in the step's order
        if not chosen:
            return "tick at least one host (space)"
        again = [h for h in chosen if h in self.applied]
        if again and not set(again) <= self.warned:
            self.warned |= set(again)
            return (
                f"already applied on {', '.join(again)}: it would be applied there again. "
                "ctrl+s again to go on, or untick them"
            )
        return Hosts(chosen)


def pick_hosts(hub: Hub, *, retry: bool = False) -> None:
    """Choose the hosts of the selected step's run; `retry` ticks only those that failed."""
    step = hub.selected
    spec = hub.state.runbook.step(step or "")
    if not isinstance(spec, CollectStep | ActionStep):
        hub.app.notify("only collect and action steps run on hosts", severity="warning")
        return
    with guarded(hub.app):
        runner = planner(hub)
        hosts = list(runner.commands(spec.id))
        failed = runner.failed_hosts(spec.id)
        applied = runner.applied_hosts(spec.id) if isinstance(spec, ActionStep) else []
        if retry and not failed:
            hub.app.notify(f"no host failed the last run of {spec.id}")
            return
        chosen = failed if retry else [h for h in hosts if h not in applied]

        def picked(result: Hosts | None) -> None:
            if result is None:
                return
            with guarded(hub.app):
                if isinstance(spec, ActionStep):
                    hub.confirm(spec, rollback=False, hosts=result.hosts)
                else:
                    hub.start_run(RunRequest(hub.state.id, spec.id, spec.title, result.hosts))

        title = f"Run '{spec.title}' on which hosts?"
        picker = HostPicker(title, hosts, failed=failed, applied=applied, chosen=chosen)
        hub.app.push_screen(picker, picked)
