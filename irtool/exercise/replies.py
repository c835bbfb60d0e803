"""What the simulated hosts answer: the scenario's replies, else a generic answer.

A transport only sees a host and a command, but scenario replies are written
per step and collector. The incident's own plan says which step, collector
and purpose each exact command belongs to, so the lookup goes through it.
Containment and rollbacks are acknowledged, never performed: their answer
says so first, whatever else the scenario has the host say.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from irtool.engine.state import IncidentState, Status
from irtool.model.facts import LINUX_PROBE, WINDOWS_PROBE, HostFacts, probe_answer
from irtool.model.inventory import Inventory, OsFamily, ResolvedHost
from irtool.model.plan import PlanError, build_plan
from irtool.model.scenario import Reply, Scenario
from irtool.model.steps import CommandStep, Shell
from irtool.remote.base import Failure, glob_regex
from irtool.remote.simulated import Answer, example_listing, expand_windows

COLLECT, ACTION, ROLLBACK, FETCH = "collect", "action", "rollback", "fetch"
# A simulated Windows host whose scenario does not say what it is: a current server.
EXERCISE_WINDOWS = HostFacts(
    os="windows",
    windows="10.0",
    build=17763,
    powershell="5.1",
    iis="10.0",
    name="Windows Server 2019 Datacenter",
)


@dataclass(frozen=True)
class Asked:
    """A command as the runbook knows it."""

    step: str | None
    item: str | None
    purpose: str
    title: str
    timeout: float


class ScenarioHosts:
    """Answers every command of the incident's plan from the scenario."""

    def __init__(self, state: IncidentState) -> None:
        assert state.exercise is not None, "only an exercise has simulated hosts"
        self.scenario: Scenario = state.exercise.scenario
        self.inventory: Inventory | None = state.inventory
        self.state = state  # the session's own: steps finish while the transport lives
        # The same exact command may belong to two steps (a hotfix list before and after a
        # patch): every step it belongs to is kept, and the one not yet done answers.
        self.known: dict[tuple[str, str], list[Asked]] = {}
        # A fetch collector's globs, per host: the listing a transport is asked for.
        self.listings: dict[tuple[str, tuple[str, ...]], list[Asked]] = {}
        self._planned_for: str | None = None
        self._plan()

    def _plan(self) -> None:
        """Which step, collector and purpose each exact command is, as the runner plans it:
        the form of each command the host's facts choose. Planned again when what the plan
        depends on changed (a host said what it is, a parameter was set): a command not
        known is looked up once more before it gets a generic answer."""
        state = self.state
        facts = state.host_facts()
        basis = repr((sorted(facts.items()), sorted(state.parameters.items()), state.iocs))
        if basis == self._planned_for:
            return
        # Built aside and swapped in whole: other hosts' threads look things up meanwhile.
        known: dict[tuple[str, str], list[Asked]] = {}
        listings: dict[tuple[str, tuple[str, ...]], list[Asked]] = {}
        try:
            rows = build_plan(
                state.runbook,
                state.parameters,
                state.inventory,
                state.iocs,
                facts=facts,
                incident=state.id,
            )
        except PlanError:
            rows = []  # the runner refuses such a plan before anything is asked
        for row in rows:
            step = state.runbook.step(row.step)
            if not row.host or not isinstance(step, CommandStep):
                continue
            timeout = float(step.timeout)
            item = row.item or row.step
            purpose = ACTION if row.kind == "action" else COLLECT
            if row.fetch is not None:
                listings.setdefault((row.host, tuple(row.fetch.paths)), []).append(
                    Asked(row.step, item, COLLECT, step.title, timeout)
                )
                continue
            if row.command:
                known.setdefault((row.host, row.command), []).append(
                    Asked(row.step, item, purpose, step.title, timeout)
                )
            if row.rollback:
                known.setdefault((row.host, row.rollback), []).append(
                    Asked(row.step, item, ROLLBACK, step.title, timeout)
                )
        self.known, self.listings, self._planned_for = known, listings, basis

    def answer(self, host: ResolvedHost, command: str, shell: Shell) -> Answer:
        if command in (WINDOWS_PROBE, LINUX_PROBE):
            return Answer(stdout=probe_answer(self.facts(host)).encode())
        asked = self._asked(host.name, command)
        reply = self._reply(host.name, asked, command)
        if asked.purpose in (ACTION, ROLLBACK):
            verb = "containment" if asked.purpose == ACTION else "rollback"
            banner = (
                f"EXERCISE: {verb} acknowledged, not performed on {host.name}.\n"
                f"It would have run ({shell}):\n{command}\n"
            )
            own = reply.stdout if reply else ""
            return self._answer(reply, asked, banner + own, host)
        if reply:
            return self._answer(reply, asked, reply.stdout, host)
        return Answer(
            stdout=(
                f"EXERCISE: simulated answer from {host.name} ({host.address}); "
                "nothing was run.\n"
                f"{asked.title}"
                + (f" / {asked.item}" if asked.item and asked.item != asked.step else "")
                + ": nothing unusual in this scenario.\n"
            ).encode()
        )

    def facts(self, host: ResolvedHost) -> HostFacts:
        """What a simulated host is: its scenario's `facts:`, else a current Windows (or a
        Linux, for a Linux host)."""
        stated = self.inventory.hosts[host.name].facts if self.inventory else None
        if stated is not None:
            return stated
        return EXERCISE_WINDOWS if host.os is OsFamily.WINDOWS else HostFacts(os="linux")

    def _asked(self, host: str, command: str) -> Asked:
        """The step a command belongs to: of several, the first not yet done, else the last."""
        if (host, command) not in self.known:
            self._plan()
        candidates = self.known.get((host, command))
        if not candidates:
            return Asked(None, None, COLLECT, "command", 300)
        steps = self.state.steps
        pending = [a for a in candidates if a.step and steps[a.step].status is Status.PENDING]
        return pending[0] if pending else candidates[-1]

    def answer_listing(
        self, host: ResolvedHost, paths: Sequence[str]
    ) -> tuple[Answer, list[tuple[int, str]]]:
        """What a fetch collector's globs match on a simulated host. A reply to the collector
        names the host's files in its stdout, one path a line (its failure fails the listing);
        without one, each glob matches one example file."""
        if (host.name, tuple(paths)) not in self.listings:
            self._plan()
        candidates = self.listings.get((host.name, tuple(paths)))
        asked = candidates[0] if candidates else Asked(None, None, COLLECT, "fetch", 300)
        steps = self.state.steps
        pending = [a for a in candidates or [] if a.step and steps[a.step].status is Status.PENDING]
        asked = pending[0] if pending else asked
        reply = self._reply(host.name, asked, "\n".join(paths))
        if reply is None:
            return example_listing(host, paths)
        answer = self._answer(reply, asked, "", host)
        windows = host.os is OsFamily.WINDOWS
        named = [line.strip() for line in reply.stdout.splitlines() if line.strip()]
        found = []
        for index, pattern in enumerate(paths):
            if windows:
                pattern = expand_windows(pattern)
            exact = glob_regex(pattern, "\\/" if windows else "/", ignore_case=windows)
            found += [(index, path) for path in named if exact.fullmatch(path)]
        return answer, found

    def answer_file(self, host: ResolvedHost, path: str) -> Answer:
        asked = Asked(None, None, FETCH, path, 600)
        reply = self._reply(host.name, asked, path)
        if reply:
            return self._answer(reply, asked, reply.stdout, host)
        return Answer(stdout=f"EXERCISE: simulated copy of {path} from {host.name}\n".encode())

    def _reply(self, host: str, asked: Asked, command: str) -> Reply | None:
        for reply in self.scenario.replies:
            if (
                (reply.step is None or reply.step == asked.step)
                and (reply.item is None or reply.item == asked.item)
                and (reply.purpose is None or reply.purpose == asked.purpose)
                and (reply.match is None or re.search(reply.match, command))
                and (self.inventory is None or host in self.inventory.select(reply.hosts))
            ):
                return reply
        return None

    def _answer(self, reply: Reply | None, asked: Asked, stdout: str, host: ResolvedHost) -> Answer:
        speed = self.scenario.speed
        delay = reply.delay if reply else timedelta(0)
        if reply and reply.fail == "timeout":
            # A hanging host: it answers nothing until the step's deadline (on the exercise clock).
            return Answer(
                failure=Failure.TIMEOUT,
                reason=reply.reason or f"no result within {asked.timeout:g} s",
                delay=(delay.total_seconds() or asked.timeout) / speed,
            )
        if reply and reply.fail:
            return Answer(
                failure=Failure(reply.fail),
                reason=reply.reason or _REASONS[reply.fail].format(host=host),
                delay=delay.total_seconds() / speed,
            )
        return Answer(
            stdout=stdout.encode(),
            stderr=(reply.stderr if reply else "").encode(),
            exit_status=reply.exit if reply else 0,
            delay=delay.total_seconds() / speed,
        )


_REASONS = {
    "unreachable": "{host.address}:{host.port}: connection timed out",
    "auth": "the host refused the credentials of {host.user}",
    "host-key": "{host.name} presented an unknown host key",
    "tls": "{host.address}: certificate verify failed",
    "error": "the host answered with an error",
}
