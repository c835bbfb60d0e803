"""Deployment artifacts read file by file: a directory, a zip, a WebDeploy package (a git tree:
`irtool.analysis.gittree`).

Each reader yields `FileEntry(path, size, sha256)` with `path` relative to the artifact's root,
`/`-separated, as the artifact spells it. Nothing is extracted to disk: a zip's members are
hashed as they stream by. A zip is untrusted input (it may come from
anyone's build share), so it is refused, with every reason found, when a member would escape
its root, is a link, is encrypted, or inflates past what it declares or past a cap: the counts
are of the bytes actually inflated, never of what a header claims.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, NamedTuple
from xml.parsers import expat

from irtool.model.problems import InvalidFile, Mark, Problem, Severity
from irtool.model.untrusted import visible

CHUNK = 1 << 20
WARNING = Severity.WARNING
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, ..., name length, extra length
_DRIVE = re.compile(r"^[A-Za-z]:")
_HEX40 = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")


class FileEntry(NamedTuple):
    """One file of an artifact or a web root. `sha256` is lower-case hex, or `error: ...`
    when the file could not be read (a locked file on a host)."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class ZipLimits:
    """What a zip may hold before it is refused as a bomb. Counted while inflating."""

    total: int = 4 << 30  # uncompressed bytes of all members together
    ratio: int = 1000  # a member inflating more than this per compressed byte...
    ratio_floor: int = 8 << 20  # ...once past this many bytes (small files compress well)
    depth: int = 64  # folders deep


DEFAULT_LIMITS = ZipLimits()


# -- a directory ------------------------------------------------------------------------------


def hash_file(path: Path) -> tuple[int, str]:
    """(size, sha256) of a file, read in chunks; `error: why` as the hash if it can't be."""
    digest, size = hashlib.sha256(), 0
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
    except OSError as exc:
        return size, f"error: {exc.strerror or exc}"
    return size, digest.hexdigest()


def read_directory(
    root: Path, warnings: list[Problem], hashed: Callable[[str], bool] | None = None
) -> Iterator[FileEntry]:
    """Every regular file under `root`, in a stable order. Links are not followed (a link
    could point anywhere on the machine): each is a warning instead; a folder that cannot be
    read is an error in `warnings` (what it holds is neither listed nor compared). A file
    `hashed` says no to (its relative path) has its size only, and "" as its hash."""

    def unreadable(error: OSError) -> None:  # os.walk would skip the folder without a word
        warnings.append(
            Problem(Mark(str(error.filename), 1, 1), f"not read: {error.strerror or error}")
        )

    for directory, subdirs, names in os.walk(root, onerror=unreadable):
        subdirs.sort()
        base = Path(directory)
        for name in sorted(names):
            path = base / name
            relative = path.relative_to(root).as_posix()
            if path.is_symlink():
                warnings.append(Problem(Mark(str(path), 1, 1), "a link, not followed", WARNING))
                continue
            try:
                regular = stat.S_ISREG(path.lstat().st_mode)
            except OSError:
                regular = True  # gone since it was listed: hash_file says so
            if not regular:  # a FIFO or a device: opening it would wait forever
                warnings.append(
                    Problem(Mark(str(path), 1, 1), "not a regular file, not read", WARNING)
                )
                continue
            if hashed is None or hashed(relative):
                size, sha256 = hash_file(path)
            else:
                size, sha256 = _size(path), ""
            yield FileEntry(relative, size, sha256)
        for name in subdirs:
            if (base / name).is_symlink():
                warnings.append(
                    Problem(Mark(str(base / name), 1, 1), "a link, not followed", WARNING)
                )


def _size(path: Path) -> int:
    try:
        return path.lstat().st_size
    except OSError:  # gone since it was listed: an upload folder moves
        return 0


# -- a zip ------------------------------------------------------------------------------------


def open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InvalidFile([Problem(Mark(str(path), 1, 1), f"not a readable zip: {exc}")]) from exc


def safe_name(info: zipfile.ZipInfo, limits: ZipLimits) -> tuple[str | None, str | None]:
    """(the member's path, None) or (None, why it is refused)."""
    name = info.filename.replace("\\", "/")  # old Windows tools write backslashes
    if "\x00" in name:
        return None, "a NUL in its name"
    if name.startswith("/") or _DRIVE.match(name):
        return None, "an absolute path"
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        return None, "a path that leaves the archive's root (..)"
    if len(parts) > limits.depth:
        return None, f"nested deeper than {limits.depth} folders"
    if (info.external_attr >> 16) & 0o170000 == 0o120000:
        return None, "a symbolic link"
    if info.flag_bits & 0x1:
        return None, "encrypted"
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        return None, f"compressed with method {info.compress_type}, which is not read"
    return "/".join(parts), None


