"""The team's meetings: the standing agenda's meeting opened and adjourned, and when the team
reconvenes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from irtool.engine import kinds, window
from irtool.engine.refusal import Refused, check_responder
from irtool.engine.state import IncidentState
from irtool.journal import Event, EventDraft
from irtool.journal.events import utc_text
from irtool.journal.protocol import IncidentJournal


class MeetingCommands:
    """Commands of IncidentSession about meetings (which provides what is declared here)."""

    journal: IncidentJournal

    def _write(
        self, decide: Callable[[IncidentState], EventDraft], *, after_close: bool = False
    ) -> Event:
        raise NotImplementedError  # IncidentSession's

    @staticmethod
    def _within(allowed: window.Window, what: str, moment: datetime) -> None:
        raise NotImplementedError  # IncidentSession's

    def open_meeting(self, step: str, actor: str) -> Event:
        def decide(state: IncidentState) -> EventDraft:
            from irtool.model.steps import AgendaStep

            if not isinstance(state.runbook.step(step), AgendaStep):
                raise Refused(f"step '{step}' is not an agenda step")
            if state.meeting:
                raise Refused(f"the meeting of '{state.meeting}' is still open")
            return EventDraft(kinds.MEETING_OPENED, actor, {}, step=step)

        return self._write(decide)

    def close_meeting(
        self,
        actor: str,
        outcomes: dict[str, str] | None = None,
        reconvene_at: datetime | None = None,
    ) -> Event:
        def decide(state: IncidentState) -> EventDraft:
            check_responder(actor)
            if not state.meeting:
                raise Refused("no meeting is open")
            if reconvene_at is not None:
                self._within(
                    window.reconvene(state, self.journal.now()), "the reconvene time", reconvene_at
                )
            from irtool.model.steps import AgendaStep

            spec = state.runbook.step(state.meeting)
            topics = [t.id for t in spec.topics] if isinstance(spec, AgendaStep) else []
            stray = [t for t in outcomes or {} if t not in topics]
            if stray:
                raise Refused(
                    f"the agenda of '{state.meeting}' has no topic '{stray[0]}' "
                    f"({', '.join(topics)})"
                )
            return EventDraft(
                kinds.MEETING_CLOSED,
                actor,
                {
                    "outcomes": outcomes or {},
                    "reconvene_at": utc_text(reconvene_at) if reconvene_at else None,
                },
                step=state.meeting,
            )

        return self._write(decide)

    def set_reconvene(self, at: datetime, actor: str) -> Event:
        def decide(state: IncidentState) -> EventDraft:
            check_responder(actor)
            self._within(window.reconvene(state, self.journal.now()), "the reconvene time", at)
            return EventDraft(kinds.RECONVENE_SET, actor, {"at": utc_text(at)})

        return self._write(decide)
