"""The Windows event log reader (EVTX): files and directories, one row per record, streamed.

Records are parsed by the ``evtx`` package (the Rust parser's bindings, many times faster than
python-evtx) as JSON; each becomes one row of the store's ``events`` table
(``irtool.analysis.store.EVENT_COLUMNS``): the time it was created (UTC), channel, provider,
event id, level, computer, its event data as text, the record as JSON, and its EventRecordID
(the row's ``line``: what a finding's reference names).

Event data: the named ``Data`` elements of ``EventData`` by their name (``TargetUserName``),
unnamed ones as ``Data[1]``, ``Data[2]``, ...; ``Binary`` when present; ``UserData``
flattened by path (``LogFileCleared.SubjectUserName``). Values are text as Windows shows
them (numbers in decimal, ``true``/``false``); an element without a value is NULL.

Custody: each evidence file is hashed (SHA-256) before its records are read, and the records
are parsed from the very bytes that were hashed (read into memory up to `MAX_IN_MEMORY`;
a larger file is parsed from disk and hashed again after, a change being a warning).

Bad input: a file named on the command line that is not EVTX at all (no ``ElfFile\\0``
magic) is an `InvalidFile` (located), raised before anything is read; a file found in a
directory is read only if its name ends in ``.evtx`` or it starts with the magic. A corrupt
chunk or record is skipped with a located warning (``file: chunk N at offset 0x...: why``,
``file:RECORD: why``) and the rest of the file is read.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import evtx as _evtx

from irtool.analysis import sources as _sources
from irtool.analysis.w3c import ReadWarning, WarningSink
from irtool.model.problems import InvalidFile, Mark, Problem
from irtool.model.untrusted import visible

__all__ = [
    "DEFAULT_BATCH",
    "MAGIC",
    "EventBatch",
    "EvtxStats",
    "ReadWarning",
    "is_evtx",
    "read_evtx_paths",
    "read_evtx_stream",
]

#: How an EVTX file starts.
MAGIC = b"ElfFile\x00"
_FILE_HEADER = 0x1000  # the file header block; chunks follow it
_CHUNK = 0x10000  # every chunk is 64 KiB
DEFAULT_BATCH = 10_000
#: A file up to this size is parsed from the bytes that were hashed (custody exact); a larger
#: one from disk, hashed again after.
MAX_IN_MEMORY = 512 << 20
#: Parse errors after which a file is given up (a file of garbage after a valid header).
MAX_ERRORS = 1000

_CHUNK_ERROR = re.compile(r"chunk number (\d+)")
_RECORD_ERROR = re.compile(r"record number (\d+)")


def is_evtx(head: bytes) -> bool:
    """Whether a file's first bytes are an EVTX file header's magic."""
    return head.startswith(MAGIC)


class EventBatch:
    """Up to ``batch`` records of one EVTX source, column by column, as the ``events`` table
    takes them (`irtool.analysis.store.RequestStore.load_events`)."""

    __slots__ = (
        "channel",
        "computer",
        "data",
        "event_id",
        "level",
        "lines",
        "provider",
        "raw",
        "sha256",
        "source",
        "ts",
    )

    def __init__(self, source: str, sha256: str) -> None:
        self.source = source  # display name: the path
        self.sha256 = sha256  # SHA-256 of the evidence file
        self.ts: list[str | None] = []  # TimeCreated, ISO 8601 UTC ('...Z')
        self.channel: list[str | None] = []
        self.provider: list[str | None] = []
        self.event_id: list[int | None] = []
        self.level: list[int | None] = []
        self.computer: list[str | None] = []
        # Each record's event data as a JSON object of text (or null) values: the store turns
        # it into a MAP in bulk (faster than handing it a list of names and values per record).
        self.data: list[str] = []
        self.raw: list[str] = []  # the record as JSON
        self.lines: list[int] = []  # EventRecordID

    def __len__(self) -> int:
        return len(self.lines)

    def __repr__(self) -> str:
        return f"EventBatch({self.source!r}, {len(self.lines)} records)"

    def append(self, row: Mapping[str, Any]) -> None:
        """Add one row given as the table's columns (``ts``, ``channel``, ``provider``,
        ``event_id``, ``level``, ``computer``, ``data`` (a mapping), ``raw``, ``line``): for
        records made by hand (tests, other readers)."""
        data = row.get("data") or {}
        ts = row.get("ts")
        self.ts.append(ts if ts is None or isinstance(ts, str) else ts.isoformat())
        self.channel.append(row.get("channel"))
        self.provider.append(row.get("provider"))
        self.event_id.append(row.get("event_id"))
        self.level.append(row.get("level"))
        self.computer.append(row.get("computer"))
        text = {str(k): None if v is None else str(v) for k, v in data.items()}
        self.data.append(json.dumps(text, ensure_ascii=False))
        self.raw.append(str(row.get("raw") or json.dumps(dict(row), default=str)))
        self.lines.append(int(row["line"]))

    @classmethod
    def of_rows(cls, source: str, sha256: str, rows: Iterable[Mapping[str, Any]]) -> EventBatch:
        """A batch of rows made by hand (see `append`)."""
        batch = cls(source, sha256)
        for row in rows:
            batch.append(row)
        return batch

    def rows(self) -> Iterator[dict[str, Any]]:
        """Record by record, as dicts with ``data`` a dict (for tests and small outputs)."""
        for i in range(len(self.lines)):
            yield {
                "ts": self.ts[i],
                "channel": self.channel[i],
                "provider": self.provider[i],
                "event_id": self.event_id[i],
                "level": self.level[i],
                "computer": self.computer[i],
                "data": json.loads(self.data[i]),
                "raw": self.raw[i],
                "line": self.lines[i],
            }


@dataclass
class EvtxStats:
    """What one read went through; pass the same object to several reads to add them up."""

    records: int = 0  # records yielded
    files: int = 0  # evidence files opened
    skipped: int = 0  # evidence files not read because `skip` said so
    corrupt_chunks: int = 0  # chunks skipped (their records lost)
    corrupt_records: int = 0  # records skipped
    unreadable: int = 0  # files that could not be read (or only in part)
    bytes: int = 0  # bytes of evidence files hashed
    warnings: int = 0


def read_evtx_paths(
    paths: Iterable[str | os.PathLike[str]],
    *,
    batch: int = DEFAULT_BATCH,
    on_warning: WarningSink | None = None,
    stats: EvtxStats | None = None,
    skip: Callable[[str], bool] | None = None,
) -> Iterator[EventBatch]:
    """Read EVTX files, and the EVTX files in directories (recursively).

    Every path named here must be an EVTX file or a directory: one that does not exist is an
    OSError, one that is not EVTX an `InvalidFile` with a located problem for each, raised
    before any record is read. ``skip(sha256)`` returning True leaves that evidence file
    unread (one already in the store)."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    st = stats if stats is not None else EvtxStats()
    found = _sources.expand(paths)
    problems = []
    for path, explicit in found:
        if explicit:
            try:
                with open(path, "rb") as f:
                    head = f.read(len(MAGIC))
            except OSError as e:
                raise OSError(e.errno, f"cannot read {path}: {e.strerror or e}") from e
            if not is_evtx(head):
                problems.append(Problem(Mark(str(path), 1, 1), _not_evtx(head)))
    if problems:
        raise InvalidFile(problems)
    for path, explicit in found:
        yield from _read_file(path, explicit, batch, on_warning, st, skip)


