"""bench/weblog.py still runs end to end: a small log, one run, irtool reading every line right."""

from __future__ import annotations

import re
import shutil

from tests.support.bench import run_bench

NUMBER = r"[\d,]+(?:\.\d+)?"


def test_the_weblog_benchmark_runs_small() -> None:
    # --no-goaccess when it is not installed: the benchmark would install it (as root).
    extra = () if shutil.which("goaccess") else ("--no-goaccess",)
    result = run_bench("weblog.py", "--lines", "20000", "--runs", "1", *extra, timeout=60)
    out = result.stdout
    assert "log: 20,008 lines (20,000 requests, a mid-file #Fields change)" in out, out
    row = (
        rf"^  irtool +{NUMBER} s +{NUMBER} lines/s cpu +{NUMBER} s +{NUMBER} lines/cpu-s "
        rf"peak RSS +\d+ MB  mis-parsed +0  \(\d+ finding\(s\)\)$"
    )
    assert re.search(row, out, re.M), out
    assert re.search(rf"^  wc -l +{NUMBER} s .* mis-parsed +0  \(20,008 lines\)$", out, re.M), out
    assert re.search(
        rf"^  irtool / wc -l: {NUMBER}x lines/s \(wc -l is [\d,]+x faster\)$", out, re.M
    ), out
    if extra:
        assert re.search(r"^  goaccess +skipped: --no-goaccess$", out, re.M), out
    else:
        # goaccess does not follow the #Fields change: the second half fails
        assert re.search(r"^  goaccess .* mis-parsed +10000 ", out, re.M), out
        assert re.search(rf"^  irtool / goaccess: {NUMBER}x lines/s", out, re.M), out
    for phase in ("parse only", "parse \\+ load", r"\d+ hunts"):
        assert re.search(rf"^  {phase}.* {NUMBER} s +{NUMBER} lines/s$", out, re.M), out
