"""What a live command needs of the screen it is started from: the session, who is at the
keyboard, and the screen's own ways to write an event and to start a run.

A protocol, not the incident screen itself: the command modules never import that screen, so
the screens do not import each other in circles."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from textual.app import App

from irtool.engine.runner import Runner
from irtool.engine.session import IncidentSession
from irtool.engine.state import IncidentState
from irtool.evidence.store import EvidenceStore
from irtool.journal import Event
from irtool.journal.incidents import EVIDENCE_DIR, incident_dir
from irtool.model.steps import ActionStep
from irtool.tui.screens.confirm import Confirmed
from irtool.tui.screens.run import RunRequest, Transports


class Hub(Protocol):
    session: IncidentSession
    actor: str
    clock: Callable[[], datetime]
    transports: Transports

    @property
    def app(self) -> App[Any]: ...

    @property
    def state(self) -> IncidentState: ...

    @property
    def selected(self) -> str | None: ...

    def write(self, command: Callable[[IncidentSession], Event]) -> None: ...

    def start_run(self, request: RunRequest) -> None: ...

    def authorise(self, spec: ActionStep, confirmed: Confirmed) -> None: ...

    def confirm(self, spec: ActionStep, rollback: bool, hosts: list[str] | None = None) -> None: ...


def planner(hub: Hub) -> Runner:
    """A runner that only plans (no transports): which hosts, which commands, what failed."""
    state = hub.state
    store = EvidenceStore(incident_dir(state.id) / EVIDENCE_DIR, create=True)
    return Runner(hub.session, {}, store, hub.actor)
