"""Evidence in PostgreSQL: what one responder collected, any other can open, verify and export.

The local store names a file by its SHA-256 (evidence.store); the team's database keeps the
same bytes under the same name, in chunks of `CHUNK` bytes, so neither side ever holds a
whole file in memory:

- a blob's row in `irtool_evidence` is inserted in the transaction that inserts its chunks,
  after them: a row means every chunk is there;
- the content is its own name, so two responders uploading the same file at once insert the
  same rows, and the second's are skipped (ON CONFLICT DO NOTHING), never an error;
- like the journal, both tables are append-only (grants, and a trigger even for their owner);
- what is fetched is hashed as it is written and named by its hash only once it matches the
  row: a chunk changed on the server is caught, and no file is left under the hash.

The functions take a psycopg connection in autocommit mode (as PgJournal opens) and use it
from one thread at a time.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from irtool.journal.database import first_line
from irtool.journal.spool import fsync_dir
from irtool.journal.store import JournalError

CHUNK = 1 << 20  # bytes per row: one chunk in memory at a time, each side

# The journal may not import irtool.evidence (independent layers): these mirror its naming.
_SHA256 = re.compile(r"[0-9a-f]{64}")
_PARTIAL = ".partial-"
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_TABLES = ("irtool_evidence", "irtool_evidence_chunks")

# A function of its own (the journal's message), so the evidence tables install in any order.
EVIDENCE_SCHEMA = """
CREATE TABLE IF NOT EXISTS irtool_evidence (
    sha256    TEXT PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size      BIGINT NOT NULL CHECK (size >= 0),
    chunks    INT NOT NULL CHECK (chunks >= 0),
    stored_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS irtool_evidence_chunks (
    sha256 TEXT NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    n      INT NOT NULL CHECK (n >= 0),
    bytes  BYTEA NOT NULL,
    PRIMARY KEY (sha256, n)
);
CREATE OR REPLACE FUNCTION irtool_evidence_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the journal is append-only: record a correction instead';
END $$;
DROP TRIGGER IF EXISTS irtool_evidence_never_change ON irtool_evidence;
CREATE TRIGGER irtool_evidence_never_change BEFORE UPDATE OR DELETE ON irtool_evidence
    FOR EACH ROW EXECUTE FUNCTION irtool_evidence_append_only();
DROP TRIGGER IF EXISTS irtool_evidence_never_emptied ON irtool_evidence;
CREATE TRIGGER irtool_evidence_never_emptied BEFORE TRUNCATE ON irtool_evidence
    FOR EACH STATEMENT EXECUTE FUNCTION irtool_evidence_append_only();
DROP TRIGGER IF EXISTS irtool_evidence_chunks_never_change ON irtool_evidence_chunks;
CREATE TRIGGER irtool_evidence_chunks_never_change
    BEFORE UPDATE OR DELETE ON irtool_evidence_chunks
    FOR EACH ROW EXECUTE FUNCTION irtool_evidence_append_only();
DROP TRIGGER IF EXISTS irtool_evidence_chunks_never_emptied ON irtool_evidence_chunks;
CREATE TRIGGER irtool_evidence_chunks_never_emptied BEFORE TRUNCATE ON irtool_evidence_chunks
    FOR EACH STATEMENT EXECUTE FUNCTION irtool_evidence_append_only();
REVOKE ALL ON irtool_evidence FROM PUBLIC;
REVOKE ALL ON irtool_evidence_chunks FROM PUBLIC;
"""


class EvidenceMismatch(JournalError):
    """The bytes do not hash to the name they are kept under: changed since they were stored."""


def install_evidence(
    db_or_admin_url: psycopg.Connection[Any] | str, writers: Collection[str] = ()
) -> None:
    """Create the evidence tables and their triggers, and let each role of `writers` INSERT
    and SELECT them, and nothing else. Run by the tables' owner; running it again changes
    nothing."""
    if isinstance(db_or_admin_url, str):
        with psycopg.connect(db_or_admin_url, autocommit=True) as db:
            install_evidence(db, writers)
        return
    db = db_or_admin_url
    with db.transaction():
        db.execute(EVIDENCE_SCHEMA.encode())  # a constant
        for table in _TABLES:
            for role in writers:
                names = (sql.Identifier(table), sql.Identifier(role))
                db.execute(sql.SQL("REVOKE ALL ON {} FROM {}").format(*names))
                db.execute(sql.SQL("GRANT SELECT, INSERT ON {} TO {}").format(*names))


@contextmanager
def _talking(what: str) -> Iterator[None]:
    """A database error, in a responder's words (as PgJournal says them)."""
    try:
        yield
    except psycopg.Error as error:
        raise JournalError(f"{what}: {first_line(error)}") from None


def has(db: psycopg.Connection[Any], sha256: str) -> bool:
    """The blob is complete on the server (its row is only committed with all its chunks)."""
    with _talking("cannot read the team's evidence"):
        found = db.execute("SELECT 1 FROM irtool_evidence WHERE sha256 = %s", (sha256,))
        return found.fetchone() is not None


def upload(db: psycopg.Connection[Any], path: Path) -> str:
    """Store the file's bytes under their SHA-256 (returned), unless they are there already."""
    return _upload(db, path, None)


def _upload(db: psycopg.Connection[Any], path: Path, expected: str | None) -> str:
    # Two reads: the name must be known before the first chunk is sent.
    sha256, size = _hash_file(path)
    if expected is not None and sha256 != expected:
        raise EvidenceMismatch(
            f"evidence {expected} was altered: its content now hashes to {sha256}; not shared"
        )
    if has(db, sha256):
        return sha256
    with _talking("the team's database did not take the evidence"), db.transaction():
        digest, n = hashlib.sha256(), 0
        with path.open("rb") as source:
            while block := source.read(CHUNK):
                digest.update(block)
                db.execute(
                    "INSERT INTO irtool_evidence_chunks (sha256, n, bytes) VALUES (%s, %s, %b) "
                    "ON CONFLICT DO NOTHING",
                    (sha256, n, block),
                )
                n += 1
        # The file changed between the two reads: roll back rather than store a lie.
        if digest.hexdigest() != sha256:
            raise EvidenceMismatch(f"evidence {sha256} changed while it was being uploaded")
        db.execute(
            "INSERT INTO irtool_evidence (sha256, size, chunks) VALUES (%s, %s, %s) "
            "ON CONFLICT DO NOTHING",
            (sha256, size, n),
        )
    return sha256


def fetch(db: psycopg.Connection[Any], sha256: str, directory: Path) -> Path:
    """`directory/<sha256>`, fetched from the team's database unless already there intact."""
    final = directory / _named(sha256)
    if final.is_file() and _hash_file(final)[0] == sha256:
        return final
    with _talking("cannot read the team's evidence"):
        row = db.execute(
            "SELECT size, chunks FROM irtool_evidence WHERE sha256 = %s", (sha256,)
        ).fetchone()
    if row is None:
        raise JournalError(f"evidence {sha256} is not in the team's database")
    size, chunks = int(row[0]), int(row[1])
    partial = directory / f"{_PARTIAL}{uuid.uuid4().hex}"
    # Read-only from the start, as the local store makes its files.
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC, 0o444)
    try:
        try:
            digest, length = _fetch_chunks(db, sha256, chunks, fd)
            os.fsync(fd)
        finally:
            os.close(fd)
        if digest != sha256 or length != size:
            raise EvidenceMismatch(
                f"evidence {sha256} was altered in the team's database: its {length} bytes "
                f"hash to {digest} (recorded: {size} bytes)"
            )
        os.replace(partial, final)  # an altered local copy is replaced by the true one
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    fsync_dir(directory)
    return final


