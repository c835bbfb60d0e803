"""Fetching one file from a host into the evidence store, hash-checked end to end."""

from __future__ import annotations

import time
from typing import Any

from irtool.engine import kinds
from irtool.engine.refusal import Refused
from irtool.engine.runner_parts import RunnerParts
from irtool.engine.runreport import FETCH, SETTLE_GRACE_S
from irtool.journal import EventDraft
from irtool.journal.events import utc_text
from irtool.remote.base import Deadline, Failure, HostFailure
from irtool.remote.fanout import as_failure


class FileFetches(RunnerParts):
    """The fetch half of Runner."""

    def fetch(
        self, host_name: str, path: str, timeout: float = 600, step: str | None = None
    ) -> dict[str, Any]:
        """Fetch one file from a host into the evidence store, hash-checked end to end."""
        state = self.session.state
        inventory = self._inventory(state)
        if host_name not in inventory.hosts:
            raise Refused(f"no host '{host_name}' in this incident's inventory")
        host = inventory.resolve(host_name)
        transport = self.transports.get(str(host.transport))
        if transport is None:
            raise Refused(f"no {host.transport} transport in this run")
        deadline = Deadline(timeout, self.cancel)
        writer = self.evidence.writer()
        began = self.clock()
        failure: HostFailure | None = None
        remote = None
        connection = None
        try:
            connection = transport.connect(host, deadline)
            remote = connection.fetch(path, deadline, writer.write)
        except Exception as failed:
            failure = as_failure(failed)
        finally:
            if connection:
                connection.close()
        item = writer.commit()
        if item.incomplete and failure is None:
            failure = HostFailure(
                Failure.ERROR,
                f"{path} could not be kept whole: {item.error} "
                f"(kept {item.size} of {item.received} bytes)",
            )
        if (
            remote
            and failure is None
            and (remote.sha256 != item.sha256 or remote.size != item.size)
        ):
            failure = HostFailure(
                Failure.PROTOCOL,
                f"{path} arrived as {item.size} bytes with sha256 {item.sha256}, but the host "
                f"hashed {remote.size} bytes as {remote.sha256}",
            )
        data = {
            "purpose": FETCH,
            "path": path,
            "transport": connection.transport_name if connection else str(host.transport),
            "address": host.address,
            "port": host.port,
            "identity": connection.identity if connection else None,
            "started_at": utc_text(began),
            "ended_at": utc_text(self.clock()),
            "exit_status": 0 if failure is None else None,
            "remote_sha256": remote.sha256 if remote else None,
            "failure": str(failure) if failure else None,
            "collected_by": self.actor,
            "file": item.as_dict(),
        }
        self._record(EventDraft(kinds.FILE_FETCHED, self.actor, data, step=step, host=host_name))
        self._settle(time.monotonic() + SETTLE_GRACE_S)
        if failure:
            raise failure
        return data
