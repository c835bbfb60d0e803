"""Content scan: YARA rules (yara-x) over files fetched as evidence, and their hits as findings.

A web shell is often 60-100 bytes: a manifest diff finds the added and changed files, and this
scan says which of them run a request value as code. It reads the local copy of a file that was
fetched as evidence, never a file on a host, and never runs anything: yara-x matches bytes.

Rules (``load_yara``): the shipped ones (``SHIPPED_YARA``, ``irtool/analysis/yara/*.yar``),
then every ``*.yar`` and ``*.yara`` under the user's directories, recursively. Each file is
compiled in its own namespace (two files may name a rule alike). A file that does not compile,
or that cannot be read, is a located problem (``path:line:col: why``, where yara-x says) and is
left out whole (none of its rules run), while every other file compiles and runs: one bad user
file never silences the shipped rules. yara-x's warnings (a slow pattern, an expression that is
always true) are located warnings; the file still runs. ``include`` is refused: every file in
the directory is compiled anyway, so an include would compile its rules twice, and an include
can name a file outside the directory.

A rule's ``meta`` says what its hit is: ``severity`` (info, low, medium, high, critical; high
when absent), ``description`` (the finding's title) and ``version``.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import re
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yara_x

from irtool.analysis.hunts import FindingDraft, worst_first_drafts
from irtool.model.hunt import SEVERITIES
from irtool.model.problems import Mark, Problem, Severity

__all__ = [
    "DEFAULT_MAX_SIZE",
    "DEFAULT_TIMEOUT",
    "RULE_SUFFIXES",
    "SHIPPED_YARA",
    "ScannedFile",
    "YaraHit",
    "YaraMatch",
    "YaraRules",
    "YaraScanError",
    "hits_drafts",
    "load_yara",
    "scan_bytes",
    "scan_file",
    "scan_files",
]

#: The shipped web-shell rules (package data).
SHIPPED_YARA: Path = Path(__file__).parent / "yara"
RULE_SUFFIXES = (".yar", ".yara")
#: Larger files are not scanned (a problem says so): web shells are small, and a scan reads the
#: whole file into memory to hash exactly the bytes it matched.
DEFAULT_MAX_SIZE = 64 * 1024 * 1024
#: Seconds one file's scan may take (yara-x counts whole seconds).
DEFAULT_TIMEOUT = 10
DEFAULT_SEVERITY = "high"
_SHIPPED_NAMESPACE = "irtool"


class YaraScanError(Exception):
    """A file that was not scanned (too large, not a regular file, unreadable, timed out)."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


@dataclass(frozen=True)
class YaraRules:
    """The compiled rules: every file that compiled, and the located problems of the others."""

    compiled: yara_x.Rules
    files: tuple[Path, ...]  # the rule files that compiled and run
    problems: tuple[Problem, ...]  # errors (a file left out) and warnings (it runs)
    rules: int  # how many rules run

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.is_error)


@dataclass(frozen=True)
class YaraMatch:
    """One rule that matched, as text (meta values of every type written out)."""

    rule: str
    namespace: str  # "irtool/aspx.yar" for a shipped file, else the file's path
    tags: tuple[str, ...]
    meta: tuple[tuple[str, str], ...]
    offsets: tuple[tuple[str, int], ...]  # (pattern, first match's byte offset), matched only

    def meta_value(self, name: str) -> str | None:
        return next((value for key, value in self.meta if key == name), None)

    @property
    def severity(self) -> str:
        """The rule's meta `severity` when it is one of irtool's, else high."""
        value = (self.meta_value("severity") or "").strip().lower()
        return value if value in SEVERITIES else DEFAULT_SEVERITY

    @property
    def description(self) -> str:
        return self.meta_value("description") or f"YARA rule {self.rule} matched"


@dataclass(frozen=True)
class ScannedFile:
    """A file scanned: the SHA-256 and size of exactly the bytes the rules saw."""

    path: Path
    size: int
    sha256: str
    matches: tuple[YaraMatch, ...]


