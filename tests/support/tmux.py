"""A real terminal for the UI: tmux on a private socket, driven as a person would drive it."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType


class Tmux:
    """One tmux server and session running `command` at `width`x`height`."""

    def __init__(
        self,
        command: list[str],
        env: Mapping[str, str],
        directory: Path,
        width: int = 80,
        height: int = 24,
    ) -> None:
        if shutil.which("tmux") is None:
            raise RuntimeError("tmux is not installed: scripts/test-all installs it")
        self.socket = f"irtool-test-{os.getpid()}-{time.monotonic_ns()}"
        # The exit status is printed when the program ends, so a test can wait for it.
        script = f"{shlex.join(command)}; echo IRTOOL-EXIT=$?; sleep 600"
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        self._tmux(
            "-f", "/dev/null", "new-session", "-d", "-s", "ui", "-x", str(width), "-y",
            str(height), "-c", str(directory), f"env {exports} TERM=xterm-256color sh -c "
            + shlex.quote(script),
        )  # fmt: skip

    def _tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=30
        )
        if done.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args[:2])}: {done.stderr.strip()}")
        return done.stdout

    def command(self, *args: str) -> str:
        """Any tmux command on this server (set-option, list-buffers, display -p ...)."""
        return self._tmux(*args)

    def send(self, *keys: str) -> None:
        """tmux key names (Enter, C-s, Tab, Space) or literal text."""
        for key in keys:
            if key[:2] in ("C-", "M-") or key in ("Enter", "Tab", "Space", "Escape", "Up", "Down"):
                self._tmux("send-keys", "-t", "ui", key)
            else:
                self._tmux("send-keys", "-t", "ui", "-l", key)

    def text(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "ui")

    def wait_for(self, needle: str, timeout: float = 30) -> str:
        """Poll the screen until `needle` shows; fail with the screen if it never does."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.text()
            if needle in screen:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"'{needle}' never showed; the screen:\n{screen}")
            time.sleep(0.1)  # polling the screen: the condition above is the synchronisation

    def press_for(self, key: str, needle: str, tries: int = 3, timeout: float = 10) -> str:
        """Press a one-key command until what it opens shows: a key the app reads while a
        screen it left is still being taken down can be lost (seen on a loaded machine), and
        pressing it again is harmless while nothing it opens is on screen."""
        for attempt in range(tries):
            self.send(key)
            try:
                return self.wait_for(needle, timeout)
            except AssertionError:
                if attempt == tries - 1:
                    raise
        raise AssertionError("unreachable")

    def __enter__(self) -> Tmux:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=30)
