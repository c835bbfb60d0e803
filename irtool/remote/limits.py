"""How many hosts at once the process's file descriptors allow.

Each host in flight holds descriptors: its transport's (a socket, pipes) and the
engine's (a command's two evidence files, and the evidence directory opened to
fsync it). A run that asks for more hosts at once than the descriptors allow does
not fail slowly host by host with "Too many open files": its `--parallel` is
lowered to fit, and the responder is told.

Imported by the command line at start-up, so it imports nothing heavy.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

# The engine's share of a host in flight, whatever the transport: the command's stdout and
# stderr evidence files, and the evidence directory it opens to fsync the rename.
ENGINE_PER_HOST = 3
# A transport that does not say what a host costs it (a test double, a new transport).
UNKNOWN_TRANSPORT = 8
# What the run needs besides its hosts, on top of what is open when it is sized: the
# journal's second connection and its spool, the step's run lock, the debug log, a keyring's
# D-Bus socket, modules still to import (paramiko's first connect reads dozens of files, one
# at a time). Generous: running out costs a host, a spare descriptor costs nothing.
RESERVE = 32
# Past this, raising the soft limit buys nothing (512 hosts of any transport fit well below
# it) and costs children that close every descriptor up to the limit before they exec.
RAISE_CAP = 1 << 16


def raise_descriptor_limit() -> None:
    """Soft RLIMIT_NOFILE up to the hard limit (capped at RAISE_CAP): irtool is a process of
    many sockets, and the usual soft limit of 1024 is a default for programs of few."""
    try:
        import resource
    except ImportError:  # not a POSIX system: nothing to raise
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = RAISE_CAP if hard == resource.RLIM_INFINITY else min(hard, RAISE_CAP)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError):  # a platform with its own ceiling: keep what we have
            return


def descriptors() -> tuple[int, int]:
    """(the soft limit, how many are open now)."""
    try:
        import resource
    except ImportError:  # not a POSIX system: no such limit to fit in
        return RAISE_CAP, 0
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        # The listing's own descriptor is counted too: one of headroom.
        open_now = len(os.listdir("/proc/self/fd"))
    except OSError:
        open_now = len(os.listdir("/dev/fd"))
    return (soft if soft != resource.RLIM_INFINITY else RAISE_CAP), open_now


def per_host(transports: Iterable[object]) -> int:
    """Descriptors one host in flight costs, for the costliest of `transports`."""
    costs = [getattr(t, "descriptors_per_host", UNKNOWN_TRANSPORT) for t in transports]
    return max(costs, default=UNKNOWN_TRANSPORT) + ENGINE_PER_HOST


def in_use(transports: Mapping[str, object], names: Iterable[str]) -> list[object]:
    """The transports a run will use: those the hosts name (all of them if none is known)."""
    used = [transports[name] for name in set(names) if name in transports]
    return used or list(transports.values())


class Parallel:
    """`--parallel` as asked, and as the descriptors allow."""

    # A plain class: a dataclass costs a millisecond to build, and `irtool --version` pays
    # for everything this module does at import.
    def __init__(self, asked: int, allowed: int, limit: int, per_host: int) -> None:
        self.asked, self.allowed = asked, allowed
        self.limit = limit  # the soft RLIMIT_NOFILE
        self.per_host = per_host

    @property
    def lowered(self) -> bool:
        return self.allowed < self.asked

    def message(self) -> str:
        return (
            f"--parallel lowered from {self.asked} to {self.allowed}: only {self.limit} file "
            f"descriptors ({self.per_host} per host in flight)"
        )


def fit_parallel(asked: int, transports: Iterable[object]) -> Parallel:
    """How many hosts at once fit in the descriptors left, for a run over `transports`."""
    cost = per_host(transports)
    limit, open_now = descriptors()
    fits = (limit - open_now - RESERVE) // cost
    return Parallel(asked, max(1, min(asked, fits)), limit, cost)
