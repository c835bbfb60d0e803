"""The concrete transports by their inventory name: faces build this, the engine takes it.

Each is built, and its module imported, the first time a run uses it: an SSH-only run never
imports pywinrm and requests (~90 ms), a WinRM-only one never paramiko.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from irtool.model.inventory import ResolvedHost
from irtool.remote.base import Connection, Deadline, Secrets, Transport


class OnFirstUse:
    """A transport that is built the first time it is used (a connect, or a question about
    what a host costs it); what it was given (its `secrets`) can be asked before that."""

    def __init__(
        self,
        name: str,
        build: Callable[[], Transport],
        secrets: Secrets | None,
        descriptors_per_host: int,
    ) -> None:
        self.name = name
        self.secrets = secrets  # for irtool.secrets.run.preload, which must not build it
        # Said here, not asked of the transport: sizing a run over a mixed inventory must not
        # import the transports its step does not use (tests keep the two the same).
        self.descriptors_per_host = descriptors_per_host
        self._build = build
        self._built: Transport | None = None
        self._lock = threading.Lock()

    def built(self) -> Transport:
        if self._built is None:
            with self._lock:  # host threads may all connect at once
                if self._built is None:
                    self._built = self._build()
        return self._built

    def connect(self, host: ResolvedHost, deadline: Deadline) -> Connection:
        return self.built().connect(host, deadline)

    def __repr__(self) -> str:
        return f"OnFirstUse({self.name!r}, built={self._built is not None})"


def live_transports(
    secrets: Secrets, ssh_config: Path | None = None, known_hosts: Path | None = None
) -> dict[str, Transport]:
    def ssh() -> Transport:
        from irtool.remote.ssh import SshTransport

        return SshTransport(secrets, config_file=ssh_config, known_hosts_file=known_hosts)

    def winrm() -> Transport:
        from irtool.remote.winrm import WinrmTransport

        return WinrmTransport(secrets)

    def local() -> Transport:
        from irtool.remote.local import LocalTransport

        return LocalTransport()

    return {
        "ssh": OnFirstUse("ssh", ssh, secrets, descriptors_per_host=4),
        "winrm": OnFirstUse("winrm", winrm, secrets, descriptors_per_host=3),
        "local": OnFirstUse("local", local, None, descriptors_per_host=5),
    }
