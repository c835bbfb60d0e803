"""irtool's own work per remote command stays small, and never at the cost of a right answer:
waiting for a command's end does not keep a core busy, and a plan kept between the asks of one
run is made again once what it is made of changes."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from irtool.engine.runner import Runner
from irtool.engine.session import IncidentSession
from irtool.evidence.store import EvidenceStore
from irtool.model.inventory import Inventory
from irtool.model.steps import Shell
from irtool.remote.base import Deadline
from irtool.remote.ssh import SshTransport
from irtool.secrets.run import RunSecrets
from tests.support.cli import irtool
from tests.support.sshd import SshdFarm, inventory_entry


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdFarm]:
    with SshdFarm(tmp_path_factory.mktemp("sshd"), count=1) as started:
        yield started


def test_waiting_for_a_command_that_closed_its_output_keeps_no_core_busy(
    farm: SshdFarm, tmp_path: Path
) -> None:
    # The command's output ends (sshd sends EOF) a second before it exits: irtool waits for
    # its exit status. Polling the channel then would spin (its pipe stays readable past EOF)
    # and burn that second of CPU; waiting for the status costs next to nothing.
    (tmp_path / "config").write_text("")
    (tmp_path / "known_hosts").write_text("")
    transport = SshTransport(
        RunSecrets(), config_file=tmp_path / "config", known_hosts_file=tmp_path / "known_hosts"
    )
    host = Inventory.model_validate({"hosts": {"web01": inventory_entry(farm, 0)}}).resolve("web01")
    deadline = Deadline(30)
    connection = transport.connect(host, deadline)
    said: list[bytes] = []
    try:
        began_cpu, began = time.thread_time(), time.monotonic()
        status = connection.run(
            "echo said; exec >/dev/null 2>&1; sleep 1; exit 3",
            Shell.SH,
            deadline,
            lambda _stream, data: said.append(data),
        )
        cpu, wall = time.thread_time() - began_cpu, time.monotonic() - began
    finally:
        connection.close()
    assert (status, b"".join(said)) == (3, b"said\n")
    assert wall >= 1.0  # it did wait for the exit, not for the EOF alone
    assert cpu < 0.1, f"{cpu:.2f} s of CPU spent waiting {wall:.2f} s for an exit status"


RUNBOOK = """\
id: planned
title: A step whose command reads a parameter
summary: Test runbook.
version: "1"
severity: high
triggers: [A test]
activation:
  may_activate: [security]
roles: [security]
parameters:
  folder: {type: path, description: Where to look}
phases:
  - id: work
    title: Work
    steps:
      - id: look
        type: collect
        title: Look
        shell: sh
        targets: [group:fleet]
        commands:
          - {id: listing, title: Listing, command: "ls -la {{ folder }}"}
"""


def test_a_parameter_set_from_another_terminal_reaches_the_next_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {**os.environ, "IRTOOL_HOME": str(tmp_path / "home"), "IRTOOL_RESPONDER": "ann"}
    (tmp_path / "planned.yaml").write_text(RUNBOOK)
    inventory = {
        "hosts": {
            "web01": {
                "address": "192.0.2.10",
                "transport": "ssh",
                "os": "linux",
                "groups": ["fleet"],
                "facts": {"os": "linux"},
            }
        }
    }
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump(inventory))
    opened = irtool(
        env, "incident", "new", str(tmp_path / "planned.yaml"), "--param", "folder=/var/www",
        "--inventory", str(tmp_path / "inventory.yaml"), "--json",
    )  # fmt: skip
    assert opened.returncode == 0, opened.stderr
    incident = json.loads(opened.stdout)["id"]
    home = tmp_path / "home" / "incidents" / incident
    monkeypatch.setenv("IRTOOL_HOME", env["IRTOOL_HOME"])
    session = IncidentSession.open(incident)
    try:
        runner = Runner(session, {}, EvidenceStore(home / "evidence"), "ann")
        first = runner.commands("look")["web01"][0].command
        assert runner.commands("look")["web01"][0].command == first  # asked again: the same
        changed = irtool(
            env, "incident", "set", incident, "folder", "/srv/www", "--reason", "moved"
        )
        assert changed.returncode == 0, changed.stderr
        session.refresh()  # what a run does first
        second = runner.commands("look")["web01"][0].command
    finally:
        session.close_journal()
    assert first == "ls -la '/var/www'"
    assert second == "ls -la '/srv/www'"
