"""Driving a transport by hand in tests: run one command, or expect a connection refused."""

from __future__ import annotations

import pytest

from irtool.model.inventory import ResolvedHost
from irtool.model.steps import Shell
from irtool.remote.base import Connection, Deadline, HostFailure, Transport


def run(
    connection: Connection, command: str, shell: Shell = Shell.SH, seconds: float = 20
) -> tuple[int, bytes, bytes]:
    out: dict[str, list[bytes]] = {"stdout": [], "stderr": []}
    status = connection.run(
        command, shell, Deadline(seconds), lambda stream, data: out[stream].append(data)
    )
    return status, b"".join(out["stdout"]), b"".join(out["stderr"])


def refused(transport: Transport, target: ResolvedHost, seconds: float = 10) -> HostFailure:
    with pytest.raises(HostFailure) as failed:
        transport.connect(target, Deadline(seconds)).close()
    return failed.value
