"""Host-log speed: event logs, the web root against known good, and the YARA scan, each beside
a peer, in one run.

Run (from the repository root):

    .venv/bin/python bench/hostlogs.py [--runs 5] [--files 3000] [--compare 100000]
    .venv/bin/python bench/hostlogs.py --quick      # tiny sizes, one run: the smoke test's

Four sections; irtool's side runs in this process (the library calls its commands make),
timed with ``time.perf_counter``; each figure is the median of ``--runs`` runs, interleaved
with its peers, after one untimed warm-up run of each (every file read from the page cache:
the figures are CPU, not disk).

- **EVTX records/s**: irtool's reader (``irtool.analysis.evtx.read_evtx_paths``: hash, parse,
  and every record turned into a row of the store's ``events`` table), the ``evtx`` package
  alone (``PyEvtxParser(path).records_json()`` iterated: the Rust parser irtool uses, without
  irtool's work), and python-evtx (``Evtx.Evtx``, every record's ``xml()``), on the same files
  (``tests/data/evtx`` or ``../shared/data/evtx``: the real Windows logs). python-evtx is slow:
  it runs ``--pyevtx-runs`` times (default once). Each tool's records are its own count (a
  tool that stops early reads fewer). Goal: irtool at least 100x python-evtx's records/s.
- **Web root, manifest build and compare**: ``tests.support.webroot.planted_webroot`` with
  ``--files`` files (a known-good root, its zip and git repository, a server copy with an
  added one-line shell, a changed web.config, a missing DLL, uploads). irtool builds the
  manifest from the directory, the zip and the git commit, and compares it against the server
  copy (a directory, hashed) and against the host's CSV hash listing; the peer is
  ``find -type f -print0 | xargs -0 sha256sum`` over the same known-good directory.
- **YARA**: the files the comparison found added or changed, scanned with the shipped rules
  (irtool: ``load_yara`` once, then ``scan_files``), beside yara-x with a fresh compile for
  each file, and the ``yara`` command (libyara, Debian's package: installed with ``apt-get
  install -y yara`` when missing and this runs as root; ``--no-yara-cli`` skips it); then every
  file of the server copy, irtool beside ``yara -r``. Hits are counted: only the shell hits.
- **Manifest compare at 100,000 files** (``--compare``): a synthetic manifest file and a host
  CSV listing of as many rows (with added, changed, missing and volatile files), on a
  temporary directory; irtool reads the manifest and compares (what ``irtool manifest compare
  FILE LISTING`` does), beside ``sort`` + ``comm`` on the two (path, hash) lists: a floor that
  knows nothing of case, volatile paths or the CSV. Goal: irtool under 2 s.

Exit status 0 when irtool's results are right (every record read, the planted differences
found, only the shell hit), 1 otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MB = 1_000_000
EVTX_DIRS = (ROOT / "tests" / "data" / "evtx", ROOT.parent / "shared" / "data" / "evtx")
EVTX_FILES = ("security.evtx", "system.evtx", "post-Security.evtx")
QUICK_EVTX = ("post-Security.evtx",)
EVTX_GOAL = 100.0  # irtool / python-evtx, records/s
COMPARE_GOAL = 2.0  # seconds, 100,000 files


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Row:
    """One tool's timings in a section: `unit` per second over `amount`."""

    name: str
    amount: float  # records, files
    unit: str
    times: list[float] = field(default_factory=list)
    note: str = ""
    skipped: str = ""
    short: str = ""  # its name in a ratio line

    @property
    def label(self) -> str:
        return self.short or self.name

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def rate(self) -> float:
        return self.amount / max(self.median, 1e-9)

    def line(self, extra: str = "") -> str:
        if self.skipped:
            return f"  {self.name:44} skipped: {self.skipped}"
        note = f"  ({self.note})" if self.note else ""
        return (
            f"  {self.name:44} {self.median:9.4f} s {self.rate:>14,.0f} {self.unit}/s{extra}{note}"
        )


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def ratio_line(a: Row, b: Row, goal: float | None = None) -> str:
    if a.skipped or b.skipped or not a.times or not b.times:
        return f"  {a.label} / {b.label}: not measured"
    ratio = a.rate / b.rate
    text = f"  {a.label} / {b.label}: {ratio:,.3g}x {a.unit}/s"
    if ratio < 1:
        text += f" ({b.label} is {1 / ratio:,.3g}x faster)"
    if goal is not None:
        text += f" (goal >= {goal:g}x: {'met' if ratio >= goal else 'NOT met'})"
    return text


