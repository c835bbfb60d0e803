"""Where an exercise stands: its scenario, the exercise clock, the injects fired and handled.

Part of the incident's fold, so a reopened exercise knows which injects have
fired and whether its clock is paused. The exercise clock runs `speed` times
the wall clock and stands still while paused; injects are scheduled on it.
Journal times stay wall-clock times: the record is never compressed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from irtool.engine import kinds
from irtool.journal import Event
from irtool.journal.events import parse_moment

if TYPE_CHECKING:
    # Only an exercise reads its scenario: a live incident's write does not import it.
    from irtool.model.scenario import Scenario

FINISHING = (kinds.STEP_COMPLETED, kinds.STEP_SKIPPED, kinds.DECISION_MADE)


@dataclass
class FiredInject:
    id: str
    title: str
    to: str
    detail: str
    seq: int
    at: str  # wall clock, as recorded
    by: str
    why: str  # scheduled, or facilitator
    offset: timedelta  # on the exercise clock
    expect: list[str] = field(default_factory=list)
    handled_at: str | None = None
    handled_by: str | None = None
    handled_how: str = ""  # the responder's note, or the expected step that was finished
    handled_offset: timedelta | None = None


@dataclass
class Observation:
    seq: int
    at: str
    by: str
    text: str
    offset: timedelta


@dataclass
class ExerciseState:
    # The scenario as the opening event holds it; `scenario` is the model, made when first
    # read (an inject due, the facilitator's screen): the clock needs only its speed.
    scenario_data: dict[str, Any]
    generic: bool  # the scenario was made up for a runbook that ships none
    started: datetime
    fired: dict[str, FiredInject] = field(default_factory=dict)
    pauses: list[tuple[datetime, datetime | None]] = field(default_factory=list)  # wall clock
    observations: list[Observation] = field(default_factory=list)
    finished: dict[str, timedelta] = field(default_factory=dict)  # step -> exercise time
    _scenario: Scenario | None = field(default=None, repr=False, compare=False)

    @classmethod
    def opened(cls, event: Event) -> ExerciseState | None:
        source: dict[str, Any] | None = event.data.get("scenario")
        if not source:
            return None
        return cls(source["model"], bool(source.get("generic")), parse_moment(event.recorded_at))

    @property
    def scenario(self) -> Scenario:
        if self._scenario is None:
            from irtool.model.scenario import Scenario

            self._scenario = Scenario.model_validate(self.scenario_data)
        return self._scenario

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_scenario": None}  # a checkpoint keeps the data alone

    # -- the exercise clock --------------------------------------------------------

    @property
    def speed(self) -> float:
        said = self.scenario_data.get("speed")  # dumped with every default, so always there
        return float(said) if said is not None else self.scenario.speed

    @property
    def paused_at(self) -> datetime | None:
        """When the clock was paused, while it is."""
        if self.pauses and self.pauses[-1][1] is None:
            return self.pauses[-1][0]
        return None

    def paused_before(self, moment: datetime) -> timedelta:
        return sum(
            (min(end or moment, moment) - start for start, end in self.pauses if start < moment),
            timedelta(0),
        )

    def elapsed(self, moment: datetime) -> timedelta:
        """Exercise time at wall time `moment`: pauses before it left out, the rest sped up."""
        running = moment - self.started - self.paused_before(moment)
        return max(timedelta(0), running * self.speed)

    # -- the fold --------------------------------------------------------------------

    def apply(self, event: Event) -> None:
        moment = parse_moment(event.recorded_at)
        data = event.data
        if event.kind == kinds.INJECT_FIRED:
            self.fired[data["id"]] = FiredInject(
                data["id"],
                data["title"],
                data["to"],
                data.get("detail", ""),
                event.seq,
                event.recorded_at,
                event.actor,
                data.get("why", "scheduled"),
                self.elapsed(moment),
                list(data.get("expect", [])),
            )
        elif event.kind == kinds.INJECT_HANDLED:
            fired = self.fired.get(data["id"])
            if fired and fired.handled_at is None:
                self._handled(fired, event, data.get("note", ""), moment)
        elif event.kind in FINISHING and event.step:
            self.finished.setdefault(event.step, self.elapsed(moment))
            for fired in self.fired.values():
                if fired.handled_at is None and event.step in fired.expect:
                    self._handled(fired, event, f"step '{event.step}' finished", moment)
        elif event.kind == kinds.CLOCK_PAUSED and self.paused_at is None:
            self.pauses.append((moment, None))
        elif event.kind == kinds.CLOCK_RESUMED and self.paused_at is not None:
            self.pauses[-1] = (self.pauses[-1][0], moment)
        elif event.kind == kinds.OBSERVATION_RECORDED:
            self.observations.append(
                Observation(
                    event.seq, event.recorded_at, event.actor, data["text"], self.elapsed(moment)
                )
            )

    def _handled(self, fired: FiredInject, event: Event, how: str, moment: datetime) -> None:
        fired.handled_at, fired.handled_by = event.recorded_at, event.actor
        fired.handled_how, fired.handled_offset = how, self.elapsed(moment)

    def waiting(self) -> list[FiredInject]:
        """Injects fired and not yet handled: what the team still owes an answer to."""
        return [f for f in self.fired.values() if f.handled_at is None]
