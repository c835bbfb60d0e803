"""Which journal an incident has: this machine's SQLite file, or the team's database.

An incident is the team's when its directory is marked so (team.TEAM_MARK), or when this
machine works in team mode (IRTOOL_DATABASE) and holds no incident of that id of its own. One
that lives on this machine alone stays so, whatever the mode: a responder who points irtool
at a server does not lose the incidents they had.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from irtool.journal.database import checked, team_url
from irtool.journal.incidents import (
    create_incident_dir,
    incident_dir,
    incident_ids,
    journal_path,
)
from irtool.journal.protocol import IncidentJournal
from irtool.journal.store import Journal, JournalError
from irtool.journal.team import TEAM_MARK, TeamJournal

Clock = Callable[[], datetime]


def is_team(incident: str) -> bool:
    if (incident_dir(incident) / TEAM_MARK).exists():
        return True
    return team_url() is not None and not journal_path(incident).exists()


def open_journal(incident: str, *, clock: Clock | None = None) -> IncidentJournal:
    """The journal of an existing incident; JournalError when there is none. A team
    incident with no database given here is this machine's copy, worked offline."""
    if is_team(incident):
        url = team_url()
        return TeamJournal(checked(url) if url else None, incident, clock=clock)
    path = journal_path(incident)
    if not path.exists():
        raise JournalError(f"no incident {incident}")
    return Journal(path, incident, clock=clock)


def new_journal(incident: str, *, clock: Clock | None = None) -> IncidentJournal:
    """The journal of a new incident: in the team's database in team mode (refused when it
    cannot be reached: an incident is opened where the team can see it), else here."""
    url = team_url()
    if url is not None:
        return TeamJournal(checked(url), incident, create=True, clock=clock)
    create_incident_dir(incident)
    return Journal(journal_path(incident), incident, create=True, clock=clock)


def every_incident() -> list[str]:
    """The incidents this machine holds and, in team mode, those the team's database holds
    (which this machine copies when one is opened); this machine's alone when the database
    cannot be reached."""
    here = set(incident_ids())
    url = team_url()
    if url is not None:
        from irtool.journal.postgres import team_incidents

        try:
            with checked(url).connect() as db:
                here.update(team_incidents(db))
        except JournalError:
            pass  # listed as this machine has them; opening one says why the rest is missing
    return sorted(here)
