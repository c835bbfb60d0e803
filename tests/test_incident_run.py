"""`irtool incident run|rollback|fetch` against real sshd hosts, with good and bad hosts mixed."""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from irtool.engine.runner import Runner
from irtool.engine.session import IncidentSession
from irtool.evidence.store import EvidenceStore
from irtool.journal import Journal
from irtool.model.inventory import ResolvedHost
from irtool.remote.base import Connection, Deadline, Failure, HostFailure
from irtool.secrets.redact import Redactor
from tests.support.cli import irtool
from tests.support.sshd import BlackHole, SshdFarm, closed_port
from tests.support.wsman import DEFAULT_USER, WsmanServer

RUNBOOK = """\
id: fleet
title: Fleet triage
summary: Test runbook for remote execution.
version: "1"
severity: high
applies_to: [iis]
triggers: [A test]
activation:
  may_activate: [security]
roles: [security]
phases:
  - id: work
    title: Work
    steps:
      - id: triage
        type: collect
        title: Triage
        shell: sh
        timeout: 4
        targets: [group:fleet]
        commands:
          - {id: name, title: Name, command: "echo {{ host.name }}"}
          - {id: listing, title: Listing, command: "ls / ; echo listed >&2"}
      - id: block
        type: action
        title: Block
        shell: sh
        timeout: 10
        targets: [group:fleet]
        command: "touch {{ host.vars.marker }}"
        rollback: "rm {{ host.vars.marker }}"
      - id: isolate
        type: action
        title: Isolate
        shell: sh
        approvals: 2
        targets: [group:fleet]
        command: "touch {{ host.vars.marker }}.isolated"
        rollback: "rm {{ host.vars.marker }}.isolated"
"""


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdFarm]:
    with SshdFarm(tmp_path_factory.mktemp("sshd"), count=2) as started:
        yield started


def ssh_host(farm: SshdFarm, index: int, marker: Path, **settings: Any) -> dict[str, Any]:
    return {
        "address": "127.0.0.1",
        "port": farm[index].port,
        "transport": "ssh",
        "user": farm.user,
        "auth": "key",
        "identity_file": str(farm.client_key),
        "host_key": farm[index].fingerprint,
        "connect_timeout": 2,
        "groups": ["fleet"],
        "vars": {"marker": str(marker)},
        **settings,
    }


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "IRTOOL_HOME": str(tmp_path / "home"), "IRTOOL_RESPONDER": "ann"}


def open_incident(env: dict[str, str], tmp_path: Path, hosts: dict[str, Any]) -> str:
    (tmp_path / "fleet.yaml").write_text(RUNBOOK)
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump({"hosts": hosts}))
    opened = irtool(
        env, "incident", "new", str(tmp_path / "fleet.yaml"),
        "--inventory", str(tmp_path / "inventory.yaml"), "--json",
    )  # fmt: skip
    assert opened.returncode == 0, opened.stderr
    return str(json.loads(opened.stdout)["id"])


def events(env: dict[str, str], incident: str) -> list[dict[str, Any]]:
    path = Path(env["IRTOOL_HOME"]) / "incidents" / incident / "journal.sqlite"
    with Journal(path, incident) as journal:
        return [event.as_dict() for event in journal.events()]


def test_good_hosts_finish_while_unreachable_and_hung_ones_fail_alone(
    farm: SshdFarm, env: dict[str, str], tmp_path: Path
) -> None:
    with BlackHole() as hole:
        incident = open_incident(
            env,
            tmp_path,
            {
                "web01": ssh_host(farm, 0, tmp_path / "m1"),
                "web02": ssh_host(farm, 1, tmp_path / "m2"),
                "gone": ssh_host(farm, 0, tmp_path / "m3", port=closed_port()),
                "hung": ssh_host(farm, 0, tmp_path / "m4", port=hole.port),
            },
        )
        ran = irtool(env, "incident", "run", incident, "triage")
    assert ran.returncode == 1
    assert "ok on 2 of 4 host(s)" in ran.stdout
    assert "FAILED gone: unreachable" in ran.stdout and "FAILED hung:" in ran.stdout
    assert "stays open" in ran.stdout
    journal = events(env, incident)
    custody = [e for e in journal if e["kind"] == "command.ran"]
    assert sorted((e["host"], e["data"]["item"]) for e in custody) == [
        ("web01", "listing"), ("web01", "name"), ("web02", "listing"), ("web02", "name"),
    ]  # fmt: skip
    record = next(e for e in custody if e["host"] == "web02" and e["data"]["item"] == "name")
    assert record["actor"] == "ann" and record["data"]["collected_by"] == "ann"
    assert record["data"]["identity"] == f"ssh-ed25519 {farm[1].fingerprint}"
    assert record["data"]["command"] == "echo 'web02'"  # the exact command, quoted as sent
    assert record["data"]["exit_status"] == 0
    store = Path(env["IRTOOL_HOME"]) / "incidents" / incident / "evidence"
    assert (store / record["data"]["stdout"]["sha256"]).read_bytes() == b"web02\n"
    failed = {e["host"]: e["data"] for e in journal if e["kind"] == "host.failed"}
    assert failed["gone"]["failure"] == "unreachable"
    assert failed["hung"]["failure"] in ("timeout", "unreachable")
    assert "no SSH" in failed["hung"]["reason"]
    finished = next(e for e in journal if e["kind"] == "run.finished")["data"]
    assert finished["ok"] == ["web01", "web02"] and set(finished["failed"]) == {"gone", "hung"}

    # Again on the hosts that can be reached: they succeed, but the step is not done while
    # two of its hosts have given nothing.
    again = irtool(env, "incident", "run", incident, "triage", "--host", "web01", "--host", "web02")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "step 'triage' stays open: not yet done on gone, hung" in again.stdout


