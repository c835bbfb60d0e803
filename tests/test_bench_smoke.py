"""bench/remote.py still runs end to end: a small farm, irtool only (no Ansible)."""

from __future__ import annotations

from tests.support.bench import run_bench


def test_the_remote_benchmark_runs_quick_without_ansible() -> None:
    result = run_bench("remote.py", "--quick", "--no-ansible", timeout=90)
    assert "irtool run --parallel 5, 5 hosts" in result.stdout
    assert "peak RSS collecting 64 MiB" in result.stdout