def _not_evtx(head: bytes) -> str:
    if not head:
        return "not an EVTX file: it is empty"
    return f"not an EVTX file: it starts with {visible(repr(head[: len(MAGIC)]))}, not 'ElfFile'"


def _read_file(
    path: Path,
    explicit: bool,
    batch: int,
    on_warning: WarningSink | None,
    st: EvtxStats,
    skip: Callable[[str], bool] | None,
) -> Iterator[EventBatch]:
    display = str(path)
    try:
        f = open(path, "rb")  # noqa: SIM115 (closed below, after the generator is done)
    except OSError as e:
        _emit(ReadWarning(display, 0, f"cannot read: {e.strerror or e}"), on_warning, st)
        st.unreadable += 1
        return
    with f:
        try:
            head = f.read(len(MAGIC))
            f.seek(0)
            if not explicit and not (path.name.lower().endswith(".evtx") or is_evtx(head)):
                return
            if not is_evtx(head):
                # found in a directory by its name (an explicit path was checked before)
                _emit(ReadWarning(display, 0, _not_evtx(head)), on_warning, st)
                st.unreadable += 1
                return
            size = os.fstat(f.fileno()).st_size
            if size <= MAX_IN_MEMORY:
                data = f.read()
                sha256 = hashlib.sha256(data).hexdigest()
                size = len(data)
            else:
                sha256, size = _sources.hash_file(f)
        except OSError as e:
            _emit(ReadWarning(display, 0, f"cannot read: {e.strerror or e}"), on_warning, st)
            st.unreadable += 1
            return
        st.files += 1
        st.bytes += size
        if skip is not None and skip(sha256):
            st.skipped += 1
            return
        if size > MAX_IN_MEMORY:
            yield from read_evtx_stream(
                f, source=display, sha256=sha256, batch=batch, on_warning=on_warning, stats=st
            )
            try:
                again, _ = _sources.hash_file(f)
            except OSError as e:
                _emit(ReadWarning(display, 0, f"could not hash it again: {e}"), on_warning, st)
                return
            if again != sha256:
                message = (
                    f"changed while it was read: SHA-256 {sha256} before, {again} after; "
                    "its records may not match the evidence"
                )
                _emit(ReadWarning(display, 0, message), on_warning, st)
            return
        yield from read_evtx_stream(
            io.BytesIO(data), source=display, sha256=sha256, batch=batch,
            on_warning=on_warning, stats=st,
        )  # fmt: skip


