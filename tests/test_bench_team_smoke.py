"""bench/team.py still runs end to end (--quick: 1 and 2 writer processes on a PostgreSQL of
its own): both the bare prototype and irtool's journal measured, every append heard by the
listener, and irtool's chain verified."""

from __future__ import annotations

import re

from tests.support.bench import run_bench


def test_the_team_benchmark_runs_quick() -> None:
    out = run_bench("team.py", "--quick", timeout=300).stdout
    rows = re.findall(r"^(\d) writer\(s\)  (bare|irtool) +appends/s +([\d.]+) .* heard +([\d.]+)$",
                      out, re.M)  # fmt: skip
    assert [(w, kind) for w, kind, _, _ in rows] == [
        ("1", "bare"), ("1", "irtool"), ("2", "bare"), ("2", "irtool")
    ], out  # fmt: skip
    assert all(float(rate) > 0 for _, _, rate, _ in rows), out
    assert [float(heard) for *_, heard in rows] == [20, 20, 40, 40], out
    assert out.count("chain: verified") == 2, out
