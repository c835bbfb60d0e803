"""A clock the test moves: handed to sessions, journals, runners and the app as `clock=`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class Clock:
    def __init__(self, start: datetime | None = None) -> None:
        self.start = start or datetime.now(UTC)
        self.now = self.start

    def __call__(self) -> datetime:
        return self.now

    def at(self, seconds: float) -> datetime:
        """Move to `seconds` after the start."""
        self.now = self.start + timedelta(seconds=seconds)
        return self.now
