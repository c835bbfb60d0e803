"""Custody records the journal could not take yet, kept durably until it can.

A command that ran on a host must never be recorded as not having run. When the
journal refuses a custody record (another writer holds it, the disk is full), the
record goes here: one fsynced file per record in the incident's `spool/`
directory, named so that their order is the order they were written. The first
writer that can (the same run retrying, any later `irtool` command on the
incident, `irtool incident recover`) appends them to the journal in that order and
removes them.

Each record carries an id that goes into the event (`data.spooled`), so a writer
that dies between appending and removing the files cannot append them twice: the
next one sees the ids already in the journal.

A small reserve file (1 MiB) is set aside when a run starts: on a full disk it is
given back, so the spool can still be written when nothing else can.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import os
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from irtool.journal.events import Event, EventDraft, parse_moment, utc_text
from irtool.journal.protocol import Appending

SPOOL_DIR = "spool"
RESERVE_BYTES = 1 << 20  # a thousand custody records or so
_RESERVE = ".reserve"
_counter = itertools.count()


class SpoolError(OSError):
    """The record could be neither journalled nor spooled."""


@dataclass(frozen=True)
class Pending:
    path: Path
    record: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.record["id"])

    def draft(self) -> EventDraft:
        record = self.record
        data = {
            **record["data"],
            "spooled": {"id": record["id"], "at": record["spooled_at"], "why": record["why"]},
        }
        return EventDraft(
            record["kind"],
            record["actor"],
            data,
            step=record.get("step"),
            host=record.get("host"),
            occurred_at=parse_moment(record["occurred_at"]),
        )

    def describe(self) -> str:
        record = self.record
        where = f" on {record['host']}" if record.get("host") else ""
        step = f" of {record['step']}" if record.get("step") else ""
        return f"{record['kind']}{step}{where} at {record['occurred_at']} ({record['why']})"


class Spool:
    def __init__(self, incident_dir: Path) -> None:
        self.directory = incident_dir / SPOOL_DIR

    def put(self, draft: EventDraft, why: str, after_seq: int) -> Pending:
        """Keep one record durably; `after_seq`: the newest event the writer knew of (the
        record cannot already be in the journal before it)."""
        now = datetime.now(UTC)
        record = {
            "id": uuid.uuid4().hex,
            "spooled_at": utc_text(now),
            "why": why,
            "after_seq": after_seq,
            "kind": draft.kind,
            "actor": draft.actor,
            "data": draft.data,
            "step": draft.step,
            "host": draft.host,
            "occurred_at": utc_text(draft.occurred_at or now),
        }
        name = f"{time.time_ns():020d}-{os.getpid()}-{next(_counter):06d}-{record['id']}.json"
        path = self.directory / name
        body = json.dumps(record, sort_keys=True).encode("utf-8")
        try:
            self._write(path, body)
        except OSError as failed:
            if failed.errno != errno.ENOSPC or not self._give_back_reserve():
                raise SpoolError(
                    failed.errno, f"cannot spool the record: {failed.strerror}"
                ) from None
            try:
                self._write(path, body)
            except OSError as again:
                raise SpoolError(
                    again.errno, f"cannot spool the record: {again.strerror}"
                ) from None
        return Pending(path, record)

    def _write(self, path: Path, body: bytes) -> None:
        self.directory.mkdir(exist_ok=True)
        temp = path.with_suffix(".tmp")
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, body)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, path)
            fsync_dir(self.directory)
        except OSError:
            with contextlib.suppress(OSError):
                temp.unlink()
            raise

    # -- the reserve ---------------------------------------------------------------------

    def reserve(self) -> None:
        """Set space aside for records while a run is in flight (best effort)."""
        path = self.directory / _RESERVE
        with contextlib.suppress(OSError):
            self.directory.mkdir(exist_ok=True)
            if path.exists() and path.stat().st_size >= RESERVE_BYTES:
                return
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                os.posix_fallocate(fd, 0, RESERVE_BYTES)
            finally:
                os.close(fd)

    def _give_back_reserve(self) -> bool:
        try:
            (self.directory / _RESERVE).unlink()
        except OSError:
            return False
        return True

    # -- reading and appending -------------------------------------------------------------

    def pending(self) -> list[Pending]:
        """Records waiting for the journal, oldest first."""
        if not self.directory.is_dir():
            return []
        found = []
        for path in sorted(self.directory.glob("*.json")):
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # cut short before its rename: never acknowledged, never counted
            if isinstance(record, dict) and "id" in record:
                found.append(Pending(path, record))
        return found

    def append_to(self, tx: Appending, pending: list[Pending]) -> list[Event]:
        """Append `pending` in order inside the caller's transaction, skipping any a dead
        writer already appended. The caller removes the files once the transaction commits."""
        if not pending:
            return []
        ids = {p.id for p in pending}
        after = min(int(p.record.get("after_seq", 0)) for p in pending)
        already = {
            event.data["spooled"]["id"]
            for event in tx.events(after=after)
            if isinstance(event.data.get("spooled"), dict)
            and event.data["spooled"].get("id") in ids
        }
        return [tx.append(p.draft()) for p in pending if p.id not in already]

    def remove(self, pending: Iterable[Pending]) -> None:
        for item in pending:
            item.path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            fsync_dir(self.directory)


def _lost(failed: OSError) -> SpoolError:
    return SpoolError(failed.errno, f"cannot spool the record: {failed.strerror}")


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
