"""The facilitator's commands of an exercise: injects, the exercise clock, observations."""

from __future__ import annotations

from collections.abc import Callable

from irtool.engine import kinds
from irtool.engine.exercise import ExerciseState
from irtool.engine.refusal import Refused
from irtool.engine.state import IncidentState
from irtool.journal import Event, EventDraft


class ExerciseCommands:
    """Commands of IncidentSession that only an exercise takes."""

    def _write(
        self, decide: Callable[[IncidentState], EventDraft], *, after_close: bool = False
    ) -> Event:
        raise NotImplementedError  # IncidentSession's

    def _exercise(self, state: IncidentState) -> ExerciseState:
        if state.exercise is None:
            raise Refused(
                f"incident {state.id} is live: injects and the exercise clock are for exercises"
            )
        return state.exercise

    def fire_inject(
        self,
        inject_id: str,
        actor: str,
        why: str = "facilitator",
        *,
        title: str = "",
        to: str = "",
        detail: str = "",
    ) -> Event:
        """Fire one of the scenario's injects, or (with a title and a role) one made up now."""

        def decide(state: IncidentState) -> EventDraft:
            exercise = self._exercise(state)
            if inject_id in exercise.fired:
                fired = exercise.fired[inject_id]
                raise Refused(
                    f"inject '{inject_id}' already fired at {fired.at} (event {fired.seq})"
                )
            planned = exercise.scenario.inject(inject_id)
            if planned is None and not (title.strip() and to.strip()):
                ids = ", ".join(i.id for i in exercise.scenario.injects) or "none"
                raise Refused(
                    f"no inject '{inject_id}' in the scenario (injects: {ids}); "
                    "a new one needs a title and a role to send it to"
                )
            if to and to not in state.runbook.roles:
                raise Refused(
                    f"no role '{to}' in this incident (roles: {', '.join(state.runbook.roles)})"
                )
            return EventDraft(
                kinds.INJECT_FIRED,
                actor,
                {
                    "id": inject_id,
                    "title": title or (planned.title if planned else ""),
                    "to": to or (planned.to if planned else ""),
                    "detail": detail or (planned.detail if planned else ""),
                    "expect": list(planned.expect) if planned else [],
                    "why": why,
                },
            )

        return self._write(decide)

    def handle_inject(self, inject_id: str, actor: str, note: str) -> Event:
        """A responder records how the team answered an inject; the clock for it stops."""

        def decide(state: IncidentState) -> EventDraft:
            fired = self._exercise(state).fired.get(inject_id)
            if fired is None:
                raise Refused(f"inject '{inject_id}' has not fired")
            if fired.handled_at:
                raise Refused(
                    f"inject '{inject_id}' was handled at {fired.handled_at}: {fired.handled_how}"
                )
            if not note.strip():
                raise Refused("say how the inject was handled")
            return EventDraft(kinds.INJECT_HANDLED, actor, {"id": inject_id, "note": note})

        return self._write(decide)

    def pause_clock(self, actor: str, reason: str = "") -> Event:
        def decide(state: IncidentState) -> EventDraft:
            if self._exercise(state).paused_at is not None:
                raise Refused("the exercise clock is already paused")
            return EventDraft(kinds.CLOCK_PAUSED, actor, {"reason": reason})

        return self._write(decide)

    def resume_clock(self, actor: str) -> Event:
        def decide(state: IncidentState) -> EventDraft:
            if self._exercise(state).paused_at is None:
                raise Refused("the exercise clock is running")
            return EventDraft(kinds.CLOCK_RESUMED, actor, {})

        return self._write(decide)

    def observe(self, text: str, actor: str) -> Event:
        """The facilitator's observation, for the after-action review."""

        def decide(state: IncidentState) -> EventDraft:
            self._exercise(state)
            if not text.strip():
                raise Refused("an observation needs text")
            return EventDraft(kinds.OBSERVATION_RECORDED, actor, {"text": text})

        return self._write(decide)
