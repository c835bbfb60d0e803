"""bench/export.py still runs end to end: a small incident, one run of every export format."""

from __future__ import annotations

import re

from irtool.export.formats import FORMATS
from tests.support.bench import run_bench

NUMBER = r"\d+\.\d+"


def test_the_export_benchmark_runs_quick() -> None:
    result = run_bench("export.py", "--quick")
    assert "differs" not in result.stderr, result.stderr
    assert "incident of 2,000 events, built in" in result.stdout
    read = rf"^  read \(verify \+ fold \+ evidence check\) +{NUMBER} s +[\d,]+ events/s$"
    assert re.search(read, result.stdout, re.M), result.stdout
    for name in FORMATS:
        # every format has its row, and every column of it a number
        row = (
            rf"^  {re.escape(name)} +format +{NUMBER} s +cli +{NUMBER} s +{NUMBER} MB"
            rf" +[\d,]+ events/s +peak RSS +\d+ MB$"
        )
        assert re.search(row, result.stdout, re.M), result.stdout
