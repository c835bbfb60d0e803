"""The protocol every transport speaks, and the ways a host can fail.

A transport opens a `Connection` to one host under a wall-clock `Deadline`;
the connection runs commands (and fetches files) one after another, streaming
output chunks to a callback as they arrive. The engine only ever sees this
protocol: exercises hand it a simulated transport, tests anything they like.
Connecting once per host and reusing the session for every command of a step
matters: a ten-command triage pays for one SSH handshake, not ten.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import re
import stat
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal, Protocol

from irtool.model.inventory import ResolvedHost
from irtool.model.steps import Shell

Stream = Literal["stdout", "stderr"]
OnOutput = Callable[[Stream, bytes], None]
OnData = Callable[[bytes], None]

CHUNK = 64 * 1024


class Failure(StrEnum):
    """Why a host failed, in words a responder can act on."""

    UNREACHABLE = "unreachable"  # no route, DNS, connection refused or timed out
    HOST_KEY = "host-key"  # unknown or changed SSH host key
    TLS = "tls"  # certificate not trusted or not the pinned one
    AUTH = "auth"  # the host refused our credentials
    CREDENTIAL = "credential"  # we have no secret to offer (no keyring entry)
    INSECURE = "insecure"  # refused to talk in the clear to a host not marked insecure
    TIMEOUT = "timeout"  # the host's deadline passed
    CANCELLED = "cancelled"  # a responder cancelled the run
    PROTOCOL = "protocol"  # the host answered something we cannot use
    ERROR = "error"  # anything else, with its message


class HostFailure(Exception):
    def __init__(self, kind: Failure, reason: str) -> None:
        super().__init__(reason)
        self.kind, self.reason = kind, reason

    def __str__(self) -> str:
        return f"{self.kind}: {self.reason}"


class Cancel:
    """A run's cancel switch: sets an event and closes whatever blocking I/O registered itself."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._lock = threading.Lock()
        self._closers: dict[int, Callable[[], object]] = {}
        self._next = 0

    def is_set(self) -> bool:
        return self.event.is_set()

    def cancel(self) -> None:
        self.event.set()
        with self._lock:
            closers = list(self._closers.values())
        for close in closers:
            with contextlib.suppress(Exception):  # best effort: closing must not raise
                close()

    def on_cancel(self, close: Callable[[], object]) -> Callable[[], None]:
        """Register `close` (a socket's close) to break a blocked call; returns the unregister."""
        with self._lock:
            key, self._next = self._next, self._next + 1
            self._closers[key] = close
        if self.event.is_set():
            close()

        def forget() -> None:
            with self._lock:
                self._closers.pop(key, None)

        return forget


class Deadline:
    """A wall-clock limit for one host, which the run's shared `Cancel` can cut short."""

    def __init__(self, seconds: float, cancel: Cancel | None = None) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.cancel = cancel or Cancel()

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def check(self) -> None:
        """Raise if the run was cancelled or the deadline has passed."""
        if self.cancel.is_set() or time.monotonic() >= self.at:
            raise self.cut_short()

    def cut_short(self) -> HostFailure:
        """What a command stopped by a cancel or by its deadline is recorded as. Whatever the
        host says after we stopped it (an exit status from the SIGPIPE our close caused) is
        not the command's own result."""
        if self.cancel.is_set():
            return HostFailure(Failure.CANCELLED, "cancelled by the responder")
        return HostFailure(Failure.TIMEOUT, f"no result within {self.seconds:g} s")

    def wait(self, seconds: float) -> None:
        """Sleep up to `seconds`, waking at once on cancel; then check."""
        self.cancel.event.wait(min(seconds, self.remaining()))
        self.check()

    def sub(self, seconds: float) -> float:
        """A timeout for one blocking call: never past the deadline, never zero."""
        return max(0.05, min(seconds, self.remaining()))


class Alarm:
    """One armed deadline on the watchdog: its action runs at `at`, unless cancelled first."""

    def __init__(self, at: float, action: Callable[[], object], watchdog: Watchdog) -> None:
        self.at, self._action, self._watchdog = at, action, watchdog
        self.state: Literal["armed", "fired", "cancelled"] = "armed"

    @property
    def fired(self) -> bool:
        """The action has run (or is running): whatever it closed was closed by us."""
        return self.state == "fired"

    def cancel(self) -> None:
        """Disarm; once this returns the action never starts (it may have run already)."""
        self._watchdog._disarm(self)


