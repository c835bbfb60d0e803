"""The responder's own machine: gateway and tooling steps, run as child processes."""

from __future__ import annotations

import contextlib
import hashlib
import os
import select
import shutil
import signal
import stat
import subprocess
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

from irtool.model.inventory import ResolvedHost
from irtool.model.steps import Shell
from irtool.remote.base import (
    CHUNK,
    LIST_CAP,
    PSEUDO_FILE,
    Connection,
    Deadline,
    Failure,
    Fetched,
    FetchLimits,
    HostFailure,
    ListedFile,
    Listing,
    OnData,
    OnOutput,
    Stream,
    glob_regex,
    glob_walk,
    make_listing,
    not_a_regular_file,
    refuse_unless_regular,
)


class LocalTransport:
    # Descriptors a host in flight holds (irtool.remote.limits): three pipes to the command;
    # for the instant it is spawned, five more (their child ends and subprocess's exec-error
    # pipe), before the engine has opened any evidence file: within the engine's share.
    descriptors_per_host = 5

    def connect(self, host: ResolvedHost, deadline: Deadline) -> LocalConnection:
        return LocalConnection(host=host, identity=f"local {os.uname().nodename}")


def _argv(shell: Shell) -> list[str]:
    if shell is Shell.SH:
        return ["/bin/sh", "-s"]
    if shell is Shell.CMD:
        raise HostFailure(Failure.ERROR, "a cmd.exe script runs on a Windows host, not here")
    found = shutil.which("pwsh") or shutil.which("powershell")
    if not found:
        raise HostFailure(Failure.ERROR, "no PowerShell (pwsh) on this machine for a local step")
    return [found, "-NoProfile", "-NonInteractive", "-Command", "-"]


