"""The local transport: the responder's own machine, as gateway and tooling steps use it."""

from __future__ import annotations

import threading

import pytest

from irtool.model.inventory import Inventory
from irtool.remote.base import Failure, HostFailure
from irtool.remote.local import LocalTransport
from tests.support.remote import run

HOST = Inventory.model_validate(
    {"hosts": {"responder": {"address": "localhost", "transport": "local"}}}
).resolve("responder")


def test_a_long_script_that_prints_early_does_not_stall_on_full_pipes() -> None:
    # 1 MB of output before sh has read the rest of a 400 KB script.
    script = "head -c 1000000 /dev/zero\necho done >&2\n" + "# padding line\n" * 27000
    results: list[tuple[int, bytes, bytes]] = []
    worker = threading.Thread(
        target=lambda: results.append(run(LocalTransport().connect(HOST, None), script)),  # type: ignore[arg-type]
        daemon=True,
    )
    worker.start()
    worker.join(20)
    assert results, "the run stalled"
    status, out, err = results[0]
    assert (status, len(out), err) == (0, 1000000, b"done\n")


def test_a_local_command_past_its_deadline_is_killed() -> None:
    connection = LocalTransport().connect(HOST, None)  # type: ignore[arg-type]
    with pytest.raises(HostFailure) as failed:
        run(connection, "sleep 30", seconds=1)
    assert failed.value.kind is Failure.TIMEOUT
