"""`irtool manifest build|compare`: the web root against its known-good deployment artifact.

`build` writes a manifest (path, size, SHA-256 of every file, and the volatile patterns) from
an artifact the team trusts: a directory, a zip, a WebDeploy package, or a git tree at a
commit. There is no host option: a manifest is never built from a server that may be
compromised. `compare` reports what a web root (a directory, a fetched tree, or a host's
`webroot` hash listing) has added, changed, is missing, or could not hash, and scans the
added and changed files of a directory with YARA. Exit 0 when all is as the manifest says,
1 when something differs or a rule matched, 2 for bad input (located, one line a problem).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from irtool.analysis.manifest import DEFAULT_VOLATILE  # stdlib only: cheap for --help
from irtool.cli.exits import Exit
from irtool.model.problems import InvalidFile, Problem
from irtool.model.untrusted import visible


def _say(text: str, *, err: bool = False) -> None:
    click.echo(visible(text), err=err)


def _problems(problems: Iterable[Problem]) -> None:
    for problem in problems:
        _say(str(problem), err=True)


def _invalid(invalid: InvalidFile) -> None:
    _problems(invalid.problems)
    sys.exit(Exit.INVALID)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def manifest() -> None:
    """Known-good manifests of a web root, and what a server has that they do not."""


@manifest.command("build")
@click.argument("source", type=click.Path(path_type=Path, exists=True))
@click.option(
    "-o", "--output", type=click.Path(path_type=Path, dir_okay=False), required=True,
    help="The manifest file to write (JSON).",
)  # fmt: skip
@click.option("--commit", metavar="REV", help="SOURCE is a git repository: read its tree at REV.")
@click.option(
    "--root", metavar="PATH",
    help="The web root's folder inside the artifact (inside a WebDeploy package's application).",
)  # fmt: skip
@click.option(
    "--volatile", "patterns", multiple=True, metavar="PATTERN",
    help="A path pattern that changes on a healthy site (repeat): App_Data/**, **/uploads/**.",
)  # fmt: skip
@click.option("--no-default-volatile", is_flag=True, help="Drop the default volatile patterns.")
def build(
    source: Path, output: Path, commit: str | None, root: str | None,
    patterns: tuple[str, ...], no_default_volatile: bool,
) -> None:  # fmt: skip
    """Build a manifest of a deployment artifact: a directory, a zip, a WebDeploy package, or
    a git repository at --commit. Zips are read as they stream, never extracted; one that
    would escape its folder, holds links or encrypted members, or inflates like a bomb is
    refused.

    Build it from what the team released, never from the server under suspicion: there is
    no host option on purpose.
    """
    from irtool.analysis.manifest import build_manifest

    volatile = (() if no_default_volatile else DEFAULT_VOLATILE) + patterns
    try:
        built = build_manifest(source, commit=commit, volatile=volatile, root=root)
        built.write(output)
    except InvalidFile as invalid:
        _invalid(invalid)
    except OSError as exc:
        _say(f"{output}:1:1: cannot write: {exc.strerror or exc}", err=True)
        sys.exit(Exit.INVALID)
    _problems(built.warnings)
    kind = built.source["kind"]
    at = f" at {built.source['commit'][:12]}" if kind == "git" else ""
    _say(
        f"{output}: {len(built.files):,} files, {built.bytes:,} bytes from {kind} {source}{at}; "
        f"volatile: {', '.join(built.volatile) or 'none'}"
    )


@dataclass(frozen=True)
class _Hit:
    path: str
    rule: str
    namespace: str
    severity: str
    sha256: str


@manifest.command("compare")
@click.argument("manifest_file", metavar="FILE", type=click.Path(path_type=Path, exists=True))
@click.argument("target", type=click.Path(path_type=Path, exists=True))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--yara", "yara_dirs", multiple=True,
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="A folder of YARA rules to scan with too (repeat), beside the shipped ones.",
)  # fmt: skip
@click.option("--no-yara", is_flag=True, help="Do not scan added and changed files.")
def compare_command(
    manifest_file: Path, target: Path, as_json: bool, yara_dirs: tuple[Path, ...], no_yara: bool
) -> None:
    """Compare TARGET with the manifest FILE: files added, changed, missing, or that the
    host could not hash. TARGET is a directory (a copy, a fetched tree) or a host's hash
    listing (the triage `webroot` CSV or JSON). Paths compare as IIS sees them (any case,
    either slash). Files under the manifest's volatile patterns are counted, not compared,
    unless they are code IIS runs (an .aspx in an upload folder is reported).

    For a directory, the added and changed files are scanned with YARA (the shipped web
    shell rules and --yara folders); a rule file that does not compile is reported and the
    others run. Exit 0: as the manifest says; 1: differences or YARA hits; 2: bad input (and
    nothing found while a rule file was broken).
    """
    from irtool.analysis.comparison import compare
    from irtool.analysis.manifest import read_manifest

    try:
        known = read_manifest(manifest_file)
        comparison = compare(known, target)
    except InvalidFile as invalid:
        _invalid(invalid)
    _problems(comparison.warnings)
    hits: list[_Hit] = []
    rule_problems: list[Problem] = []
    changed = comparison.added + comparison.changed
    if target.is_dir() and not no_yara:
        hits, rule_problems = _scanned(target, changed, yara_dirs)
        _problems(rule_problems)
    elif changed and not no_yara:
        _say(
            f"{target}: a listing holds no content: fetch the {len(changed)} added and changed "
            "files and compare the fetched tree to scan them with YARA",
            err=True,
        )
    if as_json:
        click.echo(json.dumps(_json(manifest_file, comparison, hits, rule_problems), indent=2))
    else:
        _text(comparison, hits, scanned=target.is_dir() and not no_yara)
    if comparison.differences or hits:
        sys.exit(Exit.FAILED)
    if any(p.is_error for p in (*rule_problems, *comparison.warnings)):
        sys.exit(Exit.INVALID)  # nothing found, but not everything was looked at


def _scanned(
    root: Path, differences: list[Any], yara_dirs: tuple[Path, ...]
) -> tuple[list[_Hit], list[Problem]]:
    """YARA over the local copies of the added and changed files (never a host's file)."""
    from irtool.analysis.yarascan import load_yara, scan_files

    rules = load_yara(yara_dirs)
    problems = list(rules.problems)
    if not differences:
        return [], problems
    by_file = {root / d.path: d.path for d in differences}
    scanned, not_scanned = scan_files(rules, list(by_file))
    problems += not_scanned
    hits = [
        _Hit(by_file[each.path], m.rule, m.namespace, m.severity, each.sha256)
        for each in scanned
        for m in each.matches
    ]
    return hits, problems


def _text(comparison: Any, hits: list[_Hit], *, scanned: bool) -> None:
    for d in comparison.differences:
        found, expected = d.found, d.expected
        where = f"  ({d.source}:{d.line})" if d.line else ""
        if d.kind == "missing":
            detail = f"expected sha256 {expected.sha256}, {expected.size:,} bytes"
        elif d.kind == "unhashed":
            detail = d.why
        else:
            detail = f"sha256 {found.sha256}, {found.size:,} bytes"
            if expected is not None:
                detail += f" (expected {expected.sha256})"
        _say(f"{d.kind:<9} {d.path}  {detail}{where}")
    for hit in hits:
        _say(f"{'yara':<9} {hit.path}  rule {hit.rule} ({hit.severity}), sha256 {hit.sha256}")
    counts = ", ".join(f"{len(comparison.of_kind(k))} {k}" for k in _KINDS)
    scan = f", {len(hits)} YARA hits" if scanned else ""
    _say(
        f"{comparison.same:,} as the manifest says; {counts}{scan}; "
        f"{comparison.volatile:,} volatile, not compared"
    )


_KINDS = ("added", "changed", "missing", "unhashed")


def _json(
    manifest_file: Path, comparison: Any, hits: list[_Hit], problems: list[Problem]
) -> dict[str, Any]:
    def side(entry: Any) -> dict[str, Any] | None:
        return None if entry is None else {"size": entry.size, "sha256": entry.sha256}

    return {
        "manifest": str(manifest_file),
        "target": comparison.target,
        "same": comparison.same,
        "volatile": comparison.volatile,
        "differences": [
            {
                "kind": d.kind,
                "path": d.path,
                "expected": side(d.expected),
                "found": side(d.found),
                "source": d.source,
                "line": d.line,
            }
            for d in comparison.differences
        ],
        "yara": [vars(hit) for hit in hits],
        "problems": [str(p) for p in problems],
    }
