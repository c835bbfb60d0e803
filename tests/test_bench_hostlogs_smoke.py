"""bench/hostlogs.py still runs end to end (--quick: one EVTX file, a 60-file web root, a
2,000-file compare), each section with its figures and irtool's results right."""

from __future__ import annotations

import re
import shutil

from tests.support.bench import run_bench

NUMBER = r"[\d,]+(?:\.\d+)?(?:e[+-]\d+)?"


def _row(name: str, unit: str, *, pattern: bool = False) -> str:
    shown = name if pattern else re.escape(name)
    return rf"^  {shown} +{NUMBER} s +{NUMBER} {unit}/s"


def test_the_hostlogs_benchmark_runs_quick() -> None:
    # --no-yara-cli when it is not installed: the benchmark would install it (as root)
    extra = () if shutil.which("yara") else ("--no-yara-cli",)
    result = run_bench("hostlogs.py", "--quick", *extra, timeout=120)
    out = result.stdout

    def has(pattern: str) -> None:
        assert re.search(pattern, out, re.M), f"{pattern}\n{out}"

    # EVTX: irtool, the evtx package alone and python-evtx on the same file, every record
    has(r"^EVTX: 1 file\(s\) \(post-Security\.evtx\), 126 records, ")
    has(_row("irtool (read_evtx_paths: rows for the store)", "records") + r".*\(126 records\)$")
    has(_row("evtx package alone (records_json)", "records"))
    has(_row("python-evtx (Evtx.Evtx, xml())", "records"))
    has(rf"^  irtool / python-evtx: {NUMBER}x records/s \(goal >= 100x: (met|NOT met)\)$")

    # the web root: three builds, two compares, sha256sum beside them, the planted differences
    has(r"^web root: 6\d files, ")
    for name in (
        "irtool manifest build (directory)",
        "irtool manifest build (zip)",
        "irtool manifest build (git commit)",
        "irtool compare (server directory, hashed)",
        "irtool compare (host's CSV listing)",
        "sha256sum (find | xargs, known-good dir)",
    ):
        has(_row(name, "files"))
    has(rf"^  irtool build / sha256sum: {NUMBER}x files/s")
    for target in ("directory", "CSV listing"):
        has(rf"^  differences \({target}\): 1 added, 1 changed, 1 missing, .*\(as planted\)$")

    # YARA: the changed files, irtool beside a fresh compile per file; only the shell hits
    has(r"^YARA: \d+ shipped rule\(s\) in \d+ file\(s\); the 2 added or changed file\(s\)")
    has(_row("irtool load_yara + scan_files (2 changed)", "files") + r" +1 hit\(s\)$")
    has(_row("yara-x, a fresh compile per file (2 changed)", "files") + r" +1 hit\(s\)$")
    everything = r"\(all 6\d server files\)"
    has(_row(rf"irtool scan_files {everything}", "files", pattern=True) + r" +1 hit\(s\)$")
    has(rf"^  irtool compile once \+ scan / yara-x compile per file: {NUMBER}x files/s")
    if extra:
        has(r"^  yara -r \(all \d+ server files\) +skipped: --no-yara-cli$")
    else:
        has(_row(rf"yara -r {everything}", "files", pattern=True) + r" +1 hit\(s\)$")
        has(rf"^  irtool scan \(all\) / yara -r \(all\): {NUMBER}x files/s")

    # the big compare, small here: the figures, the goal line, what it found
    has(r"^compare at 2,000 files: ")
    has(_row("irtool read manifest + compare (CSV listing)", "files"))
    has(_row("sort + comm (path, hash lists)", "files"))
    has(rf"^  irtool read \+ compare: {NUMBER} s \(goal < 2 s: met\)$")
    has(r"^  differences: 10 added, 10 changed, 10 missing, 100 volatile .*\(as planted\)$")
    has(r"^irtool: right$")
