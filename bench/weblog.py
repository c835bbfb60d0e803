"""Web log speed: `irtool analyze` against goaccess and `wc -l`, side by side, on one IIS log.

Run (from the repository root):

    .venv/bin/python bench/weblog.py [--lines 2000000] [--runs 3]
    .venv/bin/python bench/weblog.py --size 10G --runs 1      # the streaming (memory) check

The log: ``tests.support.weblog.write_log`` (normal IIS traffic with planted attacks) writes
``--lines`` request rows, CRLF, with its ``fields`` attack: half-way, a new header whose
``#Fields`` adds ``cs-host``, ``sc-bytes``, ``cs-bytes`` and the custom ``cs(X-Forwarded-For)``
(both halves valid W3C). A larger log (``--lines`` above ``BASE_LINES``, or ``--size``) is
that log written once with ``BASE_LINES`` rows, then repeated whole (each copy starts with its
own ``#Software``/``#Fields`` header, as IIS writes one when it restarts) up to the size: the
generator holds its rows in memory, the copy streams. The log is written in a temporary
directory (``--dir``, default the system's), read once by ``wc -l`` before timing (so that
every tool reads it from the page cache: the figures are CPU, not disk), and deleted after.

Then ``--runs`` times, interleaved (irtool, goaccess, wc, irtool, ...), each tool as a process,
its wall time and peak RSS measured by a small wrapper process (``WRAPPER``: ``os.wait4`` on its
one child, the way bench/export.py does; the wrapper also samples the child's RSS from /proc
twice a second, to show it flat on a large log):

- irtool: ``irtool analyze LOG --store STORE``: read + hash + parse + load into DuckDB + every
  shipped hunt (and whatever else ``analyze`` runs: the shipped Sigma rules, when it runs
  them). Mis-parsed lines: request rows the store does not hold (the log's rows minus the
  store's), plus rows the store holds without a time, a client address or a status (a row
  split wrongly), plus the located warnings the reader gave on stderr (there should be none:
  the log is valid).
- goaccess (Debian's package; installed with ``apt-get install -y goaccess`` when missing and
  this runs as root, otherwise skipped with the command to run): ``goaccess LOG
  --log-format=W3C --date-format=W3C --time-format=W3C -o report.json``. Mis-parsed lines:
  its ``failed_requests``.
- ``wc -l LOG``: the floor, reading the bytes and counting newlines.

Reported per tool, the median of the runs: wall seconds, lines/s (the log's lines, headers
included, over wall seconds), CPU seconds (user + system) and lines per CPU-second, peak RSS,
mis-parsed lines; then the ratios irtool/goaccess and irtool/wc on lines/s. MB is 10^6 bytes.

Then (not with ``--no-phases``) irtool's phases, in this process, once: parse only (reading,
hashing and parsing: ``read_paths``), parse + load (``RequestStore.load``: the reader runs
while DuckDB loads), the hunts (``run_hunts`` over every shipped hunt), and the Sigma rules when
``irtool.analysis.sigma`` exists.

Exit status 0 when irtool read every line right (zero mis-parsed), 1 otherwise (a run of
``irtool analyze`` that fails is reported with its figures, FAILED and its last message).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: Rows of the generated log; a larger log repeats it.
BASE_LINES = 2_000_000
MB = 1_000_000

# Runs one command and prints its figures as JSON. A wrapper, because on Linux a child's
# ru_maxrss starts at the peak RSS of the process it was forked from (see bench/export.py),
# and this process holds the generator's rows. A thread samples the child's RSS (VmRSS) as it
# runs, twice a second, while wait4 waits (so that the wall time is exact).
WRAPPER = """\
import json, os, subprocess, sys, threading, time
out, err = sys.argv[1], sys.argv[2]
start = time.perf_counter()
with open(out, "wb") as o, open(err, "wb") as e:
    child = subprocess.Popen(sys.argv[3:], stdin=subprocess.DEVNULL, stdout=o, stderr=e)