class Watchdog:
    """One thread for every deadline in the process: a heap of armed alarms, soonest first.

    A timer thread per command cost 200 threads at 200 hosts (and as many stacks); this
    costs one, started the first time anything is armed. Actions run on that thread, so
    they must be quick: close a channel, signal a process, never wait on a host. A close
    that blocked (a host whose TCP window is shut mid-rekey) would delay the alarms behind
    it; the read loops most hosts are in check their own deadline as they poll, so only a
    host still waiting for an exec reply would wait longer.
    """

    # Cancelled alarms wait in the heap until their time; past this many, the heap is rebuilt
    # so that a long step of short commands cannot grow it without end.
    _COMPACT_AT = 256

    def __init__(self, name: str = "irtool-watchdog") -> None:
        self.name = name
        self._heap: list[tuple[float, int, Alarm]] = []
        self._order = itertools.count()  # ties in time fire in the order armed
        self._cancelled = 0
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def arm(self, at: float, action: Callable[[], object]) -> Alarm:
        """Run `action` on the watchdog thread once `time.monotonic()` reaches `at`."""
        alarm = Alarm(at, action, self)
        with self._changed:
            heapq.heappush(self._heap, (at, next(self._order), alarm))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._serve, name=self.name, daemon=True)
                self._thread.start()
            if self._heap[0][2] is alarm:
                self._changed.notify()  # sooner than what the thread is waiting for
        return alarm

    def _disarm(self, alarm: Alarm) -> None:
        with self._changed:
            if alarm.state != "armed":
                return
            alarm.state = "cancelled"
            self._cancelled += 1
            if self._cancelled > self._COMPACT_AT and self._cancelled * 2 > len(self._heap):
                self._heap = [entry for entry in self._heap if entry[2].state == "armed"]
                heapq.heapify(self._heap)
                self._cancelled = 0

    def _serve(self) -> None:
        while True:
            due: list[Alarm] = []
            with self._changed:
                while not due:
                    now = time.monotonic()
                    while self._heap and (
                        self._heap[0][2].state != "armed" or self._heap[0][0] <= now
                    ):
                        _, _, alarm = heapq.heappop(self._heap)
                        if alarm.state == "armed":
                            alarm.state = "fired"
                            due.append(alarm)
                        else:
                            self._cancelled = max(0, self._cancelled - 1)
                    if not due:
                        self._changed.wait(self._heap[0][0] - now if self._heap else None)
            for alarm in due:
                with contextlib.suppress(Exception):  # an action's failure is its own host's
                    alarm._action()


# Every transport arms its deadlines here.
WATCHDOG = Watchdog()


@dataclass(frozen=True)
class Fetched:
    size: int
    sha256: str  # as the host computed it; the caller checks it against what arrived


# -- what can be fetched, and what a host's hash must look like ----------------------------

# A fetch copies a file's first `size` bytes (its size when opened) and has the host hash the
# same bytes. Anything but a regular file breaks that: a directory or a FIFO has no bytes to
# copy (and opening a FIFO hangs), /dev/zero never ends, and a /proc file says it is empty.
_KINDS: tuple[tuple[Callable[[int], bool], str], ...] = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISLNK, "a symbolic link"),
)
PSEUDO_FILE = "a pseudo-file (its size reads as 0, yet it has content, as files under /proc do)"
_SHA256 = re.compile(r"[0-9a-f]{64}")


def not_a_regular_file(path: str, kind: str) -> HostFailure:
    return HostFailure(
        Failure.ERROR, f"{path} is {kind}, not a regular file: only regular files can be fetched"
    )


def refuse_unless_regular(path: str, mode: int | None) -> None:
    """Raise, naming what `path` is, unless its mode (as stat gives it) is a regular file's."""
    if mode is not None and stat.S_ISREG(mode):
        return
    if mode is None:
        kind = "of a kind the host did not say (no file mode)"
    else:
        kind = next((k for test, k in _KINDS if test(mode)), f"of file type {stat.S_IFMT(mode):#o}")
    raise not_a_regular_file(path, kind)


