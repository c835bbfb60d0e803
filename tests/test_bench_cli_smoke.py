"""bench/cli.py still runs end to end: every command timed, a fresh incident and a small one."""

from __future__ import annotations

import re

from tests.support.bench import run_bench

MS = r"\d+ ms"
MB = r"\d+ MB"


def test_the_start_up_benchmark_runs_quick() -> None:
    result = run_bench("cli.py", "--quick", timeout=400)
    out = result.stdout
    assert re.search(rf"^  python -c pass +{MS}$", out, re.M), out
    for label in [
        r"irtool --version",
        r"irtool --help",
        r"python -m irtool --help",
        r"validate \(runbooks, examples\)",
        r"plan \(iis-compromise\)",
        r"incident note \(fresh\)",
    ]:
        assert re.search(rf"^  {label} +after +{MS} +{MB}$", out, re.M), (label, out)
    grown = (
        rf"^  incident note \(2,000 events\) +after +{MS} +{MB} first +{MS} note/fresh +[\d.]+x$"
    )
    assert re.search(grown, out, re.M), out