def test_verify_rehashes_evidence_and_names_an_altered_file(
    farm: SshdFarm, env: dict[str, str], tmp_path: Path
) -> None:
    incident = open_incident(env, tmp_path, {"web01": ssh_host(farm, 0, tmp_path / "m")})
    assert irtool(env, "incident", "run", incident, "triage").returncode == 0
    intact = irtool(env, "verify", incident)
    assert intact.returncode == 0 and "evidence intact" in intact.stdout
    record = next(e for e in events(env, incident) if e["kind"] == "command.ran")
    sha = record["data"]["stdout"]["sha256"]
    kept = Path(env["IRTOOL_HOME"]) / "incidents" / incident / "evidence" / sha
    kept.chmod(0o644)
    kept.write_bytes(b"web01 was never here\n")
    broken = irtool(env, "verify", incident)
    assert broken.returncode == 1
    assert f"evidence {sha} was altered" in broken.stderr


def test_an_action_shows_its_commands_needs_confirmation_and_rolls_back(
    farm: SshdFarm, env: dict[str, str], tmp_path: Path
) -> None:
    markers = [tmp_path / "blocked-1", tmp_path / "blocked-2"]
    incident = open_incident(
        env, tmp_path, {f"web0{i + 1}": ssh_host(farm, i, m) for i, m in enumerate(markers)}
    )
    irtool(env, "incident", "done", incident, "triage")
    unconfirmed = irtool(env, "incident", "run", incident, "block", "--reason", "attacker")
    assert unconfirmed.returncode == 2
    assert f"touch '{markers[0]}'" in unconfirmed.stderr and "--yes" in unconfirmed.stderr
    assert not any(m.exists() for m in markers)

    # One host first, as a careful responder would: the step waits for the other.
    first = irtool(env, "incident", "run", incident, "block", "--yes", "--reason", "attacker",
                   "--host", "web01")  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert "not yet done on web02" in first.stdout
    assert markers[0].exists() and not markers[1].exists()
    applied = irtool(env, "incident", "run", incident, "block", "--yes", "--host", "web02")
    assert applied.returncode == 0, applied.stderr
    assert "step 'block' is done" in applied.stdout
    assert all(m.exists() for m in markers)
    rolled = irtool(env, "incident", "rollback", incident, "block", "--yes")
    assert rolled.returncode == 0, rolled.stderr
    assert "rolled back" in rolled.stdout
    assert not any(m.exists() for m in markers)
    kinds = [e["kind"] for e in events(env, incident)]
    assert kinds.index("action.requested") < kinds.index("step.completed", 3)
    assert kinds[-1] == "action.rolled_back"


def test_a_two_person_action_runs_only_after_a_second_responder_approves(
    farm: SshdFarm, env: dict[str, str], tmp_path: Path
) -> None:
    marker = tmp_path / "iso"
    incident = open_incident(env, tmp_path, {"web01": ssh_host(farm, 0, marker)})
    for step in ("triage", "block"):
        irtool(env, "incident", "skip", incident, step, "--reason", "not this time")
    early = irtool(env, "incident", "run", incident, "isolate", "--yes")
    assert early.returncode == 2 and "two people" in early.stderr
    irtool(env, "incident", "request", incident, "isolate", "--reason", "spreading", "--as", "ann")
    waiting = irtool(env, "incident", "run", incident, "isolate", "--yes")
    assert waiting.returncode == 2 and "approval" in waiting.stderr
    assert not Path(f"{marker}.isolated").exists()
    irtool(env, "incident", "approve", incident, "isolate", "--as", "ben")
    assert irtool(env, "incident", "run", incident, "isolate", "--yes").returncode == 0
    assert Path(f"{marker}.isolated").exists()