def _fetch_chunks(
    db: psycopg.Connection[Any], sha256: str, chunks: int, fd: int
) -> tuple[str, int]:
    """Write the chunks in order to `fd`, one query each (one chunk in memory); their hash
    and length."""
    digest, length = hashlib.sha256(), 0
    for n in range(chunks):
        with _talking("cannot read the team's evidence"):
            found = db.execute(
                "SELECT bytes FROM irtool_evidence_chunks WHERE sha256 = %s AND n = %s",
                (sha256, n),
                binary=True,  # the bytes as they are, not hex text twice their size
            ).fetchone()
        if found is None:
            raise EvidenceMismatch(f"evidence {sha256}: chunk {n} is missing from the database")
        view = memoryview(found[0])
        digest.update(view)
        length += len(view)
        while view:
            view = view[os.write(fd, view) :]
    return digest.hexdigest(), length


def share(db: psycopg.Connection[Any], directory: Path) -> list[str]:
    """Upload every evidence file of `directory` the server lacks; the hashes uploaded.
    Partial files and anything not named by a hash are not evidence and stay local; a file
    altered since it was named is not given, and the others still are."""
    names = sorted(p.name for p in directory.iterdir() if _SHA256.fullmatch(p.name))
    with _talking("cannot read the team's evidence"):
        rows = db.execute(
            "SELECT sha256 FROM irtool_evidence WHERE sha256 = ANY(%s)", (names,)
        ).fetchall()
    stored = {row[0] for row in rows}
    given = []
    for name in names:
        if name in stored or not (directory / name).is_file():
            continue
        try:
            _upload(db, directory / name, name)
        except EvidenceMismatch:
            continue  # altered here: never given under a name it no longer has (verify says)
        given.append(name)
    return given


def gather(db: psycopg.Connection[Any], wanted: Iterable[str], directory: Path) -> list[str]:
    """Fetch each of `wanted` that `directory` lacks; the hashes fetched."""
    fetched = []
    for sha256 in dict.fromkeys(wanted):  # once each, in order
        if not (directory / _named(sha256)).exists():
            fetch(db, sha256, directory)
            fetched.append(sha256)
    return fetched


def _named(sha256: str) -> str:
    """A name that is a hash, and so no path elsewhere."""
    if not _SHA256.fullmatch(sha256):
        raise ValueError(f"'{sha256}' is not a SHA-256")
    return sha256


def _hash_file(path: Path) -> tuple[str, int]:
    digest, length = hashlib.sha256(), 0
    with path.open("rb") as source:
        while block := source.read(CHUNK):
            digest.update(block)
            length += len(block)
    return digest.hexdigest(), length
