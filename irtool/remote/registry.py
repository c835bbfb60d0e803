"""The concrete transports by their inventory name: faces build this, the engine takes it."""

from __future__ import annotations

from pathlib import Path

from irtool.remote.base import Secrets, Transport
from irtool.remote.local import LocalTransport
from irtool.remote.ssh import SshTransport
from irtool.remote.winrm import WinrmTransport


def live_transports(
    secrets: Secrets, ssh_config: Path | None = None, known_hosts: Path | None = None
) -> dict[str, Transport]:
    return {
        "ssh": SshTransport(secrets, config_file=ssh_config, known_hosts_file=known_hosts),
        "winrm": WinrmTransport(secrets),
        "local": LocalTransport(),
    }