def run_interleaved(rows: Sequence[tuple[Row, Callable[[], Any]]], runs: int) -> None:
    """Each tool once untimed (warm-up), then `runs` rounds, each tool once per round."""
    for _, fn in rows:
        fn()
    for _ in range(runs):
        for row, fn in rows:
            took, _ = timed(fn)
            row.times.append(took)


# -- EVTX -------------------------------------------------------------------------------------


def evtx_files(folder: Path | None, quick: bool) -> list[Path]:
    names = QUICK_EVTX if quick else EVTX_FILES
    for candidate in [folder] if folder else EVTX_DIRS:
        if candidate and all((candidate / n).is_file() for n in names):
            return [candidate / n for n in names]
    raise SystemExit(f"no EVTX files ({', '.join(names)}) in {folder or EVTX_DIRS}")


def bench_evtx(files: list[Path], runs: int, pyevtx_runs: int) -> bool:
    import evtx as rust_evtx

    size = sum(f.stat().st_size for f in files)
    from irtool.analysis.evtx import EvtxStats, read_evtx_paths

    def irtool_read() -> int:
        stats = EvtxStats()
        for _ in read_evtx_paths(files, stats=stats):
            pass
        return stats.records

    def rust_read() -> int:
        return sum(sum(1 for _ in rust_evtx.PyEvtxParser(str(f)).records_json()) for f in files)

    def python_evtx_read() -> int:
        import Evtx.Evtx as python_evtx  # type: ignore[import-untyped]

        count = 0
        for f in files:
            with python_evtx.Evtx(str(f)) as log:
                for record in log.records():
                    record.xml()
                    count += 1
        return count

    records = rust_read()
    irtool = Row("irtool (read_evtx_paths: rows for the store)", 0, "records", short="irtool")
    rust = Row("evtx package alone (records_json)", records, "records", short="evtx alone")
    pyevtx = Row("python-evtx (Evtx.Evtx, xml())", 0, "records", short="python-evtx")
    rows: list[tuple[Row, Callable[[], Any]]] = [(irtool, irtool_read), (rust, rust_read)]
    irtool.amount = irtool_read()
    irtool.note = f"{int(irtool.amount):,} records"
    rust.note = f"{records:,} records"
    say(f"EVTX: {len(files)} file(s), {runs} run(s)")
    run_interleaved(rows, runs)
    say(f"EVTX: python-evtx, {pyevtx_runs} run(s) (slow)")
    for _ in range(pyevtx_runs):
        took, count = timed(python_evtx_read)
        pyevtx.times.append(took)
        pyevtx.amount = count
    pyevtx.note = f"{int(pyevtx.amount):,} records" + (
        f", stopped short of {records:,}" if pyevtx.amount < records else ""
    )
    print(
        f"EVTX: {len(files)} file(s) ({', '.join(f.name for f in files)}), {records:,} records, "
        f"{size / MB:.1f} MB; median of {runs} run(s), python-evtx {pyevtx_runs} run(s)"
    )
    for row in (irtool, rust, pyevtx):
        print(row.line(f" {size / MB / max(row.median, 1e-9) if row.times else 0:9.1f} MB/s"))
    print(ratio_line(irtool, pyevtx, EVTX_GOAL))
    print(ratio_line(rust, pyevtx))
    print(ratio_line(irtool, rust))
    return irtool.amount == records


# -- web root ---------------------------------------------------------------------------------


@dataclass
class WebRoot:
    planted: Any  # tests.support.webroot.Planted
    changed: list[Path]  # the server copy's added and changed files, as the comparison said
    ok: bool


def sha256sum(folder: Path) -> Callable[[], Any]:
    script = 'find "$1" -type f -print0 | xargs -0 -r sha256sum > /dev/null'
    return lambda: subprocess.run(["bash", "-c", script, "bash", str(folder)], check=True)


