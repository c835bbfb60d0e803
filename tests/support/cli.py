"""Running `irtool` as a real process, as a responder at a terminal would."""

from __future__ import annotations

import subprocess
import sys


def irtool(
    env: dict[str, str], *args: str, stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "irtool", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result
