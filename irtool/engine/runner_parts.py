"""What the parts of Runner (ad-hoc commands, fetching, applying an action, concluding a step,
custody records) use of one another, declared once: each part is a module of its own idea and
still type-checks alone. Runner sets these attributes and defines what is stubbed here."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from irtool.engine.runreport import Command, HostResult, RunReport
from irtool.engine.session import IncidentSession
from irtool.engine.state import IncidentState
from irtool.evidence.store import EvidenceStore, EvidenceWriter
from irtool.journal import Event, EventDraft
from irtool.model.inventory import Inventory
from irtool.model.plan import PlanRow
from irtool.remote.base import Cancel, Connection, Deadline, Transport
from irtool.secrets.redact import Redactor


class RunnerParts:
    session: IncidentSession
    transports: Mapping[str, Transport]
    evidence: EvidenceStore
    actor: str
    redactor: Redactor
    cancel: Cancel
    clock: Callable[[], datetime]
    ad_hoc_timeout: float
    _lock: threading.Lock
    _spooled: int
    _queued: list[Any]
    _queued_lock: threading.Lock
    _spool_why: str

    def _inventory(self, state: IncidentState) -> Inventory:
        raise NotImplementedError

    def commands(
        self,
        step_id: str,
        hosts: list[str] | None = None,
        pinned: Mapping[tuple[str, str], str] | None = None,
    ) -> dict[str, list[PlanRow]]:
        raise NotImplementedError

    def _run(
        self,
        step_id: str | None,
        purpose: str,
        work: dict[str, list[Command]],
        reason: str,
        marks: dict[str, Any] | None = None,
    ) -> RunReport:
        raise NotImplementedError

    def _record(self, draft: EventDraft) -> Event | None:
        raise NotImplementedError

    def _settle(self, until: float) -> None:
        raise NotImplementedError

    def _fetch_files(
        self,
        step_id: str | None,
        purpose: str,
        started: Event,
        connection: Connection,
        command: Command,
        deadline: Deadline,
        result: HostResult,
        writers: dict[str, EvidenceWriter],
        tagged: dict[str, Any],
    ) -> None:
        """A fetch collector on one host (fetching.py): same arguments as a command's run."""
        raise NotImplementedError
