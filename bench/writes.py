"""What one write costs as the journal grows: `note`, `reach` and `done` at 0, 100k and 1M events,
before and after issue 20, side by side in one run.

Run (from the repository root):

    .venv/bin/python bench/writes.py [--sizes 0,100000,1000000] [--repeat 15]
                                     [--before /tmp/before] [--quick]

What it does, all inside one temporary directory under the working directory (IRTOOL_HOME
points into it):

1. For each size, an exercise of the shipped IIS compromise runbook (`irtool incident new
   runbooks/iis-compromise.yaml --exercise`), grown to that many events through the real
   journal (`Journal.transaction`, 5,000 events a transaction) with the mix of a long
   incident: of every 20 events, 10 notes, 2 calls to a role, and a collection run of one
   host (run.started, 6 command.ran, run.finished). A copy of each journal is made for the
   before tree, so both start from the same events.
2. For each tree (this one; and `--before`, the tree as it was before the issue, when
   given) and each size, a worker process with that tree first on PYTHONPATH times, in
   process, what a CLI write does after its imports: open the incident (this tree: its
   standing state, from the checkpoint; the tree before: the whole fold), check and append
   the event, close. `note` and `reach` (a left message for the scribe role) `--repeat`
   times each; `done` once per step for the first two steps of the flow (a step is done
   once). Not timed: one open first, as any responder's first command would have made the
   checkpoint (that first open, which folds every event, is printed on its own).
3. Printed: the median of each write per tree and size, and its ratio to the same tree's
   fresh-incident (size 0) median; the target (the issue) is at most 1.2x at 100k and 1M.

The whole CLI process (imports included) is timed by bench/cli.py.
``--quick``: sizes 0 and 2,000, 3 repeats: a smoke test (tests/test_bench_writes_smoke.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from irtool.engine import kinds  # noqa: E402
from irtool.journal import EventDraft, Journal  # noqa: E402
from irtool.journal.incidents import journal_path  # noqa: E402

RUNBOOK = ROOT / "runbooks" / "iis-compromise.yaml"
STEPS = ("assess-trigger", "call-team")
EXERCISE = ("--exercise", "--as", "alice")

# Run by the worker process, with the tree measured first on sys.path: it must work with the
# tree before the issue too (no `records` keyword there).
WORKER = r"""
import inspect, json, sys, time
from irtool.engine.session import IncidentSession
incident, repeat = sys.argv[1], int(sys.argv[2])
lean = "records" in inspect.signature(IncidentSession.open).parameters
def open_():
    return IncidentSession.open(incident, records=False) if lean else IncidentSession.open(incident)
def timed(write):
    start = time.perf_counter()
    session = open_()
    write(session)
    session.close_journal()
    return time.perf_counter() - start
start = time.perf_counter()
open_().close_journal()
first = time.perf_counter() - start
found = {"first_open": first, "note": [], "reach": [], "done": []}
for i in range(repeat):
    found["note"].append(timed(lambda s: s.note(f"scribe's note {i}", "judy")))
    found["reach"].append(timed(lambda s: s.reach("scribe", "judy", "left-message", "alice")))
for step in sys.argv[3:]:
    found["done"].append(timed(lambda s: s.complete(step, "alice", note="bench")))
