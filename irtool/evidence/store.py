"""Content-addressed evidence files, streamed to disk so memory stays flat whatever the size.

A file is written under a temporary name, hashed as it goes, flushed to disk,
then renamed to its SHA-256: a file named by a hash is always complete, and
the custody event that names it is written only after it is durable.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

_SHA256 = re.compile(r"[0-9a-f]{64}")
_PARTIAL = ".partial-"


@dataclass(frozen=True)
class Item:
    sha256: str
    size: int

    def as_dict(self) -> dict[str, object]:
        return {"sha256": self.sha256, "size": self.size}


class EvidenceWriter:
    """One stream into the store. The file is only made once the first byte arrives: most
    commands write nothing to stderr, and an empty stream is one shared empty file."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._temp = directory / f"{_PARTIAL}{uuid.uuid4().hex}"
        self._file: BinaryIO | None = None
        self._digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        if self._file is None:
            self._file = self._temp.open("xb")
        self._file.write(data)
        self._digest.update(data)
        self.size += len(data)

    def commit(self) -> Item:
        sha256 = self._digest.hexdigest()
        final = self.directory / sha256
        if self._file is None:
            if not final.exists():
                self._file = self._temp.open("xb")
            else:
                return Item(sha256, 0)
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        if final.exists():
            self._temp.unlink()  # the same bytes are already kept
        else:
            os.replace(self._temp, final)
            final.chmod(0o444)
            _fsync_dir(self.directory)
        return Item(sha256, self.size)

    def discard(self) -> None:
        if self._file is not None and not self._file.closed:
            self._file.close()
        self._temp.unlink(missing_ok=True)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class EvidenceStore:
    def __init__(self, directory: Path, create: bool = True) -> None:
        self.directory = directory
        if create:
            directory.mkdir(parents=True, exist_ok=True)

    def writer(self) -> EvidenceWriter:
        return EvidenceWriter(self.directory)

    def path(self, sha256: str) -> Path:
        if not _SHA256.fullmatch(sha256):
            raise ValueError(f"'{sha256}' is not a SHA-256")
        return self.directory / sha256

    def check(self, sha256: str, size: int | None = None) -> str | None:
        """None if the file is there with that hash (and size); else what is wrong."""
        path = self.path(sha256)
        if not path.is_file():
            return f"evidence {sha256} is missing"
        digest, length = hashlib.sha256(), 0
        with path.open("rb") as source:
            while block := source.read(1 << 20):
                digest.update(block)
                length += len(block)
        if digest.hexdigest() != sha256:
            return f"evidence {sha256} was altered: its content now hashes to {digest.hexdigest()}"
        if size is not None and length != size:
            return f"evidence {sha256} has {length} bytes, the journal recorded {size}"
        return None

    def leftovers(self) -> Iterator[Path]:
        """Partial files from a run that was killed mid-write: never named by any event."""
        yield from self.directory.glob(f"{_PARTIAL}*")
