"""bench/writes.py still runs end to end (--quick: a fresh incident and one of 2,000 events),
with every write of both sizes measured and its ratio to the fresh incident printed."""

from __future__ import annotations

import re

from tests.support.bench import run_bench


def test_the_writes_benchmark_runs_quick() -> None:
    out = run_bench("writes.py", "--quick", timeout=300).stdout
    rows = re.findall(
        r"^after +(\d+) +[\d.]+ ms +([\d.]+) ms +([\d.]+) ms +([\d.]+) ms +([\d./]+)$", out, re.M
    )
    assert [int(size) for size, *_ in rows] == [0, 2000], out
    assert rows[0][4] == "1.00/1.00/1.00", out
    assert all(float(ms) > 0 for _, *times, _ in rows for ms in times), out
