"""Loading Windows event log records into the store's ``events`` table.

`irtool.analysis.store.RequestStore.load_events` is the entry: it hands this loader the
statement that fills ``events`` (kept beside the table's columns) and the batches
`irtool.analysis.evtx.read_evtx_paths` yields. The bookkeeping per evidence file (skipping
what is loaded, the ``sources`` rows, transactions, removing a partly loaded file) is the
store's `_EvidenceLoad`, the same as for web-server requests; what is particular to events is
here: a batch goes in as list parameters, one INSERT per piece of `_CHUNK_ROWS` records, on
the calling thread, and the records whose time could not be read are warned about once their
evidence file is in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from irtool.analysis.store import (
    _CHUNK_ROWS,
    _EXAMPLES,
    LoadWarning,
    _EvidenceBatch,
    _EvidenceLoad,
)

if TYPE_CHECKING:
    from irtool.analysis.store import RequestStore

__all__ = ["EventBatchLike", "EventLoader"]


class EventBatchLike(_EvidenceBatch, Protocol):
    """What `load_events` reads of a batch: `irtool.analysis.evtx.EventBatch` is one. Every
    list (`lines` too) has one item per record; `data` is each record's event data as a JSON
    object whose values are text or null."""

    @property
    def ts(self) -> Sequence[str | None]: ...  # ISO 8601, UTC
    @property
    def channel(self) -> Sequence[str | None]: ...
    @property
    def provider(self) -> Sequence[str | None]: ...
    @property
    def event_id(self) -> Sequence[int | None]: ...
    @property
    def level(self) -> Sequence[int | None]: ...
    @property
    def computer(self) -> Sequence[str | None]: ...
    @property
    def data(self) -> Sequence[str]: ...  # a JSON object per record: {name: text or null}
    @property
    def raw(self) -> Sequence[str]: ...


class EventLoader(_EvidenceLoad[EventBatchLike]):
    """One `load_events` call: each piece of a batch one `insert` statement (the store's
    INSERT ... SELECT over the batch's columns as list parameters)."""

    what = "the events"

    def __init__(
        self,
        store: RequestStore,
        host: str | None,
        on_warning: Callable[[LoadWarning], None] | None,
        insert: str,
    ) -> None:
        super().__init__(store, host, on_warning)
        self.insert = insert

    def put(self, batch: EventBatchLike) -> None:
        for i in range(0, len(batch.lines), _CHUNK_ROWS):
            j = i + _CHUNK_ROWS
            self.execute(
                self.insert,
                {
                    "ts": batch.ts[i:j],
                    "channel": batch.channel[i:j],
                    "provider": batch.provider[i:j],
                    "event_id": batch.event_id[i:j],
                    "level": batch.level[i:j],
                    "computer": batch.computer[i:j],
                    "data": batch.data[i:j],
                    "raw": batch.raw[i:j],
                    "lines": batch.lines[i:j],
                    "sha": self.sha,
                    "source": batch.source,
                    "host": self.host,
                },
            )

    def finished(self) -> None:
        """Warn about the records of this evidence file whose time could not be read."""
        rows = self.con.execute(
            "SELECT source, line, "
            "json_extract_string(raw, '$.Event.System.TimeCreated.\"#attributes\".SystemTime') "
            "FROM events WHERE evidence_sha256 = $sha AND ts IS NULL ORDER BY source, line",
            {"sha": self.sha},
        ).fetchall()
        if not rows:
            return
        self.stats.invalid["ts"] = self.stats.invalid.get("ts", 0) + len(rows)
        for source, line, value in rows[:_EXAMPLES]:
            shown = "" if value is None else f" ({value!r})"
            message = f"ts: the record's time{shown} could not be read: stored as NULL"
            self.warn(LoadWarning(source, line, message))
        if len(rows) > _EXAMPLES:
            message = f"ts: {len(rows)} records without a time (the first {_EXAMPLES} listed)"
            self.warn(LoadWarning(rows[0][0], 0, message))
