"""One run of a step at a time, whichever terminal or process starts it.

A run holds an exclusive `flock` on `locks/<step>.lock` in the incident directory
for as long as it works on hosts. The kernel releases the lock when the holder's
process ends, however it ends (kill -9 included), so a lock is never left behind
by a dead process; and an open file description is its own lock holder, so two
runs within one process (the terminal UI) exclude each other too.

The file also says who holds it: that is what the refusal tells the second
responder.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from irtool.journal.events import utc_text

LOCKS_DIR = "locks"


class StepBusy(Exception):
    """Another run of the step is in flight; the message says whose."""


def _path(incident_dir: Path, step: str) -> Path:
    return incident_dir / LOCKS_DIR / f"{step}.lock"


def _holder_text(handle: IO[str]) -> str:
    handle.seek(0)
    try:
        holder: dict[str, Any] = json.loads(handle.read() or "{}")
    except ValueError:
        holder = {}
    if not holder:
        return "another run (starting now)"
    return (
        f"{holder.get('purpose', 'a run')} by {holder.get('actor', '?')} since "
        f"{holder.get('since', '?')} (pid {holder.get('pid', '?')} on {holder.get('machine', '?')})"
    )


@contextmanager
def step_lock(incident_dir: Path, step: str, actor: str, purpose: str) -> Iterator[None]:
    """Hold the step's run lock, or raise StepBusy naming who holds it."""
    path = _path(incident_dir, step)
    path.parent.mkdir(exist_ok=True)
    handle = path.open("a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StepBusy(
                f"step '{step}' is already running: {_holder_text(handle)}; wait for it, or "
                f"cancel it where it runs"
            ) from None
        holder = {
            "actor": actor,
            "purpose": purpose,
            "since": utc_text(datetime.now(UTC)),
            "pid": os.getpid(),
            "machine": os.uname().nodename,  # what gethostname() gives, without socket
        }
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(holder))
        handle.flush()
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                handle.seek(0)
                handle.truncate()
                handle.flush()
    finally:
        handle.close()  # releases the flock


def is_running(incident_dir: Path, step: str) -> bool:
    """Whether a live process holds the step's run lock now (without waiting)."""
    path = _path(incident_dir, step)
    if not path.exists():
        return False
    try:
        with path.open("r", encoding="utf-8") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            return False
    except OSError:
        return False
