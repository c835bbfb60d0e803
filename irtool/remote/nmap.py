"""nmap, run on the responder's machine to find web servers: an argv list, never a shell.

One run per address family (nmap scans IPv4 or IPv6, not both at once), each with its XML
on stdout (`-oX -`) under one deadline for the whole scan. The options keep it quick and
unprivileged: `-sT` (a full connect, no raw sockets, so no root), `-Pn` (every target is
scanned, so every address appears in the output even when it does not answer ping), `-n`
(no reverse DNS), `-T4 --max-retries 1`; `-sV --script http-server-header` asks each open
port what it runs and what its HTTP `Server` header says.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from irtool.model.discovery import is_ipv6_target, ports_text

SCAN_OPTIONS = ("-n", "-Pn", "-T4", "--max-retries", "1", "-sT", "-sV")
SCRIPT = "http-server-header"
STDERR_CAP = 64 * 1024


class NmapError(Exception):
    """nmap is missing, failed, or did not finish in time: one line for the responder."""


@dataclass(frozen=True)
class NmapRun:
    argv: tuple[str, ...]
    xml: bytes  # what nmap wrote on stdout: its XML
    warnings: tuple[str, ...]  # what it said on stderr, line by line


def find_nmap() -> str:
    found = shutil.which("nmap")
    if not found:
        raise NmapError(
            "nmap is not installed on this machine: install it (Debian/Ubuntu: "
            "`sudo apt-get install nmap`), or scan elsewhere and read the result with --xml"
        )
    return found


def nmap_argv(nmap: str, targets: Sequence[str], ports: Sequence[int]) -> list[str]:
    """The command line for one address family's targets (all IPv4, or all IPv6)."""
    family = ["-6"] if any(is_ipv6_target(t) for t in targets) else []
    return [
        nmap,
        *family,
        *SCAN_OPTIONS,
        "--script",
        SCRIPT,
        "-p",
        ports_text(ports),
        "-oX",
        "-",
        "--",
        *targets,
    ]


def _kill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


def run_nmap(argv: Sequence[str], seconds: float) -> NmapRun:
    """Run one scan to its end, or kill it (and whatever it started) at `seconds`."""
    try:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as failed:
        raise NmapError(f"cannot start nmap: {failed.strerror or failed}") from None
    try:
        out, err = process.communicate(timeout=max(0.1, seconds))
    except subprocess.TimeoutExpired:
        _kill(process)
        raise NmapError(
            f"the scan did not finish within {seconds:g} s: scan fewer addresses or "
            "ports, or give more time with --timeout"
        ) from None
    except BaseException:
        _kill(process)
        raise
    warnings = tuple(
        line for line in err[:STDERR_CAP].decode("utf-8", "replace").splitlines() if line.strip()
    )
    if process.returncode != 0:
        said = "; ".join(warnings[-3:]) or "no message"
        raise NmapError(f"nmap failed (exit status {process.returncode}): {said}")
    return NmapRun(tuple(argv), out, warnings)


def scan(targets: Sequence[str], ports: Sequence[int], seconds: float) -> list[NmapRun]:
    """Scan `targets` (checked with `irtool.model.discovery.parse_target`) on `ports`: one
    nmap run per address family, all within `seconds`."""
    nmap = find_nmap()
    families = [
        [t for t in targets if not is_ipv6_target(t)],
        [t for t in targets if is_ipv6_target(t)],
    ]
    end = time.monotonic() + seconds
    runs = []
    for group in families:
        if group:
            left = end - time.monotonic()
            if left <= 0:
                raise NmapError(f"the scan did not finish within {seconds:g} s")
            runs.append(run_nmap(nmap_argv(nmap, group, ports), left))
    return runs


def resolve(names: Sequence[str], seconds: float) -> dict[str, list[str]]:
    """The addresses each name resolves to now; a name that does not resolve within
    `seconds` (or at all) is left out. The look-ups run in daemon threads: one stuck in
    the resolver is abandoned, and never holds up the command's exit."""
    found: dict[str, list[str]] = {}
    lock = threading.Lock()

    def lookup(name: str) -> None:
        try:
            answers = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError):
            return
        addresses = sorted({str(item[4][0]) for item in answers})
        with lock:
            found[name] = addresses

    threads = [
        threading.Thread(target=lookup, args=(name,), name=f"resolve {name}", daemon=True)
        for name in names
    ]
    end = time.monotonic() + seconds
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, end - time.monotonic()))
    with lock:
        return {name: list(addresses) for name, addresses in found.items() if addresses}
