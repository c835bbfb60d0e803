"""Fetching files from a host into the evidence store, hash-checked end to end: one file by
hand (`irtool incident fetch`), or every file a fetch collector's globs match."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from irtool.engine import kinds
from irtool.engine.refusal import Refused
from irtool.engine.runner_parts import RunnerParts
from irtool.engine.runreport import (
    FETCH,
    SETTLE_GRACE_S,
    Command,
    HostResult,
    Progress,
    command_custody,
)
from irtool.evidence.store import EvidenceWriter, Item
from irtool.journal import Event, EventDraft
from irtool.journal.events import utc_text
from irtool.model.inventory import ResolvedHost
from irtool.model.plan import FETCH_SHELL
from irtool.remote.base import (
    Connection,
    Deadline,
    Failure,
    Fetched,
    HostFailure,
    ListedFile,
    Listing,
)
from irtool.remote.fanout import as_failure

# How many failed files the host's result names (the custody records name them all).
NAMED_FAILURES = 3
# How many of the host's listing errors the record names (the listing kept has them all).
NAMED_ERRORS = 10


class FileFetches(RunnerParts):
    """The fetch half of Runner."""

    on_progress: Callable[[Progress], None]

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
            **self._fetched(host, connection, began, remote, failure, item),
        }
        self._record(EventDraft(kinds.FILE_FETCHED, self.actor, data, step=step, host=host_name))
        self._settle(time.monotonic() + SETTLE_GRACE_S)
        if failure:
            raise failure
        return data

    def _fetched(
        self,
        host: ResolvedHost,
        connection: Connection | None,
        began: datetime,
        remote: Fetched | None,
        failure: HostFailure | None,
        item: Item,
    ) -> dict[str, Any]:
        """The custody of one fetched file: where from, through what, when, by whom, the
        host's hash and the file kept."""
        return {
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

    # -- a fetch collector ------------------------------------------------------------------

    def _fetch_files(
        self,
        step_id: str | None,
        purpose: str,
        started: Event,
        connection: Connection,
        command: Command,
        deadline: Deadline,
        result: HostResult,
        writers: dict[str, EvidenceWriter],
        tagged: dict[str, Any],
    ) -> None:
        """List what the collector's globs match on the host, keep the listing (what matched,
        what is skipped and why, what matched nothing) as the output of a `command.ran`, and
        fetch each file to fetch into a `file.fetched` of its own, checked against the host's
        SHA-256 and the size it listed. A file that fails fails alone (and the host's result
        with it); a deadline or a cancel stops the rest, which the record names."""
        spec = command.fetch
        assert spec is not None, "a fetch collector carries its FetchSpec"
        host = connection.host
        began = self.clock()
        facts = command_custody(
            tagged, started, purpose, connection, command, began, self.actor, FETCH_SHELL
        )
        self.on_progress(Progress(host.name, "running", command.item, 0))
        listing: Listing | None = None
        failure: HostFailure | None = None
        try:
            listing = connection.list_files(spec.paths, spec, deadline)
        except Exception as broken:
            failure = as_failure(broken)
        if listing is not None:
            report = {"reason": spec.reason, **listing.as_dict()}
            text = json.dumps(report, indent=1, ensure_ascii=False) + "\n"
            writers["stdout"].write(text.encode("utf-8"))
            writers["stderr"].write(listing.stderr)
        outcomes: dict[str, str | None] = {}  # path -> why it failed (None: fetched whole)
        stop: HostFailure | None = None
        for listed in listing.to_fetch if listing else []:
            if stop is not None:
                outcomes[listed.path] = f"not fetched: {stop}"
                continue
            why = self._fetch_listed(
                step_id, started, connection, command, listed, deadline, tagged, spec.reason
            )
            outcomes[listed.path] = str(why) if why else None
            if why is not None and why.kind in (Failure.TIMEOUT, Failure.CANCELLED):
                stop = why
        kept = {stream: writer.commit() for stream, writer in writers.items()}
        lost = [
            f"{stream}: {item.error} (kept {item.size} of {item.received} bytes)"
            for stream, item in kept.items()
            if item.incomplete
        ]
        failed: dict[str, str] = {path: why for path, why in outcomes.items() if why}
        if failure is None and (failed or lost):
            said = [f"{path}: {why}" for path, why in list(failed.items())[:NAMED_FAILURES]]
            more = len(failed) - len(said)
            summary = (
                f"{len(failed)} of {len(outcomes)} file(s) not fetched: "
                + "; ".join(said)
                + (f"; and {more} more (see their file.fetched records)" if more else "")
            )
            if lost:
                summary = "; ".join(
                    ([summary] if failed else [])
                    + [f"the listing could not be kept whole: {'; '.join(lost)}"]
                )
            whole: HostFailure | None = HostFailure(Failure.ERROR, summary)
        else:
            whole = failure
        status = None if failure else (1 if whole else 0)
        result.exit_statuses.append(status)
        result.items.append(command.item)
        fetched = [path for path, why in outcomes.items() if why is None]
        self._record(
            EventDraft(
                kinds.COMMAND_RAN,
                self.actor,
                {
                    **facts,
                    "ended_at": utc_text(self.clock()),
                    "exit_status": status,
                    "failure": str(whole) if whole else None,
                    "fetch": {
                        "reason": spec.reason,
                        "matched": len(listing.files) if listing else 0,
                        "fetched": len(fetched),
                        "failed": len(failed),
                        "skipped": len(listing.files) - len(listing.to_fetch) if listing else 0,
                        "missing": listing.missing if listing else [],
                        # What the host could not look into (an unreadable folder).
                        "errors": listing.errors[:NAMED_ERRORS] if listing else [],
                        "more_errors": max(0, len(listing.errors) - NAMED_ERRORS) if listing else 0,
                        "truncated": listing.truncated if listing else False,
                    },
                    **{stream: item.as_dict() for stream, item in kept.items()},
                },
                step=step_id,
                host=host.name,
            )
        )
        if failure:
            raise failure
        if stop:
            raise stop
        if whole and result.failure is None:
            # Not raised: one file that changed while read must not stop the host's other
            # collectors; the host's result says which failed, and its run is not ok.
            result.failure = HostFailure(Failure.ERROR, f"{command.item}: {whole.reason}")

    def _fetch_listed(
        self,
        step_id: str | None,
        started: Event,
        connection: Connection,
        command: Command,
        listed: ListedFile,
        deadline: Deadline,
        tagged: dict[str, Any],
        reason: str,
    ) -> HostFailure | None:
        """One file of a listing into the store and its `file.fetched`; why it failed, if it did."""
        host = connection.host
        writer = self.evidence.writer()
        began = self.clock()
        received = 0

        def on_data(data: bytes) -> None:
            nonlocal received
            writer.write(data)
            received += len(data)
            self.on_progress(Progress(host.name, "running", command.item, received))

        remote: Fetched | None = None
        failure: HostFailure | None = None
        try:
            remote = connection.fetch(listed.path, deadline, on_data)
        except Exception as failed:
            failure = as_failure(failed)
        item = writer.commit()
        failure = failure or _fetch_problem(listed, remote, item)
        self._record(
            EventDraft(
                kinds.FILE_FETCHED,
                self.actor,
                {
                    **tagged,
                    "run": started.seq,
                    "purpose": FETCH,
                    "item": command.item,
                    "path": listed.path,
                    "reason": reason,
                    "size": listed.size,
                    "modified": listed.modified.isoformat() if listed.modified else None,
                    **self._fetched(host, connection, began, remote, failure, item),
                    **({"changed": changed} if (changed := _since_listed(listed, remote)) else {}),
                },
                step=step_id,
                host=host.name,
            )
        )
        return failure


def _fetch_problem(listed: ListedFile, remote: Fetched | None, item: Item) -> HostFailure | None:
    """What is wrong with a fetched file: not kept whole, or bent or changed while it was
    read (the bytes that arrived are not those the host hashed). A file that only differs in
    size from its listing (a log IIS appended to since) is not wrong: the copy and the host's
    hash agree on the file as it was when fetched, and `_since_listed` says so."""
    if remote is None:
        return None
    path = listed.path
    if item.incomplete:
        return HostFailure(
            Failure.ERROR,
            f"{path} could not be kept whole: {item.error} "
            f"(kept {item.size} of {item.received} bytes)",
        )
    if remote.sha256 != item.sha256 or remote.size != item.size:
        return HostFailure(
            Failure.ERROR,
            f"{path} changed while read (or was bent on the way): {item.size} bytes arrived "
            f"with sha256 {item.sha256}, but the host hashed {remote.size} bytes as "
            f"{remote.sha256}",
        )
    return None


def _since_listed(listed: ListedFile, remote: Fetched | None) -> str | None:
    """A file whose size changed between its listing and its copy: what the record says."""
    if remote is None or remote.size == listed.size:
        return None
    how = "grew" if remote.size > listed.size else "shrank"
    return (
        f"{how} from {listed.size} to {remote.size} bytes between the listing and the copy "
        "(a log still written to): kept as it was when fetched, as the host hashed it"
    )