print(json.dumps(found))
"""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def new_incident(work: Path) -> str:
    made = subprocess.run(
        [sys.executable, "-m", "irtool", "incident", "new", str(RUNBOOK), *EXERCISE],
        capture_output=True,
        text=True,
        check=True,
        cwd=work,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return made.stdout.split()[-1]


def grow(incident: str, events: int) -> None:
    """`events` more events in the mix of a long incident (see the docstring)."""
    made = 0
    with Journal(journal_path(incident), incident) as journal:
        while made < events:
            with journal.transaction() as tx:
                for _ in range(min(250, (events - made + 19) // 20)):
                    for i in range(10):
                        tx.append(EventDraft(kinds.NOTE_ADDED, "judy", {"text": f"note {i}"}))
                    for person in ("judy", "heidi"):
                        said = {"role": "scribe", "person": person, "outcome": "no-answer"}
                        tx.append(EventDraft(kinds.CONTACT_ATTEMPTED, "alice", said))
                    run = tx.append(
                        EventDraft(
                            kinds.RUN_STARTED,
                            "alice",
                            {"purpose": "collect", "hosts": ["web01"], "pid": 1, "machine": "m"},
                            step="triage-volatile",
                        )
                    )
                    for item in range(6):
                        data = {
                            "purpose": "collect",
                            "run": run.seq,
                            "item": f"item-{item}",
                            "command": "Get-Process",
                            "exit_status": 0,
                            "stdout": {"sha256": "0" * 64, "size": 0},
                        }
                        tx.append(
                            EventDraft(
                                kinds.COMMAND_RAN,
                                "alice",
                                data,
                                step="triage-volatile",
                                host="web01",
                            )
                        )
                    finished = {"run": run.seq, "purpose": "collect", "ok": ["web01"]}
                    tx.append(
                        EventDraft(kinds.RUN_FINISHED, "alice", finished, step="triage-volatile")
                    )
                    made += 20


def measure(tree: Path, incident: str, repeat: int, env: dict[str, str]) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", WORKER, incident, str(repeat), *STEPS],
        capture_output=True,
        text=True,
        env={**env, "PYTHONPATH": str(tree)},
        cwd=env["IRTOOL_HOME"],
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"the worker failed for {tree}:\n{done.stderr[-2000:]}")
    found: dict[str, object] = json.loads(done.stdout)
    return found


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:8.1f} ms"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="0,100000,1000000")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--before", type=Path, help="the tree before the issue (its root)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    sizes = [0, 2000] if args.quick else [int(s) for s in args.sizes.split(",")]
    repeat = 3 if args.quick else args.repeat
    trees = [("after", ROOT)] + ([("before", args.before.resolve())] if args.before else [])
    with tempfile.TemporaryDirectory(prefix="irtool-bench-writes-", dir=Path.cwd()) as tmp:
        work = Path(tmp)
        results: dict[tuple[str, int], dict[str, object]] = {}
        for size in sizes:
            homes = {name: work / f"{name}-{size}" for name, _ in trees}
            os.environ["IRTOOL_HOME"] = str(homes["after"])
            homes["after"].mkdir()
            incident = new_incident(homes["after"])
            start = time.perf_counter()
            grow(incident, max(0, size - 1))
            log(f"grew {incident} to {size} events in {time.perf_counter() - start:.0f} s")
            for name, home in homes.items():
                if name != "after":
                    shutil.copytree(homes["after"], home)
            for name, tree in trees:
                env = {**os.environ, "IRTOOL_HOME": str(homes[name])}
                results[name, size] = measure(tree, incident, repeat, env)
                log(f"measured {name} at {size}")
        print(
            f"one write, in process after imports (open, check, append, close); median of "
            f"{repeat} (note, reach) and of {len(STEPS)} (done)"
        )
        print(
            f"{'tree':7} {'events':>9} {'first open':>11} {'note':>11} {'reach':>11} "
            f"{'done':>11}   ratio to 0 events (note/reach/done)"
        )
        for name, _ in trees:
            fresh = results[name, sizes[0]]
            for size in sizes:
                found = results[name, size]
                medians = [statistics.median(found[w]) for w in ("note", "reach", "done")]  # type: ignore[arg-type]
                base = [statistics.median(fresh[w]) for w in ("note", "reach", "done")]  # type: ignore[arg-type]
                ratios = "/".join(f"{m / b:.2f}" for m, b in zip(medians, base, strict=True))
                print(
                    f"{name:7} {size:9d} {ms(float(found['first_open'])):>11} "  # type: ignore[arg-type]
                    + " ".join(f"{ms(m):>11}" for m in medians)
                    + f"   {ratios}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
