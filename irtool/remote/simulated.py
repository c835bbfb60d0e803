"""The simulated transport of an exercise: hosts that answer from a scenario.

It opens no socket and asks for no secret: whatever the inventory says about a
host (address, credential, pinned key), the only thing consulted is the
answer the exercise prepared for that host and command. Answers stream in
chunks, wait their delay on the run's deadline (so cancel and timeouts behave
as they do for real hosts) and fail the way a real transport would.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

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

IDENTITY = "simulated host (exercise: no connection was made)"


@dataclass(frozen=True)
class Answer:
    stdout: bytes = b""
    stderr: bytes = b""
    exit_status: int = 0
    failure: Failure | None = None
    reason: str = ""
    delay: float = 0.0  # wall-clock seconds before the answer (or the failure) comes


# What a host answers to a command, and to a request for a file.
Answerer = Callable[[ResolvedHost, str, Shell], Answer]
FileAnswerer = Callable[[ResolvedHost, str], Answer]


class SimulatedTransport:
    descriptors_per_host = 0  # nothing is opened: irtool.remote.limits counts the evidence

    def __init__(self, answer: Answerer, answer_file: FileAnswerer) -> None:
        self.answer, self.answer_file = answer, answer_file

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


def _arrive(answer: Answer, deadline: Deadline) -> None:
    """Wait as the host would, then fail as it would: a cancel or the deadline cuts it short."""
    if answer.delay:
        deadline.wait(answer.delay)
    if answer.failure:
        raise HostFailure(answer.failure, answer.reason or str(answer.failure))
