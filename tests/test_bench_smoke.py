"""bench/remote.py still runs end to end: a small farm, irtool only (no Ansible)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_the_remote_benchmark_runs_quick_without_ansible() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "remote.py"), "--quick", "--no-ansible"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Traceback" not in result.stderr
    assert "irtool run --parallel 5, 5 hosts" in result.stdout
    assert "peak RSS collecting 64 MiB" in result.stdout
