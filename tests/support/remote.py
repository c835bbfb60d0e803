"""Driving a transport by hand in tests: run one command, or expect a connection refused."""

from __future__ import annotations

import pytest

from irtool.model.facts import LINUX_PROBE
from irtool.model.inventory import ResolvedHost
from irtool.model.steps import Shell
from irtool.remote.base import Connection, Deadline, HostFailure, OnOutput, Transport
from irtool.remote.local import LocalConnection, LocalTransport


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


class NamelessLocal(LocalTransport):
    """The local transport as golden files and snapshots need it: an identity that does not
    name this machine, and, asked what it is (the first-contact probe), a fixed answer, not
    this machine's release."""

    def __init__(self, identity: str, warnings: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.identity, self.warnings = identity, list(warnings)

    def connect(self, host: ResolvedHost, deadline: Deadline) -> LocalConnection:
        return _NamelessConnection(host=host, identity=self.identity, warnings=self.warnings)


class _NamelessConnection(LocalConnection):
    def run(self, command: str, shell: Shell, deadline: Deadline, on_output: OnOutput) -> int:
        if command == LINUX_PROBE:
            on_output("stdout", b"Linux 6.1.0-test\nPRETTY_NAME=Test Linux 1\n")
            return 0
        return super().run(command, shell, deadline, on_output)
