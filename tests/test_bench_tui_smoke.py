"""bench/tui.py still runs end to end: two launches each, a short stream, a few presses, and
the opens of a 20,000-event incident, the first writing the checkpoint the later ones use."""

from __future__ import annotations

import re

from tests.support.bench import run_bench

ROWS = [
    "minimal Textual app (Header, Label, Footer)",
    "irtool open ID, first frame (LIVE, title, id)",
    "irtool open ID, steps drawn (usable)",
    "timeline: down, nothing running",
    "run screen: down/up between 2 hosts, 10 MiB streaming",
    "run screen: the same, once the run is over",
    "timeline: down, 10 MiB streaming from another terminal",
    "step list: down/up right after the steps appear",
    "timeline: down, once its rows are shown",
]


def test_the_tui_benchmark_runs_quick() -> None:
    result = run_bench("tui.py", "--quick", timeout=300)
    for label in ROWS:
        # every row carries numbers: a label, then a count or a median in ms
        assert re.search(rf"^  {re.escape(label)} +\d+ ", result.stdout, re.M), result.stdout
    assert re.search(r"MiB/s over \d+\.\d s", result.stdout), result.stdout
    assert re.search(r"launch: irtool open first frame / minimal app = \d+ / \d+ ms", result.stdout)
    assert result.stdout.count("(target < 100 ms)") == 2
    # the big incident: a first open and the later ones' median, from this tree
    assert re.search(r"^  after \(this tree\) +\d+ +\d+ +\d+ \d+$", result.stdout, re.M)
    assert "written by the first open; left as it was by every later open" in result.stdout
    assert re.search(
        r"steps drawn at 20,000 events, this tree's later opens, median = \d+ ms "
        r"\(target <= 2000 ms\)",
        result.stdout,
    )