def bench_webroot(work: Path, files: int, runs: int) -> WebRoot:
    from tests.support.webroot import planted_webroot

    say(f"web root: generating {files:,} files")
    took, planted = timed(lambda: planted_webroot(work / "webroot", files))
    say(f"web root: generated in {took:.1f} s")
    from irtool.analysis.comparison import compare
    from irtool.analysis.manifest import build_manifest

    manifest = build_manifest(planted.good)
    rows: list[tuple[Row, Callable[[], Any]]] = [
        (Row("irtool manifest build (directory)", planted.files, "files", short="irtool build"),
         lambda: build_manifest(planted.good)),
        (Row("irtool manifest build (zip)", planted.files, "files"),
         lambda: build_manifest(planted.zip)),
        (Row("irtool manifest build (git commit)", planted.files, "files"),
         lambda: build_manifest(planted.repo, commit=planted.commit, root=planted.repo_root)),
        (Row("irtool compare (server directory, hashed)", planted.files, "files"),
         lambda: compare(manifest, planted.server)),
        (Row("irtool compare (host's CSV listing)", planted.files, "files"),
         lambda: compare(manifest, planted.listing_csv)),
        (Row("sha256sum (find | xargs, known-good dir)", planted.files, "files",
             short="sha256sum"),
         sha256sum(planted.good)),
    ]  # fmt: skip
    say(f"web root: {runs} run(s)")
    run_interleaved(rows, runs)
    print(
        f"web root: {planted.files:,} files, {planted.bytes / MB:.1f} MB; median of {runs} run(s)"
    )
    for row, _ in rows:
        print(row.line(f" {planted.bytes / MB / row.median:9.1f} MB/s"))
    print(ratio_line(rows[0][0], rows[-1][0]))
    ok = True
    for label, target in (("directory", planted.server), ("CSV listing", planted.listing_csv)):
        result = compare(manifest, target)
        found = (
            sorted(d.path.replace("\\", "/") for d in result.added),
            sorted(d.path.replace("\\", "/") for d in result.changed),
            sorted(d.path.replace("\\", "/") for d in result.missing),
        )
        right = found == (list(planted.added), list(planted.changed), list(planted.missing))
        ok &= right
        print(
            f"  differences ({label}): {len(result.added)} added, {len(result.changed)} changed,"
            f" {len(result.missing)} missing, {result.volatile} volatile not compared"
            f" ({'as planted' if right else f'NOT as planted: {found}'})"
        )
    result = compare(manifest, planted.server)
    changed = [planted.server / d.path for d in (*result.added, *result.changed)]
    return WebRoot(planted, changed, ok)


# -- YARA -------------------------------------------------------------------------------------


