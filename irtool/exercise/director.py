"""The scenario's schedule: which injects are due on the exercise clock, and firing them.

Faces call `tick` often (the terminal UI every second, each headless command
once): due injects fire in the order of their due time, then of the
scenario. Firing goes through the session, so two terminals ticking at once
fire each inject once; the loser's refusal is expected and ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from irtool.engine.session import IncidentSession, Refused
from irtool.engine.state import IncidentState
from irtool.exercise.review import clock
from irtool.journal import Event
from irtool.model.scenario import Inject


@dataclass(frozen=True)
class Scheduled:
    inject: Inject
    due: timedelta | None  # on the exercise clock; None: its step is not finished yet


def schedule(state: IncidentState) -> list[Scheduled]:
    """The injects still to fire, soonest first; those waiting on a step last."""
    exercise = state.exercise
    if exercise is None:
        return []
    planned: list[tuple[timedelta, int, Scheduled]] = []
    waiting: list[Scheduled] = []
    for index, inject in enumerate(exercise.scenario.injects):
        if inject.id in exercise.fired:
            continue
        if inject.at is not None:
            due: timedelta | None = inject.at
        elif inject.after in exercise.finished:
            due = exercise.finished[inject.after] + inject.delay
        else:
            due = None
        if due is None:
            waiting.append(Scheduled(inject, None))
        else:
            planned.append((due, index, Scheduled(inject, due)))
    return [s for _, _, s in sorted(planned, key=lambda p: (p[0], p[1]))] + waiting


def due(state: IncidentState, now: datetime) -> list[Inject]:
    """Injects whose time has come; none while the clock is paused."""
    exercise = state.exercise
    if exercise is None or exercise.paused_at is not None:
        return []
    clock = exercise.elapsed(now)
    return [s.inject for s in schedule(state) if s.due is not None and s.due <= clock]


def tick(session: IncidentSession, actor: str, now: datetime) -> list[Event]:
    """Fire whatever is due; returns the inject events written by this call."""
    session.refresh()
    fired: list[Event] = []
    for inject in due(session.state, now):
        try:
            fired.append(session.fire_inject(inject.id, actor, why="scheduled"))
        except Refused:
            continue  # another terminal fired it a moment ago
    return fired


def status(state: IncidentState, now: datetime) -> dict[str, Any]:
    """The exercise clock, the injects fired (and whether handled) and those still to come."""
    exercise = state.exercise
    assert exercise is not None
    return {
        "scenario": exercise.scenario.id,
        "speed": exercise.speed,
        "clock": clock(exercise.elapsed(now)),
        "paused": exercise.paused_at is not None,
        "fired": [
            {
                "id": f.id,
                "to": f.to,
                "title": f.title,
                "at": clock(f.offset),
                "why": f.why,
                "handled": clock(f.handled_offset) if f.handled_at else None,
                "how": f.handled_how,
            }
            for f in exercise.fired.values()
        ],
        "coming": [
            {
                "id": s.inject.id,
                "to": s.inject.to,
                "title": s.inject.title,
                "due": clock(s.due) if s.due is not None else f"after {s.inject.after}",
            }
            for s in schedule(state)
        ],
    }
