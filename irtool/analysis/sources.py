"""Where web logs come from: files, directories (recursively), gzip and zip archives.

An *evidence file* is a file on disk: what custody names and hashes. A *source* is one log
inside it: the file itself, the decompressed content of a ``.gz``, or one member of a
``.zip`` (members of nested archives too). Every source is read as a stream: a member is
never extracted to disk and never held whole.

Each evidence file is hashed (SHA-256) before its logs are parsed, so that every row read from
it carries the hash from the first batch on, and so that a caller can skip evidence it has
already loaded (``skip``); the bytes are hashed again as they are parsed (for a plain file
or a ``.gz``), and a file that changed in between is reported, never silently mixed.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

#: How a W3C log starts (after an optional UTF-8 BOM): a member or a file found in a
#: directory that starts so is read whatever its name.
LOG_STARTS = (b"#Software", b"#Version", b"#Fields")
#: Names read inside directories and archives (lowercase suffixes).
LOG_SUFFIXES = (".log", ".txt")
GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
BOM = b"\xef\xbb\xbf"
#: Nested archives (a .zip in a .zip, a .gz in a .zip) are opened this deep, no deeper.
MAX_DEPTH = 4
_CHUNK = 1 << 20

Warn = Callable[[str, int, str], None]
"""A warning sink: (source, line, message); line 0 is the source as a whole."""

#: What a broken archive or a failing read raises: turned into a located warning.
READ_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    EOFError,
    zlib.error,
    zipfile.BadZipFile,
    NotImplementedError,  # a zip member compressed with a method Python lacks
    RuntimeError,  # an encrypted zip member
)


@dataclass(frozen=True)
class Evidence:
    """One evidence file: its path as given (or found in a directory), SHA-256 and size."""

    path: Path
    sha256: str
    size: int


def expand(paths: Iterable[str | os.PathLike[str]]) -> list[tuple[Path, bool]]:
    """The evidence files under ``paths``: (path, explicit). An explicit path (named by the
    caller) is read whatever its name; a file found in a directory only when its name or its
    first bytes say it is a log or an archive (``is_candidate``). Directories are walked
    recursively in name order, without following symbolic links to directories.

    Raises OSError (with the path in its message) for a path that does not exist, before
    anything is read."""
    out: list[tuple[Path, bool]] = []
    for raw in paths:
        path = Path(raw)
        try:
            st = path.stat()
        except OSError as e:
            raise OSError(e.errno, f"cannot read {path}: {e.strerror or e}") from e
        if stat.S_ISDIR(st.st_mode):
            out.extend((p, False) for p in _walk(path))
        else:
            out.append((path, True))
    return out


def _walk(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root, onerror=None, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if p.is_file():
                yield p


def is_candidate(name: str, head: bytes) -> bool:
    """Whether a file found in a directory or an archive looks like a web log (or an archive
    that may hold some): by its name, or by its first bytes."""
    lower = name.lower()
    if lower.endswith(LOG_SUFFIXES) or lower.endswith((".gz", ".zip")):
        return True
    return _starts_like_log(head) or head.startswith(GZIP_MAGIC) or head.startswith(ZIP_MAGICS)


def _starts_like_log(head: bytes) -> bool:
    if head.startswith(BOM):
        head = head[len(BOM) :]
    return head.startswith(LOG_STARTS)


def hash_file(f: BinaryIO) -> tuple[str, int]:
    """SHA-256 and size of an open file, read from its start in chunks; leaves it at 0."""
    f.seek(0)
    digest = hashlib.file_digest(f, "sha256")  # type: ignore[arg-type]
    size = f.tell()
    f.seek(0)
    return digest.hexdigest(), size


class HashingReader(io.RawIOBase):
    """A read-only view of the first ``limit`` bytes of a file that hashes what is read.

    ``finish()`` reads whatever the consumer left (a gzip trailer, padding) so that the
    hash covers the same bytes as the up-front hash."""

    def __init__(self, f: BinaryIO, limit: int) -> None:
        super().__init__()
        self._f = f
        self._left = limit
        self._hash = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self._left)
        if n <= 0:
            return 0
        data = self._f.read(n)
        k = len(data)
        buffer[:k] = data
        self._hash.update(data)
        self._left -= k
        return k

    def read(self, size: int = -1) -> bytes:
        n = self._left if size is None or size < 0 else min(size, self._left)
        if n <= 0:
            return b""
        data = self._f.read(n)
        self._hash.update(data)
        self._left -= len(data)
        return data

    def finish(self) -> str:
        while self._left > 0:
            data = self.read(_CHUNK)
            if not data:
                break
        return self._hash.hexdigest()


Opened = Iterator[tuple[str, BinaryIO]]
"""Sources of one evidence file: (display name, binary stream), each read to its end (or
abandoned) before the next is asked for."""


def sources_of(
    f: BinaryIO, evidence: Evidence, *, explicit: bool, warn: Warn
) -> Iterator[tuple[str, BinaryIO]]:
    """The sources (logs) inside one open evidence file, streamed.

    A plain file is its own source; a ``.gz`` (by its magic bytes) is decompressed as it is
    read; a ``.zip`` yields each member that looks like a log (see ``is_candidate``),
    decompressing ``.gz`` members and opening nested ``.zip`` members in turn. Whatever
    cannot be read (a broken archive, an encrypted member) is a warning, never an error.
    After the last source, the bytes read are checked against the evidence's hash."""
    name = str(evidence.path)
    head = f.read(8)
    f.seek(0)
    if head.startswith(ZIP_MAGICS):
        # A zip is read at random (its directory is at its end): the up-front hash is what
        # custody gets; it cannot be re-checked while streaming.
        yield from _zip_sources(f, name, 1, warn)
        return
    reader = HashingReader(f, evidence.size)
    stream: BinaryIO = io.BufferedReader(reader, _CHUNK)
    if head.startswith(GZIP_MAGIC):
        yield from _gzip_source(stream, name, name, explicit=explicit, warn=warn)
    else:
        yield name, stream
    try:
        again = reader.finish()
    except OSError as e:
        warn(name, 0, f"could not read to the end to check its hash: {e}")
        return
    if again != evidence.sha256:
        warn(
            name,
            0,
            f"changed while it was read: SHA-256 {evidence.sha256} before, {again} as read; "
            "its rows may not match the evidence",
        )