@dataclass(frozen=True)
class YaraHit:
    """A rule that matched a file fetched from a host: what becomes a finding."""

    host: str
    path: str  # the file's path on the host (or in the web root), as the evidence names it
    sha256: str  # the matched file's
    rule: str
    evidence_sha256: str  # the evidence item the file came from (the fetched file or archive)
    source: str  # that evidence's name
    namespace: str = ""
    severity: str = DEFAULT_SEVERITY
    description: str = ""
    version: str = "1"

    @classmethod
    def of(
        cls, match: YaraMatch, *, host: str, path: str, sha256: str, evidence_sha256: str,
        source: str,
    ) -> YaraHit:  # fmt: skip
        return cls(
            host=host,
            path=path,
            sha256=sha256.lower(),
            rule=match.rule,
            evidence_sha256=evidence_sha256,
            source=source,
            namespace=match.namespace,
            severity=match.severity,
            description=match.description,
            version=match.meta_value("version") or "1",
        )


# -- loading ----------------------------------------------------------------------------------


def _rule_files(directory: Path) -> tuple[list[Path], list[Problem]]:
    if directory.is_file():
        return [directory], []
    if not directory.is_dir():
        return [], [Problem(Mark(str(directory), 1, 1), "no such directory of YARA rules")]
    found = (p for p in directory.rglob("*") if p.suffix.lower() in RULE_SUFFIXES)
    return sorted(p for p in found if p.is_file()), []


def _text(path: Path) -> str:
    """The file as text, or _Unreadable with the problem located where it cannot be read."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise _Unreadable(Problem(Mark(str(path), 1, 1), f"cannot read: {e.strerror}")) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        before = data[: e.start]
        line = before.count(b"\n") + 1
        col = e.start - (before.rfind(b"\n") + 1) + 1
        raise _Unreadable(Problem(Mark(str(path), line, col), "not UTF-8 text")) from None


class _Unreadable(Exception):
    def __init__(self, problem: Problem) -> None:
        self.problem = problem


def _problem(path: Path, report: dict[str, Any], severity: Severity) -> Problem:
    """A yara-x error or warning (its JSON form) as a located problem."""
    line, col = int(report.get("line") or 1), int(report.get("column") or 1)
    labels = [str(label.get("text") or "") for label in report.get("labels") or ()]
    notes = [str(footer.get("text") or "") for footer in report.get("footers") or ()]
    detail = "; ".join(t for t in (*labels, *notes) if t)
    message = f"{report.get('title') or 'error'} [{report.get('code') or '?'}]"
    return Problem(
        Mark(str(path), line, col), f"{message}: {detail}" if detail else message, severity
    )


def _compiler() -> yara_x.Compiler:
    compiler = yara_x.Compiler()
    compiler.enable_includes(False)
    return compiler


def _compile(
    files: Sequence[tuple[Path, str, str]],
) -> tuple[yara_x.Rules, set[Path], list[Problem]]:
    """Compile (path, namespace, text) files into one set: the rules, the files that failed,
    and every file's errors and warnings, located."""
    compiler = _compiler()
    failed: set[Path] = set()
    problems: list[Problem] = []
    errors = warnings = 0
    for path, namespace, text in files:
        compiler.new_namespace(namespace)
        with contextlib.suppress(yara_x.CompileError):  # every error is in errors(), located
            compiler.add_source(text, origin=str(path))
        # errors() and warnings() hold those of every add_source so far: the new ones are this
        # file's
        new_errors, new_warnings = compiler.errors()[errors:], compiler.warnings()[warnings:]
        errors, warnings = errors + len(new_errors), warnings + len(new_warnings)
        problems += [_problem(path, e, Severity.ERROR) for e in new_errors]
        problems += [_problem(path, w, Severity.WARNING) for w in new_warnings]
        if new_errors:
            failed.add(path)
    return compiler.build(), failed, problems


