"""A web root against its known-good manifest: what was added, changed, is missing, or could
not be hashed; and each difference as a finding draft.

The target is a directory (a copy, a fetched tree) or a host's hash listing. Paths compare as
IIS on NTFS sees them (`\\` and `/` alike, any case), hashes in any case. Files under the
manifest's volatile patterns are counted, not compared, unless they are code IIS would run.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from irtool.analysis.artifacts import FileEntry, read_directory
from irtool.analysis.hunts import FindingDraft
from irtool.analysis.listing import Listed, read_listing
from irtool.analysis.manifest import Manifest, Volatile, extension, normalised, normalised_all
from irtool.model.problems import Problem

VERSION = "1"
KINDS = ("added", "changed", "missing", "unhashed")
#: Added or changed, these are how a web shell or a backdoor module gets in.
_HIGH = frozenset((
    ".aspx", ".ashx", ".asmx", ".asp", ".ascx", ".asax", ".cshtml", ".vbhtml", ".svc", ".php",
    ".phtml", ".jsp", ".jspx", ".config", ".xamlx", ".xoml", ".rules", ".aspq", ".cshtm",
    ".vbhtm", ".shtm", ".shtml", ".stm", ".asa", ".idc", ".soap", ".rem", ".cer", ".cdx",
))  # fmt: skip


@dataclass(frozen=True, slots=True)
class Difference:
    """One file that is not as the manifest says. `found` is the target's side (None when
    missing; its sha256 is the host's `error: ...` when unhashed); `source` and `line` say
    where it was read (the listing and its line; a directory and 0)."""

    kind: str
    path: str
    expected: FileEntry | None
    found: FileEntry | None
    source: str
    line: int

    @property
    def why(self) -> str:
        if self.kind == "unhashed" and self.found is not None:
            return f"could not be hashed ({self.found.sha256})"
        return {"added": "not in the manifest", "changed": "content differs"}.get(
            self.kind, "in the manifest, not on the host"
        )


@dataclass(frozen=True)
class Comparison:
    """The differences, worst kind first then by path, and what was not compared."""

    target: str
    differences: tuple[Difference, ...]
    same: int  # files as the manifest says
    volatile: int  # files under volatile paths: not compared
    warnings: tuple[Problem, ...] = ()

    def of_kind(self, kind: str) -> list[Difference]:
        return [d for d in self.differences if d.kind == kind]

    @property
    def added(self) -> list[Difference]:
        return self.of_kind("added")

    @property
    def changed(self) -> list[Difference]:
        return self.of_kind("changed")

    @property
    def missing(self) -> list[Difference]:
        return self.of_kind("missing")

    @property
    def unhashed(self) -> list[Difference]:
        return self.of_kind("unhashed")


def compare(manifest: Manifest, target: Path, *, volatile: Iterable[str] = ()) -> Comparison:
    """`target` (a directory, or a hash listing file) against `manifest`. InvalidFile for a
    listing that is not one; `volatile` adds patterns to the manifest's."""
    is_volatile = Volatile((*manifest.volatile, *volatile))
    warnings: list[Problem] = []
    rows: Iterable[Listed]
    if target.is_dir():
        # Read whole before the warnings are taken: a link or an unreadable folder is said.
        rows = list(_directory_rows(target, is_volatile, warnings))
    else:
        rows = read_listing(target)
    return _compared(manifest, rows, str(target), is_volatile, tuple(warnings))


def _directory_rows(root: Path, is_volatile: Volatile, warnings: list[Problem]) -> Iterator[Listed]:
    # Volatile files are counted, not hashed: an upload folder may hold gigabytes.
    for entry in read_directory(root, warnings, hashed=lambda p: not is_volatile(normalised(p))):
        yield Listed(entry.path, entry.size, entry.sha256, 0)


