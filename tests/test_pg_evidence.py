"""Evidence in the team's PostgreSQL (a real server, started by the test on 127.0.0.1):
content-addressed blobs streamed in chunks both ways, stored once however many upload them,
append-only for every role, and verified on the way back so a changed chunk is caught."""

from __future__ import annotations

import hashlib
import os
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from irtool.journal import JournalError
from irtool.journal.pgevidence import (
    CHUNK,
    EvidenceMismatch,
    fetch,
    gather,
    has,
    install_evidence,
    share,
    upload,
)
from tests.support.postgres import Postgres, team_server

RESPONDER, SECRET = "responder", "s3cret-for-tests"
MEMORY_CEILING = 5 * 1024 * 1024  # a 20 MB file must never be held whole


@pytest.fixture(scope="module")
def server() -> Iterator[Postgres]:
    with team_server(RESPONDER, SECRET) as running:
        install_evidence(running.url(), writers=[RESPONDER])  # again: changes nothing
        yield running


@pytest.fixture
def db(server: Postgres) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(server.url(RESPONDER, SECRET), autocommit=True) as connection:
        yield connection


def random_file(path: Path, size: int) -> str:
    """`size` random bytes at `path`, written a block at a time; their SHA-256."""
    digest = hashlib.sha256()
    with path.open("wb") as out:
        left = size
        while left:
            block = os.urandom(min(left, CHUNK))
            out.write(block)
            digest.update(block)
            left -= len(block)
    return digest.hexdigest()


