"""Bare paramiko doing an irtool run's wire work, and nothing else: bench/remote.py's control.

    python bench/remote_control.py SPEC.json

SPEC (written by bench/remote.py): the user and key, the hosts (address, port, pinned host key
fingerprint), how many at once, and per host the connections to make in order, each a list of
exact command lines (as irtool sends them: the facts probe on a first connection, then the
step's commands on a second). For each host: connect with paramiko.SSHClient over a socket
with TCP_NODELAY (as irtool dials), the host key checked against its pin, key auth only; one
exec channel per command, stdin closed, stdout and stderr read to EOF, the exit status read.
What irtool does beyond this (journal, evidence, plan, redaction, its own start-up) is what
the benchmark charges to irtool.

Exit 0 when every command exited 0; 1 (saying which) otherwise. Imports nothing but paramiko
and the standard library: its CPU is the interpreter's start, paramiko's import and the wire.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import paramiko


class Pinned(paramiko.MissingHostKeyPolicy):
    """The host key must have the pinned SHA-256 fingerprint, as irtool's inventory pins it."""

    def __init__(self, pin: str) -> None:
        self.pin = pin.rstrip("=")

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        digest = hashlib.sha256(key.asbytes()).digest()
        seen = "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")
        if seen != self.pin:
            raise paramiko.SSHException(f"host key of {hostname} is {seen}, pinned {self.pin}")


def connection(spec: dict[str, Any], host: dict[str, Any], lines: list[str]) -> list[int]:
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(Pinned(host["pin"]))
    # As irtool dials: without TCP_NODELAY each exec request waits out a delayed ACK (~40 ms).
    sock = socket.create_connection((host["address"], host["port"]), timeout=60)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.connect(
        host["address"],
        host["port"],
        spec["user"],
        key_filename=spec["key"],
        look_for_keys=False,
        allow_agent=False,
        timeout=60,
        sock=sock,
    )
    try:
        statuses = []
        for line in lines:
            stdin, stdout, stderr = client.exec_command(line)
            stdin.close()
            stdout.read()
            stderr.read()
            statuses.append(stdout.channel.recv_exit_status())
        return statuses
    finally:
        client.close()


def main() -> int:
    with open(sys.argv[1]) as file:
        spec = json.load(file)

    def host(entry: dict[str, Any]) -> list[int]:
        return [s for lines in spec["connections"] for s in connection(spec, entry, lines)]

    with ThreadPoolExecutor(spec["parallel"]) as pool:
        results = list(pool.map(host, spec["hosts"]))
    failed = [
        f"{h['address']}:{h['port']} {statuses}"
        for h, statuses in zip(spec["hosts"], results, strict=True)
        if any(statuses)
    ]
    if failed:
        print(f"remote_control: a command failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