samples, done = [], threading.Event()
def sample():
    while not done.wait(0.5):
        try:
            with open(f"/proc/{child.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        samples.append((time.perf_counter() - start, int(line.split()[1])))
        except OSError:
            pass
sampler = threading.Thread(target=sample, daemon=True)
sampler.start()
_, status, usage = os.wait4(child.pid, 0)
wall = time.perf_counter() - start
done.set()
print(json.dumps({"wall": wall, "status": os.waitstatus_to_exitcode(status),
                  "maxrss_kb": usage.ru_maxrss, "cpu": usage.ru_utime + usage.ru_stime,
                  "samples": samples}))
"""


@dataclass
class Log:
    path: Path
    lines: int  # every line: rows and headers
    rows: int  # request rows
    size: int  # bytes


@dataclass
class Run:
    wall: float
    cpu: float
    rss: int  # bytes
    misparsed: int | None
    samples: list[tuple[float, int]]  # (seconds, RSS kB)


@dataclass
class Tool:
    name: str
    runs: list[Run] = field(default_factory=list)
    note: str = ""


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_size(text: str) -> int:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kKmMgG]?)[bB]?", text.strip())
    if m is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (2G, 500M, 10000000)")
    scale = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}[m[2].lower()]
    return int(float(m[1]) * scale)


def generate(folder: Path, lines: int, size: int | None) -> Log:
    """The log: `lines` rows written by the generator, or BASE_LINES rows repeated up to
    `lines` rows (or `size` bytes)."""
    from tests.support.weblog import write_log

    base_rows = min(lines, BASE_LINES) if size is None else BASE_LINES
    base = folder / "base.log"
    start = time.perf_counter()
    man = write_log(base, lines=base_rows)
    copies = 1
    if size is not None:
        copies = max(1, -(-size // base.stat().st_size))
    elif lines > base_rows:
        copies = -(-lines // base_rows)
    if copies == 1:
        path = base
    else:
        path = folder / "big.log"
        with path.open("wb") as out:
            for _ in range(copies):
                with base.open("rb") as one:
                    shutil.copyfileobj(one, out, 1 << 24)
        base.unlink()
    log = Log(path, man.total_lines * copies, man.rows * copies, path.stat().st_size)
    say(
        f"generated {log.path.name}: {log.lines:,} lines ({log.rows:,} requests, "
        f"{copies} cop{'y' if copies == 1 else 'ies'} of {base_rows:,}), "
        f"{log.size / MB:,.0f} MB, #Fields changes mid-copy, in {time.perf_counter() - start:.0f} s"
    )
    return log


def measure(argv: Sequence[str], work: Path) -> tuple[dict[str, Any], str, str]:
    out, err = work / "out.txt", work / "err.txt"
    wrapper = subprocess.run(
        [sys.executable, "-c", WRAPPER, str(out), str(err), *argv],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    if wrapper.returncode != 0:
        raise RuntimeError(f"the measuring wrapper failed: {wrapper.stderr[-2000:]}")
    figures = json.loads(wrapper.stdout)
    stdout = out.read_text(errors="replace")
    stderr = err.read_text(errors="replace")
    return figures, stdout, stderr


def as_run(figures: dict[str, Any], misparsed: int | None) -> Run:
    samples = [(float(t), int(kb)) for t, kb in figures["samples"]]
    return Run(figures["wall"], figures["cpu"], figures["maxrss_kb"] * 1024, misparsed, samples)


def irtool_argv() -> list[str]:
    script = Path(sys.executable).parent / "irtool"
    return [str(script)] if script.exists() else [sys.executable, "-m", "irtool"]


_STORED = re.compile(r"^(\d+) request\(s\)(?: and \d+ event\(s\))? in the store", re.M)


def run_irtool(log: Log, work: Path) -> tuple[Run, str]:
    store = work / "store.duckdb"
    argv = [*irtool_argv(), "analyze", str(log.path), "--store", str(store)]
    try:
        figures, stdout, stderr = measure(argv, work)
        if figures["status"] not in (0, 1):  # 1: findings (the planted attacks)
            # its time and memory still count; the figures say it failed, and why
            last = stderr.strip().splitlines()[-1:] or ["(no message)"]
            return as_run(figures, None), f"FAILED, exit {figures['status']}: {last[0][:300]}"
        m = _STORED.search(stderr)
        if m is None:
            raise RuntimeError(f"irtool analyze did not say what it stored: {stderr[-2000:]}")
        stored = int(m[1])
        # located warnings of the reader about the log's lines (path:line: message)
        warned = sum(1 for line in stderr.splitlines() if line.startswith(f"{log.path}:"))
        broken = broken_rows(store)
        findings = sum(1 for line in stdout.splitlines() if line and not line.startswith(" "))
    finally:
        for leftover in work.glob("store.duckdb*"):
            leftover.unlink()
    misparsed = abs(log.rows - stored) + broken + warned
    return as_run(figures, misparsed), f"{findings} finding(s)"


def broken_rows(store: Path) -> int:
    """Rows the store holds without a time, a client or a status: a line split wrongly."""
    from irtool.analysis.store import RequestStore

    with RequestStore(store) as requests:
        row = requests.query(
            "SELECT count(*) AS n FROM requests "
            "WHERE ts IS NULL OR c_ip IS NULL OR sc_status IS NULL OR cs_uri_stem IS NULL"
        )
    return int(row[0]["n"])


def goaccess() -> str | None:
    """goaccess's path, installed (Debian package) when missing and this runs as root."""
    found = shutil.which("goaccess")
    if found or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return found
    say("goaccess is missing: apt-get install -y goaccess")
    subprocess.run(
        ["apt-get", "install", "-y", "goaccess"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return shutil.which("goaccess")


def run_goaccess(binary: str, log: Log, work: Path) -> tuple[Run, str]:
    report = work / "goaccess.json"
    argv = [
        binary,
        str(log.path),
        "--log-format=W3C",
        "--date-format=W3C",
        "--time-format=W3C",
        "--no-global-config",
        "--no-progress",
        "-o",
        str(report),
    ]
    figures, _, stderr = measure(argv, work)
    if figures["status"] != 0:
        raise RuntimeError(f"goaccess exited {figures['status']}: {stderr[-2000:]}")
    general = json.loads(report.read_text())["general"]
    report.unlink()
    failed = int(general["failed_requests"])
    return as_run(figures, failed), f"{general['valid_requests']:,} valid requests"


def run_wc(log: Log, work: Path) -> tuple[Run, str]:
    figures, stdout, _ = measure(["wc", "-l", str(log.path)], work)
    counted = int(stdout.split()[0])
    return as_run(figures, abs(counted - log.lines)), f"{counted:,} lines"


def rss_curve(samples: list[tuple[float, int]], points: int = 10) -> str:
    if not samples:
        return "(no samples)"
    step = max(1, len(samples) // points)
    picked = samples[::step]
    return "  ".join(f"{t:.0f}s:{kb / 1000:.0f}" for t, kb in picked)


def report(tools: list[Tool], log: Log) -> None:
    print(
        f"log: {log.lines:,} lines ({log.rows:,} requests, a mid-file #Fields change), "
        f"{log.size / MB:,.0f} MB; median of {max(len(t.runs) for t in tools)} run(s); MB = 10^6 B"
    )
    rates: dict[str, float] = {}
    for tool in tools:
        if not tool.runs:
            print(f"  {tool.name:9} skipped: {tool.note}")
            continue
        wall = statistics.median(r.wall for r in tool.runs)
        cpu = statistics.median(r.cpu for r in tool.runs)
        rss = statistics.median(r.rss for r in tool.runs)
        bad = [r.misparsed for r in tool.runs if r.misparsed is not None]
        if len(bad) < len(tool.runs):
            bad = []  # a failed run: unknown
        rates[tool.name] = log.lines / wall
        print(
            f"  {tool.name:9} {wall:8.2f} s {log.lines / wall:>12,.0f} lines/s "
            f"cpu {cpu:7.2f} s {log.lines / max(cpu, 1e-9):>12,.0f} lines/cpu-s "
            f"peak RSS {rss / MB:7.0f} MB  mis-parsed {max(bad) if bad else '?':>9}  ({tool.note})"
        )
    if "irtool" in rates:
        for other in ("goaccess", "wc -l"):
            if other in rates:
                ratio = rates["irtool"] / rates[other]
                slower = f" ({other} is {1 / ratio:,.0f}x faster)" if ratio < 1 else ""
                print(f"  irtool / {other}: {ratio:.3g}x lines/s{slower}")
    for tool in tools:
        if tool.name == "irtool" and tool.runs:
            biggest = max(tool.runs, key=lambda r: r.rss)
            print(f"  irtool RSS over time (s:MB): {rss_curve(biggest.samples)}")


@contextlib.contextmanager
def timed(label: str, lines: int) -> Iterator[None]:
    start = time.perf_counter()
    yield
    took = time.perf_counter() - start
    print(f"  {label:34} {took:7.2f} s {lines / took:>12,.0f} lines/s")


def phases(log: Log, work: Path) -> None:
    """irtool's phases in this process, once."""
    from irtool.analysis.hunts import load_hunts, run_hunts
    from irtool.analysis.store import RequestStore
    from irtool.analysis.w3c import ReadStats, read_paths

    print("irtool phases (in-process, one run):")
    stats = ReadStats()
    with timed("parse only (read, hash, parse)", log.lines):
        for _ in read_paths([log.path], stats=stats):
            pass
    store = work / "phases.duckdb"
    try:
        with RequestStore(store) as requests:
            with timed("parse + load (overlapped)", log.lines):
                requests.load(read_paths([log.path]))
            hunts = load_hunts((), ())
            with timed(f"{len(hunts)} hunts", log.lines):
                found = run_hunts(requests, hunts, {})
            print(f"    {len(found)} finding(s)", flush=True)
            sigma = _sigma_runner()
            if sigma is None:
                print("  Sigma rules: no irtool.analysis.sigma: not measured")
            else:
                with timed("shipped Sigma rules", log.lines):
                    sigma(requests)
    finally:
        for leftover in work.glob("phases.duckdb*"):
            leftover.unlink()


def _sigma_runner() -> Callable[[Any], object] | None:
    """The shipped Sigma rules as one call over a store, as ``irtool analyze`` runs them; None
    when ``irtool.analysis.sigma`` is not there."""
    try:
        from irtool.analysis import sigma
    except ImportError:
        return None
    rules = sigma.load_rules(()).rules

    def runner(store: Any) -> object:
        return sigma.run_rules(store, rules)

    print(f"    {len(rules)} shipped Sigma rule(s)")
    return runner


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--lines", type=int, default=BASE_LINES, help="request rows")
    parser.add_argument(
        "--size", type=parse_size, default=None, help="log size instead (10G: streaming check)"
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="where the log is written")
    parser.add_argument("--no-goaccess", action="store_true")
    parser.add_argument("--no-phases", action="store_true")
    args = parser.parse_args(argv)
    if args.lines < 1 or args.runs < 1:
        parser.error("--lines and --runs are at least 1")
    with tempfile.TemporaryDirectory(prefix="irtool-weblog-", dir=args.dir) as tmp:
        work = Path(tmp)
        log = generate(work, args.lines, args.size)
        run_wc(log, work)  # warms the page cache: every tool reads from memory
        tools = [Tool("irtool"), Tool("goaccess"), Tool("wc -l")]
        runners: dict[str, Callable[[Log, Path], tuple[Run, str]]] = {
            "irtool": run_irtool,
            "wc -l": run_wc,
        }
        if args.no_goaccess:
            tools[1].note = "--no-goaccess"
        elif (binary := goaccess()) is None:
            tools[1].note = "not installed (as root: apt-get install -y goaccess)"
        else:
            runners["goaccess"] = lambda log, work: run_goaccess(binary, log, work)
        for i in range(args.runs):
            for tool in tools:
                runner = runners.get(tool.name)
                if runner is None:
                    continue
                say(f"run {i + 1}/{args.runs}: {tool.name}")
                result, tool.note = runner(log, work)
                tool.runs.append(result)
        report(tools, log)
        if not args.no_phases:
            phases(log, work)
    bad = [r.misparsed for r in tools[0].runs]
    return 0 if bad and all(b == 0 for b in bad) else 1


if __name__ == "__main__":
    sys.exit(main())