def zip_members(
    archive: zipfile.ZipFile, where: str, limits: ZipLimits
) -> list[tuple[str, zipfile.ZipInfo]]:
    """(path, member) of every file member, or InvalidFile naming every refused member."""
    problems: list[Problem] = []
    members: list[tuple[str, zipfile.ZipInfo]] = []
    seen: dict[str, str] = {}
    declared = 0

    def refuse(name: str, why: str) -> None:
        problems.append(Problem(Mark(where, 1, 1), f"member '{visible(name)}': {why}"))

    for info in archive.infolist():
        name, why = safe_name(info, limits)
        if why is not None or name is None:
            refuse(info.filename, why or "no name")
            continue
        if info.is_dir() or not name:
            continue
        if (folded := name.lower()) in seen:
            refuse(info.filename, f"the same file as '{visible(seen[folded])}' on Windows")
            continue
        seen[folded] = info.filename
        declared += info.file_size
        members.append((name, info))
    if declared > limits.total:
        problems.append(
            Problem(
                Mark(where, 1, 1),
                f"declares {declared} bytes uncompressed, more than the cap of {limits.total} "
                "(a zip bomb?)",
            )
        )
    if problems:
        raise InvalidFile(problems)
    return members


class _Inflating:
    """Counts what has been inflated across the members of one zip, against the limits."""

    def __init__(self, where: str, limits: ZipLimits) -> None:
        self.where, self.limits, self.total = where, limits, 0

    def refuse(self, name: str, why: str) -> InvalidFile:
        return InvalidFile([Problem(Mark(self.where, 1, 1), f"member '{visible(name)}': {why}")])

    def member(self, handle: IO[bytes], info: zipfile.ZipInfo) -> tuple[int, str]:
        """(size, sha256) of a member's content, read from its raw bytes."""
        handle.seek(info.header_offset)
        header = handle.read(_LOCAL_HEADER.size)
        if len(header) < _LOCAL_HEADER.size:
            raise self.refuse(info.filename, "its local header is cut short")
        signature, name_length, extra_length = _LOCAL_HEADER.unpack(header)
        if signature != b"PK\x03\x04":
            raise self.refuse(info.filename, "no local header where the directory says")
        handle.seek(name_length + extra_length, os.SEEK_CUR)
        try:
            return self._hashed(handle, info)
        except zlib.error as exc:
            raise self.refuse(info.filename, f"not a valid deflate stream: {exc}") from exc

    def _hashed(self, handle: IO[bytes], info: zipfile.ZipInfo) -> tuple[int, str]:
        digest, crc, size, raw = hashlib.sha256(), 0, 0, 0
        for chunk, consumed in _inflated(handle, info):
            size += len(chunk)
            raw += consumed
            self.total += len(chunk)
            if size > info.file_size:
                raise self.refuse(
                    info.filename, f"inflates past its declared size of {info.file_size} bytes"
                )
            if self.total > self.limits.total:
                raise self.refuse(
                    info.filename,
                    f"the archive inflates past the cap of {self.limits.total} bytes (a zip bomb?)",
                )
            if size > self.limits.ratio_floor and size > self.limits.ratio * max(raw, 1):
                raise self.refuse(
                    info.filename,
                    f"inflates more than {self.limits.ratio} times its compressed size "
                    "(a zip bomb?)",
                )
            digest.update(chunk)
            crc = zlib.crc32(chunk, crc)
        if size != info.file_size:
            raise self.refuse(info.filename, f"holds {size} bytes, declares {info.file_size}")
        if crc != info.CRC:
            raise self.refuse(info.filename, "its content does not match its CRC-32")
        return size, digest.hexdigest()


def _inflated(handle: IO[bytes], info: zipfile.ZipInfo) -> Iterator[tuple[bytes, int]]:
    """(inflated bytes, compressed bytes consumed for them), never more than CHUNK at once."""
    left = info.compress_size
    inflater = zlib.decompressobj(-15) if info.compress_type == zipfile.ZIP_DEFLATED else None
    while left > 0:
        raw = handle.read(min(CHUNK, left))
        if not raw:
            return  # cut short: the size check says so
        left -= len(raw)
        if inflater is None:
            yield raw, len(raw)
            continue
        data, consumed = raw, len(raw)
        while data:
            out = inflater.decompress(data, CHUNK)
            data = inflater.unconsumed_tail
            yield out, consumed
            consumed = 0
            if inflater.eof:
                return
    if inflater is not None:
        yield inflater.flush(), 0


