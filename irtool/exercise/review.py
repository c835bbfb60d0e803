"""The after-action review of an exercise: the figures a team learns from, read off the journal.

Times are given on the exercise clock (pauses left out, the speed-up applied:
what the scenario's offsets mean) and on the wall clock (what the team took).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from irtool.engine.state import IncidentState, Outcome, Status
from irtool.journal.events import parse_moment
from irtool.model.steps import NotifyStep


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
            for attempt in tree.attempts
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
    contained = next(
        (e for e in state.evidence if e.purpose == "action" and e.exit_status == 0), None
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
        Milestone(
            "First containment",
            span(contained.at) if contained else None,
            f"{contained.step} on {contained.host}" if contained else "nothing contained",
        ),
    ]


def clock(delta: timedelta | None) -> str:
    """T+h:mm:ss, as the header shows elapsed time."""
    if delta is None:
        return "–"
    seconds = int(delta.total_seconds())
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