def host_sha256(text: str, path: str) -> str:
    """The SHA-256 a host reported for `path`, or a protocol failure: anything but 64 hex
    digits is not a hash, and must not reach the record as one."""
    digest = text.strip().lower()
    if not _SHA256.fullmatch(digest):
        shown = text.strip()[:80]
        raise HostFailure(
            Failure.PROTOCOL,
            f"the host's hash of {path} is not a SHA-256 (64 hex digits): {shown!r}",
        )
    return digest


@dataclass
class Connection:
    """One host, connected and verified. Subclasses implement run (and fetch where they can)."""

    host: ResolvedHost
    identity: str | None = None  # what was verified: SSH key fingerprint, TLS thumbprint
    warnings: list[str] = field(default_factory=list)
    via: str | None = None  # what carried the commands, if not the host's transport: "simulated"

    @property
    def transport_name(self) -> str:
        """The transport as the chain of custody records it."""
        return self.via or str(self.host.transport)

    def run(self, command: str, shell: Shell, deadline: Deadline, on_output: OnOutput) -> int:
        raise NotImplementedError

    def fetch(self, path: str, deadline: Deadline, on_data: OnData) -> Fetched:
        raise HostFailure(Failure.PROTOCOL, f"{self.host.transport} cannot fetch files")

    def list_files(self, paths: Sequence[str], spec: FetchLimits, deadline: Deadline) -> Listing:
        """The regular files the globs `paths` match on the host, with the limits applied."""
        raise HostFailure(Failure.PROTOCOL, f"{self.host.transport} cannot list files")

    def close(self) -> None:
        """Release the connection; must not raise."""


class Transport(Protocol):
    def connect(self, host: ResolvedHost, deadline: Deadline) -> Connection: ...


class Secrets(Protocol):
    """Where transports get passwords from; the caller redacts whatever it hands out."""

    def secret(self, name: str) -> str: ...


# -- listing files by glob: what a fetch collector looked for, found and left --------------


class FetchLimits(Protocol):
    """What a fetch collector allows (irtool.model.steps.FetchSpec has these)."""

    @property
    def max_size(self) -> int: ...
    @property
    def max_files(self) -> int: ...
    @property
    def modified_within(self) -> timedelta | None: ...


@dataclass
class ListedFile:
    """One match on the host. `skipped`: why it is not fetched (None: it is)."""

    path: str
    size: int
    modified: datetime | None  # UTC
    pattern: int  # index of the glob (of those asked) that matched it first
    skipped: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "size": self.size,
            "modified": self.modified.isoformat() if self.modified else None,
            "fetch": self.skipped is None,
            **({"skipped": self.skipped} if self.skipped else {}),
        }


@dataclass
class Listing:
    """What a host's listing said: every match, what is skipped and why, what matched nothing."""

    patterns: list[str]  # as asked
    expanded: list[str]  # as the host read them (%VAR% expanded), "" where it did not say
    files: list[ListedFile]
    missing: list[str]  # patterns (as asked) that matched nothing
    errors: list[str]  # what went wrong while looking (an unreadable folder), one line each
    host_time: datetime | None = None  # the host's clock when it listed (UTC)
    truncated: bool = False  # the host stopped at LIST_CAP matches
    stderr: bytes = b""

    @property
    def to_fetch(self) -> list[ListedFile]:
        return [f for f in self.files if f.skipped is None]

    def as_dict(self) -> dict[str, Any]:
        return {
            "patterns": [
                {"pattern": p, **({"expanded": e} if e and e != p else {})}
                for p, e in zip(self.patterns, self.expanded, strict=True)
            ],
            "host_time": self.host_time.isoformat() if self.host_time else None,
            "matched": len(self.files),
            "to_fetch": len(self.to_fetch),
            "skipped": len(self.files) - len(self.to_fetch),
            "missing": self.missing,
            "errors": self.errors,
            "truncated": self.truncated,
            "files": [f.as_dict() for f in self.files],
        }