def _meta_problems(path: Path, text: str, rule: Any) -> list[Problem]:
    for name, value in rule.metadata:
        if name == "severity" and str(value).strip().lower() not in SEVERITIES:
            found = re.search(rf"\brule\s+{re.escape(rule.identifier)}\b", text)
            line = text.count("\n", 0, found.start()) + 1 if found else 1
            return [
                Problem(
                    Mark(str(path), line, 1),
                    f"rule {rule.identifier}: severity {str(value)!r} is not one of "
                    f"{', '.join(SEVERITIES)}: its hits are {DEFAULT_SEVERITY}",
                    Severity.WARNING,
                )
            ]
    return []


def _namespace(path: Path, shipped: bool) -> str:
    if shipped:
        return f"{_SHIPPED_NAMESPACE}/{path.relative_to(SHIPPED_YARA).as_posix()}"
    return str(path)


def load_yara(dirs: Sequence[Path | str] = (), *, shipped: bool = True) -> YaraRules:
    """Compile the shipped rules (unless `shipped` is false) and every rule file under `dirs`.

    Never raises for a bad rule file: its located problems are in `.problems`, the file is
    left out, and every other file runs."""
    sources: list[tuple[Path, bool]] = []
    problems: list[Problem] = []
    roots = [(SHIPPED_YARA, True)] if shipped else []
    for directory, is_shipped in roots + [(Path(d), False) for d in dirs]:
        paths, missing = _rule_files(Path(directory))
        problems += missing
        sources += [(p, is_shipped) for p in paths]
    readable: list[tuple[Path, str, str]] = []
    seen: set[Path] = set()
    for path, is_shipped in sources:
        if path.resolve() in seen:
            continue  # a file given twice (the shipped folder named again) runs once
        seen.add(path.resolve())
        try:
            readable.append((path, _namespace(path, is_shipped), _text(path)))
        except _Unreadable as e:
            problems.append(e.problem)
    compiled, failed, found = _compile(readable)
    problems += found
    if failed:
        # yara-x keeps the rules of a file that compiled before its error: compiled again
        # without the files that failed, none of a bad file's rules run (the responder fixes
        # it; nothing half runs)
        readable = [each for each in readable if each[0] not in failed]
        compiled = _compile(readable)[0]
    texts = {namespace: (path, text) for path, namespace, text in readable}
    for rule in compiled:
        path, text = texts[rule.namespace]
        problems += _meta_problems(path, text, rule)
    files = tuple(path for path, _, _ in readable)
    return YaraRules(compiled, files, tuple(problems), sum(1 for _ in compiled))


# -- scanning ---------------------------------------------------------------------------------