def _compared(
    manifest: Manifest, rows: Iterable[Listed], target: str, is_volatile: Volatile,
    warnings: tuple[Problem, ...],
) -> Comparison:  # fmt: skip
    known_keys = normalised_all([f.path for f in manifest.files])
    expected = dict(zip(known_keys, manifest.files, strict=True))
    rows = list(rows)
    keys = normalised_all([row.path for row in rows])
    volatile_keys = is_volatile.among(list(set(keys).union(known_keys)))
    seen: set[str] = set()
    differences: list[Difference] = []
    same = volatile = 0
    for key, row in zip(keys, rows, strict=True):
        if key in volatile_keys:
            volatile += key not in seen
            seen.add(key)
            continue
        known = expected.get(key) if key not in seen else None  # a twin in case: added
        seen.add(key)
        sha256 = row.sha256
        if known is not None and known.sha256 == sha256:
            same += 1
            continue
        if sha256.startswith("error") or not sha256:
            kind = "unhashed"
        else:
            kind = "added" if known is None else "changed"
        found = FileEntry(row.path, row.size, sha256)
        differences.append(Difference(kind, row.path, known, found, target, row.line))
    for key, known in expected.items():
        if key in seen:
            continue
        if key in volatile_keys:
            volatile += 1
        else:
            differences.append(Difference("missing", known.path, known, None, target, 0))
    differences.sort(key=lambda d: (KINDS.index(d.kind), normalised(d.path)))
    return Comparison(target, tuple(differences), same, volatile, warnings)


# -- findings ---------------------------------------------------------------------------------


def severity(difference: Difference) -> str:
    """An added or changed page, handler, config, or bin/ DLL: high; any other difference:
    medium (a missing file may be a deleted trace, or a broken deployment)."""
    if difference.kind in ("added", "changed"):
        key = normalised(difference.path)
        ext = extension(key)
        if ext in _HIGH or (ext in (".dll", ".exe") and (key.startswith("bin/") or "/bin/" in key)):
            return "high"
    return "medium"


def comparison_drafts(
    comparison: Comparison, *, host: str, evidence_sha256: str, source: str
) -> list[FindingDraft]:
    """One finding draft per difference, for `host`; refs point at the listing's line
    (`evidence_sha256`, `source`), or at the path with line 0 for a directory target."""
    drafts = []
    for difference in comparison.differences:
        found = difference.found
        name = difference.path.replace("\\", "/").rsplit("/", 1)[-1]
        hashed = found is not None and not found.sha256.startswith("error") and found.sha256
        indicators: tuple[tuple[str, str], ...] = (("file", name),)
        if hashed and found is not None:
            indicators = (("sha256", found.sha256.lower()), ("file", name))
        key_hash = found.sha256.lower() if hashed and found is not None else difference.kind
        ref_source = source if difference.line else difference.path
        drafts.append(
            FindingDraft(
                hunt=f"webroot:{difference.kind}",
                version=VERSION,
                severity=severity(difference),
                title=_TITLES[difference.kind],
                summary=_summary(difference, host),
                hosts=(host,) if host else (),
                first_seen=None,  # file times can be forged: the finding does not date itself
                last_seen=None,
                count=1,
                refs=((evidence_sha256, ref_source, difference.line),),
                key=f"webroot:{host}:{normalised(difference.path)}:{key_hash}",
                indicators=indicators,
                same_by_key=True,
            )
        )
    return drafts


_TITLES = {
    "added": "Web root: a file the known-good release does not have",
    "changed": "Web root: a file differs from the known-good release",
    "missing": "Web root: a file of the known-good release is missing",
    "unhashed": "Web root: a file the host could not hash",
}


def _summary(difference: Difference, host: str) -> str:
    on = f" on {host}" if host else ""
    found, expected = difference.found, difference.expected
    if difference.kind == "missing" and expected is not None:
        return f"{difference.path} missing{on} (expected sha256 {expected.sha256[:16]})"
    if difference.kind == "unhashed" and found is not None:
        return f"{difference.path}{on} could not be hashed: {found.sha256}"
    assert found is not None
    text = (
        f"{difference.path} {difference.kind}{on}: sha256 {found.sha256[:16]}, {found.size} bytes"
    )
    if expected is not None:
        text += f" (expected {expected.sha256[:16]}, {expected.size} bytes)"
    return text
