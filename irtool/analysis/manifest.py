"""A manifest of a known-good web root: every file's path, size and SHA-256, built from a
deployment artifact (never from the server, which may be compromised), and the volatile
paths (uploads, App_Data, logs) whose changes are expected and so not compared.

The file: JSON `{"format": "irtool-manifest", "version": 1, "source": {...}, "built_at",
"volatile": [...], "files": [{"path", "size", "sha256"}, ...]}`, one file entry a line.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from irtool.analysis.artifacts import (
    DEFAULT_LIMITS,
    FileEntry,
    ZipLimits,
    read_directory,
    read_zip,
    webdeploy_root,
)
from irtool.analysis.gittree import git_commit, read_git
from irtool.model.problems import InvalidFile, Mark, Problem
from irtool.model.untrusted import visible

FORMAT, VERSION = "irtool-manifest", 1

#: What changes on a healthy IIS/ASP.NET site: data, uploads, logs, caches.
DEFAULT_VOLATILE: tuple[str, ...] = (
    "App_Data/**",
    "**/uploads/**",
    "**/upload/**",
    "**/logs/**",
    "*.log",
)
#: Files IIS runs or obeys: one of these added or changed is never volatile, even under an
#: upload folder (a shell dropped through an upload form is the classic way in).
SERVER_CODE = frozenset((
    ".aspx", ".ashx", ".asmx", ".asp", ".ascx", ".asax", ".axd", ".cshtml", ".vbhtml", ".svc",
    ".rem", ".soap", ".php", ".php5", ".phtml", ".jsp", ".jspx", ".cer", ".cdx", ".shtml",
    ".stm", ".config", ".dll", ".exe",
    # ASP.NET 4's handlers IIS registers too, and classic ASP's include and IDC pages
    ".xamlx", ".xoml", ".rules", ".aspq", ".cshtm", ".vbhtm", ".shtm", ".asa", ".idc",
    ".asr", ".htr", ".ashx", ".master", ".resx", ".resources", ".vb", ".cs", ".browser",
    ".sitemap", ".skin", ".licx", ".webinfo", ".compiled",
))  # fmt: skip
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_HEXES = re.compile(r"[0-9a-fA-F]*")


def normalised(path: str) -> str:
    """A path as IIS on NTFS sees it: `\\` and `/` alike, no leading `./` or `/`, any case."""
    text = path.replace("\\", "/").lower()
    while text.startswith(("./", "/")):
        text = text[2:] if text.startswith("./") else text[1:]
    return text


def extension(path: str) -> str:
    name = path.replace("\\", "/").rsplit("/", 1)[-1].lower()
    return name[name.rfind(".") :] if "." in name else ""


class Volatile:
    """Glob patterns over normalised paths: `**` any folders, `*` and `?` within one name; a
    pattern without a `/` matches a file name in any folder. Case-insensitive, as NTFS."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(dict.fromkeys(p.strip() for p in patterns if p.strip()))
        regexes = "|".join(_glob_regex(normalised(p)) for p in self.patterns)
        self._regex = re.compile(regexes) if regexes else None
        self._lines = re.compile(f"^(?:{regexes})$", re.MULTILINE) if regexes else None

    def __call__(self, norm_path: str) -> bool:
        """Whether a file (its normalised path) is expected to change, so not compared."""
        if self._regex is None or self._regex.fullmatch(norm_path) is None:
            return False
        return extension(norm_path) not in SERVER_CODE

    def among(self, norm_paths: list[str]) -> set[str]:
        """The volatile ones of many normalised paths: one pass of the regex over them all
        (100,000 calls from Python cost more than the matching)."""
        if self._lines is None or not norm_paths:
            return set()
        joined = "\n".join(norm_paths)
        if joined.count("\n") != len(norm_paths) - 1:  # a name with a line break (not NTFS)
            return {p for p in norm_paths if self(p)}
        found = (m.group() for m in self._lines.finditer(joined))
        return {p for p in found if extension(p) not in SERVER_CODE}


def normalised_all(paths: list[str]) -> list[str]:
    """`normalised` of each path; in one pass over them all when none holds a line break."""
    joined = "\n".join(paths)
    if joined.count("\n") != len(paths) - 1 or not paths:
        return [normalised(p) for p in paths]
    slashed = joined.replace("\\", "/")
    keys = slashed.lower().split("\n")
    # Checked after `\` became `/`: a listing's `\Default.aspx` or `.\web.config` too.
    if "\n/" in slashed or "\n./" in slashed or slashed.startswith(("/", "./")):
        return [normalised(k) if k.startswith(("/", "./")) else k for k in keys]
    return keys


