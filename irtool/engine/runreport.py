"""What a run is made of and what it reports: commands, progress, each host's result."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from irtool.journal import Event
from irtool.journal.events import utc_text
from irtool.model.steps import FetchSpec, Shell
from irtool.remote.base import Connection, HostFailure

COLLECT, ACTION, ROLLBACK, FETCH = "collect", "action", "rollback", "fetch"
# After the step's deadline, how long a run keeps trying to append what it spooled.
SETTLE_GRACE_S = 30.0


@dataclass(frozen=True)
class Command:
    item: str | None
    command: str
    shell: Shell
    variant: str | None = None  # the form of the step's command this host gets
    unfit: str | None = None  # no form fits the host: it is not contacted, and this is why
    fetch: FetchSpec | None = None  # a fetch collector: `command` describes it


@dataclass
class Progress:
    """What a face shows per host while a run goes on."""

    host: str
    status: str  # queued, connecting, running, done, failed
    item: str | None = None
    bytes: int = 0
    detail: str = ""


# host, stream (stdout/stderr), the bytes as they arrived: for a face that shows output live.
OnHostOutput = Callable[[str, str, bytes], None]


@dataclass
class HostResult:
    host: str
    exit_statuses: list[int | None] = field(default_factory=list)
    items: list[str | None] = field(default_factory=list)
    failure: HostFailure | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None and all(code == 0 for code in self.exit_statuses)

    def why(self) -> str:
        """What went wrong, in a responder's words: the failure, else each non-zero exit."""
        if self.failure:
            return str(self.failure)
        return ", ".join(
            f"{item or 'command'} exited {code}"
            for item, code in zip(self.items, self.exit_statuses, strict=True)
            if code != 0
        )


@dataclass
class RunReport:
    step: str
    purpose: str
    results: dict[str, HostResult]
    cancelled: bool
    completed_step: bool = False
    already: str = ""  # the step's status before this run, when it was already done
    outstanding: list[str] = field(default_factory=list)  # targeted hosts not yet done
    pending: int = 0  # custody records still in the spool: the journal would not take them
    pending_why: str = ""

    @property
    def failed(self) -> dict[str, HostResult]:
        return {h: r for h, r in self.results.items() if not r.ok}

    @property
    def headline(self) -> str:
        ok = len(self.results) - len(self.failed)
        return f"{self.step}: {self.purpose} ok on {ok} of {len(self.results)} host(s)"

    def outcome(self, again: str = "run it again") -> str:
        """What became of the step, in a responder's words; every face says it alike."""
        if self.pending:
            return (
                f"{self.pending} custody record(s) are kept in the spool, not yet in the "
                f"journal ({self.pending_why}): 'irtool incident recover' appends them"
            )
        if self.completed_step and self.purpose == ROLLBACK:
            return f"action '{self.step}' is rolled back"
        if self.completed_step:
            return f"step '{self.step}' is done"
        if self.already and self.purpose == COLLECT:
            kept = "; what arrived is kept as evidence" if self.failed else ""
            return f"step '{self.step}' was already {self.already}: this run adds evidence{kept}"
        if self.outstanding and not self.failed:
            return f"step '{self.step}' stays open: not yet done on {', '.join(self.outstanding)}"
        if self.cancelled:
            return "cancelled: what arrived is kept as evidence"
        if self.failed:
            return f"step '{self.step}' stays open: {again}, or complete or skip it by hand"
        return ""


def command_custody(
    tagged: dict[str, Any],
    started: Event,
    purpose: str,
    connection: Connection,
    command: Command,
    began: datetime,
    actor: str,
    shell: str | None = None,
) -> dict[str, Any]:
    """What every `command.ran` of a run says of where and how its command ran (a fetch
    collector's listing too, under its own `shell`); the outcome is added when it ends."""
    host = connection.host
    return {
        **tagged,
        "run": started.seq,
        "purpose": purpose,
        "item": command.item,
        "transport": connection.transport_name,
        "address": host.address,
        "port": host.port,
        "identity": connection.identity,
        "shell": shell or str(command.shell),
        "command": command.command,
        **({"variant": command.variant} if command.variant else {}),
        "started_at": utc_text(began),
        "collected_by": actor,
    }
