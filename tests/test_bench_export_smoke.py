"""bench/export.py still runs end to end: a small incident, one run of every export format."""

from __future__ import annotations

import re
import subprocess
import sys

from irtool.export.formats import FORMATS
from tests.conftest import ROOT

NUMBER = r"\d+\.\d+"


def test_the_export_benchmark_runs_quick() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "export.py"), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Traceback" not in result.stderr
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
