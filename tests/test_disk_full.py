"""A full disk under the evidence or under the whole incident: what was stored is said
exactly, a file's name is always its hash, and no custody record is lost."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from irtool.journal import Journal
from tests.support.cli import irtool
from tests.support.mounts import tmpfs
from tests.support.runbooks import runbook
from tests.support.sshd import SshdFarm

# A collector that prints more than the disk holds.
RUNBOOK = runbook(
    "flood",
    "Flood",
    """\
- id: flood
  type: collect
  title: Flood
  shell: sh
  timeout: 60
  targets: [group:fleet]
  commands:
    - {id: big, title: Big, command: "head -c 3000000 /dev/zero | tr '\\\\0' x"}
""",
)
SENT = 3_000_000


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdFarm]:
    with SshdFarm(tmp_path_factory.mktemp("sshd"), count=1) as started:
        yield started


def open_incident(env: dict[str, str], tmp_path: Path, farm: SshdFarm) -> str:
    host = {
        "address": "127.0.0.1", "port": farm[0].port, "transport": "ssh", "user": farm.user,
        "auth": "key", "identity_file": str(farm.client_key), "host_key": farm[0].fingerprint,
        "connect_timeout": 5, "groups": ["fleet"],
    }  # fmt: skip
    (tmp_path / "flood.yaml").write_text(RUNBOOK)
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump({"hosts": {"web01": host}}))
    opened = irtool(
        env, "incident", "new", str(tmp_path / "flood.yaml"),
        "--inventory", str(tmp_path / "inventory.yaml"), "--json",
    )  # fmt: skip
    assert opened.returncode == 0, opened.stderr
    return str(json.loads(opened.stdout)["id"])


def events(home: Path, incident: str) -> list[dict[str, Any]]:
    with Journal(home / "incidents" / incident / "journal.sqlite", incident) as journal:
        return [event.as_dict() for event in journal.events()]


def assert_kept_as_named(evidence: Path, item: dict[str, Any]) -> None:
    """The stored bytes are exactly what the record says, and hash to the file's name."""
    assert item["incomplete"] is True and item["received"] == SENT
    assert 0 < item["size"] < SENT
    kept = (evidence / item["sha256"]).read_bytes()
    assert len(kept) == item["size"] and hashlib.sha256(kept).hexdigest() == item["sha256"]
    assert not list(evidence.glob(".partial-*"))


def test_a_full_evidence_disk_keeps_what_it_could_and_says_so(
    farm: SshdFarm, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "IRTOOL_HOME": str(home), "IRTOOL_RESPONDER": "ann"}
    incident = open_incident(env, tmp_path, farm)
    evidence = home / "incidents" / incident / "evidence"
    with tmpfs(evidence, "1m"):
        ran = irtool(env, "incident", "run", incident, "flood")
        assert ran.returncode == 1
        assert "WARNING the disk under the incident is nearly full" in ran.stderr
        assert "FAILED web01: error: the evidence could not be kept whole: stdout: No space" in (
            ran.stdout
        )
        assert "SSH" not in ran.stdout
        record = next(e for e in events(home, incident) if e["kind"] == "command.ran")
        assert record["data"]["exit_status"] == 0  # the command itself succeeded
        assert "No space left on device" in record["data"]["failure"]
        assert_kept_as_named(evidence, record["data"]["stdout"])
        started = next(e for e in events(home, incident) if e["kind"] == "run.started")
        assert "nearly full" in started["data"]["warnings"][0]
        checked = irtool(env, "verify", incident)
        assert checked.returncode == 0, checked.stderr


def fill(where: Path) -> Path:
    """Take every free block under `where`; the file is the ballast a responder would delete."""
    ballast = where / "ballast"
    with ballast.open("ab") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass
    return ballast


def test_a_full_home_loses_no_record_and_says_the_real_error(
    farm: SshdFarm, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    with tmpfs(home, "8m"):
        env = {**os.environ, "IRTOOL_HOME": str(home), "IRTOOL_RESPONDER": "ann"}
        incident = open_incident(env, tmp_path, farm)
        free = os.statvfs(home).f_bavail * os.statvfs(home).f_frsize
        (home / "ballast-run").write_bytes(b"\0" * (free - (2 << 20)))  # 2 MiB left
        ran = irtool(env, "incident", "run", incident, "flood", timeout=120)
        assert ran.returncode == 1, ran.stdout + ran.stderr  # the output was not kept whole
        journal = events(home, incident)
        kinds = [e["kind"] for e in journal]
        assert kinds[-4:] == ["run.started", "command.ran", "host.failed", "run.finished"]
        assert any("full" in e["data"].get("spooled", {}).get("why", "") for e in journal)
        record = next(e for e in journal if e["kind"] == "command.ran")
        assert_kept_as_named(home / "incidents" / incident / "evidence", record["data"]["stdout"])
        assert not list((home / "incidents" / incident / "spool").glob("*.json"))
        assert irtool(env, "verify", incident).returncode == 0

        ballast = fill(home)
        try:
            note = irtool(env, "incident", "note", incident, "x" * 100_000)
            assert note.returncode == 75, note.stderr
            assert note.stderr.count("\n") == 1, note.stderr
            assert note.stderr.startswith("irtool: ")
            assert "the disk under the journal is full" in note.stderr
            assert "cannot rollback" not in note.stderr
        finally:
            ballast.unlink()
        assert irtool(env, "incident", "note", incident, "space again").returncode == 0
        assert irtool(env, "verify", incident).returncode == 0
