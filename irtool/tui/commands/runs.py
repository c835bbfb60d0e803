"""Runs: a collect step (r), an action after its confirmation (r), its rollback (b), and an
analyze step over what was collected (r).

An action goes through containment's confirmation first; what was confirmed there (the
reason, a second responder's approval) is recorded, then the run screen takes over."""

from __future__ import annotations

from irtool.engine.runner import Runner
from irtool.engine.session import Refused
from irtool.engine.state import Status
from irtool.model.steps import ActionStep, AnalyzeStep, CollectStep
from irtool.tui.commands import analysis
from irtool.tui.commands.command import Command, Incident
from irtool.tui.commands.hub import planner
from irtool.tui.commands.steps import reached
from irtool.tui.guard import guarded
from irtool.tui.screens.confirm import ConfirmAction, Confirmed
from irtool.tui.screens.run import RunRequest, RunScreen


def can_run(hub: Incident) -> bool | str:
    state, step = hub.state, hub.selected or ""
    spec = state.runbook.step(step)
    status = state.steps[step].status if step else None
    if isinstance(spec, CollectStep):
        # Evidence may be gathered ahead of the flow, and again once done.
        return status is not Status.SKIPPED
    if isinstance(spec, ActionStep):
        if status is Status.ROLLED_BACK:
            return True  # applied again, with a reason
        # Containment waits for the flow to reach it (or a start ahead of it, with a reason).
        return reached(hub) if status is Status.PENDING else False
    if isinstance(spec, AnalyzeStep):
        # Read-only, like collecting: ahead of the flow too, and again as logs arrive.
        return status is not Status.SKIPPED
    return False


def can_roll_back(hub: Incident) -> bool | str:
    spec = hub.state.runbook.step(hub.selected or "")
    return isinstance(spec, ActionStep) and bool(hub.state.applied.get(spec.id))


def run(hub: Incident) -> None:
    spec = hub.state.runbook.step(hub.selected or "")
    with guarded(hub.app):
        if isinstance(spec, CollectStep):
            per_host = planner(hub).commands(spec.id)
            start_run(hub, RunRequest(hub.state.id, spec.id, spec.title, list(per_host)))
        elif isinstance(spec, ActionStep):
            confirm(hub, spec, rollback=False)
        elif isinstance(spec, AnalyzeStep):
            analysis.analyze(hub, spec)


def rollback(hub: Incident) -> None:
    spec = hub.state.runbook.step(hub.selected or "")
    if isinstance(spec, ActionStep):
        with guarded(hub.app):
            confirm(hub, spec, rollback=True)


def confirm(
    hub: Incident, spec: ActionStep, rollback: bool, hosts: list[str] | None = None
) -> None:
    """Containment's confirmation for `hosts` (None: every host of the step), then the run."""
    if rollback:
        if not spec.reversible:
            raise Refused(f"action '{spec.id}' is irreversible: {spec.irreversible}")
        if hosts is None:
            hosts = list(hub.state.applied.get(spec.id, {}))
    runner: Runner = planner(hub)
    if not rollback and hosts is None:
        # Partly applied: the confirmation shows, and the run reaches, the hosts it is not
        # on yet; re-applying where it holds is the host picker's (R), with its warning.
        hosts = runner.unapplied_hosts(spec.id)
        if hosts == []:
            raise Refused(f"action '{spec.id}' is applied on every host already")
    per_host = runner.rollback_rows(spec.id, hosts) if rollback else runner.commands(spec.id, hosts)
    guessed = [host for host, rows in per_host.items() if rows[0].assumed]
    if guessed:
        # The exact command a host gets depends on what it is: not shown, not confirmed.
        raise Refused(
            f"which form of '{spec.id}' {', '.join(guessed)} get(s) depends on what they are "
            "(OS, PowerShell), not known yet: run a collect step on them first (first contact "
            f"asks), or: irtool incident facts {hub.state.id}"
        )

    def confirmed(result: Confirmed | None) -> None:
        if result is None:
            return
        with guarded(hub.app):
            if not rollback:
                authorise(hub, spec, result)
            request = RunRequest(
                hub.state.id,
                spec.id,
                spec.title,
                list(per_host),
                rollback,
                result.reason,
                put_back=result.put_back,
            )
            start_run(hub, request)

    def request(reason: str) -> None:
        # No second responder at this keyboard: the request is written now, so that one
        # elsewhere can approve it; the confirmation stays open and shows the approval.
        hub.write(lambda s: s.request_action(spec.id, hub.actor, reason))

    two_people = spec.approvals == 2 and not rollback
    screen = ConfirmAction(
        spec,
        per_host,
        rollback=rollback,
        actor=hub.actor,
        action=lambda: hub.state.actions.get(spec.id),
        exercise=hub.state.exercise is not None,
        request=request if two_people else None,
        approve_command=f"irtool incident approve {hub.state.id} {spec.id}",
    )
    hub.push(screen, confirmed)


def authorise(hub: Incident, spec: ActionStep, confirmed: Confirmed) -> None:
    """Record the two-person request and approval made at this keyboard."""
    if spec.approvals != 2:
        return
    action = hub.state.actions.get(spec.id)
    if action is None or action.rolled_back:
        hub.write(lambda s: s.request_action(spec.id, hub.actor, confirmed.reason))
    if confirmed.approver:
        hub.write(lambda s: s.approve(spec.id, confirmed.approver))
    action = hub.state.actions.get(spec.id)
    if action is None or not action.approvals:
        raise Refused(f"action '{spec.id}' waits for a second responder's approval")


def start_run(hub: Incident, request: RunRequest) -> None:
    """The run screen; when it is left, what the run wrote is folded in."""

    step = hub.state.steps.get(request.step)
    was = step.status if step else None

    def finished(report: object) -> None:
        hub.poll()
        now = hub.state.steps.get(request.step)
        # The run finished its step: the cursor moves on, so `r` does not run it again.
        if was is Status.PENDING and now and now.status is not Status.PENDING:
            hub.follow_on()

    hub.push(RunScreen(request, hub.actor, hub.transports, clock=hub.clock), finished)


COMMANDS = [
    Command("r", "run", "Run", run, can_run, "Run or apply on its hosts"),
    Command("b", "rollback", "Roll back", rollback, can_roll_back, "Undo an action"),
]
