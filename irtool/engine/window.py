"""Which times a responder may give: when something happened, and when the team reconvenes.

One definition for every face (`note --at`, `correct --at`, `reconvene`, `adjourn
--reconvene`, the terminal UI's forms): a mistyped year (a note dated next year, a reconvene
in 2020 that showed OVERDUE 60763:07:25) is refused with the window it missed, instead of
bending the timeline and the header for good.

"Now" is the writer's clock, but never earlier than the latest event recorded: a writer whose
clock is behind must not have a true time refused as "in the future".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from irtool.engine.state import IncidentState
from irtool.journal.events import parse_moment, utc_text

# Ahead of now: clocks of the responders' machines differ by seconds, a typed time is rounded
# to the minute; five minutes covers both. Anything later has not happened yet.
AHEAD_OF_NOW = timedelta(minutes=5)
# Before the opening: an incident is often opened well after the attack began, and a note may
# be back-dated to its first trace in a log (intrusions found months later are common). A year
# takes those in and still refuses a mistyped year.
BEFORE_OPENING = timedelta(days=366)
# A reconvene time ahead: the standing agenda sets the next meeting hours ahead; a month is the
# farthest an incident's next meeting is planned. Behind: as far back as any event may be
# dated, because a meeting's minutes are often entered after it (at 06:00 the scribe records
# that the 04:00 meeting set 05:00), and an incident may be written up after the fact.
RECONVENE_AHEAD = timedelta(days=30)


@dataclass(frozen=True)
class Window:
    earliest: datetime
    latest: datetime
    why: str  # what the bounds are, in the responder's words

    def problem(self, what: str, moment: datetime) -> str | None:
        """Why `moment` is refused for `what`, with the window it missed; None when inside."""
        if self.earliest <= moment <= self.latest:
            return None
        return (
            f"{what} {utc_text(moment)} is implausible: it must fall between "
            f"{utc_text(self.earliest)} and {utc_text(self.latest)} ({self.why})"
        )


def _now(state: IncidentState, clock: datetime) -> datetime:
    latest = parse_moment(state.last_at) if state.last_at else clock
    return max(clock, latest)


def occurred(state: IncidentState, clock: datetime) -> Window:
    """When an event may be said to have happened (`note --at`, `correct --at`)."""
    return Window(
        parse_moment(state.opened_at) - BEFORE_OPENING,
        _now(state, clock) + AHEAD_OF_NOW,
        "a year before the incident opened to 5 minutes from now",
    )


def reconvene(state: IncidentState, clock: datetime) -> Window:
    """When the team may be set to meet again (`reconvene`, `adjourn --reconvene`)."""
    return Window(
        parse_moment(state.opened_at) - BEFORE_OPENING,
        _now(state, clock) + RECONVENE_AHEAD,
        "a year before the incident opened to 30 days from now",
    )