def read_evtx_stream(
    stream: BinaryIO,
    *,
    source: str,
    sha256: str,
    batch: int = DEFAULT_BATCH,
    on_warning: WarningSink | None = None,
    stats: EvtxStats | None = None,
) -> Iterator[EventBatch]:
    """Read one EVTX file from a seekable binary stream, to its end.

    ``source`` names it in batches and warnings; ``sha256`` is the evidence file's hash as
    custody recorded it (this function does not hash). A stream that is not EVTX at all is
    an `InvalidFile`; a broken file header, chunk or record is a located warning (the records
    read before it, and the chunks after it, are kept)."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    st = stats if stats is not None else EvtxStats()
    start = stream.tell()
    head = stream.read(len(MAGIC))
    stream.seek(start)
    if not is_evtx(head):
        raise InvalidFile([Problem(Mark(source, 1, 1), _not_evtx(head))])
    _cut_short(stream, start, source, on_warning, st)
    try:
        parser = _evtx.PyEvtxParser(stream, indent=False)
        records = parser.records_json()
    except (OSError, RuntimeError, ValueError) as e:
        st.unreadable += 1
        _emit(ReadWarning(source, 0, f"cannot read its file header: {_reason(e)}"), on_warning, st)
        return
    out = EventBatch(source, sha256)
    errors = 0
    while True:
        try:
            record = next(records)
        except StopIteration:
            break
        except (RuntimeError, OSError, ValueError) as e:
            # The parser goes on with the next record or chunk after an error.
            errors += 1
            _emit(_located(source, e, st), on_warning, st)
            if errors >= MAX_ERRORS:
                st.unreadable += 1
                message = f"{errors} parse errors: the rest of the file is not read"
                _emit(ReadWarning(source, 0, message), on_warning, st)
                break
            continue
        try:
            _add(out, record)  # type: ignore[arg-type]
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            st.corrupt_records += 1
            line = record.get("event_record_id") if isinstance(record, dict) else None
            message = f"record skipped: not a Windows event ({type(e).__name__}: {e})"
            _emit(ReadWarning(source, _int(line) or 0, visible(message)), on_warning, st)
            continue
        if len(out.lines) >= batch:
            st.records += len(out.lines)
            yield out
            out = EventBatch(source, sha256)
    if out.lines:
        st.records += len(out.lines)
        yield out


def _cut_short(
    stream: BinaryIO, start: int, source: str, sink: WarningSink | None, st: EvtxStats
) -> None:
    """A file whose end is not on a chunk's end was cut (a copy stopped early, a disk full):
    the parser drops the partial chunk without a word, so it is said here. The records of
    the whole chunks before it are read."""
    end = stream.seek(0, os.SEEK_END)
    stream.seek(start)
    body = end - start - _FILE_HEADER
    partial = body % _CHUNK if body > 0 else 0
    if partial:  # (a file shorter than its header: the parser says so itself)
        chunk = body // _CHUNK
        message = (
            f"cut short: chunk {chunk} at offset 0x{_FILE_HEADER + chunk * _CHUNK:x} has "
            f"{partial} of its {_CHUNK} bytes: its records are lost"
        )
        st.corrupt_chunks += 1
        _emit(ReadWarning(source, 0, message), sink, st)


def _reason(e: BaseException) -> str:
    return visible(" ".join(str(e).split()))


def _located(source: str, e: BaseException, st: EvtxStats) -> ReadWarning:
    """A parser error as a located warning: the chunk (with its offset in the file) or the
    record it lost."""
    reason = _reason(e)
    chunk = _CHUNK_ERROR.search(reason)
    if chunk is not None:
        st.corrupt_chunks += 1
        n = int(chunk.group(1))
        offset = _FILE_HEADER + n * _CHUNK
        return ReadWarning(source, 0, f"chunk {n} at offset {offset:#x} skipped: {reason}")
    st.corrupt_records += 1
    record = _RECORD_ERROR.search(reason)
    if record is not None:
        return ReadWarning(source, int(record.group(1)), f"record skipped: {reason}")
    return ReadWarning(source, 0, f"skipped: {reason}")


def _emit(w: ReadWarning, sink: WarningSink | None, st: EvtxStats) -> None:
    st.warnings += 1
    if sink is not None:
        sink(w)


# -- one record -------------------------------------------------------------------------------


def _add(out: EventBatch, record: Mapping[str, Any]) -> None:
    """Append one record (as the parser gives it) to the batch's columns."""
    raw = record["data"]
    event = json.loads(raw)["Event"]
    system = event["System"]
    provider = system.get("Provider")
    name = None
    if isinstance(provider, dict):
        attributes = provider.get("#attributes") or {}
        name = attributes.get("Name") or attributes.get("EventSourceName")
    event_id = system.get("EventID")
    if isinstance(event_id, dict):  # with attributes (Qualifiers)
        event_id = event_id.get("#text")
    created = system.get("TimeCreated")
    ts = None
    if isinstance(created, dict):
        ts = (created.get("#attributes") or {}).get("SystemTime")
    values: dict[str, str | None] = {}
    data = event.get("EventData")
    if data is not None:
        _event_data(data, values)
    user = event.get("UserData")
    if user is not None:
        _flatten(user, "", values)
    level = system.get("Level")
    line = int(record["event_record_id"])  # before any column grows: a bad record adds none
    out.ts.append(ts)
    out.channel.append(system.get("Channel"))
    out.provider.append(name)
    out.event_id.append(_int(event_id))
    out.level.append(_int(level))
    out.computer.append(system.get("Computer"))
    out.data.append(_dumps(values))
    out.raw.append(raw)
    out.lines.append(line)