def _text_of(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return str(value)


def _match(rule: Any) -> YaraMatch:
    offsets = []
    for pattern in rule.patterns:
        first = next(iter(pattern.matches), None)
        if first is not None:
            offsets.append((str(pattern.identifier), int(first.offset)))
    return YaraMatch(
        rule=str(rule.identifier),
        namespace=str(rule.namespace),
        tags=tuple(str(t) for t in rule.tags),
        meta=tuple((str(k), _text_of(v)) for k, v in rule.metadata),
        offsets=tuple(offsets),
    )


def _scanner(rules: YaraRules, timeout: float) -> yara_x.Scanner:
    scanner = yara_x.Scanner(rules.compiled)
    scanner.set_timeout(max(1, math.ceil(timeout)))
    return scanner


def _scan(scanner: yara_x.Scanner, data: bytes, name: Path | str) -> list[YaraMatch]:
    try:
        results = scanner.scan(data)
    except yara_x.TimeoutError:
        raise YaraScanError(name, "the YARA scan timed out") from None
    except yara_x.ScanError as e:
        raise YaraScanError(name, f"the YARA scan failed: {e}") from None
    return [_match(rule) for rule in results.matching_rules]


def scan_bytes(
    rules: YaraRules, data: bytes, *, timeout: float = DEFAULT_TIMEOUT
) -> list[YaraMatch]:
    """The rules that match `data`; YaraScanError when the scan times out."""
    return _scan(_scanner(rules, timeout), data, "<data>")


def _read(path: Path, max_size: int) -> bytes:
    """The bytes of a regular file, never through a symbolic link (a fetched tree that holds one
    points at the analyst's machine, not at the host's file), and never more than `max_size`."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_BINARY", 0))
    except OSError as e:
        if os.path.islink(path):
            raise YaraScanError(path, "not scanned: a symbolic link") from None
        raise YaraScanError(path, f"not scanned: {e.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise YaraScanError(path, "not scanned: not a regular file")
        if info.st_size > max_size:
            raise YaraScanError(
                path, f"not scanned: {info.st_size:,} bytes is over the {max_size:,}-byte limit"
            )
        # Asked for its size and a byte more (a file that grew shows it), in os.read's chunks:
        # a read of max_size would allocate max_size for every small file.
        chunks, left = [], info.st_size + 1
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 24))):
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as e:
        raise YaraScanError(path, f"not scanned: {e.strerror}") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > info.st_size:  # evidence does not change: this is no copy to trust
        raise YaraScanError(path, "not scanned: it grew while it was read")
    return data


def scan_file(
    rules: YaraRules,
    path: Path | str,
    *,
    max_size: int = DEFAULT_MAX_SIZE,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[YaraMatch]:
    """The rules that match the file at `path` (a local copy: evidence, never a host's file).
    YaraScanError says why a file was not scanned."""
    path = Path(path)
    return _scan(_scanner(rules, timeout), _read(path, max_size), path)


def scan_files(
    rules: YaraRules,
    paths: Iterable[Path | str],
    *,
    max_size: int = DEFAULT_MAX_SIZE,
    timeout: float = DEFAULT_TIMEOUT,
) -> tuple[list[ScannedFile], list[Problem]]:
    """Scan each file (with its SHA-256); a file not scanned is a problem located at it, and
    the others are still scanned."""
    scanner = _scanner(rules, timeout)
    scanned: list[ScannedFile] = []
    problems: list[Problem] = []
    for each in paths:
        path = Path(each)
        try:
            data = _read(path, max_size)
            matches = _scan(scanner, data, path)
        except YaraScanError as e:
            problems.append(Problem(Mark(str(path), 1, 1), e.reason))
            continue
        digest = hashlib.sha256(data).hexdigest()
        scanned.append(ScannedFile(path, len(data), digest, tuple(matches)))
    return scanned, problems


# -- findings ---------------------------------------------------------------------------------


def _file_name(path: str) -> str:
    """The last part of a path written either way (a host's listing has backslashes)."""
    return re.split(r"[\\/]", path.rstrip("\\/"))[-1] or path


def hits_drafts(hits: Iterable[YaraHit]) -> list[FindingDraft]:
    """One finding per rule, host and file content (`yara:<rule>:<host>:<sha256>`): the same
    file at several paths of one host is one finding that counts them; worst first."""
    grouped: dict[str, list[YaraHit]] = {}
    for hit in hits:
        # hashes compare as text: PowerShell writes them in upper case
        grouped.setdefault(f"yara:{hit.rule}:{hit.host}:{hit.sha256.lower()}", []).append(hit)
    drafts = []
    for key, same in grouped.items():
        first = same[0]
        digest = first.sha256.lower()
        paths = list(dict.fromkeys(h.path for h in same))
        where = paths[0] if len(paths) == 1 else f"{paths[0]} (and {len(paths) - 1} more)"
        on = f"{first.host}: " if first.host else ""
        refs = dict.fromkeys((h.evidence_sha256, h.source, 0) for h in same)
        names = dict.fromkeys(_file_name(p) for p in paths)
        drafts.append(
            FindingDraft(
                hunt=f"yara:{first.rule}",
                version=first.version,
                severity=first.severity if first.severity in SEVERITIES else DEFAULT_SEVERITY,
                title=first.description or f"YARA rule {first.rule} matched",
                summary=f"{on}{where} matches YARA rule {first.rule} (sha256 {digest})",
                hosts=(first.host,) if first.host else (),
                first_seen=None,
                last_seen=None,
                count=len(paths),
                refs=tuple(refs),
                key=key,
                indicators=(("sha256", digest), *(("file", n) for n in names)),
                same_by_key=True,
            )
        )
    return worst_first_drafts(drafts)
