"""bench/team.py still runs end to end (--quick: 1 and 2 writer processes, one round, on a
PostgreSQL of its own and an ssh-agent per writer): every journal measured (the bare
prototype, SQLite, PgJournal, TeamJournal, TeamJournal signed), notify-to-state measured under
the bare prototype, PgJournal and TeamJournal writers, each figure given, every append folded
into the screen process's state, every chain and signature verified. With --json the table
goes to stderr and the same figures to stdout as JSON: both are read."""

from __future__ import annotations

import json
import re

from tests.support.bench import run_bench

KINDS = ["bare", "sqlite", "pg", "team", "team+signed"]
N = r"(-?[\d.]+|-)"  # a figure, or none
VERIFIED = r"  (yes|NO) \((\d+) appends\)$"
SPEED = re.compile(
    rf"^(bare|sqlite|pg|team|team\+signed) +(\d) +{N} +{N} +{N} +{N} +{N} +(\d+-\d+){VERIFIED}",
    re.M,
)
NOTIFY = re.compile(rf"^(bare heard|pg|team) +{N} +{N} +{N} +{N} +{N} +{N}{VERIFIED}", re.M)


def test_the_team_benchmark_runs_quick() -> None:
    done = run_bench("team.py", "--quick", "--json", timeout=300)
    table, out = done.stderr, json.loads(done.stdout)
    speed, notify = SPEED.findall(table), NOTIFY.findall(table)
    assert [(kind, writers) for kind, writers, *_ in speed] == [
        (kind, writers) for writers in "12" for kind in KINDS
    ], table
    for kind, writers, rate, vs_bare, p50, p99, sign, _, verified, count in speed:
        assert float(rate) > 0 and float(vs_bare) > 0, table
        assert float(p50) > 0 and float(p99) >= float(p50), table
        assert (sign != "-") == (kind == "team+signed"), table
        assert verified == "yes" and int(count) == 20 * int(writers), table
    assert [kind for kind, *_ in notify] == ["bare heard", "pg", "team"], table
    for kind, rate, p50, p95, p99, from50, from95, verified, count in notify:
        assert float(rate) > 0 and float(p95) >= float(p50) and float(p99) >= float(p95), table
        assert (from50 == "-") == (from95 == "-") == (kind == "bare heard"), table
        assert verified == "yes" and int(count) == 40, table
    for kind in ("pg", "team"):
        goal = rf"^goal: notify p95 < 100 ms with 2 writers on {kind}: -?[\d.]+ ms \(at most "
        assert re.search(goal, table, re.M), table
    assert re.search(r"^goal: >= 500 signed appends/s with 2 writers: [\d.]+/s", table, re.M)
    assert re.search(r"^signing, 2 writers: [\d.]+x unsigned \([\d.]+/s\); one signature p50 "
                     r"[\d.]+ ms, p99 [\d.]+ ms$", table, re.M), table  # fmt: skip
    assert re.search(r"^ratios, 2 writer\(s\): pg/sqlite [\d.]+, team/sqlite", table, re.M), table
    assert "chains: all verified (13 of 13 rows)" in table, table
    rows = out["appends"] + out["notify"]
    assert len(out["appends"]) == 10 and len(out["notify"]) == 3, out
    for row in rows:
        assert row["verified"] and not row["problems"], row
        assert row["appends_per_s"] > 0 and row["p99_ms"] >= row["p50_ms"] > 0, row
        assert (row["sign_p50_ms"] is not None) == (row["journal"] == "team+signed"), row
    for row in out["notify"]:  # every append folded into the screen's state (bare: heard)
        assert row["folded"] == row["appends"] == 40 and row["notify_p95_ms"] is not None, row
