"""Many hosts at once: a bounded pool, and each host's failure kept to that host."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Generic, TypeVar

from irtool.remote.base import Cancel, Failure, HostFailure

DEFAULT_POOL = 32

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Outcome(Generic[T, R]):
    target: T
    result: R | None
    failure: HostFailure | None


def as_failure(error: BaseException) -> HostFailure:
    if isinstance(error, HostFailure):
        return error
    if isinstance(error, LookupError) and not isinstance(error, KeyError | IndexError):
        # A secret the run could not get (irtool.secrets raises a LookupError of its own).
        return HostFailure(Failure.CREDENTIAL, str(error.args[0] if error.args else error))
    return HostFailure(Failure.ERROR, f"{type(error).__name__}: {error}")


def fan_out(
    targets: Sequence[T],
    work: Callable[[T], R],
    *,
    pool: int = DEFAULT_POOL,
    cancel: Cancel | None = None,
) -> Iterator[Outcome[T, R]]:
    """Run `work` on every target, at most `pool` at a time; yield each outcome as it lands.

    A target still queued when the run is cancelled fails as cancelled without starting.
    """
    cancel = cancel or Cancel()

    def guarded(target: T) -> R:
        if cancel.is_set():
            raise HostFailure(Failure.CANCELLED, "cancelled before it started")
        return work(target)

    if not targets:
        return
    with ThreadPoolExecutor(
        max_workers=max(1, min(pool, len(targets))), thread_name_prefix="irtool-host"
    ) as executor:
        futures: dict[Future[R], T] = {executor.submit(guarded, t): t for t in targets}
        for future in as_completed(futures):
            target = futures[future]
            error = future.exception()
            if error is None:
                yield Outcome(target, future.result(), None)
            else:
                yield Outcome(target, None, as_failure(error))
