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
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal, Protocol

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
        if self.cancel.is_set():
            raise HostFailure(Failure.CANCELLED, "cancelled by the responder")
        if time.monotonic() >= self.at:
            raise HostFailure(Failure.TIMEOUT, f"no result within {self.seconds:g} s")

    def wait(self, seconds: float) -> None:
        """Sleep up to `seconds`, waking at once on cancel; then check."""
        self.cancel.event.wait(min(seconds, self.remaining()))
        self.check()

    def sub(self, seconds: float) -> float:
        """A timeout for one blocking call: never past the deadline, never zero."""
        return max(0.05, min(seconds, self.remaining()))


@dataclass(frozen=True)
class Fetched:
    size: int
    sha256: str  # as the host computed it; the caller checks it against what arrived


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

    def close(self) -> None:
        """Release the connection; must not raise."""


class Transport(Protocol):
    def connect(self, host: ResolvedHost, deadline: Deadline) -> Connection: ...


class Secrets(Protocol):
    """Where transports get passwords from; the caller redacts whatever it hands out."""

    def secret(self, name: str) -> str: ...