def read_zip(
    path: Path, limits: ZipLimits = DEFAULT_LIMITS, *, prefix: str = ""
) -> Iterator[FileEntry]:
    """Every file member under `prefix` (a folder in the zip, "" for all), relative to it."""
    where = str(path)
    with open_zip(path) as archive:
        members = zip_members(archive, where, limits)
        inflating = _Inflating(where, limits)
        with path.open("rb") as handle:
            for name, info in members:
                if prefix and not name.lower().startswith(prefix.lower() + "/"):
                    continue
                size, sha256 = inflating.member(handle, info)
                yield FileEntry(name[len(prefix) + 1 :] if prefix else name, size, sha256)


# -- a WebDeploy package ----------------------------------------------------------------------


def webdeploy_root(path: Path, limits: ZipLimits = DEFAULT_LIMITS) -> str | None:
    """The application's folder in a WebDeploy package (`Content/C_C/...`), from archive.xml's
    iisApp or contentPath provider path, else the common folder of everything under Content/;
    None when the zip is not a WebDeploy package."""
    with open_zip(path) as archive:
        names = {i.filename.replace("\\", "/"): i for i in archive.infolist()}
        manifest = next((n for n in names if n.lower() == "archive.xml"), None)
        if manifest is None:
            return None
        info = names[manifest]
        if info.file_size > 64 << 20 or info.flag_bits & 0x1:
            raise InvalidFile([Problem(Mark(f"{path}:archive.xml", 1, 1), "too big to read")])
        try:
            described = archive.read(info)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as bad:
            where = Mark(f"{path}:archive.xml", 1, 1)
            raise InvalidFile([Problem(where, f"cannot be read: {bad}")]) from None
        paths = _provider_paths(described, f"{path}:archive.xml")
        folders = {n.rsplit("/", 1)[0].lower() for n in names if "/" in n}
        for provider_path in paths:
            candidate = _package_path(provider_path)
            if candidate and candidate.lower() in folders:
                return _spelled(candidate, names)
        content = [n for n in names if n.lower().startswith("content/") and not n.endswith("/")]
        if not content:
            raise InvalidFile(
                [Problem(Mark(str(path), 1, 1), "a WebDeploy package without Content/")]
            )
        common = os.path.commonpath([PurePosixPath(n).parent.as_posix() for n in content])
        return common


def _provider_paths(data: bytes, where: str) -> list[str]:
    """The `path` of every iisApp, then every contentPath element of archive.xml. Parsed
    with expat and no entity declarations at all: a package is untrusted input."""
    found: dict[str, list[str]] = {"iisApp": [], "contentPath": []}
    parser = expat.ParserCreate()

    def start(tag: str, attrs: dict[str, str]) -> None:
        if tag in found and attrs.get("path"):
            found[tag].append(attrs["path"])

    def refuse(*_: object) -> None:
        raise ValueError("declares entities: refused")

    parser.StartElementHandler = start
    parser.EntityDeclHandler = refuse
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    try:
        parser.Parse(data, True)
    except expat.ExpatError as bad:
        why = expat.errors.messages.get(bad.code, str(bad)) if bad.code else str(bad)
        raise InvalidFile([Problem(Mark(where, bad.lineno, bad.offset + 1), why)]) from bad
    except ValueError as bad:
        line, col = parser.CurrentLineNumber, parser.CurrentColumnNumber + 1
        raise InvalidFile([Problem(Mark(where, line, col), str(bad))]) from bad
    return found["iisApp"] + found["contentPath"]


def _package_path(provider_path: str) -> str | None:
    """Where WebDeploy keeps a provider path's content: `C:\\a\\b` -> `Content/C_C/a/b`."""
    text = provider_path.replace("\\", "/").rstrip("/")
    match = _DRIVE.match(text)
    if match is None:
        return None
    return f"Content/{text[0]}_C{text[2:]}" if text[2:] else f"Content/{text[0]}_C"


def _spelled(folder: str, names: dict[str, zipfile.ZipInfo]) -> str:
    """`folder` as the zip spells it (archive.xml may differ in case)."""
    lowered = folder.lower() + "/"
    for name in names:
        if name.lower().startswith(lowered):
            return name[: len(folder)]
    return folder