def _int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value if -(2**31) <= value < 2**31 else None
    if isinstance(value, str) and value.strip().isdigit():
        return _int(int(value))
    return None


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):  # an element with attributes: its text
        return _text(value.get("#text"))
    if isinstance(value, list):
        return ", ".join(t for t in map(_text, value) if t is not None)
    return str(value)


_dumps = json.JSONEncoder(ensure_ascii=False, check_circular=False).encode


def _event_data(data: Any, values: dict[str, str | None]) -> None:
    if not isinstance(data, dict):  # EventData with text only
        if data is not None:
            values["Data[1]"] = _text(data)
        return
    for key, value in data.items():
        if key == "#attributes":
            continue
        if key == "Data" or key == "#text":  # unnamed Data elements, in order
            unnamed = value.get("#text") if isinstance(value, dict) else value
            items = unnamed if isinstance(unnamed, list) else [unnamed]
            for i, item in enumerate(items, 1):
                values[f"Data[{i}]"] = _text(item)
        elif type(value) is str:  # the common case, first
            values[key] = value
        elif isinstance(value, list):  # a name given to several Data elements
            for i, item in enumerate(value, 1):
                values[f"{key}[{i}]"] = _text(item)
        elif isinstance(value, dict) and "#text" not in value:
            _flatten(value, key, values)
        elif not (key == "Binary" and value is None):
            values[key] = _text(value)


def _flatten(value: Any, prefix: str, values: dict[str, str | None]) -> None:
    """UserData (and nested elements): each leaf by its path, ``Parent.Child``."""
    if isinstance(value, dict) and "#text" not in value:
        for key, child in value.items():
            if key != "#attributes":
                _flatten(child, f"{prefix}.{key}" if prefix else key, values)
    elif prefix:
        values.setdefault(prefix, _text(value))
