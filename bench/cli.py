"""Start-up: how long irtool's commands take from start to exit, beside `python -c pass`.

Run (from the repository root):

    .venv/bin/python bench/cli.py [--before DIR] [--sizes 0,100000,1000000] [--runs 15]
                                  [--large-runs 7] [--quick]

Each command is timed as a whole process, as a responder meets it: the interpreter's start,
the imports, the work, the exit. Its wall time from start to exit and its peak RSS
(``os.wait4``), medians of ``--runs`` runs after two warm-up runs that are not counted:

* ``irtool --version``, ``irtool --help`` (the console script of this venv) and
  ``python -m irtool --help``;
* ``irtool validate`` of the shipped runbooks and the example contacts and inventory;
* ``irtool plan`` of iis-compromise with its examples and the example inventory;
* ``irtool incident note ID TEXT --as NAME``: on a fresh incident (each tree opens its own
  with ``incident new``), and on incidents of each of ``--sizes`` events (0 is the fresh one).

``python -c pass``, the interpreter's own start, is timed in every round beside them.

``--before DIR``: a second checkout of irtool (the code before a change) timed in the same
run, round by round interleaved with this one, so that the two are compared under the same
load: its commands run as ``PYTHONPATH=DIR``, which imports DIR's irtool before the one this
venv installs. Its rows are printed beside this tree's, with the ratio after/before.

Bytecode: each tree is compiled once, into the work directory (``PYTHONPYCACHEPREFIX``), as
an installed irtool's is; no timed run pays for compiling, and neither tree is written to.

The large incidents are bench/export.py's: its ``build()`` grows the live incident of the
export tests through the real journal to N events, with the mix of a real incident (runs,
notes, contact attempts, meetings, containment, corrections), ending with its closing, so each
note here is a note added after closing. Each is built once, in a child process, then copied
for each tree, so that neither sees the other's writes (or checkpoint). Every note appends
an event: an incident grows by a few dozen events over the run. The first note on a built
incident is printed apart (``first``): it is the one that reads the whole journal when irtool
keeps a folded state between commands. The note on the fresh incident is timed again in the
same rounds, and ``note/fresh`` is the one median over the other, so the load of the moment
touches both alike.

Everything lives in one temporary directory under the working directory. The exit status is
0 when every command worked, 1 when one failed. ``--quick``: sizes 0 and 2,000, 3 runs: a
smoke test (tests/test_bench_cli_smoke.py).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WARMUP = 2
RESPONDER = "bench"
NOTE = "w3wp.exe children: cmd.exe, whoami.exe, net.exe"
RUNBOOK = str(ROOT / "runbooks" / "iis-compromise.yaml")
MB = 1_000_000
FRESH = "incident note (fresh)"


class BenchError(RuntimeError):
    """A command did not work: its numbers would mean nothing."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Tree:
    """A checkout of irtool whose commands are timed: its name in the table, where it is."""

    name: str
    path: Path

    def env(self, work: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPATH"] = str(self.path)
        env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        env["IRTOOL_HOME"] = str(work / f"home-{self.name}")
        return env


def irtool_script() -> list[str]:
    script = Path(sys.executable).parent / "irtool"
    return [str(script)] if script.exists() else [sys.executable, "-m", "irtool"]


@dataclass
class Timing:
    """One command of one tree: every counted run's wall seconds and peak RSS (bytes)."""

    label: str
    tree: str
    argv: list[str]
    first_s: float = 0.0  # the first warm-up run
    wall_s: list[float] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)

    @property
    def median_ms(self) -> float:
        return statistics.median(self.wall_s) * 1000

    @property
    def median_mb(self) -> float:
        return statistics.median(self.rss) / MB


