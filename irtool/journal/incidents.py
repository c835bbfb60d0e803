"""Where incidents live: one directory each, `journal.sqlite` and `evidence/`, nothing else."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import platformdirs

JOURNAL_FILE = "journal.sqlite"
EVIDENCE_DIR = "evidence"
_ID = re.compile(r"ir-\d{8}-\d{6}-[0-9a-f]{4}")


def home() -> Path:
    """`IRTOOL_HOME`, else the platform's data directory for irtool."""
    override = os.environ.get("IRTOOL_HOME")
    base = Path(override) if override else Path(platformdirs.user_data_dir("irtool"))
    return base / "incidents"


def new_incident_id(now: datetime | None = None) -> str:
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"ir-{moment:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def is_incident_id(text: str) -> bool:
    return bool(_ID.fullmatch(text))


def incident_dir(incident: str) -> Path:
    if not is_incident_id(incident):
        raise ValueError(f"'{incident}' is not an incident id (like ir-20261121-031500-7f3a)")
    return home() / incident


def journal_path(incident: str) -> Path:
    return incident_dir(incident) / JOURNAL_FILE


def create_incident_dir(incident: str) -> Path:
    directory = incident_dir(incident)
    (directory / EVIDENCE_DIR).mkdir(parents=True, exist_ok=False)
    return directory


def incident_ids() -> list[str]:
    base = home()
    if not base.is_dir():
        return []
    return sorted(
        p.name for p in base.iterdir() if is_incident_id(p.name) and (p / JOURNAL_FILE).is_file()
    )


def resolve_id(text: str, known: Callable[[], list[str]] | None = None) -> str:
    """The incident `text` names: its whole id, or a prefix of it that only it has (with or
    without the `ir-`) among `known()` (default: this machine's; in team mode the command line
    passes the database's too). ValueError names what matched, or that nothing did."""
    if is_incident_id(text):
        return text
    wanted = text.strip()
    if not wanted:
        raise ValueError("which incident? (irtool incident list)")
    matches = [
        i
        for i in (known or incident_ids)()
        if i.startswith(wanted) or i.removeprefix("ir-").startswith(wanted)
    ]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise ValueError(f"no incident {wanted} under {home()}")
    shown = ", ".join(matches[:5]) + (", ..." if len(matches) > 5 else "")
    raise ValueError(f"'{wanted}' could be any of {len(matches)} incidents: {shown}")