def _gzip_source(
    raw: BinaryIO, name: str, inner: str, *, explicit: bool, warn: Warn
) -> Iterator[tuple[str, BinaryIO]]:
    gz = gzip.GzipFile(fileobj=raw, mode="rb")
    stem = inner[:-3] if inner.lower().endswith(".gz") else inner
    if not explicit:
        try:
            head = gz.peek(16)[:16]
        except READ_ERRORS as e:
            warn(name, 0, f"not a readable gzip archive: {e}")
            return
        if not (stem.lower().endswith(LOG_SUFFIXES) or _starts_like_log(head)):
            return
    yield name, gz  # type: ignore[misc]


def _zip_sources(f: BinaryIO, name: str, depth: int, warn: Warn) -> Iterator[tuple[str, BinaryIO]]:
    try:
        zf = zipfile.ZipFile(f)
    except READ_ERRORS as e:
        warn(name, 0, f"not a readable zip archive: {e}")
        return
    with zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            member = f"{name}!{info.filename}"
            try:
                stream = zf.open(info)
                head = stream.peek(16)[:16] if hasattr(stream, "peek") else b""
            except READ_ERRORS as e:
                warn(member, 0, f"cannot read this member: {e}")
                continue
            with stream:
                if not is_candidate(info.filename, head):
                    continue
                if head.startswith(ZIP_MAGICS):
                    if depth >= MAX_DEPTH:
                        warn(member, 0, f"archive nested deeper than {MAX_DEPTH}: not read")
                        continue
                    yield from _zip_sources(stream, member, depth + 1, warn)  # type: ignore[arg-type]
                elif head.startswith(GZIP_MAGIC):
                    yield from _gzip_source(
                        stream,  # type: ignore[arg-type]
                        member,
                        info.filename,
                        explicit=False,
                        warn=warn,
                    )
                else:
                    yield member, stream  # type: ignore[misc]
