"""bench/remote.py still runs end to end: a small farm, irtool only (no Ansible)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT
from tests.support.bench import run_bench


def test_the_remote_benchmark_runs_quick_without_ansible() -> None:
    result = run_bench("remote.py", "--quick", "--no-ansible", timeout=90)
    assert "irtool run --parallel 5, 5 hosts" in result.stdout
    assert "peak RSS collecting 64 MiB" in result.stdout
    # The bare-paramiko control ran beside irtool, and irtool's own CPU is charged against it.
    assert "bare paramiko, 5 hosts" in result.stdout
    assert "once started (5 hosts less 1 host, both sides):" in result.stdout


def test_the_remote_benchmark_refuses_a_baseline_that_names_no_commit() -> None:
    # Refused before any sshd starts or any worktree is added (the full --baseline run takes
    # twice the quick run: `bench/remote.py --quick --no-ansible --baseline HEAD` by hand).
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "remote.py"), "--quick", "--baseline", "no-such-rev"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "--baseline: 'no-such-rev' names no commit" in result.stderr


def test_the_remote_benchmark_refuses_a_baseline_tree_without_irtool(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "remote.py"), "--quick", "--baseline-tree",
         str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert f"--baseline-tree: {tmp_path} holds no irtool/ package" in result.stderr