def test_canary_secrets_never_reach_journal_logs_exports_or_argv(
    farm: SshdFarm, env: dict[str, str], tmp_path: Path
) -> None:
    """A WinRM password and an SSH key passphrase, both from the keyring, used in one run."""
    canary = f"canary-{secrets.token_hex(8)}"
    keyring_file = tmp_path / "keyring.json"
    env = {
        **env,
        "IRTOOL_TEST_KEYRING": str(keyring_file),
        "PYTHON_KEYRING_BACKEND": "tests.support.keyring_backend.FileKeyring",
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
        "IRTOOL_LOG": str(tmp_path / "irtool.log"),
    }
    for name, value in (("winrm-collect", canary), ("gw-key", farm.passphrase)):
        stored = irtool(env, "creds", "set", name, stdin=value + "\n")
        assert stored.returncode == 0, stored.stderr
    assert irtool(env, "creds", "list").stdout.split() == ["gw-key", "winrm-collect"]
    with WsmanServer(tmp_path / "wsman", users={DEFAULT_USER: canary}) as winrm:
        hosts = {
            "gw01": ssh_host(
                farm, 0, tmp_path / "m",
                identity_file=str(farm.encrypted_client_key), credential="gw-key",
            ),
            "web01": {
                "address": "127.0.0.1", "port": winrm.port, "transport": "winrm",
                "user": DEFAULT_USER, "auth": "ntlm", "credential": "winrm-collect",
                "tls": {"ca_file": str(winrm.ca_file)}, "groups": ["fleet"],
                "vars": {"marker": "unused"},
            },
        }  # fmt: skip
        incident = open_incident(env, tmp_path, hosts)
        seen_in_argv = _watch_argv(canary, farm.passphrase)
        try:
            ran = irtool(env, "incident", "run", incident, "triage")
            fetched = irtool(
                env, "incident", "fetch", incident, "web01", str(tmp_path / "fleet.yaml")
            )
        finally:
            leaked_argv = seen_in_argv()
        assert ("Negotiate", DEFAULT_USER, True) in winrm.auth_log
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert fetched.returncode == 0, fetched.stderr
    assert leaked_argv == []
    shown = irtool(env, "incident", "show", incident, "--json")
    written = {
        "journal": (Path(env["IRTOOL_HOME"]) / "incidents" / incident / "journal.sqlite"),
        "log": tmp_path / "irtool.log",
    }
    assert written["log"].stat().st_size > 0  # the debug log was really written
    texts = {name: path.read_bytes() for name, path in written.items()}
    texts |= {"run output": (ran.stdout + ran.stderr).encode(), "export": shown.stdout.encode()}
    wal = written["journal"].with_name("journal.sqlite-wal")
    if wal.exists():
        texts["journal wal"] = wal.read_bytes()
    for secret in (canary, farm.passphrase):
        assert [name for name, text in texts.items() if secret.encode() in text] == []


def _watch_argv(*needles: str) -> Any:
    """Scan every process's argv until stopped; returns the stopper, which lists any hits."""
    stop, hits = threading.Event(), []

    def scan() -> None:
        while not stop.is_set():
            for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
                try:
                    argv = cmdline.read_bytes()
                except OSError:
                    continue
                hits.extend(n for n in needles if n.encode() in argv)
            stop.wait(0.01)

    watcher = threading.Thread(target=scan, daemon=True)
    watcher.start()

    def stopper() -> list[str]:
        stop.set()
        watcher.join()
        return hits

    return stopper


class _LeakyTransport:
    """A transport whose failure message quotes the secret, as a careless library might."""

    def __init__(self, secret: str) -> None:
        self.secret = secret

    def connect(self, host: ResolvedHost, deadline: Deadline) -> Connection:
        raise HostFailure(Failure.AUTH, f"server said: bad password {self.secret!r}")


