"""A run's custody records: into the journal, or the spool when the journal will not take
them, and the warning before a run that the disk under the incident is nearly full."""

from __future__ import annotations

import shutil
import time

from irtool.engine.runner_parts import RunnerParts
from irtool.journal import Event, EventDraft, JournalError
from irtool.journal.spool import SpoolError

# A custody record waits this long for a busy journal before it goes to the spool: host
# threads must not queue behind another writer, and the spool is as durable.
CUSTODY_WAIT_S = 2.0
# Below this much free space under the incident, a run warns before it starts.
LOW_SPACE_BYTES = 256 << 20
LOW_SPACE_FRACTION = 0.02


class CustodyRecords(RunnerParts):
    """The recording half of Runner."""

    def _space_warnings(self) -> list[str]:
        """A nearly full disk under the incident, said before anything runs."""
        try:
            usage = shutil.disk_usage(self.evidence.directory)
        except OSError:
            return []
        if usage.free >= max(LOW_SPACE_BYTES, usage.total * LOW_SPACE_FRACTION):
            return []
        return [
            f"the disk under the incident is nearly full: {usage.free >> 20} MiB free of "
            f"{usage.total >> 20} MiB; output past that is kept incomplete"
        ]

    def _settle(self, until: float) -> None:
        """Append what this run spooled, retrying until `until` (the step's deadline plus a
        grace period); what still waits then is left for any later irtool command."""
        while self._spooled:
            try:
                with self._lock:
                    self.session.append_pending(busy_timeout=max(0.1, until - time.monotonic()))
                    self._spooled, self._spool_why = 0, ""
                return
            except JournalError as busy:
                self._spool_why = str(busy)
                # A full disk fails at once: wait a little (or for a cancel) and try again.
                if time.monotonic() >= until or self.cancel.event.wait(1.0):
                    return

    def _record(self, draft: EventDraft) -> Event | None:
        """A custody record, into the journal or, when it will not take it, the spool: a
        command that ran is never recorded as not having run. None: spooled.

        Group commit: records that arrive while another is being written wait, and the next
        writer takes them all in one transaction (one commit and one fsync, not one each).
        Each returns only once its own record is durable, as before."""
        waiting = _Waiting(
            EventDraft(
                draft.kind,
                draft.actor,
                self.redactor.data(draft.data),
                step=draft.step,
                host=draft.host,
                occurred_at=draft.occurred_at or self.clock(),
            )
        )
        with self._queued_lock:
            self._queued.append(waiting)
        with self._lock:
            if not waiting.settled:
                with self._queued_lock:
                    batch, self._queued = self._queued, []
                try:
                    self._write_together(batch)
                except BaseException as failed:
                    # The others of the batch wait on this writer: none may read its record
                    # as written (or as spooled) when neither happened.
                    for other in batch:
                        if not other.settled:
                            other.fail(JournalError(f"the record was not written: {failed}"))
                    raise
        return waiting.result()

    def _write_together(self, batch: list[_Waiting]) -> None:
        """`batch` into the journal in one transaction, or each into the spool, in order."""
        if not self._spooled:
            try:
                events = self.session.record_custody_together(
                    [w.draft for w in batch], busy_timeout=CUSTODY_WAIT_S
                )
            except JournalError as refused:
                self._spool_why = str(refused)
            else:
                for waiting, event in zip(batch, events, strict=True):
                    waiting.settle(event)
                return
        for waiting in batch:
            try:
                self.session.spool.put(waiting.draft, self._spool_why, self.session.state.last_seq)
            except SpoolError as lost:
                # Neither the journal nor the disk takes it: say so, whole, where the
                # responder sees it; nothing else can keep it now.
                waiting.fail(
                    JournalError(
                        f"{self._spool_why}; and {lost.strerror}: the record of "
                        f"{waiting.draft.kind} on {waiting.draft.host or 'the run'} is lost"
                    )
                )
                continue
            self._spooled += 1
            waiting.settle(None)


class _Waiting:
    """One custody record on its way: the event it became (None: spooled), or why it is lost."""

    def __init__(self, draft: EventDraft) -> None:
        self.draft = draft
        self.settled = False
        self._event: Event | None = None
        self._error: JournalError | None = None

    def settle(self, event: Event | None) -> None:
        self._event, self.settled = event, True

    def fail(self, error: JournalError) -> None:
        self._error, self.settled = error, True

    def result(self) -> Event | None:
        if self._error is not None:
            raise self._error
        return self._event
