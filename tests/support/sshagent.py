"""A real ssh-agent on a socket of the test's own, holding keys made for the test's people."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Agent:
    socket: Path
    folder: Path
    keys: dict[str, Path] = field(default_factory=dict)  # name -> private key file

    @property
    def env(self) -> dict[str, str]:
        return {"SSH_AUTH_SOCK": str(self.socket)}

    def make_key(self, name: str, kind: str = "ed25519", add: bool = True) -> str:
        """A new key pair for `name` (added to the agent unless `add` is False); its public
        key line."""
        path = self.folder / f"{name}-{kind}"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", name, "-f", str(path)],
            check=True,
            capture_output=True,
        )
        if add:
            subprocess.run(
                ["ssh-add", "-q", str(path)],
                check=True,
                capture_output=True,
                env={**os.environ, **self.env},
            )
        self.keys[name] = path
        return Path(f"{path}.pub").read_text().strip()


@contextmanager
def ssh_agent(folder: Path, askpass: str | None = None) -> Iterator[Agent]:
    """`ssh-agent -a SOCKET` forks and its parent exits once the socket is bound: the agent
    is ready when this returns, with no waiting. Killed on the way out. `askpass`: what the
    agent runs to confirm the use of a key added with `ssh-add -c`."""
    folder.mkdir(parents=True, exist_ok=True)
    socket = folder / "agent.sock"
    env = {**os.environ, **({"SSH_ASKPASS": askpass} if askpass else {})}
    started = subprocess.run(
        ["ssh-agent", "-s", "-a", str(socket)], env=env, check=True, capture_output=True, text=True
    )
    found = re.search(r"SSH_AGENT_PID=(\d+)", started.stdout)
    assert found, started.stdout
    try:
        yield Agent(socket, folder)
    finally:
        os.kill(int(found[1]), signal.SIGTERM)
