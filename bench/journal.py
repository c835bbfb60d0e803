"""Journal speed: durable appends per second, and `verify` over 100k events.

Run: .venv/bin/python bench/journal.py [--appends N] [--events N]

Side by side in one run: irtool's append (hash chain, BEGIN IMMEDIATE, a
durable commit per event) against a bare SQLite insert with the same
durability settings, so the ratio is the cost of the chain itself.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from irtool.journal import EventDraft, Journal


def irtool_appends(path: Path, n: int) -> list[float]:
    times = []
    with Journal(path, "ir-bench", create=True) as journal:
        for i in range(n):
            draft = EventDraft("note.added", "bench", {"text": f"note {i}", "i": i})
            start = time.perf_counter()
            journal.append(draft)
            times.append(time.perf_counter() - start)
    return times


def bare_sqlite_appends(path: Path, n: int) -> list[float]:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, data TEXT NOT NULL)")
    times = []
    for i in range(n):
        start = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO events (data) VALUES (?)", (f'{{"text":"note {i}","i":{i}}}',))
        db.execute("COMMIT")
        times.append(time.perf_counter() - start)
    db.close()
    return times


def build(path: Path, n: int) -> None:
    # Batches of 1000 per transaction: only to build the journal quickly for verify.
    with Journal(path, "ir-bench", create=True) as journal:
        for batch in range(0, n, 1000):
            with journal.transaction() as tx:
                for i in range(batch, min(n, batch + 1000)):
                    tx.append(EventDraft("note.added", "bench", {"text": f"note {i}", "i": i}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--appends", type=int, default=2000)
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        ours = irtool_appends(Path(tmp) / "a.sqlite", args.appends)
        bare = bare_sqlite_appends(Path(tmp) / "b.sqlite", args.appends)
        ours_rate, bare_rate = len(ours) / sum(ours), len(bare) / sum(bare)
        print(f"durable appends, {args.appends} each, one commit per event (synchronous=FULL):")
        print(
            f"  irtool journal   {ours_rate:8.0f}/s  median {statistics.median(ours) * 1e3:.2f} ms"
        )
        print(
            f"  bare sqlite      {bare_rate:8.0f}/s  median {statistics.median(bare) * 1e3:.2f} ms"
        )
        ratio = statistics.median(ours) / statistics.median(bare)
        print(f"  ratio (median irtool / bare): {ratio:.2f}x")
        path = Path(tmp) / "v.sqlite"
        build(path, args.events)
        runs = []
        for _ in range(3):
            with Journal(path, "ir-bench") as journal:
                start = time.perf_counter()
                result = journal.verify()
                runs.append(time.perf_counter() - start)
            assert result.ok and result.count == args.events
        print(
            f"verify {args.events} events: median {statistics.median(runs):.2f} s of 3 runs "
            f"({args.events / statistics.median(runs):.0f} events/s)"
        )


if __name__ == "__main__":
    main()