def yara_cli(allowed: bool) -> tuple[str | None, str]:
    """The `yara` command's path (installed when missing and this runs as root), and why not."""
    if not allowed:
        return None, "--no-yara-cli"
    found = shutil.which("yara")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        say("yara is missing: apt-get install -y yara")
        subprocess.run(
            ["apt-get", "install", "-y", "yara"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        found = shutil.which("yara")
    return found, "" if found else "not installed (as root: apt-get install -y yara)"


def bench_yara(webroot: WebRoot, runs: int, cli_allowed: bool) -> bool:
    import yara_x

    from irtool.analysis.yarascan import SHIPPED_YARA, YaraRules, load_yara, scan_files

    planted = webroot.planted
    changed = webroot.changed
    everything = sorted(p for p in planted.server.rglob("*") if p.is_file())
    rule_files = sorted(SHIPPED_YARA.glob("*.yar"))
    sources = [(p, p.read_text()) for p in rule_files]
    rules = load_yara()
    cli, why_not = yara_cli(cli_allowed)

    def fresh_compile_each(paths: list[Path]) -> int:
        hits = 0
        for path in paths:
            compiler = yara_x.Compiler()
            for rule_file, text in sources:
                compiler.new_namespace(rule_file.name)
                compiler.add_source(text, origin=str(rule_file))
            hits += len(yara_x.Scanner(compiler.build()).scan(path.read_bytes()).matching_rules)
        return hits

    def irtool_scan(paths: list[Path], compiled: YaraRules = rules) -> int:
        scanned, problems = scan_files(compiled, paths)
        assert not problems, problems
        return sum(len(f.matches) for f in scanned)

    def cli_each(paths: list[Path]) -> int:
        assert cli is not None
        hits = 0
        for path in paths:
            out = subprocess.run(
                [cli, "-w", *map(str, rule_files), str(path)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            hits += len(out.stdout.splitlines())
        return hits

    def cli_tree() -> int:
        assert cli is not None
        out = subprocess.run(
            [cli, "-w", "-r", *map(str, rule_files), str(planted.server)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        return len(out.stdout.splitlines())

    small = len(changed)
    load = Row("irtool load_yara (compile the shipped rules)", 1, "compiles")
    # what one `irtool manifest compare` pays: the rules compiled once, each file scanned
    row_once = Row(f"irtool load_yara + scan_files ({small} changed)", small, "files")
    row_once.short = "irtool compile once + scan"
    row_irtool = Row(f"irtool scan_files ({small} changed)", small, "files", short="irtool scan")
    row_fresh = Row(f"yara-x, a fresh compile per file ({small} changed)", small, "files")
    row_fresh.short = "yara-x compile per file"
    row_cli = Row(f"yara command, a process per file ({small} changed)", small, "files")
    row_cli.short = "yara per file"
    big = len(everything)
    all_irtool = Row(f"irtool scan_files (all {big:,} server files)", big, "files")
    all_irtool.short = "irtool scan (all)"
    all_cli = Row(f"yara -r (all {big:,} server files)", big, "files", short="yara -r (all)")
    rows: list[tuple[Row, Callable[[], Any]]] = [
        (load, load_yara),
        (row_once, lambda: irtool_scan(changed, load_yara())),
        (row_irtool, lambda: irtool_scan(changed)),
        (row_fresh, lambda: fresh_compile_each(changed)),
        (all_irtool, lambda: irtool_scan(everything)),
    ]
    if cli is None:
        row_cli.skipped = all_cli.skipped = why_not
    else:
        rows += [(row_cli, lambda: cli_each(changed)), (all_cli, cli_tree)]
    say(f"YARA: {runs} run(s)")
    run_interleaved(rows, runs)
    hits = {
        row_once.name: irtool_scan(changed, load_yara()),
        row_irtool.name: irtool_scan(changed),
        row_fresh.name: fresh_compile_each(changed),
        all_irtool.name: irtool_scan(everything),
    }
    if cli is not None:
        hits[row_cli.name] = cli_each(changed)
        hits[all_cli.name] = cli_tree()
    version = ""
    if cli is not None:
        version = subprocess.run([cli, "--version"], capture_output=True, text=True).stdout
    size = sum(p.stat().st_size for p in everything)
    print(
        f"YARA: {rules.rules} shipped rule(s) in {len(rules.files)} file(s); the {small} added "
        f"or changed file(s), then all {big:,} server files ({size / MB:.1f} MB); "
        f"median of {runs} run(s)" + (f"; yara {version.strip()}" if version else "")
    )
    for row in (load, row_once, row_irtool, row_fresh, row_cli, all_irtool, all_cli):
        hit = f" {hits[row.name]:>5} hit(s)" if row.name in hits else ""
        print(row.line(hit))
    print(ratio_line(row_once, row_fresh))
    print(ratio_line(row_once, row_cli))
    print(ratio_line(all_irtool, all_cli))
    return hits[row_irtool.name] == 1 and hits[all_irtool.name] == 1


# -- a 100,000-file compare -------------------------------------------------------------------


def synthetic(work: Path, count: int) -> tuple[Path, Path, dict[str, int]]:
    """A manifest file of `count` files and a host's CSV listing of the same root with 10 (or
    fewer) added, changed and missing files and 100 uploads: what a compare must find."""
    from irtool.analysis.artifacts import FileEntry
    from irtool.analysis.manifest import DEFAULT_VOLATILE, Manifest

    def digest(i: int, salt: str = "") -> str:
        return hashlib.sha256(f"{salt}{i}".encode()).hexdigest()

    kinds = ("aspx", "js", "css", "png", "cshtml", "dll", "config")
    paths = [
        f"Areas/Area{i % 40}/Views/Part{i % 997}/file{i}.{kinds[i % len(kinds)]}"
        for i in range(count)
    ]
    files = tuple(FileEntry(p, 1000 + i % 5000, digest(i)) for i, p in enumerate(paths))
    manifest = Manifest(
        source={"kind": "directory", "path": "/synthetic", "sha256": digest(-1)},
        built_at="2026-12-07T00:00:00Z",
        volatile=tuple(DEFAULT_VOLATILE),
        files=files,
    )
    manifest_path = work / "manifest.json"
    manifest.write(manifest_path)
    n = min(10, max(1, count // 100))
    expected = {"added": n, "changed": n, "missing": n, "volatile": 100}
    header = ["relative_path", "size", "created_utc", "modified_utc", "attributes", "sha256"]
    lines = [",".join(f'"{h}"' for h in header)]
    pairs_known = [f"{p}\t{f.sha256}" for p, f in zip(paths, files, strict=True)]
    pairs_host: list[str] = []

    def row(path: str, size: int, sha: str) -> None:
        windows = path.replace("/", "\\")
        lines.append(
            f'"{windows}","{size}","2026-11-02T09:14:07Z","2026-12-05T22:41:19Z",'
            f'"Archive","{sha.upper()}"'
        )
        pairs_host.append(f"{path}\t{sha}")

    for i, entry in enumerate(files):
        if i < n:
            continue  # missing on the host
        row(entry.path, entry.size, digest(i, "changed") if i < 2 * n else entry.sha256)
    for i in range(n):
        row(f"aspnet_client/added{i}.aspx", 99, digest(i, "added"))
    for i in range(100):
        row(f"App_Data/uploads/{i}.pdf", 5000, digest(i, "upload"))
    listing = work / "webroot.csv"
    listing.write_bytes(b"\xef\xbb\xbf" + ("\r\n".join(lines) + "\r\n").encode())
    (work / "known.txt").write_text("\n".join(pairs_known) + "\n")
    (work / "host.txt").write_text("\n".join(pairs_host) + "\n")
    return manifest_path, listing, expected


def bench_compare(work: Path, count: int, runs: int) -> bool:
    from irtool.analysis.comparison import compare
    from irtool.analysis.manifest import read_manifest

    folder = work / "compare"
    folder.mkdir()
    say(f"compare: writing a {count:,}-file manifest and listing")
    manifest_path, listing, expected = synthetic(folder, count)
    manifest = read_manifest(manifest_path)
    floor = (
        'cd "$1" && LC_ALL=C sort known.txt > known.sorted && LC_ALL=C sort host.txt > '
        "host.sorted && LC_ALL=C comm -3 known.sorted host.sorted > /dev/null"
    )
    rows: list[tuple[Row, Callable[[], Any]]] = [
        (Row("irtool read manifest + compare (CSV listing)", count, "files",
             short="irtool read + compare"),
         lambda: compare(read_manifest(manifest_path), listing)),
        (Row("irtool compare (manifest in memory)", count, "files"),
         lambda: compare(manifest, listing)),
        (Row("sort + comm (path, hash lists)", count, "files", short="sort + comm"),
         lambda: subprocess.run(["bash", "-c", floor, "bash", str(folder)], check=True)),
    ]  # fmt: skip
    say(f"compare: {runs} run(s)")
    run_interleaved(rows, runs)
    result = compare(manifest, listing)
    found = {
        "added": len(result.added),
        "changed": len(result.changed),
        "missing": len(result.missing),
        "volatile": result.volatile,
    }
    whole = rows[0][0]
    print(
        f"compare at {count:,} files: a manifest file "
        f"({manifest_path.stat().st_size / MB:.1f} MB) against a host's CSV listing "
        f"({listing.stat().st_size / MB:.1f} MB); median of {runs} run(s)"
    )
    for row, _ in rows:
        print(row.line())
    goal = "met" if whole.median < COMPARE_GOAL else "NOT met"
    print(f"  irtool read + compare: {whole.median:.3f} s (goal < {COMPARE_GOAL:g} s: {goal})")
    print(ratio_line(whole, rows[-1][0]))
    right = found == expected
    print(
        f"  differences: {found['added']} added, {found['changed']} changed, "
        f"{found['missing']} missing, {found['volatile']} volatile not compared "
        f"({'as planted' if right else f'NOT as planted: {expected}'})"
    )
    return right


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pyevtx-runs", type=int, default=1)
    parser.add_argument("--files", type=int, default=3000, help="files of the web root")
    parser.add_argument("--compare", type=int, default=100_000, help="files of the big compare")
    parser.add_argument("--evtx", type=Path, default=None, help="a folder of the EVTX files")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one run")
    parser.add_argument("--no-yara-cli", action="store_true")
    parser.add_argument("--dir", type=Path, default=None, help="where the files are written")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.files, args.compare = 1, 60, 2000
    if args.runs < 1 or args.pyevtx_runs < 1 or args.files < 12 or args.compare < 100:
        parser.error("--runs 1+, --pyevtx-runs 1+, --files 12+, --compare 100+")
    ok = bench_evtx(evtx_files(args.evtx, args.quick), args.runs, args.pyevtx_runs)
    with tempfile.TemporaryDirectory(prefix="irtool-hostlogs-", dir=args.dir) as tmp:
        work = Path(tmp)
        webroot = bench_webroot(work, args.files, args.runs)
        ok &= webroot.ok
        ok &= bench_yara(webroot, args.runs, not args.no_yara_cli)
        ok &= bench_compare(work, args.compare, args.runs)
    print("irtool: right" if ok else "irtool: WRONG (see above)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
