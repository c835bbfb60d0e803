"""The after-action review of an exercise: the figures a team learns from, read off the journal.

Times are given on the exercise clock (pauses left out, the speed-up applied:
what the scenario's offsets mean) and on the wall clock (what the team took).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from irtool.engine.state import Evidence, IncidentState, Outcome, Status
from irtool.journal.events import parse_moment
from irtool.model.flow import following
from irtool.model.steps import DecisionStep, NotifyStep


@dataclass(frozen=True)
class Span:
    """How long from the start of the exercise until something happened."""

    exercise: timedelta
    wall: timedelta


@dataclass(frozen=True)
class Milestone:
    what: str
    span: Span | None  # None: it never happened
    detail: str = ""


@dataclass(frozen=True)
class InjectReview:
    id: str
    title: str
    to: str
    why: str
    fired: Span
    handled: Span | None
    how: str
    by: str | None

    @property
    def took(self) -> timedelta | None:
        """Exercise time from the inject to the team's answer."""
        return self.handled.exercise - self.fired.exercise if self.handled else None


@dataclass(frozen=True)
class Unanswered:
    role: str
    person: str
    outcome: str
    at: Span


@dataclass
class Review:
    scenario: str
    scenario_id: str
    speed: float
    paused: timedelta
    length: Span
    milestones: list[Milestone]
    skipped: list[tuple[str, str, str, str]]  # step, title, who, why
    # Steps a decision's route went past: never reached, so never done nor skipped.
    bypassed: list[tuple[str, str, str]]  # step, title, the route that went past it
    injects: list[InjectReview]
    not_fired: list[tuple[str, str]]  # id, title
    unanswered: list[Unanswered]
    unreached: list[str]  # roles no one was reached for
    observations: list[tuple[Span, str, str]] = field(default_factory=list)  # when, who, text


def review(state: IncidentState) -> Review:
    """The review as of the journal's last event: the same journal, the same review."""
    exercise = state.exercise
    if exercise is None:
        raise ValueError(
            f"incident {state.id} is live: only an exercise has an after-action review"
        )

    def span(at: str) -> Span:
        moment = parse_moment(at)
        return Span(exercise.elapsed(moment), moment - exercise.started)

    end = state.closed_at or state.last_at
    return Review(
        scenario=exercise.scenario.title,
        scenario_id=exercise.scenario.id,
        speed=exercise.speed,
        paused=exercise.paused_before(parse_moment(end)),
        length=span(end),
        milestones=_milestones(state, span),
        skipped=[
            (s.id, s.title, s.by or "", s.reason or "")
            for s in state.steps.values()
            if s.status is Status.SKIPPED
        ],
        bypassed=bypassed(state),
        injects=[
            InjectReview(
                f.id,
                f.title,
                f.to,
                f.why,
                span(f.at),
                span(f.handled_at) if f.handled_at else None,
                f.handled_how,
                f.handled_by,
            )
            for f in exercise.fired.values()
        ],
        not_fired=[
            (i.id, i.title) for i in exercise.scenario.injects if i.id not in exercise.fired
        ],
        unanswered=[
            Unanswered(tree.role, attempt.person, attempt.outcome.value, span(attempt.at))
            for tree in state.calls.values()
            for attempt in state.attempts(tree.role)
            if attempt.outcome is not Outcome.REACHED
        ],
        unreached=[role for role, tree in state.calls.items() if not tree.reached],
        observations=[(span(o.at), o.by, o.text) for o in exercise.observations],
    )


def _milestones(state: IncidentState, span: Callable[[str], Span]) -> list[Milestone]:
    activation = next(
        (spec for _, spec in state.runbook.steps() if isinstance(spec, NotifyStep)), None
    )
    activated: Milestone
    if activation is None:
        activated = Milestone("Team activated", None, "the runbook has no call-out step")
    else:
        step = state.steps[activation.id]
        activated = Milestone(
            "Team activated",
            span(step.at) if step.status is Status.DONE and step.at else None,
            f"step '{activation.id}' done" if step.status is Status.DONE else "not done",
        )
    evidence = next(
        (e for e in state.evidence if e.purpose == "collect" and e.exit_status == 0), None
    )
    return [
        activated,
        Milestone(
            "First evidence",
            span(evidence.at) if evidence else None,
            f"{evidence.step} / {evidence.item or evidence.step} on {evidence.host}"
            if evidence
            else "nothing collected",
        ),
        _containment(state.evidence, span),
    ]


def _containment(evidence: list[Evidence], span: Callable[[str], Span]) -> Milestone:
    """The first containment that held: an action applied and not rolled back on that host.
    A block applied and rolled back a minute later contained nothing; it is said, with when."""
    rollbacks = [e for e in evidence if e.purpose == "rollback" and e.exit_status == 0]

    def undone(action: Evidence) -> Evidence | None:
        return next(
            (
                r
                for r in rollbacks
                if r.step == action.step and r.host == action.host and r.seq > action.seq
            ),
            None,
        )

    applied = [e for e in evidence if e.purpose == "action" and e.exit_status == 0]
    held = next((a for a in applied if undone(a) is None), None)
    first = applied[0] if applied else None
    rolled_back = ""
    if first is not None and first is not held:
        back = undone(first)
        rolled_back = (
            f"{first.step or 'ad hoc'} on {first.host} applied at "
            f"{clock(span(first.at).exercise)}, rolled back at "
            f"{clock(span(back.at).exercise) if back else '?'}"
        )
    if held is None:
        detail = f"none held: {rolled_back}" if rolled_back else "nothing contained"
        return Milestone("First containment", None, detail)
    detail = f"{held.step or 'ad hoc'} on {held.host}"
    return Milestone(
        "First containment",
        span(held.at),
        detail + (f" (earlier, {rolled_back})" if rolled_back else ""),
    )


def bypassed(state: IncidentState) -> list[tuple[str, str, str]]:
    """Pending steps the flow can no longer reach: a decision's route went past them (the
    evidence phase, after "is this a compromise?" was answered "no"). Steps still ahead of
    the team are not among them."""
    after = following(state.runbook)
    order = list(state.steps)
    starts = {order[0]} if order else set()
    starts |= {s for s in order if state.steps[s].early}  # started before their turn
    seen, todo = set(starts), list(starts)
    while todo:
        step = state.steps[todo.pop()]
        spec = state.runbook.step(step.id)
        if isinstance(spec, DecisionStep):
            options = [o for o in spec.options if o.id == step.option] or spec.options
            targets = [o.next or after[step.id] for o in options]
        else:
            targets = [(spec.next if spec else None) or after[step.id]]
        for target in targets:
            if target and target in state.steps and target not in seen:
                seen.add(target)
                todo.append(target)
    found = []
    for step_id in order:
        step = state.steps[step_id]
        if step_id in seen or step.status is not Status.PENDING:
            continue
        found.append((step_id, step.title, _route_past(state, order.index(step_id))))
    return found


def _route_past(state: IncidentState, position: int) -> str:
    """The latest decision before the step whose chosen route jumped."""
    order = list(state.steps)
    for step_id in reversed(order[:position]):
        spec = state.runbook.step(step_id)
        step = state.steps[step_id]
        if isinstance(spec, DecisionStep) and step.option:
            chosen = next((o for o in spec.options if o.id == step.option), None)
            if chosen is not None and chosen.next:
                return f"'{step_id}' answered {chosen.label}, which goes to '{chosen.next}'"
    return "no route leads to it"


def clock(delta: timedelta | None) -> str:
    """T+h:mm:ss, as the header shows elapsed time."""
    if delta is None:
        return "–"
    seconds = int(delta.total_seconds())
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