def _glob_regex(pattern: str) -> str:
    if "/" not in pattern:
        pattern = "**/" + pattern
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:[^/\n]*/)*")
            i += 3
        elif pattern.startswith("**", i):
            out.append("[^\n]*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/\n]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/\n]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "(?:" + "".join(out) + ")"


@dataclass(frozen=True)
class Manifest:
    """What a known-good web root holds. `source` says what it was built from."""

    source: dict[str, str]
    built_at: str
    volatile: tuple[str, ...]
    files: tuple[FileEntry, ...]
    warnings: tuple[Problem, ...] = field(default=(), compare=False)  # not in the file

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.files)

    def to_json(self) -> str:
        """The manifest file's text: one file entry a line, so a diff of two reads well."""
        head = {
            "format": FORMAT,
            "version": VERSION,
            "source": self.source,
            "built_at": self.built_at,
            "volatile": list(self.volatile),
        }
        entries = ",\n".join(
            "    " + json.dumps({"path": f.path, "size": f.size, "sha256": f.sha256})
            for f in self.files
        )
        text = json.dumps(head, indent=2)[:-2]  # the closing brace, with its newline
        return f'{text},\n  "files": [\n{entries}\n  ]\n}}\n'

    def write(self, path: Path) -> None:
        path.write_text(self.to_json(), encoding="utf-8")


def build_manifest(
    source: Path,
    *,
    commit: str | None = None,
    volatile: Iterable[str] = DEFAULT_VOLATILE,
    root: str | None = None,
    limits: ZipLimits = DEFAULT_LIMITS,
) -> Manifest:
    """A manifest from a deployment artifact: a directory, a zip, a WebDeploy package, or (with
    `commit`) a git repository's tree at that commit. `root`: the web root's folder inside the
    artifact (inside a package's application folder). InvalidFile for an artifact it refuses."""
    warnings: list[Problem] = []
    where = str(source)
    described: dict[str, str]
    entries: Iterator[FileEntry]
    if commit is not None:
        if not source.is_dir():
            raise InvalidFile([Problem(Mark(where, 1, 1), "--commit needs a git repository")])
        full = git_commit(source, commit)
        described = {"kind": "git", "path": str(source.resolve()), "commit": full}
        entries = read_git(source, full, warnings)
    elif source.is_dir():
        described = {"kind": "directory", "path": str(source.resolve())}
        entries = read_directory(source, warnings)
    elif source.is_file():
        app = webdeploy_root(source, limits)
        kind = "zip" if app is None else "webdeploy"
        described = {"kind": kind, "path": str(source.resolve()), "sha256": _file_sha256(source)}
        if app is not None:
            described["application"] = app
        entries = read_zip(source, limits, prefix=app or "")
    else:
        raise InvalidFile([Problem(Mark(where, 1, 1), "no such file or directory")])
    files = _under(entries, root, where)
    if any(p.is_error for p in warnings):  # a folder not read: the manifest would lack it
        raise InvalidFile([p for p in warnings if p.is_error])
    if root:
        described["root"] = root
    if "sha256" not in described:  # a directory or a tree: the hash of what it holds
        described["sha256"] = _listing_sha256(files)
    return Manifest(
        source=described,
        built_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        volatile=Volatile(volatile).patterns,
        files=files,
        warnings=tuple(warnings),
    )


