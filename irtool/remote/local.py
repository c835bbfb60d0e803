"""The responder's own machine: gateway and tooling steps, run as child processes."""

from __future__ import annotations

import contextlib
import hashlib
import os
import selectors
import shutil
import signal
import subprocess
import threading
from pathlib import Path
from typing import IO

from irtool.model.inventory import ResolvedHost
from irtool.model.steps import Shell
from irtool.remote.base import (
    CHUNK,
    Connection,
    Deadline,
    Failure,
    Fetched,
    HostFailure,
    OnData,
    OnOutput,
)


class LocalTransport:
    def connect(self, host: ResolvedHost, deadline: Deadline) -> LocalConnection:
        return LocalConnection(host=host, identity=f"local {os.uname().nodename}")


def _argv(shell: Shell) -> list[str]:
    if shell is Shell.SH:
        return ["/bin/sh", "-s"]
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
        forget = deadline.cancel.on_cancel(lambda: _kill(process))
        try:
            assert process.stdin and process.stdout and process.stderr
            # Fed from a thread: sh reads the script as it runs, so a long script whose early
            # lines print a lot would fill both pipes and stop both sides if we wrote it first.
            feeder = threading.Thread(
                target=_feed, args=(process.stdin, command.encode("utf-8")), daemon=True
            )
            feeder.start()
            with selectors.DefaultSelector() as selector:
                selector.register(process.stdout, selectors.EVENT_READ, "stdout")
                selector.register(process.stderr, selectors.EVENT_READ, "stderr")
                while selector.get_map():
                    try:
                        deadline.check()
                    except HostFailure:
                        _kill(process)
                        raise
                    for key, _ in selector.select(timeout=min(0.5, deadline.remaining())):
                        data = os.read(key.fd, CHUNK)
                        if data:
                            on_output(key.data, data)
                        else:
                            selector.unregister(key.fileobj)
            while True:
                try:
                    return process.wait(timeout=max(0.05, min(0.5, deadline.remaining())))
                except subprocess.TimeoutExpired:
                    try:
                        deadline.check()
                    except HostFailure:
                        _kill(process)
                        raise
        finally:
            forget()
            for pipe in (process.stdout, process.stderr):
                if pipe:
                    pipe.close()

    def fetch(self, path: str, deadline: Deadline, on_data: OnData) -> Fetched:
        digest, size = hashlib.sha256(), 0
        try:
            with Path(path).open("rb") as source:
                while data := source.read(CHUNK * 4):
                    deadline.check()
                    digest.update(data)
                    size += len(data)
                    on_data(data)
        except OSError as failed:
            raise HostFailure(Failure.ERROR, f"cannot read {path}: {failed.strerror}") from None
        return Fetched(size=size, sha256=digest.hexdigest())


def _feed(stdin: IO[bytes], script: bytes) -> None:
    with contextlib.suppress(BrokenPipeError, OSError):  # the script ended or was killed early
        stdin.write(script)
    with contextlib.suppress(BrokenPipeError, OSError):
        stdin.close()


def _kill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
