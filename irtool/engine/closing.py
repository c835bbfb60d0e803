"""What is still open when someone moves to close the incident.

Closing is the moment a block rule gets forgotten on a production server for a year. So
close lists, one line each, what a responder would be embarrassed to find later, and the
record keeps the reason anyone closed over it.
"""

from __future__ import annotations

from irtool.engine.state import AD_HOC, IncidentState, Status


def open_items(state: IncidentState, spooled: int = 0) -> list[str]:
    """One line per thing still open: containment applied, open action items, unanswered
    post-mortem questions, runs pending or interrupted, custody records still spooled."""
    items: list[str] = []
    for step, hosts in state.applied.items():
        if hosts:
            what = "ad-hoc change" if step.startswith(AD_HOC) else "containment"
            items.append(f"{what} '{step}' is still applied on {', '.join(sorted(hosts))}")
    for item in state.action_items:
        due = f", due {item.due}" if item.due else ""
        items.append(f"action item {item.seq} is open: {item.text} ({item.owner}{due})")
    from irtool.model.steps import PostmortemStep

    for step_state in state.steps.values():
        spec = state.runbook.step(step_state.id)
        if isinstance(spec, PostmortemStep) and step_state.status is not Status.SKIPPED:
            unanswered = [q for q in spec.questions if not step_state.answers.get(q)]
            if unanswered:
                items.append(
                    f"{len(unanswered)} post-mortem question(s) of '{step_state.id}' "
                    f"unanswered, first: {unanswered[0]}"
                )
    # The fold keeps the runs still open: unfinished, or interrupted and not run again since.
    for run in sorted(state.open_runs.values(), key=lambda r: r.seq):
        what = f"run {run.seq} of '{run.step or AD_HOC}' ({run.purpose})"
        if not run.finished:
            items.append(f"{what} has not finished")
        else:
            items.append(f"{what} was interrupted: its process ended first")
    if spooled:
        items.append(f"{spooled} custody record(s) wait in the spool (irtool incident recover)")
    return items