def _under(entries: Iterator[FileEntry], root: str | None, where: str) -> tuple[FileEntry, ...]:
    folder = normalised(root or "").strip("/")
    prefix, depth = (folder + "/", folder.count("/") + 1) if folder else ("", 0)
    kept: list[FileEntry] = []
    problems: list[Problem] = []
    for entry in entries:
        if prefix:
            if not normalised(entry.path).startswith(prefix):
                continue
            # by folders, not characters: a lower-cased name may not be as long as the name
            entry = entry._replace(path=entry.path.replace("\\", "/").split("/", depth)[depth])
        if entry.sha256.startswith("error:"):
            problems.append(
                Problem(Mark(f"{where}:{visible(entry.path)}", 1, 1), f"unreadable: {entry.sha256}")
            )
            continue
        kept.append(entry)
    if problems:
        raise InvalidFile(problems)
    if prefix and not kept:
        raise InvalidFile([Problem(Mark(where, 1, 1), f"no files under '{visible(root or '')}'")])
    return tuple(sorted(kept, key=lambda e: normalised(e.path)))


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _listing_sha256(files: Iterable[FileEntry]) -> str:
    """One hash for a tree's content: of its sorted `sha256  path` lines, as sha256sum writes."""
    digest = hashlib.sha256()
    for entry in files:
        digest.update(f"{entry.sha256}  {entry.path}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


# -- reading a manifest file ------------------------------------------------------------------


def read_manifest(path: Path) -> Manifest:
    """A manifest file, or InvalidFile with every problem located (line:col)."""
    where = str(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise InvalidFile([Problem(Mark(where, 1, 1), exc.strerror or str(exc))]) from exc
    except UnicodeDecodeError as exc:
        raise InvalidFile([Problem(Mark(where, 1, 1), f"not UTF-8 text: {exc.reason}")]) from exc
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidFile(
            [Problem(Mark(where, exc.lineno, exc.colno), f"not JSON: {exc.msg}")]
        ) from None
    except RecursionError:
        raise InvalidFile([Problem(Mark(where, 1, 1), "nested too deep: not a manifest")]) from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise InvalidFile([Problem(Mark(where, 1, 1), f"not an {FORMAT} file (no format key)")])
    problems: list[Problem] = []
    if document.get("version") != VERSION:
        problems.append(Problem(Mark(where, 1, 1), f"version {document.get('version')!r} unknown"))
    source, volatile, raw = document.get("source"), document.get("volatile"), document.get("files")
    if not isinstance(source, dict) or not all(isinstance(v, str) for v in source.values()):
        problems.append(Problem(_key_mark(text, where, "source"), "source: not an object"))
    if not isinstance(volatile, list) or not all(isinstance(p, str) for p in volatile):
        problems.append(Problem(_key_mark(text, where, "volatile"), "volatile: not a list"))
    if not isinstance(raw, list):
        problems.append(Problem(_key_mark(text, where, "files"), "files: not a list"))
        raise InvalidFile(problems)
    files, bad = _entries(raw)
    if bad:
        marks = _item_marks(text, where, "files")
        for index, why in bad[:50]:
            mark = marks[index] if index < len(marks) else Mark(where, 1, 1)
            problems.append(Problem(mark, f"files[{index}]: {why}"))
    if problems:
        raise InvalidFile(problems)
    assert isinstance(source, dict) and isinstance(volatile, list)
    return Manifest(
        source={str(k): v for k, v in source.items()},
        built_at=str(document.get("built_at", "")),
        volatile=tuple(volatile),
        files=files,
    )


def _entries(raw: list[Any]) -> tuple[tuple[FileEntry, ...], list[tuple[int, str]]]:
    try:  # the fast way, for a well-formed file: each check over all entries at once
        paths = [i["path"] for i in raw]
        sizes = [i["size"] for i in raw]
        hashes = "".join([i["sha256"] for i in raw])
        if (
            len(hashes) == 64 * len(raw)
            and _HEXES.fullmatch(hashes)
            and all(type(p) is str and p for p in paths)
            and all(type(n) is int for n in sizes)
            and min(sizes, default=0) >= 0
        ):
            lower = hashes.lower()
            shas = [lower[at : at + 64] for at in range(0, len(lower), 64)]
            return tuple(map(_new_entry, zip(paths, sizes, shas, strict=True))), []
    except (TypeError, KeyError):
        pass
    return _checked_entries(raw)


_new_entry = partial(tuple.__new__, FileEntry)  # in C: a Python call per entry costs most


def _checked_entries(raw: list[Any]) -> tuple[tuple[FileEntry, ...], list[tuple[int, str]]]:
    files: list[FileEntry] = []
    bad: list[tuple[int, str]] = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            bad.append((index, "not an object"))
            continue
        path, size, sha256 = item.get("path"), item.get("size"), item.get("sha256")
        if not isinstance(path, str) or not path:
            bad.append((index, "no path"))
        elif not isinstance(size, int) or isinstance(size, bool) or size < 0:
            bad.append((index, "size: not a whole number of bytes"))
        elif not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
            bad.append((index, "sha256: not 64 hex digits"))
        else:
            files.append(FileEntry(path, size, sha256.lower()))
    return tuple(files), bad


def _key_mark(text: str, where: str, key: str) -> Mark:
    at = text.find(f'"{key}"')
    return _mark_at(text, where, max(at, 0))


def _mark_at(text: str, where: str, offset: int) -> Mark:
    line = text.count("\n", 0, offset) + 1
    return Mark(where, line, offset - (text.rfind("\n", 0, offset) + 1) + 1)


def _item_marks(text: str, where: str, key: str) -> list[Mark]:
    """Where each item of the top-level array `key` starts (only asked for when one is bad)."""
    decoder, marks = json.JSONDecoder(), []
    at = text.find("[", text.find(f'"{key}"'))
    index = at + 1
    while at >= 0:
        while index < len(text) and text[index] in " \t\r\n,":
            index += 1
        if index >= len(text) or text[index] == "]":
            break
        marks.append(_mark_at(text, where, index))
        try:
            _value, index = decoder.raw_decode(text, index)
        except json.JSONDecodeError:
            break
    return marks
