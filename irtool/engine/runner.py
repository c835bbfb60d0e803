"""Running a collect or action step on its hosts, with every output kept as evidence.

The engine is handed transports by name (`ssh`, `winrm`, `local`; an exercise
hands it a simulated one) and never imports a concrete one. Each command's
output streams into the evidence store; once its files are durable, one
`command.ran` event records the chain of custody: host, identity seen,
transport, the exact command, start, end, exit status, sizes, hashes, and who
ran it. A host that fails, fails alone; the run goes on with the others.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from irtool.engine import kinds
from irtool.engine.adhoc import AdHocRuns
from irtool.engine.applying import ActionApplying
from irtool.engine.concluding import StepConclusion
from irtool.engine.custody_records import CustodyRecords
from irtool.engine.fetching import FileFetches
from irtool.engine.hostfacts import HostFactsLearning
from irtool.engine.refusal import no_step
from irtool.engine.runreport import (
    ACTION as ACTION,
)
from irtool.engine.runreport import (
    COLLECT as COLLECT,
)
from irtool.engine.runreport import (
    FETCH as FETCH,
)
from irtool.engine.runreport import (
    ROLLBACK as ROLLBACK,
)
from irtool.engine.runreport import (
    SETTLE_GRACE_S,
    command_custody,
)
from irtool.engine.runreport import (
    Command as Command,
)
from irtool.engine.runreport import (
    HostResult as HostResult,
)
from irtool.engine.runreport import (
    OnHostOutput as OnHostOutput,
)
from irtool.engine.runreport import (
    Progress as Progress,
)
from irtool.engine.runreport import (
    RunReport as RunReport,
)
from irtool.engine.session import IncidentSession, Refused
from irtool.engine.state import AD_HOC, IncidentState, Status
from irtool.evidence.store import EvidenceStore, EvidenceWriter, InFlight, Item
from irtool.journal import Event, EventDraft
from irtool.journal.events import utc_text
from irtool.journal.runlock import StepBusy, step_lock
from irtool.model.inventory import Inventory, ResolvedHost
from irtool.model.params import Parameter
from irtool.model.plan import FETCH_SHELL, PlanError, PlanRow, build_plan, parameters_used
from irtool.model.runbook import Runbook
from irtool.model.steps import ActionStep, CollectStep, Shell, StepBase
from irtool.remote.base import Cancel, Connection, Deadline, Failure, HostFailure, Transport
from irtool.remote.fanout import DEFAULT_POOL, fan_out
from irtool.secrets.redact import Redactor

# An ad-hoc command has no step to give it a timeout: this, unless the responder says.
AD_HOC_TIMEOUT_S = 300.0


class Runner(
    CustodyRecords, ActionApplying, AdHocRuns, FileFetches, StepConclusion, HostFactsLearning
):
    def __init__(
        self,
        session: IncidentSession,
        transports: Mapping[str, Transport],
        evidence: EvidenceStore,
        actor: str,
        *,
        redactor: Redactor | None = None,
        pool: int = DEFAULT_POOL,
        cancel: Cancel | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        on_output: OnHostOutput | None = None,
        on_warning: Callable[[str], None] | None = None,
        clock: Callable[[], datetime] | None = None,
        process: tuple[int, str] | None = None,
    ) -> None:
        self.session, self.transports, self.evidence = session, transports, evidence
        self.actor = actor
        self.redactor = redactor or Redactor()
        self.pool = pool
        self.cancel = cancel or Cancel()
        self.on_progress = on_progress or (lambda progress: None)
        self.on_output = on_output
        self.on_warning = on_warning or (lambda text: None)
        self.clock = clock or (lambda: datetime.now(UTC))
        # Which process on which machine runs: so a run whose process died can be told apart.
        self.process = process or (os.getpid(), socket.gethostname())
        # One journal, many host threads: appends take turns.
        self._lock = threading.Lock()
        # Once one custody record waits in the spool, the rest queue behind it, in order.
        self._spooled = 0
        self._spool_why = ""
        # Custody records waiting for the next group commit (custody_records.py).
        self._queued: list[Any] = []
        self._queued_lock = threading.Lock()
        self.ad_hoc_timeout = AD_HOC_TIMEOUT_S
        # A run asks for its step's commands to confirm, run and conclude it: the plan is
        # made again only when what it is made of changed (a host's facts, a parameter).
        self._planned: tuple[_PlanInputs, list[PlanRow]] | None = None
        self._used: dict[int, tuple[StepBase, list[str]]] = {}

    # -- what a run would do ------------------------------------------------------

    def _inventory(self, state: IncidentState) -> Inventory:
        if state.inventory is None:
            raise Refused(
                f"incident {state.id} was opened without an inventory: no host can be reached"
            )
        return state.inventory

    def missing_parameters(self, step_id: str) -> list[tuple[str, Parameter]]:
        """Parameters the step's commands use that nobody has set yet, in name order."""
        state = self.session.state
        spec = state.runbook.step(step_id)
        if spec is None:
            return []
        return [
            (name, state.runbook.parameters[name])
            for name in self._parameters_used(spec)
            if name in state.runbook.parameters and state.parameters.get(name) is None
        ]

    def _parameters_used(self, spec: StepBase) -> list[str]:
        # Parsing every template of a step is most of the cost of asking (a run asks four
        # times); the step's spec is immutable, and kept here so that its id stays its own.
        kept = self._used.get(id(spec))
        if kept is None or kept[0] is not spec:
            kept = self._used[id(spec)] = (spec, parameters_used(spec))
        return kept[1]

    def failed_hosts(self, step_id: str) -> list[str]:
        """Hosts of the step whose latest attempt failed: what "retry the failed" runs."""
        last: dict[str, bool] = {}
        for run in sorted(self.session.state.runs.values(), key=lambda r: r.seq):
            if run.step != step_id or run.purpose == ROLLBACK or not run.finished:
                continue
            for host in run.hosts:
                last[host] = host in run.failed or run.interrupted
        return sorted(host for host, failed in last.items() if failed)

    def unapplied_hosts(self, step_id: str) -> list[str] | None:
        """An action applied on some of its hosts (a --host run, or a run where some failed):
        the hosts it is not applied on yet, which is what a run without --host then reaches,
        so re-applying a partly failed action does not hit every host again. None: it is
        applied nowhere (or is not an action), and a run reaches all its hosts."""
        applied = self.session.state.applied.get(step_id)
        if not applied or not isinstance(self.session.state.runbook.step(step_id), ActionStep):
            return None
        return [host for host in self.commands(step_id) if host not in applied]

    def applied_hosts(self, step_id: str) -> list[str]:
        """Hosts where the action is applied now (not rolled back)."""
        return sorted(self.session.state.applied.get(step_id, {}))

    def _rows(
        self, state: IncidentState, pinned: Mapping[tuple[str, str], str] | None = None
    ) -> list[PlanRow]:
        inventory = self._inventory(state)
        made_of = _PlanInputs.of(state, inventory, pinned)
        if self._planned is not None and self._planned[0] == made_of:
            return self._planned[1]
        try:
            rows = build_plan(
                state.runbook,
                state.parameters,
                inventory,
                state.iocs,
                facts=state.host_facts(),
                incident=state.id,
                pinned=pinned,
            )
        except PlanError as bad:
            raise Refused("; ".join(bad.messages)) from None
        self._planned = (made_of, rows)
        return rows

    def commands(
        self,
        step_id: str,
        hosts: list[str] | None = None,
        pinned: Mapping[tuple[str, str], str] | None = None,
    ) -> dict[str, list[PlanRow]]:
        """The exact commands a run of `step_id` sends, per host: what a confirmation shows.
        `pinned`: (step, host) -> the variant to use whatever the facts say (a rollback's)."""
        state = self.session.state
        spec = state.runbook.step(step_id)
        if spec is None:
            raise no_step(state, step_id)
        if not isinstance(spec, CollectStep | ActionStep):
            raise Refused(
                f"step '{step_id}' is a {spec.type} step: only collect and action steps run"
            )
        missing = self.missing_parameters(step_id)
        if missing:
            name, param = missing[0]
            more = f" (and {', '.join(n for n, _ in missing[1:])})" if missing[1:] else ""
            raise Refused(
                f"step '{step_id}' needs parameter '{name}' ({param.type}){more}, not set yet: "
                f"irtool incident set {state.id} {name} VALUE --reason TEXT"
            )
        rows = self._rows(state, pinned)
        per_host: dict[str, list[PlanRow]] = {}
        for row in rows:
            if row.step == step_id and row.host:
                per_host.setdefault(row.host, []).append(row)
        if hosts:
            unknown = [h for h in hosts if h not in per_host]
            if unknown:
                raise Refused(
                    f"step '{step_id}' does not target {', '.join(unknown)} "
                    f"(its hosts: {', '.join(per_host) or 'none'})"
                )
            per_host = {h: per_host[h] for h in hosts}
        if not per_host:
            raise Refused(f"step '{step_id}' selects no host in this incident's inventory")
        return per_host

    # -- running --------------------------------------------------------------------

    def run(self, step_id: str, hosts: list[str] | None = None, reason: str = "") -> RunReport:
        """Run a collect step (again, if need be) or apply an action."""
        spec = self.session.state.runbook.step(step_id)
        purpose = ACTION if isinstance(spec, ActionStep) else COLLECT
        with self._only_run(step_id, purpose):
            if purpose == ACTION and not hosts:
                hosts = self.unapplied_hosts(step_id)
                if hosts == []:
                    raise Refused(f"action '{step_id}' is applied on every host already")
            if purpose == ACTION:  # what would refuse it, before any host is contacted
                self.check_apply(step_id, reason)
            # First contact: a host says what it is before any form of a command is chosen.
            unheard = self.learn_facts(self.facts_unknown(step_id, hosts))
            per_host = self.commands(step_id, hosts)
            if purpose == ACTION:
                assert isinstance(spec, ActionStep)
                self._ready_to_apply(spec, reason)
            work = {
                host: [to_command(row, unheard.get(host)) for row in rows]
                for host, rows in per_host.items()
            }
            status = self.session.state.steps[step_id].status
            report = self._run(step_id, purpose, work, reason)
            if status in (Status.DONE, Status.SKIPPED) and not report.completed_step:
                report.already = str(status)
            return report

    @contextmanager
    def _only_run(self, step_id: str, purpose: str) -> Iterator[None]:
        """One run of a step at a time, from any terminal; then the state as it now is."""
        try:
            with step_lock(self.session.directory, step_id, self.actor, purpose):
                # What a dead run spooled decides where an action stands: it goes in first.
                self.session.append_pending()
                self.session.refresh()
                yield
        except StepBusy as busy:
            raise Refused(str(busy)) from None

    def rollback(
        self,
        step_id: str,
        hosts: list[str] | None = None,
        reason: str = "",
        put_back: bool = False,
    ) -> RunReport:
        """Undo an action on its hosts; `put_back`: the responder confirmed a second time what
        an eradication's rollback restores."""
        with self._only_run(step_id, ROLLBACK):
            return self._rollback(step_id, hosts, reason, put_back)

    def _run(
        self,
        step_id: str | None,
        purpose: str,
        work: dict[str, list[Command]],
        reason: str,
        marks: dict[str, Any] | None = None,
    ) -> RunReport:
        """Run `work` on its hosts. `step_id` None: an ad-hoc command, whose `marks` (ad_hoc,
        its rollback) go in its run.started, and `ad_hoc` in every record of it."""
        state = self.session.state
        inventory = self._inventory(state)
        warnings = self._space_warnings()
        marks = marks or {}

        def start(state: IncidentState) -> EventDraft:
            if step_id is not None:
                step = state.steps[step_id]
                if purpose == COLLECT and step.status is Status.SKIPPED:
                    raise Refused(f"step '{step_id}' was skipped: {step.reason}")
                if purpose == ACTION:
                    if step.status not in (Status.PENDING, Status.ROLLED_BACK):
                        raise Refused(f"action '{step_id}' is already {step.status}")
                    if step.status is Status.PENDING and step_id not in state.available():
                        raise Refused(f"step '{step_id}' is not reachable yet")
            return EventDraft(
                kinds.RUN_STARTED,
                self.actor,
                self.redactor.data(
                    {
                        **marks,
                        "purpose": purpose,
                        "hosts": list(work),
                        "commands": sum(len(c) for c in work.values()),
                        "reason": reason,
                        "pid": self.process[0],
                        "machine": self.process[1],
                        **({"warnings": warnings} if warnings else {}),
                    }
                ),
                step=step_id,
            )

        started = self.session._write(start)
        for warning in warnings:
            self.on_warning(warning)
        self.session.spool.reserve()
        results = {host: HostResult(host) for host in work}
        for host in work:
            self.on_progress(Progress(host, "queued"))

        tagged = {"ad_hoc": True} if marks.get("ad_hoc") else {}
        if "undoes" in marks:
            tagged["undoes"] = marks["undoes"]

        def one_host(name: str) -> HostResult:
            return self._host(
                step_id,
                purpose,
                started,
                inventory.resolve(name),
                work[name],
                results[name],
                tagged,
            )

        for outcome in fan_out(list(work), one_host, pool=self.pool, cancel=self.cancel):
            result = results[outcome.target]
            if outcome.failure:
                result.failure = outcome.failure
                self._record(
                    EventDraft(
                        kinds.HOST_FAILED,
                        self.actor,
                        {
                            **tagged,
                            "run": started.seq,
                            "purpose": purpose,
                            "failure": str(outcome.failure.kind),
                            "reason": outcome.failure.reason,
                        },
                        step=step_id,
                        host=outcome.target,
                    )
                )
                self.on_progress(Progress(outcome.target, "failed", detail=str(outcome.failure)))
            else:
                codes = ", ".join(str(c) for c in result.exit_statuses)
                self.on_progress(Progress(outcome.target, "done", detail=f"exit {codes}"))
        report = RunReport(
            step_id or f"{AD_HOC}-{started.seq}", purpose, results, self.cancel.is_set()
        )
        self._record(
            EventDraft(
                kinds.RUN_FINISHED,
                self.actor,
                {
                    **tagged,
                    "run": started.seq,
                    "purpose": purpose,
                    "ok": sorted(h for h, r in results.items() if r.ok),
                    "failed": {h: r.why() for h, r in sorted(report.failed.items())},
                    "cancelled": report.cancelled,
                },
                step=step_id,
            )
        )
        self._settle(time.monotonic() + self._timeout(step_id) + SETTLE_GRACE_S)
        if self._spooled:
            report.pending, report.pending_why = self._spooled, self._spool_why
            return report  # the step's state cannot be decided before its records are in
        if step_id is not None:
            report.completed_step = self._conclude(step_id, purpose, report)
        return report

    # -- one host ---------------------------------------------------------------------

    def _host(
        self,
        step_id: str | None,
        purpose: str,
        started: Event,
        host: ResolvedHost,
        commands: list[Command],
        result: HostResult,
        tagged: dict[str, Any],
    ) -> HostResult:
        timeout = self._timeout(step_id)
        deadline = Deadline(timeout, self.cancel)
        deadline.check()
        transport = self.transports.get(str(host.transport))
        if transport is None:
            raise HostFailure(Failure.ERROR, f"no {host.transport} transport in this run")
        # A collector no form of which fits the host is not sent; the others still are (a
        # Server 2008 without PowerShell gets its cmd.exe collectors, not the fetches).
        runnable = [c for c in commands if not c.unfit]
        if not runnable:
            raise HostFailure(Failure.ERROR, str(commands[0].unfit))
        for skipped in (c for c in commands if c.unfit):
            what = f"{skipped.item} not run here" if skipped.item else "not run here"
            self._record(
                EventDraft(
                    kinds.HOST_WARNING,
                    self.actor,
                    {**tagged, "run": started.seq, "warning": f"{what}: {skipped.unfit}"},
                    step=step_id,
                    host=host.name,
                )
            )
        commands = runnable
        self.on_progress(Progress(host.name, "connecting"))
        connection = transport.connect(host, deadline)
        try:
            for warning in connection.warnings:
                self._record(
                    EventDraft(
                        kinds.HOST_WARNING,
                        self.actor,
                        {**tagged, "run": started.seq, "warning": warning},
                        step=step_id,
                        host=host.name,
                    )
                )
            flight = self._in_flight(step_id, purpose, started, connection, commands)
            try:
                for index, command in enumerate(commands):
                    run_one = self._fetch_files if command.fetch else self._one
                    run_one(
                        step_id, purpose, started, connection, command, deadline, result,
                        flight.start(index), tagged,
                    )  # fmt: skip
            except HostFailure:
                flight.done()  # raised once the command's record was safe
                raise
            flight.done()
        finally:
            connection.close()
        return result

    def _in_flight(
        self,
        step_id: str | None,
        purpose: str,
        started: Event,
        connection: Connection,
        commands: list[Command],
    ) -> InFlight:
        """The marker that lets a later process keep this host's output as evidence, should
        this one die mid-run (what a record of the host's commands needs, redacted)."""
        host = connection.host
        facts = {
            "run": started.seq,
            "step": step_id,
            "host": host.name,
            "purpose": purpose,
            "transport": connection.transport_name,
            "address": host.address,
            "port": host.port,
            "identity": connection.identity,
            "collected_by": self.actor,
        }
        return self.evidence.in_flight(
            self.redactor.data(facts),
            [
                self.redactor.data(
                    {
                        "item": c.item,
                        "shell": str(c.shell),
                        "command": c.command,
                        # Which form: a rollback of an interrupted apply is pinned to it.
                        **({"variant": c.variant} if c.variant else {}),
                    }
                )
                for c in commands
            ],
        )

    def _timeout(self, step_id: str | None) -> float:
        if step_id is None:
            return self.ad_hoc_timeout
        spec = self.session.state.runbook.step(step_id)
        return float(getattr(spec, "timeout", AD_HOC_TIMEOUT_S))

    def _one(
        self,
        step_id: str | None,
        purpose: str,
        started: Event,
        connection: Connection,
        command: Command,
        deadline: Deadline,
        result: HostResult,
        writers: dict[str, EvidenceWriter],
        tagged: dict[str, Any],
    ) -> None:
        host = connection.host
        began = self.clock()
        facts = command_custody(tagged, started, purpose, connection, command, began, self.actor)
        received = 0

        def on_output(stream: str, data: bytes) -> None:
            nonlocal received
            writers[stream].write(data)
            received += len(data)
            if self.on_output:
                self.on_output(host.name, stream, data)
            self.on_progress(Progress(host.name, "running", command.item, received))

        failure: HostFailure | None = None
        status: int | None = None
        self.on_progress(Progress(host.name, "running", command.item, 0))
        try:
            status = connection.run(command.command, command.shell, deadline, on_output)
        except HostFailure as failed:
            failure = failed
        except Exception as broken:
            failure = HostFailure(Failure.ERROR, f"{type(broken).__name__}: {broken}")
        finally:
            kept = {stream: writer.commit() for stream, writer in writers.items()}
        lost = _incomplete(kept)
        if lost and failure is None:
            failure = HostFailure(Failure.ERROR, f"the evidence could not be kept whole: {lost}")
        result.exit_statuses.append(status)
        result.items.append(command.item)
        self._record(
            EventDraft(
                kinds.COMMAND_RAN,
                self.actor,
                {
                    **facts,
                    "ended_at": utc_text(self.clock()),
                    "exit_status": status,
                    "failure": str(failure) if failure else None,
                    **{stream: item.as_dict() for stream, item in kept.items()},
                },
                step=step_id,
                host=host.name,
            )
        )
        if failure:
            raise failure