# A listing stops after this many matches: a glob as wide as a whole disk must not hold
# gigabytes of names in memory.
LIST_CAP = 200_000
WILDCARD_CHARS = "*?"


def has_wildcard(text: str) -> bool:
    return any(c in text for c in WILDCARD_CHARS)


def glob_regex(pattern: str, separators: str = "/", ignore_case: bool = False) -> re.Pattern[str]:
    """The whole-path regular expression of a glob: `*` and `?` within one folder name, a
    `**` folder any depth of folders (none included), a trailing `**` anything below;
    every other character (`[` included) is itself."""
    sep = "[" + re.escape(separators) + "]"
    name = "[^" + re.escape(separators) + "]"
    parts = re.split(sep, pattern)
    out: list[str] = []
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if part == "**":
            out.append(f"(?:{name}+{sep})*" if not last else ".*")
            continue
        text = "".join(f"{name}*" if c == "*" else name if c == "?" else re.escape(c) for c in part)
        out.append(text if last else text + sep)
    return re.compile("".join(out), re.IGNORECASE if ignore_case else 0)


@dataclass(frozen=True)
class GlobWalk:
    """Where to look for a glob: the folder to walk (or the one file), and how deep."""

    root: str  # the literal folders before the first wildcard (or the whole path)
    literal: bool  # no wildcard: root is the file itself
    depth: int | None  # levels below root a match lies at (None: any, for `**`)
    min_depth: int


def glob_walk(pattern: str, separator: str = "/") -> GlobWalk:
    parts = pattern.split(separator)
    first = next((i for i, p in enumerate(parts) if has_wildcard(p)), None)
    if first is None:
        return GlobWalk(pattern, True, 0, 0)
    root = separator.join(parts[:first]) or separator
    rest = parts[first:]
    recursive = "**" in rest
    return GlobWalk(
        root, False, None if recursive else len(rest), len([p for p in rest if p != "**"])
    )


def apply_limits(files: list[ListedFile], spec: FetchLimits, now: datetime) -> list[ListedFile]:
    """Decide what is fetched: a file of the window and within max_size is, up to max_files
    of them (the most recently modified first); the rest are kept listed with why not."""
    seen: set[str] = set()
    unique: list[ListedFile] = []
    for listed in files:
        if listed.path not in seen:  # two globs may match one file
            seen.add(listed.path)
            unique.append(listed)
    cutoff = now - spec.modified_within if spec.modified_within else None
    for listed in unique:
        if listed.skipped:
            continue
        if cutoff and listed.modified and listed.modified < cutoff:
            listed.skipped = (
                f"modified {listed.modified.isoformat(timespec='seconds')}, before "
                f"{cutoff.isoformat(timespec='seconds')} (modified_within)"
            )
        elif listed.size > spec.max_size:
            listed.skipped = f"larger than {spec.max_size} bytes ({listed.size} bytes)"
    wanted = [f for f in unique if f.skipped is None]
    if len(wanted) > spec.max_files:
        oldest = datetime.min.replace(tzinfo=now.tzinfo)
        newest = sorted(wanted, key=lambda f: (f.modified or oldest, f.path), reverse=True)
        for listed in newest[spec.max_files :]:
            listed.skipped = (
                f"beyond max_files {spec.max_files}: {len(wanted)} files qualified, the "
                f"{spec.max_files} most recently modified are fetched"
            )
    return sorted(unique, key=lambda f: f.path)


def make_listing(
    patterns: Sequence[str],
    expanded: Sequence[str],
    files: list[ListedFile],
    spec: FetchLimits,
    *,
    now: datetime,
    host_time: datetime | None = None,
    errors: Sequence[str] = (),
    truncated: bool = False,
    stderr: bytes = b"",
) -> Listing:
    """A listing with the limits applied; `now` (the host's clock when it said) is what
    modified_within counts back from."""
    decided = apply_limits(files, spec, host_time or now)
    matched = {f.pattern for f in decided}
    return Listing(
        patterns=list(patterns),
        expanded=list(expanded),
        files=decided,
        missing=[p for i, p in enumerate(patterns) if i not in matched],
        errors=list(errors),
        host_time=host_time,
        truncated=truncated,
        stderr=stderr,
    )
