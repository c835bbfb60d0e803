"""When a run finishes its step: a run that succeeded on every host the step targets (over
all its runs, for a --host re-run finishes what an earlier one began) completes it; anything
less is left to a person."""

from __future__ import annotations

from irtool.engine.refusal import Refused
from irtool.engine.runner_parts import RunnerParts
from irtool.engine.runreport import ACTION, COLLECT, ROLLBACK, RunReport
from irtool.engine.state import Status


class StepConclusion(RunnerParts):
    """The concluding half of Runner."""

    def _conclude(self, step_id: str, purpose: str, report: RunReport) -> bool:
        """A run that succeeded everywhere finishes its step; anything less is left to a person."""
        if report.failed or report.cancelled:
            return False
        state = self.session.state
        try:
            if purpose == ROLLBACK:
                if state.applied.get(step_id):
                    return False  # hosts outside this run still carry the action
                hosts = self._succeeded(step_id, ROLLBACK)
                self.session.record_rollback(
                    step_id, self.actor, f"rolled back on {len(hosts)} host(s)"
                )
            elif state.steps[step_id].status is Status.PENDING or (
                purpose == ACTION and state.steps[step_id].status is Status.ROLLED_BACK
            ):
                report.outstanding = self._outstanding(step_id, purpose)
                if report.outstanding:
                    return False  # a --host run: the step's other hosts are still to do
                # Over every run of the step: a --host re-run finishes what an earlier began.
                hosts = self._succeeded(step_id, purpose) & set(self.commands(step_id))
                verb = "collected from" if purpose == COLLECT else "applied on"
                runs = self._runs_of(step_id, purpose)
                over = f" over {runs} runs" if runs > 1 else ""
                self.session.complete(
                    step_id, self.actor, note=f"{verb} {len(hosts)} host(s){over}"
                )
            else:
                return False
        except Refused:
            return False
        return True

    def _runs_of(self, step_id: str, purpose: str) -> int:
        action = self.session.state.actions.get(step_id)
        since = action.request_seq if action and purpose != COLLECT else 0
        return sum(
            1
            for run in self.session.state.runs.values()
            if run.step == step_id and run.purpose == purpose and run.seq > since
        )

    def _succeeded(self, step_id: str, purpose: str) -> set[str]:
        """Hosts on which the step's commands succeeded, over every run of this application
        of it (since its latest request, for an action and its rollback)."""
        action = self.session.state.actions.get(step_id)
        since = action.request_seq if action and purpose != COLLECT else 0
        return {
            e.host
            for e in self.session.state.evidence
            if e.step == step_id and e.purpose == purpose and e.exit_status == 0 and e.seq > since
        }

    def _outstanding(self, step_id: str, purpose: str) -> list[str]:
        """Targeted hosts where some command of the step has not yet succeeded, over all runs."""
        action = self.session.state.actions.get(step_id)
        since = action.request_seq if action and purpose == ACTION else 0
        done = {
            (e.host, e.item)
            for e in self.session.state.evidence
            if e.step == step_id and e.purpose == purpose and e.exit_status == 0 and e.seq > since
        }
        return [
            host
            for host, rows in self.commands(step_id).items()
            if any((host, row.item) not in done for row in rows)
        ]