def peak_memory(action: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def stored(server: Postgres, sha256: str) -> tuple[int, int]:
    """How many blob rows and chunk rows the server holds for `sha256`."""
    with psycopg.connect(server.url(), autocommit=True) as admin:
        found = admin.execute(
            "SELECT (SELECT count(*) FROM irtool_evidence WHERE sha256 = %s),"
            " (SELECT count(*) FROM irtool_evidence_chunks WHERE sha256 = %s)",
            (sha256, sha256),
        ).fetchone()
    assert found is not None
    return int(found[0]), int(found[1])


def same_bytes(a: Path, b: Path) -> bool:
    with a.open("rb") as left, b.open("rb") as right:
        while True:
            x, y = left.read(CHUNK), right.read(CHUNK)
            if x != y:
                return False
            if not x:
                return True


def test_a_large_file_goes_up_and_comes_back_whole_in_flat_memory(
    db: psycopg.Connection[tuple[object, ...]], server: Postgres, tmp_path: Path
) -> None:
    size = 20 * CHUNK + 12345  # 21 chunks, the last one partial
    original = tmp_path / "collected"
    sha256 = random_file(original, size)
    assert not has(db, sha256)

    sent: list[str] = []
    assert peak_memory(lambda: sent.append(upload(db, original))) < MEMORY_CEILING
    assert sent == [sha256] and has(db, sha256)
    assert stored(server, sha256) == (1, 21)

    elsewhere = tmp_path / "other-machine"
    elsewhere.mkdir()
    got: list[Path] = []
    assert peak_memory(lambda: got.append(fetch(db, sha256, elsewhere))) < MEMORY_CEILING
    assert got == [elsewhere / sha256]
    assert got[0].stat().st_size == size and same_bytes(original, got[0])
    assert [p.name for p in elsewhere.iterdir()] == [sha256]  # no partial left behind


def test_an_empty_file_goes_up_and_comes_back(
    db: psycopg.Connection[tuple[object, ...]], server: Postgres, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    sha256 = upload(db, empty)
    assert sha256 == hashlib.sha256().hexdigest()
    assert stored(server, sha256) == (1, 0)
    elsewhere = tmp_path / "other-machine"
    elsewhere.mkdir()
    assert fetch(db, sha256, elsewhere).read_bytes() == b""


def test_the_same_content_is_stored_once_however_often_and_by_whom(
    db: psycopg.Connection[tuple[object, ...]], server: Postgres, tmp_path: Path
) -> None:
    twice = tmp_path / "twice"
    sha256 = random_file(twice, 2 * CHUNK + 1)
    assert upload(db, twice) == upload(db, twice) == sha256
    assert stored(server, sha256) == (1, 3)

    # Responders on several machines uploading the same new content at the same moment.
    together = tmp_path / "together"
    sha256 = random_file(together, 3 * CHUNK + 7)
    start = threading.Barrier(4)
    results: list[str] = []
    errors: list[BaseException] = []

    def responder() -> None:
        try:
            with psycopg.connect(server.url(RESPONDER, SECRET), autocommit=True) as own:
                start.wait(timeout=30)
                results.append(upload(own, together))
        except BaseException as error:  # reported below, not lost in the thread
            errors.append(error)

    threads = [threading.Thread(target=responder) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert results == [sha256] * 4
    assert stored(server, sha256) == (1, 4)


@pytest.mark.parametrize("table", ["irtool_evidence", "irtool_evidence_chunks"])
def test_no_role_may_change_or_remove_evidence(
    db: psycopg.Connection[tuple[object, ...]], server: Postgres, tmp_path: Path, table: str
) -> None:
    kept = tmp_path / "kept"
    sha256 = random_file(kept, 10)
    upload(db, kept)
    statements = (
        f"UPDATE {table} SET sha256 = sha256 WHERE sha256 = '{sha256}'",
        f"DELETE FROM {table} WHERE sha256 = '{sha256}'",
        f"TRUNCATE {table}",
    )
    for statement in statements:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            db.execute(statement)  # the responders' role: refused by grant
    with psycopg.connect(server.url(), autocommit=True) as owner:
        for statement in statements:
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                owner.execute(statement)  # past the grants: refused by trigger
    assert stored(server, sha256) == (1, 1)


def test_a_chunk_changed_on_the_server_is_caught_and_never_named_by_the_hash(
    db: psycopg.Connection[tuple[object, ...]], server: Postgres, tmp_path: Path
) -> None:
    original = tmp_path / "collected"
    sha256 = random_file(original, 2 * CHUNK + 100)
    upload(db, original)
    with psycopg.connect(server.url(), autocommit=True) as owner:
        owner.execute("ALTER TABLE irtool_evidence_chunks DISABLE TRIGGER ALL")
        try:
            owner.execute(
                "UPDATE irtool_evidence_chunks SET bytes = set_byte(bytes, 10, 255 - "
                "get_byte(bytes, 10)) WHERE sha256 = %s AND n = 1",
                (sha256,),
            )
        finally:
            owner.execute("ALTER TABLE irtool_evidence_chunks ENABLE TRIGGER ALL")

    elsewhere = tmp_path / "other-machine"
    elsewhere.mkdir()
    with pytest.raises(EvidenceMismatch, match=sha256) as raised:
        fetch(db, sha256, elsewhere)
    assert isinstance(raised.value, JournalError)
    assert list(elsewhere.iterdir()) == []  # neither the hash's name nor a partial file

    # A copy already here and intact is returned as it is: the server's is not read.
    here = tmp_path / "here"
    here.mkdir()
    original.rename(here / sha256)
    assert fetch(db, sha256, here) == here / sha256


def test_share_sends_only_evidence_the_server_lacks_and_gather_fetches_only_what_is_missing(
    db: psycopg.Connection[tuple[object, ...]], tmp_path: Path
) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    already = random_file(mine / "x", 50)
    (mine / "x").rename(mine / already)
    upload(db, mine / already)
    new = []
    for size in (1, CHUNK + 3):
        made = mine / "y"
        sha256 = random_file(made, size)
        made.rename(mine / sha256)
        new.append(sha256)
    random_file(mine / ".partial-0123", 40)  # a stream still being written: not evidence
    random_file(mine / "notes.txt", 40)
    partial_sha = hashlib.sha256((mine / ".partial-0123").read_bytes()).hexdigest()
    notes_sha = hashlib.sha256((mine / "notes.txt").read_bytes()).hexdigest()

    assert share(db, mine) == sorted(new)
    assert share(db, mine) == []
    assert all(has(db, sha256) for sha256 in new)
    assert not has(db, partial_sha) and not has(db, notes_sha)

    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / already).write_bytes((mine / already).read_bytes())
    assert gather(db, [already, *new, new[0]], theirs) == new
    assert gather(db, [already, *new], theirs) == []
    for sha256 in (already, *new):
        assert (theirs / sha256).read_bytes() == (mine / sha256).read_bytes()

    unknown = "0" * 64
    with pytest.raises(JournalError, match=f"{unknown} is not in the team's database"):
        fetch(db, unknown, theirs)
    with pytest.raises(JournalError, match="not in the team's database"):
        gather(db, [unknown], theirs)
    assert not (theirs / unknown).exists()
