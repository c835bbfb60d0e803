"""Nothing imports a transport it does not use: an SSH-only run never loads pywinrm or requests
(~90 ms of every run's start), and building the live transports loads none of them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support.cli import irtool
from tests.support.runbooks import runbook
from tests.support.sshd import SshdFarm, inventory_entry

RUNBOOK = runbook(
    "lazy",
    "One SSH host",
    """\
    - id: look
      type: collect
      title: Look
      shell: sh
      targets: [group:fleet]
      commands:
        - {id: name, title: Name, command: "uname -n"}
    """,
)

# `irtool incident run` as the command line runs it, in this process; then what it imported.
RUN_THEN_SAY_MODULES = """
import json, runpy, sys
sys.argv = ["irtool", *sys.argv[1:]]
try:
    runpy.run_module("irtool", run_name="__main__")
except SystemExit as stopped:
    code = stopped.code
else:
    code = 0
loaded = {name: name in sys.modules for name in ("paramiko", "winrm", "requests")}
print(json.dumps({"exit": code, "loaded": loaded}), file=sys.stderr)
"""

BUILD_THEN_SAY_MODULES = """
import json, sys
from irtool.remote.registry import live_transports
transports = live_transports(secrets=None)
before = {name: name in sys.modules for name in ("paramiko", "winrm", "requests")}
# What a run over a mixed inventory asks of every transport named, to size itself.
costs = {name: t.descriptors_per_host for name, t in transports.items()}
after = {name: name in sys.modules for name in ("paramiko", "winrm", "requests")}
print(json.dumps({"before": before, "after": after, "names": sorted(transports), "costs": costs}))
"""


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdFarm]:
    with SshdFarm(tmp_path_factory.mktemp("sshd"), count=1) as started:
        yield started


def test_an_ssh_only_run_imports_neither_pywinrm_nor_requests(
    farm: SshdFarm, tmp_path: Path
) -> None:
    env = {**os.environ, "IRTOOL_HOME": str(tmp_path / "home"), "IRTOOL_RESPONDER": "ann"}
    (tmp_path / "lazy.yaml").write_text(RUNBOOK)
    inventory = {"hosts": {"web01": inventory_entry(farm, 0, groups=["fleet"])}}
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump(inventory))
    opened = irtool(
        env, "incident", "new", str(tmp_path / "lazy.yaml"),
        "--inventory", str(tmp_path / "inventory.yaml"), "--json",
    )  # fmt: skip
    assert opened.returncode == 0, opened.stderr
    incident = json.loads(opened.stdout)["id"]

    ran = subprocess.run(
        [sys.executable, "-c", RUN_THEN_SAY_MODULES, "incident", "run", incident, "look", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    said = json.loads(ran.stderr.strip().splitlines()[-1])
    assert said["exit"] == 0, ran.stderr
    assert json.loads(ran.stdout)["hosts"]["web01"]["exit_statuses"] == [0]
    # It did reach the host over SSH, and nothing else was loaded for it.
    assert said["loaded"] == {"paramiko": True, "winrm": False, "requests": False}


def test_building_the_live_transports_imports_none_of_them() -> None:
    built = subprocess.run(
        [sys.executable, "-c", BUILD_THEN_SAY_MODULES],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    said = json.loads(built.stdout)
    assert said["names"] == ["local", "ssh", "winrm"]
    nothing = {"paramiko": False, "winrm": False, "requests": False}
    assert said["before"] == nothing
    assert said["after"] == nothing
    # and what the registry says each costs is what each transport says, once built
    from irtool.remote.local import LocalTransport
    from irtool.remote.ssh import SshTransport
    from irtool.remote.winrm import WinrmTransport

    assert said["costs"] == {
        "local": LocalTransport.descriptors_per_host,
        "ssh": SshTransport.descriptors_per_host,
        "winrm": WinrmTransport.descriptors_per_host,
    }