class LocalConnection(Connection):
    def run(self, command: str, shell: Shell, deadline: Deadline, on_output: OnOutput) -> int:
        # The script goes on stdin, never argv: nothing in it shows in `ps`.
        process = subprocess.Popen(
            _argv(shell),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        killed = threading.Event()

        def stop() -> None:
            killed.set()
            _signal(process)

        forget = deadline.cancel.on_cancel(stop)
        try:
            _pump(process, command.encode("utf-8"), deadline, on_output)
            try:
                status = process.wait(timeout=max(0.05, deadline.remaining()))
            except subprocess.TimeoutExpired:
                deadline.check()  # its pipes are closed but it lives on, past its time
                raise
        except BaseException:  # past its deadline, cancelled, or our side broke: it stops too
            _kill(process)
            raise
        finally:
            forget()
            for pipe in (process.stdin, process.stdout, process.stderr):
                if pipe:
                    with contextlib.suppress(OSError):
                        pipe.close()
        if killed.is_set():
            # Our cancel killed it: its -9 is our doing, not the command's result.
            raise deadline.cut_short()
        return status

    def fetch(self, path: str, deadline: Deadline, on_data: OnData) -> Fetched:
        """The file's first `size` bytes (its size once open), hashed here as they are read."""
        try:
            # Looked at before it is opened: opening a FIFO waits for a writer, and opening
            # a device can act on it.
            refuse_unless_regular(path, os.stat(path).st_mode)
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as failed:
            raise HostFailure(Failure.ERROR, f"cannot read {path}: {failed.strerror}") from None
        digest = hashlib.sha256()
        try:
            with os.fdopen(fd, "rb") as source:
                attributes = os.fstat(fd)
                refuse_unless_regular(path, attributes.st_mode)  # replaced between the looks?
                size = attributes.st_size
                if size == 0:
                    if source.read(1) and not os.fstat(fd).st_size:
                        raise not_a_regular_file(path, PSEUDO_FILE)
                    return Fetched(size=0, sha256=digest.hexdigest())
                left = size
                while left > 0 and (data := source.read(min(CHUNK * 4, left))):
                    deadline.check()
                    digest.update(data)
                    on_data(data)
                    left -= len(data)
        except OSError as failed:
            raise HostFailure(Failure.ERROR, f"cannot read {path}: {failed.strerror}") from None
        return Fetched(size=size - left, sha256=digest.hexdigest())

    def list_files(self, paths: Sequence[str], spec: FetchLimits, deadline: Deadline) -> Listing:
        """What the globs match on this machine, walked here (as find does on a host)."""
        patterns = list(paths)
        files: list[ListedFile] = []
        errors: list[str] = []
        truncated = False
        for index, pattern in enumerate(patterns):
            if not pattern.startswith("/"):
                errors.append(f"{pattern}: not an absolute path (a glob starts at /)")
                continue
            for path, found in _matches(pattern, errors):
                deadline.check()
                if len(files) >= LIST_CAP:
                    truncated = True
                    break
                modified = datetime.fromtimestamp(found.st_mtime, UTC)
                skipped = None if stat.S_ISREG(found.st_mode) else _kind(found.st_mode)
                files.append(ListedFile(path, found.st_size, modified, index, skipped))
        return make_listing(
            patterns, patterns, files, spec, now=datetime.now(UTC), errors=errors,
            truncated=truncated,
        )  # fmt: skip


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link, not a regular file (fetch its target by its own path)"
    if stat.S_ISDIR(mode):
        return "a directory, not a regular file"
    return "not a regular file"


def _matches(pattern: str, errors: list[str]) -> Iterator[tuple[str, os.stat_result]]:
    """(path, lstat) of what `pattern` matches: folders before the first wildcard are the
    root, symbolic links below it are listed (never followed)."""
    pattern = "/" + "/".join(p for p in pattern.split("/") if p)
    walk = glob_walk(pattern)
    if walk.literal:
        try:
            found = os.lstat(pattern)
        except OSError:
            return
        yield pattern, found
        return
    exact = glob_regex(pattern)
    stack = [(walk.root, 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as failed:
            if depth or os.path.isdir(folder):
                errors.append(f"{folder}: {failed.strerror}")
            continue
        for entry in entries:
            try:
                found = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(found.st_mode):
                if walk.depth is None or depth + 1 < walk.depth:
                    stack.append((entry.path, depth + 1))
                continue
            if exact.fullmatch(entry.path):
                yield entry.path, found


def _pump(
    process: subprocess.Popen[bytes], script: bytes, deadline: Deadline, on_output: OnOutput
) -> None:
    """Feed the script and read both streams in one loop until both reach EOF.

    One loop and no feeder thread: sh reads the script as it runs, so a long script whose
    early lines print a lot must be read from while it is still being written. poll, not
    select: past 1024 descriptors (irtool raises its limit) select() refuses."""
    assert process.stdin and process.stdout and process.stderr
    streams: dict[int, Stream] = {
        process.stdout.fileno(): "stdout",
        process.stderr.fileno(): "stderr",
    }
    stdin = process.stdin.fileno()
    os.set_blocking(stdin, False)
    waiting = select.poll()
    for fd in streams:
        waiting.register(fd, select.POLLIN)
    waiting.register(stdin, select.POLLOUT)
    left = memoryview(script)
    while streams:
        deadline.check()
        for fd, _ in waiting.poll(1000 * max(0.01, deadline.remaining())):
            if fd == stdin:
                try:
                    left = left[os.write(stdin, left[:CHUNK]) :]
                except BlockingIOError:
                    continue
                except OSError:  # the script ended, or was killed, before reading it all
                    left = left[:0]
                if not left:
                    waiting.unregister(stdin)
                    process.stdin.close()  # EOF: the end of the script
                continue
            data = os.read(fd, CHUNK)
            if data:
                on_output(streams[fd], data)
            else:
                waiting.unregister(fd)
                del streams[fd]


def _signal(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL to the command and all it started; never to a process already reaped (its
    number may be another's by now)."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)


def _kill(process: subprocess.Popen[bytes]) -> None:
    _signal(process)
    process.wait()
