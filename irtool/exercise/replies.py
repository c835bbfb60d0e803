"""What the simulated hosts answer: the scenario's replies, else a generic answer.

A transport only sees a host and a command, but scenario replies are written
per step and collector. The incident's own plan says which step, collector
and purpose each exact command belongs to, so the lookup goes through it.
Containment and rollbacks are acknowledged, never performed: their answer
says so first, whatever else the scenario has the host say.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from irtool.engine.state import IncidentState, Status
from irtool.model.inventory import Inventory, ResolvedHost
from irtool.model.plan import PlanError, build_plan
from irtool.model.scenario import Reply, Scenario
from irtool.model.steps import CommandStep, Shell
from irtool.remote.base import Failure
from irtool.remote.simulated import Answer

COLLECT, ACTION, ROLLBACK, FETCH = "collect", "action", "rollback", "fetch"


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
        try:
            rows = build_plan(state.runbook, state.parameters, state.inventory)
        except PlanError:
            rows = []  # the runner refuses such a plan before anything is asked
        for row in rows:
            step = state.runbook.step(row.step)
            if not row.host or not isinstance(step, CommandStep):
                continue
            timeout = float(step.timeout)
            item = row.item or row.step
            purpose = ACTION if row.kind == "action" else COLLECT
            if row.command:
                self.known.setdefault((row.host, row.command), []).append(
                    Asked(row.step, item, purpose, step.title, timeout)
                )
            if row.rollback:
                self.known.setdefault((row.host, row.rollback), []).append(
                    Asked(row.step, item, ROLLBACK, step.title, timeout)
                )

    def answer(self, host: ResolvedHost, command: str, shell: Shell) -> Answer:
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

    def _asked(self, host: str, command: str) -> Asked:
        """The step a command belongs to: of several, the first not yet done, else the last."""
        candidates = self.known.get((host, command))
        if not candidates:
            return Asked(None, None, COLLECT, "command", 300)
        steps = self.state.steps
        pending = [a for a in candidates if a.step and steps[a.step].status is Status.PENDING]
        return pending[0] if pending else candidates[-1]

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
