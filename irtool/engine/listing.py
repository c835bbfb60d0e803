"""Every incident under the data directory, in a line each: for `incident list` and the home
screen alike."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from irtool.engine.session import IncidentSession, Refused
from irtool.journal import JournalError
from irtool.journal.backends import every_incident


@dataclass(frozen=True)
class IncidentSummary:
    id: str
    mode: str = ""
    title: str = ""
    runbook: str = ""
    opened_at: str = ""
    commander: str = ""
    closed: bool = False
    problem: str = ""  # why the journal could not be read; the rest is then empty

    def as_dict(self) -> dict[str, Any]:
        if self.problem:
            return {"id": self.id, "error": self.problem}
        data = asdict(self)
        del data["problem"]
        return data


def list_incidents() -> list[IncidentSummary]:
    """Oldest first; an unreadable journal is listed with why, not skipped."""
    rows = []
    for incident in every_incident():
        try:
            session = IncidentSession.open(incident)
        except (Refused, JournalError) as exc:
            rows.append(IncidentSummary(incident, problem=str(exc)))
            continue
        state = session.state
        session.close_journal()
        rows.append(
            IncidentSummary(
                state.id,
                state.mode,
                state.title,
                state.runbook.id,
                state.opened_at,
                state.commander,
                state.closed,
            )
        )
    return rows
