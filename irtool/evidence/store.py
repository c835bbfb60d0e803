"""Content-addressed evidence files, streamed to disk so memory stays flat whatever the size.

A file is written under a temporary name, hashed as it goes, flushed to disk,
then renamed to its SHA-256: a file named by a hash is always complete, and
the custody event that names it is written only after it is durable.

Every chunk goes to the operating system as it arrives (no user-space buffer), so a
process killed mid-run leaves on disk everything the host had sent. A command in
flight has a marker beside its partial files (`InFlight`) saying which run, host and
command they belong to: the next `irtool` to open the incident turns them into
evidence records marked interrupted instead of leaving orphans.

A write that fails (a full disk, an I/O error, read-only media) stops the writing
of that stream, never the command: the record says how many bytes were kept, their
SHA-256, that the copy is incomplete and why. What the store names by a hash is
hashed again from disk when anything went wrong, so a name never lies.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
import uuid
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SHA256 = re.compile(r"[0-9a-f]{64}")
_PARTIAL = ".partial-"
_INFLIGHT = "command-"
INFLIGHT_DIR = "inflight"
EMPTY_SHA256 = hashlib.sha256().hexdigest()


@dataclass(frozen=True)
class Item:
    sha256: str | None  # None: nothing could be kept at all
    size: int  # bytes kept in the store
    received: int | None = None  # bytes the host sent, when more than were kept
    error: str | None = None  # why the copy is incomplete

    @property
    def incomplete(self) -> bool:
        return self.error is not None

    def as_dict(self) -> dict[str, object]:
        kept: dict[str, object] = {"sha256": self.sha256, "size": self.size}
        if self.incomplete:
            kept.update(incomplete=True, received=self.received, error=self.error)
        return kept


def _reason(error: OSError) -> str:
    return error.strerror or str(error)


class EvidenceWriter:
    """One stream into the store. The file is only made once the first byte arrives: most
    commands write nothing to stderr, and an empty stream is one shared empty file."""

    def __init__(self, directory: Path, name: str | None = None) -> None:
        self.directory = directory
        self.name = name or f"{_PARTIAL}{uuid.uuid4().hex}"
        self._temp = os.path.join(directory, self.name)
        self._fd: int | None = None
        self._digest = hashlib.sha256()
        self.size = 0  # bytes on disk
        self.received = 0  # bytes handed to write()
        self.error: str | None = None

    def open(self) -> None:
        """Make the file now, before any byte (never raises, as `write`)."""
        if self._fd is None and self.error is None:
            try:
                self._fd = _create(self._temp)
            except OSError as failed:
                self.error = _reason(failed)

    def write(self, data: bytes) -> None:
        """Never raises: a stream that cannot be kept is recorded as such, and the command
        whose output it is must not be broken by our disk."""
        self.received += len(data)
        if self.error is not None:
            return
        try:
            if self._fd is None:
                self._fd = _create(self._temp)
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                self._digest.update(view[:written])
                self.size += written
                view = view[written:]
        except OSError as failed:
            self.error = _reason(failed)

    def commit(self) -> Item:
        """Flush to disk and name the file by its hash; what could not be kept is said."""
        if self.error is None:
            try:
                return self._commit_whole()
            except OSError as failed:
                self.error = _reason(failed)
        return self._commit_partial()

    def _commit_whole(self) -> Item:
        sha256 = self._digest.hexdigest()
        final = os.path.join(self.directory, sha256)
        if self.size == 0 and os.path.exists(final):  # nothing came, and the empty file is kept
            if self._fd is not None:
                self._close()
                os.unlink(self._temp)
            return Item(sha256, 0)
        if self._fd is None:
            self._fd = _create(self._temp)
        os.fsync(self._fd)
        self._close()
        self._name(final)
        return Item(sha256, self.size)

    def _commit_partial(self) -> Item:
        """After a failure: the bytes on disk are the truth, so they are hashed again from
        disk before the file is named; when even that fails, nothing is named."""
        if self._fd is None:
            return Item(None, 0, self.received, self.error)
        with contextlib.suppress(OSError):
            os.fsync(self._fd)
        with contextlib.suppress(OSError):
            self._close()
        try:
            sha256, size = _hash_file(Path(self._temp))
            self._name(os.path.join(self.directory, sha256))
        except OSError:
            return Item(None, 0, self.received, self.error)  # the partial file stays a leftover
        return Item(sha256, size, self.received, self.error)

    def _name(self, final: str) -> None:
        if os.path.exists(final):
            os.unlink(self._temp)  # the same bytes are already kept
        else:
            # Made read-only (_create): renamed as it is, with no chmod to follow.
            os.replace(self._temp, final)
            _directory_sync(self.directory).sync()

    def _close(self) -> None:
        fd, self._fd = self._fd, -1  # -1: closed (None: never opened)
        if fd is not None and fd >= 0:
            os.close(fd)

    def discard(self) -> None:
        self._close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._temp)


def _create(path: str) -> int:
    """A new evidence file, read-only from the start (the descriptor returned may still write
    it): what the store names by a hash must not be changed, and a chmod per file costs."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC, 0o444)