def test_a_secret_quoted_in_a_failure_is_redacted_before_it_is_written(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IRTOOL_HOME", env["IRTOOL_HOME"])
    incident = open_incident(
        env, tmp_path, {"web01": {"address": "192.0.2.1", "transport": "ssh", "groups": ["fleet"],
                                  "vars": {"marker": "m"}}},
    )  # fmt: skip
    redactor = Redactor()
    redactor.add("hunter2-canary")
    session = IncidentSession.open(incident)
    store = EvidenceStore(Path(env["IRTOOL_HOME"]) / "incidents" / incident / "evidence")
    report = Runner(
        session, {"ssh": _LeakyTransport("hunter2-canary")}, store, "ann", redactor=redactor
    ).run("triage")
    session.close_journal()
    assert report.failed["web01"].failure is not None
    db = Path(env["IRTOOL_HOME"]) / "incidents" / incident / "journal.sqlite"
    rows = sqlite3.connect(db).execute("select data from events where kind='host.failed'")
    (data,) = rows.fetchone()
    assert "hunter2-canary" not in data and "[redacted]" in data


def test_creds_never_take_the_secret_from_argv(env: dict[str, str]) -> None:
    refused = subprocess.run(
        [sys.executable, "-m", "irtool", "creds", "set", "name", "the-secret"],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert refused.returncode == 2 and "unexpected extra argument" in refused.stderr.lower()


def test_without_a_keyring_creds_say_so_plainly(env: dict[str, str]) -> None:
    env = {**env, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    result = irtool(env, "creds", "set", "corp-ir", stdin="x\n")
    assert result.returncode == 1
    assert "no OS keyring is available" in result.stderr


def test_an_action_applied_on_some_hosts_only_can_be_rolled_back(
    farm: SshdFarm, env: dict[str, str], tmp_path: Path
) -> None:
    markers = [tmp_path / "part-1", tmp_path / "part-2"]
    incident = open_incident(
        env, tmp_path, {f"web0{i + 1}": ssh_host(farm, i, m) for i, m in enumerate(markers)}
    )
    irtool(env, "incident", "done", incident, "triage")
    irtool(env, "incident", "run", incident, "block", "--yes", "--reason", "r", "--host", "web01")
    rolled = irtool(env, "incident", "rollback", incident, "block", "--yes")
    assert rolled.returncode == 0, rolled.stderr
    assert "rolled back" in rolled.stdout and "web01: done" in rolled.stderr
    assert "web02" not in rolled.stderr  # never applied there, so never rolled back there
    assert not markers[0].exists()
    assert events(env, incident)[-1]["kind"] == "action.rolled_back"


def test_what_would_refuse_an_action_is_said_before_anyone_confirms(
    farm: SshdFarm, env: dict[str, str], tmp_path: Path
) -> None:
    incident = open_incident(env, tmp_path, {"web01": ssh_host(farm, 0, tmp_path / "m")})
    irtool(env, "incident", "done", incident, "triage")
    refused = irtool(env, "incident", "run", incident, "block")
    assert refused.returncode == 2
    assert "needs a reason" in refused.stderr and "touch" not in refused.stderr


def test_a_log_file_that_cannot_be_written_is_a_one_line_refusal(
    farm: SshdFarm, env: dict[str, str], tmp_path: Path
) -> None:
    incident = open_incident(env, tmp_path, {"web01": ssh_host(farm, 0, tmp_path / "m")})
    env = {**env, "IRTOOL_LOG": str(tmp_path / "no-such-dir" / "irtool.log")}
    result = irtool(env, "incident", "run", incident, "triage")
    assert result.returncode == 2
    assert "IRTOOL_LOG" in result.stderr and "internal error" not in result.stderr


def test_verify_reports_an_evidence_hash_tampered_in_the_journal(
    farm: SshdFarm, env: dict[str, str], tmp_path: Path
) -> None:
    incident = open_incident(env, tmp_path, {"web01": ssh_host(farm, 0, tmp_path / "m")})
    assert irtool(env, "incident", "run", incident, "triage").returncode == 0
    db = sqlite3.connect(Path(env["IRTOOL_HOME"]) / "incidents" / incident / "journal.sqlite")
    db.execute("DROP TRIGGER events_are_never_updated")
    seq, data = db.execute(
        "SELECT seq, data FROM events WHERE kind = 'command.ran' ORDER BY seq LIMIT 1"
    ).fetchone()
    record = json.loads(data)
    record["stdout"]["sha256"] = "not-a-hash"
    db.execute("UPDATE events SET data = ? WHERE seq = ?", (json.dumps(record), seq))
    db.commit()
    db.close()
    broken = irtool(env, "verify", incident)
    assert broken.returncode == 1
    assert f"BROKEN at event {seq}" in broken.stderr
    assert "'not-a-hash' is not a SHA-256" in broken.stderr
