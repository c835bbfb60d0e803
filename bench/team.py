"""Team mode's journal on PostgreSQL: durable appends per second with one and with several
writer processes, their latency, and how soon a listener hears of each append.

Run (from the repository root; it starts its own PostgreSQL, Debian's, on 127.0.0.1):

    .venv/bin/python bench/team.py [--writers 4] [--events 250] [--quick]

Side by side in one run, each with the same server, the same number of writer processes and
the same durability (fsync on, a commit per event):

* irtool: `PgJournal.append` (the advisory lock, the head read, the server's clock, the
  hash chain, the INSERT, the NOTIFY);
* bare: the prototype the issue measured, the same lock, UNIQUE constraints and NOTIFY around
  a bare INSERT of the same data, with no chain: the ratio is the cost of the chain itself.

Each writer appends `--events` notes to one shared incident; the figures are the appends of
all writers over the wall time of the slowest, the median and 95th percentile of one append,
and the median delay from an append's commit to a LISTENing connection hearing of it. The
chain is verified at the end of irtool's run.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from irtool.journal import EventDraft  # noqa: E402
from irtool.journal.postgres import CHANNEL, PgJournal, install  # noqa: E402
from tests.support.postgres import postgres_server  # noqa: E402

BARE = """
CREATE TABLE IF NOT EXISTS bare_events (
    incident TEXT NOT NULL, seq BIGINT NOT NULL, data TEXT NOT NULL, prev_hash TEXT NOT NULL,
    PRIMARY KEY (incident, seq), UNIQUE (incident, prev_hash)
)
"""


def irtool_writer(
    url: str, incident: str, who: str, count: int, out: multiprocessing.Queue
) -> None:  # type: ignore[type-arg]
    times = []
    with PgJournal(url, incident) as journal:
        for n in range(count):
            start = time.perf_counter()
            event = journal.append(EventDraft("note.added", who, {"text": f"{who} {n}"}))
            times.append((time.perf_counter() - start, time.time(), event.seq))
    out.put(times)


def bare_writer(url: str, incident: str, who: str, count: int, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    times = []
    with psycopg.connect(url, autocommit=True) as db:
        for n in range(count):
            start = time.perf_counter()
            with db.transaction():
                db.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (incident,))
                head = db.execute(
                    "SELECT seq FROM bare_events WHERE incident = %s ORDER BY seq DESC LIMIT 1",
                    (incident,),
                ).fetchone()
                seq = (head[0] if head else 0) + 1
                db.execute(
                    "INSERT INTO bare_events VALUES (%s, %s, %s, %s)",
                    (incident, seq, json.dumps({"text": f"{who} {n}"}), f"{incident}-{seq}"),
                )
                db.execute("SELECT pg_notify(%s, %s)", (CHANNEL, f"{incident} {seq}"))
            times.append((time.perf_counter() - start, time.time(), seq))
    out.put(times)


def run(kind: str, url: str, incident: str, writers: int, events: int) -> dict[str, float]:
    target = irtool_writer if kind == "irtool" else bare_writer
    heard: dict[int, float] = {}
    with psycopg.connect(url, autocommit=True) as listener:
        listener.execute(f"LISTEN {CHANNEL}")
        out: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
        procs = [
            multiprocessing.Process(target=target, args=(url, incident, f"w{n}", events, out))
            for n in range(writers)
        ]
        start = time.perf_counter()
        for proc in procs:
            proc.start()
        for note in listener.notifies(timeout=120, stop_after=writers * events):
            name, seq = note.payload.rsplit(" ", 1)
            if name == incident:
                heard[int(seq)] = time.time()
        results = [out.get(timeout=120) for _ in procs]
        for proc in procs:
            proc.join(timeout=60)
        wall = time.perf_counter() - start
    latencies = sorted(t for times in results for t, _, _ in times)
    delays = [heard[seq] - done for times in results for _, done, seq in times if seq in heard]
    return {
        "appends/s": writers * events / wall,
        "p50 ms": statistics.median(latencies) * 1000,
        "p95 ms": latencies[int(len(latencies) * 0.95) - 1] * 1000,
        "heard p50 ms": statistics.median(delays) * 1000 if delays else float("nan"),
        "heard": len(heard),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--events", type=int, default=250, help="per writer")
    parser.add_argument("--quick", action="store_true", help="2 writers x 20: a smoke test")
    args = parser.parse_args(argv)
    if args.quick:
        args.writers, args.events = 2, 20
    ok = True
    with postgres_server() as server:
        url = server.url()
        install(url)
        with psycopg.connect(url, autocommit=True) as db:
            db.execute(BARE)
        print(f"PostgreSQL on 127.0.0.1:{server.port}, fsync on, a commit per event; "
              f"{args.events} appends per writer")  # fmt: skip
        for writers in sorted({1, args.writers}):
            for kind in ("bare", "irtool"):
                incident = f"ir-20261207-000000-{writers:02d}{'b0' if kind == 'bare' else 'a0'}"
                if kind == "irtool":
                    with PgJournal(url, incident, create=True) as journal:
                        journal.append(EventDraft("incident.opened", "bench", {}))
                got = run(kind, url, incident, writers, args.events)
                row = "  ".join(f"{key} {value:8.1f}" for key, value in got.items())
                print(f"{writers} writer(s)  {kind:6}  {row}")
                if kind == "irtool":
                    with PgJournal(url, incident) as journal:
                        found = journal.verify()
                    ok = ok and found.ok and found.count == 1 + writers * args.events
                    print(f"{'':20}chain: {'verified' if found.ok else 'BROKEN'}, "
                          f"{found.count} events")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
