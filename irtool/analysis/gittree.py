"""A git repository's tree at a commit, read blob by blob as `git cat-file --batch` streams
it: nothing is checked out, no hook or filter runs, and the revision is checked before use
(`--end-of-options`, no shell), so a name like `--output=x` is never an option to git.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

from irtool.analysis.artifacts import CHUNK, FileEntry
from irtool.model.problems import InvalidFile, Mark, Problem
from irtool.model.untrusted import visible

_HEX40 = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")


def git_commit(repo: Path, commit: str) -> str:
    """The full id of `commit` in `repo`, or InvalidFile saying why not."""
    where = Mark(str(repo), 1, 1)
    if not commit or commit.startswith("-") or any(c.isspace() or ord(c) < 32 for c in commit):
        raise InvalidFile([Problem(where, f"'{visible(commit)}' is not a revision")])
    done = _git(
        repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{commit}^{{commit}}"
    )
    full = done.stdout.decode(errors="replace").strip()
    if done.returncode != 0 or not _HEX40.fullmatch(full):
        why = done.stderr.decode(errors="replace").strip().splitlines()
        detail = f": {visible(why[-1])}" if why else ""
        raise InvalidFile([Problem(where, f"'{visible(commit)}' is not a commit here{detail}")])
    return full


def read_git(repo: Path, commit: str, warnings: list[Problem]) -> Iterator[FileEntry]:
    """Every blob of the tree at `commit` (a full id, from `git_commit`), hashed as
    `git cat-file --batch` streams it: nothing is checked out."""
    listed = _git(repo, "ls-tree", "-r", "-z", "-l", "--full-tree", "--end-of-options", commit)
    if listed.returncode != 0:
        why = visible(listed.stderr.decode(errors="replace").strip())
        raise InvalidFile([Problem(Mark(str(repo), 1, 1), f"git ls-tree failed: {why}")])
    blobs: list[tuple[str, str]] = []
    for record in listed.stdout.split(b"\0"):
        if not record:
            continue
        meta, _, raw_path = record.partition(b"\t")
        _mode, kind, oid, _size = meta.split()
        path = raw_path.decode("utf-8", errors="surrogateescape")
        if kind != b"blob":
            warnings.append(Problem(Mark(f"{repo}:{path}", 1, 1), f"a {kind.decode()}, not read"))
            continue
        blobs.append((path, oid.decode()))
    yield from _cat_blobs(repo, blobs)


def _cat_blobs(repo: Path, blobs: list[tuple[str, str]]) -> Iterator[FileEntry]:
    process = subprocess.Popen(
        [_git_program(repo), "-C", str(repo), "cat-file", "--batch"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=_git_env(),
    )
    assert process.stdin is not None and process.stdout is not None
    stdin, stdout = process.stdin, process.stdout

    def feed() -> None:  # a thread: writing every id first could fill both pipes
        try:
            for _path, oid in blobs:
                stdin.write(oid.encode() + b"\n")
            stdin.close()
        except BrokenPipeError:
            pass

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    try:
        for path, oid in blobs:
            header = stdout.readline().split()
            if len(header) != 3 or header[0].decode() != oid:
                raise InvalidFile([Problem(Mark(f"{repo}:{path}", 1, 1), "git cat-file failed")])
            left, digest = int(header[2]), hashlib.sha256()
            size = left
            while left:
                chunk = stdout.read(min(CHUNK, left))
                if not chunk:
                    raise InvalidFile([Problem(Mark(f"{repo}:{path}", 1, 1), "blob cut short")])
                digest.update(chunk)
                left -= len(chunk)
            stdout.read(1)  # the newline after each blob
            yield FileEntry(path, size, digest.hexdigest())
    finally:
        process.kill()
        process.wait()
        writer.join()


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            [_git_program(repo), "-C", str(repo), *args],
            capture_output=True,
            env=_git_env(),
            check=False,
        )
    except OSError as exc:
        raise InvalidFile([Problem(Mark(str(repo), 1, 1), f"git could not run: {exc}")]) from exc


def _git_program(repo: Path) -> str:
    found = shutil.which("git")
    if found is None:
        raise InvalidFile([Problem(Mark(str(repo), 1, 1), "git is not installed here")])
    return found


def _git_env() -> dict[str, str]:
    # Never a prompt for credentials, never a pager; the rest is the responder's own git.
    return {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_PAGER": "cat", "LC_ALL": "C"}
