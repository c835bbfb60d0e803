"""Windows event records made by hand, as the EVTX reader's rows, for the hunts the real logs
of tests/data/evtx cannot show (a web shell's cmd.exe, a cleared Security log, ...)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from irtool.analysis.evtx import EventBatch
from irtool.analysis.store import LoadStats, RequestStore

DATA = Path(__file__).resolve().parent.parent / "data" / "evtx"

SECURITY = ("Security", "Microsoft-Windows-Security-Auditing")
EVENTLOG_SECURITY = ("Security", "Microsoft-Windows-Eventlog")
EVENTLOG_SYSTEM = ("System", "Microsoft-Windows-Eventlog")
SCM = ("System", "Service Control Manager")
SYSMON = ("Microsoft-Windows-Sysmon/Operational", "Microsoft-Windows-Sysmon")
POWERSHELL = ("Microsoft-Windows-PowerShell/Operational", "Microsoft-Windows-PowerShell")
IIS_CONFIG = ("Microsoft-IIS-Configuration/Operational", "Microsoft-Windows-IIS-Configuration")
TASKS = ("Microsoft-Windows-TaskScheduler/Operational", "Microsoft-Windows-TaskScheduler")
#: Another provider writing to the same channels, with the same event ids (ids collide).
OTHER = "Contoso-Agent"


@dataclass
class Events:
    """Records of one synthetic evidence file, numbered as EventRecordIDs from 1."""

    name: str = "synthetic.evtx"
    computer: str = "WEB01"
    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(
        self,
        where: tuple[str, str],
        event_id: int,
        ts: datetime,
        data: Mapping[str, str | None] | None = None,
        *,
        computer: str | None = None,
    ) -> int:
        """Add one record; its EventRecordID (the row's line)."""
        channel, provider = where
        line = len(self.rows) + 1
        self.rows.append(
            {
                "ts": ts,
                "channel": channel,
                "provider": provider,
                "event_id": event_id,
                "level": 4,
                "computer": computer or self.computer,
                "data": dict(data or {}),
                "raw": f'{{"synthetic": {line}}}',
                "line": line,
            }
        )
        return line

    @property
    def sha256(self) -> str:
        return hashlib.sha256(repr(self.rows).encode()).hexdigest()

    def batch(self) -> EventBatch:
        return EventBatch.of_rows(self.name, self.sha256, self.rows)

    def load(self, store: RequestStore, host: str | None = "web01") -> LoadStats:
        return store.load_events([self.batch()], host=host)


def load_real(store: RequestStore, names: Iterable[str], host: str | None = None) -> None:
    """Load real EVTX files of tests/data/evtx, each as its own host (its file stem) unless
    `host` is given."""
    from irtool.analysis.evtx import read_evtx_paths

    for name in names:
        path = DATA / name
        store.load_events(read_evtx_paths([path]), host=host or path.stem)
