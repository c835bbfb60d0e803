"""Learning what a host is (OS version and build, PowerShell, IIS) on its first contact.

A step's command may come in forms chosen by those facts (PowerShell 5.1, 2.0, cmd.exe
alone). The exact form a host gets must be known before anything is sent, and before a
responder confirms a containment: so a host's first contact in an incident is a read-only
probe, written for cmd.exe (a stock Server 2008 has no usable PowerShell) or sh, whose
answer is kept as evidence and recorded as a `host.facts` event. Facts the inventory states
are used until the host has spoken; where the two disagree, the event says so.
"""

from __future__ import annotations

from typing import Any

from irtool.engine import kinds
from irtool.engine.runner_parts import RunnerParts
from irtool.journal import EventDraft
from irtool.journal.events import utc_text
from irtool.model.facts import (
    LINUX_PROBE,
    WINDOWS_PROBE,
    parse_linux_probe,
    parse_windows_probe,
    said_nothing,
)
from irtool.model.inventory import OsFamily, ResolvedHost
from irtool.model.steps import ActionStep, CollectStep, Shell
from irtool.remote.base import Deadline, Failure, HostFailure
from irtool.remote.fanout import fan_out

PROBE_TIMEOUT_S = 60.0
PROBE_OUTPUT_LIMIT = 64 * 1024  # what is parsed; all of it is kept as evidence


class HostFactsLearning(RunnerParts):
    """The host-facts half of Runner."""

    def facts_unknown(self, step_id: str, hosts: list[str] | None = None) -> list[str]:
        """Hosts of the step that have not said what they are in this incident: a run asks
        them first. Only steps whose command comes in forms need to know beforehand."""
        state = self.session.state
        spec = state.runbook.step(step_id)
        if not isinstance(spec, CollectStep | ActionStep) or state.inventory is None:
            return []
        chosen = state.inventory.select(spec.targets)
        if hosts:
            chosen = [h for h in chosen if h in hosts]
        return [h for h in chosen if h not in state.facts]

    def learn_facts(self, hosts: list[str], reason: str = "first contact") -> dict[str, str]:
        """Ask each host what it is and record the answer; returns the hosts that could not
        be asked, with why (their runs then skip forms that need facts)."""
        state = self.session.state
        inventory = self._inventory(state)
        failed: dict[str, str] = {}
        said: dict[str, EventDraft] = {}
        names = [h for h in dict.fromkeys(hosts) if h in inventory.hosts]
        for outcome in fan_out(
            names,
            lambda name: self._probe(inventory.resolve(name), reason),
            cancel=self.cancel,
        ):
            if outcome.failure:
                failed[outcome.target] = str(outcome.failure)
                said[outcome.target] = EventDraft(
                    kinds.HOST_WARNING,
                    self.actor,
                    {"warning": f"could not learn what the host is: {outcome.failure}"},
                    host=outcome.target,
                )
            else:
                assert outcome.result is not None
                said[outcome.target] = outcome.result
                if outcome.result.kind == kinds.HOST_WARNING:
                    failed[outcome.target] = str(outcome.result.data["warning"])
        for name in names:  # in the inventory's order, whichever host answered first
            self._record(said[name])
        return failed

    def _probe(self, host: ResolvedHost, reason: str) -> EventDraft:
        stated = self._inventory(self.session.state).hosts[host.name].facts
        transport = self.transports.get(str(host.transport))
        if transport is None:
            raise HostFailure(Failure.ERROR, f"no {host.transport} transport in this run")
        deadline = Deadline(PROBE_TIMEOUT_S, self.cancel)
        windows = host.os is OsFamily.WINDOWS
        probe, shell = (WINDOWS_PROBE, Shell.CMD) if windows else (LINUX_PROBE, Shell.SH)
        began = self.clock()
        connection = transport.connect(host, deadline)
        writer = self.evidence.writer()
        heard: list[bytes] = []

        def said(_stream: str, data: bytes) -> None:
            writer.write(data)
            if sum(map(len, heard)) < PROBE_OUTPUT_LIMIT:
                heard.append(data)

        try:
            status = connection.run(probe, shell, deadline, said)
        except BaseException:
            writer.discard()  # no half-written file left behind for custody to wonder about
            raise
        finally:
            connection.close()
        kept = writer.commit()
        text = b"".join(heard).decode("utf-8", "replace")
        if status != 0 or said_nothing(text, windows):
            # Not facts: guesses from them would send a 2019 host its cmd.exe forms. What
            # it said is kept, with the warning, for a responder to read.
            return EventDraft(
                kinds.HOST_WARNING,
                self.actor,
                {
                    "warning": "could not learn what the host is: its answer to the facts "
                    f"probe could not be read (exit {status}); its facts stay unknown",
                    "output": kept.as_dict(),
                    "command": probe,
                    "shell": str(shell),
                },
                host=host.name,
            )
        facts = parse_windows_probe(text) if windows else parse_linux_probe(text)
        data: dict[str, Any] = {
            "facts": facts.model_dump(mode="json", exclude_none=True),
            "summary": facts.summary(),
            "source": "probe",
            "reason": reason,
            "transport": connection.transport_name,
            "identity": connection.identity,
            "shell": str(shell),
            "command": probe,
            "exit_status": status,
            "output": kept.as_dict(),
            "started_at": utc_text(began),
            "ended_at": utc_text(self.clock()),
            "collected_by": self.actor,
        }
        if stated is not None and stated != facts:
            data["inventory_said"] = stated.model_dump(mode="json", exclude_none=True)
        return EventDraft(kinds.HOST_FACTS, self.actor, data, host=host.name)
