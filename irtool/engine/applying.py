"""Applying an action and rolling it back: the checks before anyone is asked to confirm (a
reason, the second responder's approval) and the rollback run on the hosts it was applied to."""

from __future__ import annotations

from irtool.engine.refusal import Refused, no_step
from irtool.engine.runner_parts import RunnerParts
from irtool.engine.runreport import ROLLBACK, Command, RunReport
from irtool.model.plan import PlanRow
from irtool.model.steps import ActionStep, Shell


class ActionApplying(RunnerParts):
    """The action half of Runner."""

    def _rollback(
        self, step_id: str, hosts: list[str] | None, reason: str, put_back: bool = False
    ) -> RunReport:
        state = self.session.state
        spec = state.runbook.step(step_id)
        if spec is None:
            raise no_step(state, step_id)
        if not isinstance(spec, ActionStep):
            raise Refused(f"step '{step_id}' is not an action")
        if not spec.reversible:
            raise Refused(f"action '{step_id}' is irreversible: {spec.irreversible}")
        if spec.rollback_puts_back and not put_back:
            raise Refused(put_back_refusal(spec))
        per_host = self.rollback_rows(step_id, hosts)
        unfit = {host: rows[0].unfit for host, rows in per_host.items() if not rows[0].rollback}
        if unfit:
            raise Refused(
                f"action '{step_id}' has no way back on "
                + "; ".join(
                    f"{h} ({why or 'its form has no rollback'})" for h, why in unfit.items()
                )
            )
        work = {
            host: [
                Command(None, row.rollback or "", Shell(row.shell or "sh"), variant=row.variant)
                for row in rows[:1]
            ]
            for host, rows in per_host.items()
        }
        return self._run(step_id, ROLLBACK, work, reason)

    def rollback_rows(
        self, step_id: str, hosts: list[str] | None = None
    ) -> dict[str, list[PlanRow]]:
        """What a rollback of `step_id` runs, per host it is applied on (`hosts`: only those):
        the rollback of the form applied there, whatever the host's facts say now. What a
        confirmation shows, and what runs."""
        state = self.session.state
        applied = list(state.applied.get(step_id, {}))
        if not applied:
            raise Refused(f"action '{step_id}' is not applied on any host: nothing to roll back")
        chosen = [h for h in applied if not hosts or h in hosts]
        if hosts and (missing := [h for h in hosts if h not in applied]):
            raise Refused(f"action '{step_id}' is not applied on {', '.join(missing)}")
        applied_with = {e.seq: e.variant for e in state.evidence if e.step == step_id}
        pinned = {
            (step_id, host): variant
            for host, seq in state.applied.get(step_id, {}).items()
            if (variant := applied_with.get(seq))
        }
        return self.commands(step_id, chosen, pinned=pinned)

    def check_apply(self, step_id: str, reason: str) -> list[str]:
        """Refuse now, before anyone is asked to confirm, what `run` would refuse; returns the
        approvals the action has (for the confirmation to show). Writes nothing."""
        self.session.refresh()
        state = self.session.state
        spec = state.runbook.step(step_id)
        if spec is None:
            raise no_step(state, step_id)
        if not isinstance(spec, ActionStep):
            raise Refused(f"step '{step_id}' is not an action")
        action = state.actions.get(step_id)
        pending = action is None or action.rolled_back
        if spec.approvals == 2:
            if pending:
                raise Refused(
                    f"action '{step_id}' needs two people: request it "
                    f"(irtool incident request) and have a second responder approve it first"
                )
            assert action is not None
            if not action.approvals:
                raise Refused(
                    f"action '{step_id}' was requested by {action.requested_by} and waits for "
                    f"a second responder's approval"
                )
            return [action.requested_by, *action.approvals]
        if pending and not reason.strip():
            raise Refused(f"applying '{step_id}' needs a reason (--reason)")
        return [action.requested_by] if action and not pending else []

    def _ready_to_apply(self, spec: ActionStep, reason: str) -> None:
        self.check_apply(spec.id, reason)
        action = self.session.state.actions.get(spec.id)
        if spec.approvals == 1 and (action is None or action.rolled_back):
            self.session.request_action(spec.id, self.actor, reason)


def put_back_refusal(spec: ActionStep) -> str:
    """Why a rollback of an eradication waits for a second confirmation, and how to give it."""
    return (
        f"rolling back '{spec.id}' puts back {spec.rollback_puts_back}. If that is what you "
        "mean, confirm it a second time (irtool incident rollback ... --put-back; the UI asks)"
    )