_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def _hash_file(path: Path) -> tuple[str, int]:
    digest, length = hashlib.sha256(), 0
    with path.open("rb") as source:
        while block := source.read(1 << 20):
            digest.update(block)
            length += len(block)
    return digest.hexdigest(), length


def _fsync_dir(directory: Path | str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _DirectorySync:
    """fsync of one directory, shared by the threads renaming files into it.

    A rename is durable once an fsync of its directory that began after the rename has
    returned. Fifty hosts finishing commands at once need not make fifty fsyncs: a thread
    that finds one begun after its rename (and now finished) has what it needs; otherwise it
    makes one, which serves every rename made before it began."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = directory
        self._turn = threading.Lock()  # one fsync at a time
        self._counts = threading.Lock()
        self._begun = 0  # fsyncs begun
        self._done = 0  # the latest begun that has returned

    def sync(self) -> None:
        """Return once the renames made in the directory before this call are durable;
        raises OSError as fsync does (and then nothing is taken as synced)."""
        with self._counts:
            wanted = self._begun + 1  # the first fsync to begin from now on
        with self._turn:
            with self._counts:
                if self._done >= wanted:
                    return
                self._begun += 1
                mine = self._begun
            _fsync_dir(self.directory)
            with self._counts:
                self._done = mine


_SYNCS: dict[str, _DirectorySync] = {}
_SYNCS_LOCK = threading.Lock()


def _directory_sync(directory: Path | str) -> _DirectorySync:
    key = os.fspath(directory)
    with _SYNCS_LOCK:
        found = _SYNCS.get(key)
        if found is None:
            found = _SYNCS[key] = _DirectorySync(key)
        return found


class InFlight:
    """One host's commands while a run works on it, with a marker saying whose their partial
    files are: what a later process needs to keep them as evidence if this one dies mid-run.

    One marker per host, not per command (a marker is a file made and removed: per command
    it cost a tenth of a 50-host triage's CPU). A command's streams have names the marker
    implies (`.partial-<token>-<index>-<stream>`), and its stdout file is made when the
    command starts, so a command that started is known even when it printed nothing."""

    def __init__(
        self, directory: Path, markers: Path, facts: dict[str, Any], commands: list[Any]
    ) -> None:
        self.directory, self.token = directory, uuid.uuid4().hex
        self.marker: Path | None = markers / f"{_INFLIGHT}{self.token}.json"
        record = {**facts, "pid": os.getpid(), "token": self.token, "commands": commands}
        try:
            # No fsync: a killed process leaves the page cache behind; only a machine crash
            # loses the marker, and then the partial files are reported as leftovers.
            fd = os.open(self.marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, json.dumps(record).encode("utf-8"))
            finally:
                os.close(fd)
        except OSError:
            self.marker = None  # a full disk: the run goes on, its records say the rest

    def start(self, index: int) -> dict[str, EvidenceWriter]:
        """The streams of command `index`, its stdout file made now: it has started."""
        writers = {
            stream: EvidenceWriter(self.directory, stream_name(self.token, index, stream))
            for stream in STREAMS
        }
        writers["stdout"].open()
        return writers

    def done(self) -> None:
        """Every command's record is safe (journal or spool): the marker has served."""
        if self.marker is not None:
            self.marker.unlink(missing_ok=True)


STREAMS = ("stdout", "stderr")


def stream_name(token: str, index: int, stream: str) -> str:
    return f"{_PARTIAL}{token}-{index}-{stream}"


@dataclass(frozen=True)
class Orphan:
    """What a dead process left of one host's commands: its marker's facts."""

    marker: Path
    facts: dict[str, Any]

    def started(self, store: EvidenceStore, index: int) -> bool:
        """Command `index` had started: its stdout file is there."""
        return (store.directory / stream_name(self.token, index, "stdout")).is_file()

    @property
    def token(self) -> str:
        return str(self.facts.get("token", ""))

    def names(self) -> list[str]:
        """Every partial file name this marker accounts for."""
        return [
            stream_name(self.token, index, stream)
            for index in range(len(self.facts.get("commands", [])))
            for stream in STREAMS
        ]


class EvidenceStore:
    def __init__(self, directory: Path, create: bool = True) -> None:
        self.directory = directory
        # Beside the store, not in it: finding them must not mean listing every evidence file.
        self.markers = directory.parent / INFLIGHT_DIR
        self._markers_ready = False
        if create:
            directory.mkdir(parents=True, exist_ok=True)

    def writer(self) -> EvidenceWriter:
        return EvidenceWriter(self.directory)

    def in_flight(self, facts: dict[str, Any], commands: list[Any]) -> InFlight:
        if not self._markers_ready:
            with contextlib.suppress(OSError):  # read-only or full: InFlight goes on without
                self.markers.mkdir(exist_ok=True)
            self._markers_ready = True
        return InFlight(self.directory, self.markers, facts, commands)

    def path(self, sha256: str) -> Path:
        if not _SHA256.fullmatch(sha256):
            raise ValueError(f"'{sha256}' is not a SHA-256")
        return self.directory / sha256

    def check(self, sha256: str, size: int | None = None) -> str | None:
        """None if the file is there with that hash (and size); else what is wrong."""
        path = self.path(sha256)
        if not path.is_file():
            return f"evidence {sha256} is missing"
        digest, length = _hash_file(path)
        if digest != sha256:
            return f"evidence {sha256} was altered: its content now hashes to {digest}"
        if size is not None and length != size:
            return f"evidence {sha256} has {length} bytes, the journal recorded {size}"
        return None

    def orphans(self) -> Iterator[Orphan]:
        """Markers of commands in flight (or left by a process that died mid-command)."""
        if not self.markers.is_dir():
            return
        for marker in sorted(self.markers.glob(f"{_INFLIGHT}*.json")):
            try:
                facts = json.loads(marker.read_text())
            except (OSError, ValueError):
                continue  # a marker cut short by a crash: its partials show as leftovers
            if isinstance(facts, dict):
                yield Orphan(marker, facts)

    def keep_orphan(self, orphan: Orphan, index: int) -> dict[str, Item]:
        """Name a dead command's partial streams by their hashes; the marker is left for the
        caller to remove once the record of them is safe."""
        kept: dict[str, Item] = {}
        for stream in STREAMS:
            partial = self.directory / stream_name(orphan.token, index, stream)
            if not partial.is_file():
                # The command had printed nothing on this stream yet.
                kept[stream] = Item(EMPTY_SHA256, 0) if self._empty_kept() else Item(None, 0)
                continue
            sha256, size = _hash_file(partial)
            final = self.directory / sha256
            if final.exists():
                partial.unlink()
            else:
                os.replace(partial, final)
                final.chmod(0o444)
            kept[stream] = Item(sha256, size)
        _fsync_dir(self.directory)
        return kept

    def _empty_kept(self) -> bool:
        empty = self.directory / EMPTY_SHA256
        if not empty.exists():
            try:
                empty.touch()
                empty.chmod(0o444)
            except OSError:
                return False
        return True

    def leftovers(self, accounted: Collection[str] = ()) -> Iterator[Path]:
        """Partial files that no marker accounts for: a run killed mid-write, whose marker was
        lost, or bytes nobody can attribute."""
        for path in self.directory.glob(f"{_PARTIAL}*"):
            if path.name not in accounted:
                yield path