def run_once(argv: list[str], env: dict[str, str], work: Path) -> tuple[float, int]:
    """One run as a child of this small process: (wall seconds, peak RSS in bytes).

    This process imports no irtool and holds no incident: a child's ru_maxrss starts from
    the peak of the process it was forked from, and that stays below any irtool command's."""
    errors = work / "stderr.txt"
    with errors.open("w") as stderr:
        start = time.perf_counter()
        # Not from the repository: `python -m` would import the irtool found there.
        child = subprocess.Popen(
            argv,
            cwd=work,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise BenchError(f"{shlex.join(argv)}: exit {code}\n{errors.read_text()[-2000:]}")
    # ru_maxrss: kilobytes on Linux, bytes on macOS
    rss = usage.ru_maxrss if sys.platform == "darwin" else usage.ru_maxrss * 1024
    return seconds, rss


def measure(
    rows: list[tuple[Timing, dict[str, str]]], runs: int, work: Path, baseline: Timing
) -> None:
    """Round by round, every row once (and `python -c pass`), so drift in the machine's speed
    touches every row alike."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for round_ in range(WARMUP + runs):
        for timing, row_env in [(baseline, env), *rows]:
            seconds, rss = run_once(timing.argv, row_env, work)
            if round_ == 0:
                timing.first_s = seconds
            if round_ >= WARMUP:
                timing.wall_s.append(seconds)
                timing.rss.append(rss)


def new_incident(tree: Tree, work: Path) -> str:
    """A fresh live incident, opened by the tree's own `incident new`."""
    result = subprocess.run(
        [*irtool_script(), "incident", "new", RUNBOOK, "--as", RESPONDER],
        cwd=work,
        env=tree.env(work),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BenchError(f"{tree.name}: incident new: {result.stderr[-2000:]}")
    return result.stdout.strip().splitlines()[-1]


BUILD = """\
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from bench.export import build
print(build(Path(sys.argv[2]), int(sys.argv[3])))
"""


def built_incident(events: int, work: Path, trees: Sequence[Tree]) -> str:
    """An incident of `events` events (bench/export.py's), copied into each tree's home."""
    folder = work / f"build-{events}"
    folder.mkdir()
    env = {**os.environ, "IRTOOL_HOME": str(folder / "home")}
    result = subprocess.run(
        [sys.executable, "-c", BUILD, str(ROOT), str(folder), str(events)],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BenchError(f"building {events:,} events: {result.stderr[-3000:]}")
    incident = result.stdout.strip().splitlines()[-1]
    for tree in trees:
        home = Path(tree.env(work)["IRTOOL_HOME"]) / "incidents"
        shutil.copytree(folder / "home" / "incidents" / incident, home / incident)
    shutil.rmtree(folder)
    return incident


def note_row(tree: Tree, incident: str, label: str, work: Path) -> tuple[Timing, dict[str, str]]:
    argv = [*irtool_script(), "incident", "note", incident, NOTE, "--as", RESPONDER]
    return Timing(label, tree.name, argv), tree.env(work)


def start_up_rows(
    trees: Sequence[Tree], work: Path, fresh: dict[str, str]
) -> list[tuple[Timing, dict[str, str]]]:
    """The commands that do not depend on an incident's size, and a note on a fresh one
    (`fresh`: tree name -> that incident's id)."""
    script = irtool_script()
    examples = [str(ROOT / "contacts.example.yaml"), str(ROOT / "inventory.example.yaml")]
    commands = [
        ("irtool --version", [*script, "--version"]),
        ("irtool --help", [*script, "--help"]),
        ("python -m irtool --help", [sys.executable, "-m", "irtool", "--help"]),
        (
            "validate (runbooks, examples)",
            [*script, "validate", str(ROOT / "runbooks"), *examples],
        ),
        (
            "plan (iis-compromise)",
            [*script, "plan", RUNBOOK, "--examples", "--inventory", examples[1]],
        ),
    ]
    rows = [
        (Timing(label, tree.name, argv), tree.env(work))
        for label, argv in commands
        for tree in trees
    ]
    for tree in trees:
        rows.append(note_row(tree, fresh[tree.name], FRESH, work))
    return rows


def report(
    args: argparse.Namespace, trees: Sequence[Tree], groups: list[tuple[Timing, list[Timing]]]
) -> None:
    names = [t.name for t in trees]
    print(
        f"irtool start-up: wall time from start to exit, medians of {args.runs} runs "
        f"({args.large_runs} at 100,000 events and over), {WARMUP} warm-up runs not counted; "
        f"peak RSS in MB (10^6 bytes)"
    )
    print(f"trees: {', '.join(f'{t.name} = {t.path}' for t in trees)}")
    for baseline, timings in groups:
        fresh = {t.tree: t.median_ms for t in timings if t.label == FRESH}
        print(f"\n  {'python -c pass':32} {baseline.median_ms:8.0f} ms")
        labels = list(dict.fromkeys(t.label for t in timings))
        for label in labels:
            by_tree = {t.tree: t for t in timings if t.label == label}
            cells = []
            for name in names:
                t = by_tree[name]
                cell = f"{name} {t.median_ms:7.0f} ms {t.median_mb:5.0f} MB"
                if label.startswith("incident note (") and label != FRESH:
                    cell += f" first {t.first_s * 1000:7.0f} ms"
                    cell += f" note/fresh {t.median_ms / fresh[name]:5.2f}x"
                cells.append(cell)
            if len(names) == 2:
                ratio = by_tree[names[1]].median_ms / by_tree[names[0]].median_ms
                cells.append(f"{names[1]}/{names[0]} {ratio:5.2f}")
            print(f"  {label:32} " + "  ".join(cells))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--before", type=Path, help="another checkout of irtool, timed beside")
    parser.add_argument("--sizes", default="0,100000,1000000", help="incident sizes, in events")
    parser.add_argument("--runs", type=int, default=15, help="counted runs of each command")
    parser.add_argument("--large-runs", type=int, default=7, help="runs at 100,000 events+")
    parser.add_argument("--quick", action="store_true", help="sizes 0 and 2,000, 3 runs")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.runs, args.large_runs = "0,2000", 3, 3
    sizes = sorted({int(size) for size in args.sizes.split(",")})
    trees = [Tree("after", ROOT)]
    if args.before:
        trees.insert(0, Tree("before", args.before.resolve()))
    groups: list[tuple[Timing, list[Timing]]] = []
    with tempfile.TemporaryDirectory(prefix="irtool-bench-cli-", dir=Path.cwd()) as tmp:
        work = Path(tmp)
        log(f"start-up and a fresh incident, {args.runs} round(s) ...")
        fresh = {tree.name: new_incident(tree, work) for tree in trees}
        rows = start_up_rows(trees, work, fresh)
        baseline = Timing("python -c pass", "", [sys.executable, "-c", "pass"])
        measure(rows, args.runs, work, baseline)
        groups.append((baseline, [timing for timing, _ in rows]))
        for size in (s for s in sizes if s > 0):
            log(f"building an incident of {size:,} events ...")
            incident = built_incident(size, work, trees)
            log(f"  a note at {size:,} events, {args.large_runs} round(s) ...")
            label = f"incident note ({size:,} events)"
            rows = [note_row(tree, fresh[tree.name], FRESH, work) for tree in trees]
            rows += [note_row(tree, incident, label, work) for tree in trees]
            baseline = Timing("python -c pass", "", [sys.executable, "-c", "pass"])
            measure(rows, args.large_runs if size >= 100_000 else args.runs, work, baseline)
            groups.append((baseline, [timing for timing, _ in rows]))
    report(args, trees, groups)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as failed:
        print(f"bench/cli.py: FAILED: {failed}", file=sys.stderr)
        sys.exit(1)
