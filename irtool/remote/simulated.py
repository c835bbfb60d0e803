"""The simulated transport of an exercise: hosts that answer from a scenario.

It opens no socket and asks for no secret: whatever the inventory says about a
host (address, credential, pinned key), the only thing consulted is the
answer the exercise prepared for that host and command. Answers stream in
chunks, wait their delay on the run's deadline (so cancel and timeouts behave
as they do for real hosts) and fail the way a real transport would.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from irtool.model.inventory import OsFamily, ResolvedHost
from irtool.model.steps import Shell
from irtool.remote.base import (
    CHUNK,
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
    make_listing,
)

IDENTITY = "simulated host (exercise: no connection was made)"


@dataclass(frozen=True)
class Answer:
    stdout: bytes = b""
    stderr: bytes = b""
    exit_status: int = 0
    failure: Failure | None = None
    reason: str = ""
    delay: float = 0.0  # wall-clock seconds before the answer (or the failure) comes


# What a host answers to a command, to a request for a file, and to a listing: the paths
# each glob matches (glob index, path), or the way the listing fails.
Answerer = Callable[[ResolvedHost, str, Shell], Answer]
FileAnswerer = Callable[[ResolvedHost, str], Answer]
ListingAnswerer = Callable[[ResolvedHost, Sequence[str]], tuple[Answer, list[tuple[int, str]]]]

# Where a Windows host keeps what its paths' %VAR% name, as a stock install has it.
WINDOWS_VARIABLES = {
    "systemdrive": "C:",
    "systemroot": r"C:\Windows",
    "windir": r"C:\Windows",
    "programdata": r"C:\ProgramData",
    "programfiles": r"C:\Program Files",
    "programfiles(x86)": r"C:\Program Files (x86)",
    "allusersprofile": r"C:\ProgramData",
    "temp": r"C:\Windows\Temp",
}


def expand_windows(pattern: str) -> str:
    """`%VAR%` as a stock Windows install has it (a name it lacks stays as written)."""
    return re.sub(
        r"%([^%]+)%",
        lambda m: WINDOWS_VARIABLES.get(m.group(1).lower(), m.group(0)),
        pattern,
    )


def example_path(pattern: str, windows: bool) -> str:
    """A path `pattern` matches, as a host might hold it: `%VAR%` as a stock Windows has it,
    a `**` folder none, `*` "example", `?` "1"."""
    if windows:
        pattern = expand_windows(pattern)
    for any_depth in ("**\\", "**/"):
        pattern = pattern.replace(any_depth, "")
    return pattern.replace("**", "example").replace("*", "example").replace("?", "1")


def example_listing(
    host: ResolvedHost, paths: Sequence[str]
) -> tuple[Answer, list[tuple[int, str]]]:
    """The listing of a host nobody described: each glob matches one example file."""
    windows = host.os is OsFamily.WINDOWS
    return Answer(), [(index, example_path(path, windows)) for index, path in enumerate(paths)]


class SimulatedTransport:
    descriptors_per_host = 0  # nothing is opened: irtool.remote.limits counts the evidence

    def __init__(
        self,
        answer: Answerer,
        answer_file: FileAnswerer,
        answer_listing: ListingAnswerer = example_listing,
    ) -> None:
        self.answer, self.answer_file = answer, answer_file
        self.answer_listing = answer_listing

    def connect(self, host: ResolvedHost, deadline: Deadline) -> Connection:
        deadline.check()
        return SimulatedConnection(host, IDENTITY, via="simulated", answers=self)


@dataclass
class SimulatedConnection(Connection):
    answers: SimulatedTransport | None = None

    def run(self, command: str, shell: Shell, deadline: Deadline, on_output: OnOutput) -> int:
        assert self.answers is not None
        answer = self.answers.answer(self.host, command, shell)
        _arrive(answer, deadline)
        for stream, data in (("stdout", answer.stdout), ("stderr", answer.stderr)):
            for start in range(0, len(data), CHUNK):
                on_output(stream, data[start : start + CHUNK])  # type: ignore[arg-type]
        return answer.exit_status

    def fetch(self, path: str, deadline: Deadline, on_data: OnData) -> Fetched:
        assert self.answers is not None
        answer = self.answers.answer_file(self.host, path)
        _arrive(answer, deadline)
        for start in range(0, len(answer.stdout), CHUNK):
            on_data(answer.stdout[start : start + CHUNK])
        return Fetched(len(answer.stdout), hashlib.sha256(answer.stdout).hexdigest())

    def list_files(self, paths: Sequence[str], spec: FetchLimits, deadline: Deadline) -> Listing:
        """The scenario's listing: each path it names, as big as the file it answers."""
        assert self.answers is not None
        answer, found = self.answers.answer_listing(self.host, list(paths))
        _arrive(answer, deadline)
        now = datetime.now(UTC)
        files = []
        for index, path in found:
            content = self.answers.answer_file(self.host, path)
            files.append(ListedFile(path, len(content.stdout), now, index))
        windows = self.host.os is OsFamily.WINDOWS
        expanded = [expand_windows(p) if windows else p for p in paths]
        return make_listing(list(paths), expanded, files, spec, now=now, host_time=now)


def _arrive(answer: Answer, deadline: Deadline) -> None:
    """Wait as the host would, then fail as it would: a cancel or the deadline cuts it short."""
    if answer.delay:
        deadline.wait(answer.delay)
    if answer.failure:
        raise HostFailure(answer.failure, answer.reason or str(answer.failure))