@dataclass(frozen=True, eq=False)
class _PlanInputs:
    """What a plan is made of, as it was: equal inputs make the same plan. The runbook and
    the inventory are compared by identity (the state replaces, never edits, them); the
    rest by value, copied, since the state edits its dicts and lists in place."""

    runbook: Runbook
    inventory: Inventory
    values: tuple[Any, ...]

    @classmethod
    def of(
        cls,
        state: IncidentState,
        inventory: Inventory,
        pinned: Mapping[tuple[str, str], str] | None,
    ) -> _PlanInputs:
        values = (
            state.id,
            {k: tuple(v) if isinstance(v, list) else v for k, v in state.parameters.items()},
            {k: tuple(v) for k, v in state.iocs.items()},
            state.host_facts(),
            dict(pinned or {}),
        )
        return cls(state.runbook, inventory, values)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, _PlanInputs)
            and self.runbook is other.runbook
            and self.inventory is other.inventory
            and self.values == other.values
        )

    def __hash__(self) -> int:
        return id(self.runbook)


def to_command(row: PlanRow, unheard: str | None = None) -> Command:
    """What a plan row sends. A host whose facts could not be learned gets no form that was
    only assumed for it; one no form fits gets none: both fail alone, saying why."""
    unfit = row.unfit
    if unfit is None and row.assumed:
        unfit = (
            f"which form of this step fits is not known: the host did not say what it is "
            f"({unheard or 'not asked'})"
        )
    return Command(
        row.item,
        row.command or "",
        Shell.SH if row.shell in (None, FETCH_SHELL) else Shell(row.shell),
        variant=row.variant,
        unfit=unfit,
        fetch=row.fetch,
    )


def _incomplete(kept: dict[str, Item]) -> str | None:
    """What could not be kept, in a responder's words, or None."""
    said = [
        f"{stream}: {item.error} (kept {item.size} of {item.received} bytes)"
        for stream, item in kept.items()
        if item.incomplete
    ]
    return "; ".join(said) or None
