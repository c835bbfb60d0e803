"""The record tells the truth when the journal is busy, a run's process dies, or two
terminals run the same step: real processes, a real sshd, a real second SQLite writer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from irtool.journal import Journal
from tests.support.cli import irtool
from tests.support.poll import wait_until
from tests.support.runbooks import runbook
from tests.support.sshd import SshdFarm

ROOT = Path(__file__).resolve().parent.parent

RUNBOOK = runbook(
    "faults",
    "Faults",
    """\
- id: block
  type: action
  title: Block
  shell: sh
  timeout: 30
  targets: [group:fleet]
  command: "touch {{ host.vars.dir }}/applied-{{ host.name }}; touch {{ host.vars.dir }}/go;
    while [ ! -e {{ host.vars.dir }}/locked ]; do sleep 0.05; done"
  rollback: "rm {{ host.vars.dir }}/applied-{{ host.name }}"
- id: watch
  type: collect
  title: Watch
  shell: sh
  timeout: 60
  targets: [group:fleet]
  commands:
    - id: tail
      title: Tail
      command: "echo first-line; while [ ! -e {{ host.vars.dir }}/stop ]; do sleep 0.05;
        done; echo last-line"
""",
)


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdFarm]:
    with SshdFarm(tmp_path_factory.mktemp("sshd"), count=1) as started:
        yield started


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "IRTOOL_HOME": str(tmp_path / "home"),
        "IRTOOL_RESPONDER": "ann",
        "PYTHONPATH": str(ROOT),
    }


def host(kind: str, farm: SshdFarm | None, work: Path) -> dict[str, Any]:
    if kind == "local":
        return {"address": "localhost", "transport": "local", "groups": ["fleet"],
                "vars": {"dir": str(work)}}  # fmt: skip
    assert farm is not None
    return {
        "address": "127.0.0.1", "port": farm[0].port, "transport": "ssh", "user": farm.user,
        "auth": "key", "identity_file": str(farm.client_key), "host_key": farm[0].fingerprint,
        "connect_timeout": 5, "groups": ["fleet"], "vars": {"dir": str(work)},
    }  # fmt: skip


def open_incident(env: dict[str, str], tmp_path: Path, hosts: dict[str, Any]) -> str:
    (tmp_path / "faults.yaml").write_text(RUNBOOK)
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump({"hosts": hosts}))
    opened = irtool(
        env, "incident", "new", str(tmp_path / "faults.yaml"),
        "--inventory", str(tmp_path / "inventory.yaml"), "--json",
    )  # fmt: skip
    assert opened.returncode == 0, opened.stderr
    return str(json.loads(opened.stdout)["id"])


def directory(env: dict[str, str], incident: str) -> Path:
    return Path(env["IRTOOL_HOME"]) / "incidents" / incident


def events(env: dict[str, str], incident: str) -> list[dict[str, Any]]:
    with Journal(directory(env, incident) / "journal.sqlite", incident) as journal:
        return [event.as_dict() for event in journal.events()]


def start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "irtool", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def hold_journal(env: dict[str, str], incident: str, work: Path) -> subprocess.Popen[str]:
    """A second writer that takes the journal's lock once the action has begun on the host."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.journal_holder",
         str(directory(env, incident) / "journal.sqlite"), str(work / "go"), str(work / "locked")],
        env=env, stdin=subprocess.PIPE, text=True,
    )  # fmt: skip


def spooled(env: dict[str, str], incident: str) -> list[Path]:
    return sorted((directory(env, incident) / "spool").glob("*.json"))


@pytest.mark.parametrize("kind", ["local", "ssh"])
def test_an_action_that_ran_while_the_journal_was_busy_is_recorded_as_run(
    kind: str, farm: SshdFarm, env: dict[str, str], tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    incident = open_incident(env, tmp_path, {"web01": host(kind, farm, work)})
    holder = hold_journal(env, incident, work)
    run = start(env, "incident", "run", incident, "block", "--yes", "--reason", "attacker")
    try:
        wait_until(lambda: spooled(env, incident), "the custody record to reach the spool")
        assert run.poll() is None  # still trying to append it
    finally:
        holder.communicate("\n", timeout=30)
    out, err = run.communicate(timeout=60)
    assert run.returncode == 0, out + err
    assert "step 'block' is done" in out
    assert (work / "applied-web01").exists()
    journal = events(env, incident)
    ran = [e for e in journal if e["kind"] == "command.ran"]
    assert len(ran) == 1 and ran[0]["data"]["exit_status"] == 0
    assert "busy" in ran[0]["data"]["spooled"]["why"]
    assert not [e for e in journal if e["kind"] == "host.failed"]
    assert [e["kind"] for e in journal][-2:] == ["run.finished", "step.completed"]
    assert spooled(env, incident) == []
    assert irtool(env, "verify", incident).returncode == 0


def test_a_run_killed_while_the_journal_is_busy_leaves_its_record_for_the_next_command(
    farm: SshdFarm, env: dict[str, str], tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    incident = open_incident(env, tmp_path, {"web01": host("ssh", farm, work)})
    holder = hold_journal(env, incident, work)
    run = start(env, "incident", "run", incident, "block", "--yes", "--reason", "attacker")
    try:
        # Both records of the run wait in the spool while it retries: then it dies.
        wait_until(lambda: len(spooled(env, incident)) == 2, "both records in the spool")
        run.kill()
        run.wait(timeout=10)
        # The journal is still held: the records wait, and every face says so.
        shown = irtool(env, "incident", "show", incident, "--json")
        assert shown.returncode == 0, shown.stderr
        pending = json.loads(shown.stdout)["pending_records"]
        assert [line.split(" at ")[0] for line in pending] == [
            "command.ran of block on web01",
            "run.finished of block",
        ]
        assert "2 custody record(s) pending" in shown.stderr
        text = irtool(env, "incident", "show", incident)
        assert "PENDING 2 custody record(s)" in text.stdout
        checked = irtool(env, "verify", incident)
        assert checked.returncode == 1 and "PENDING command.ran of block on web01" in checked.stderr
    finally:
        holder.communicate("\n", timeout=30)
    recovered = irtool(env, "incident", "recover", incident)
    assert recovered.returncode == 0, recovered.stderr
    assert "appended 2 custody record(s)" in recovered.stdout
    journal = events(env, incident)
    ran = next(e for e in journal if e["kind"] == "command.ran")
    assert ran["data"]["purpose"] == "action" and ran["data"]["exit_status"] == 0
    assert journal[-1]["kind"] == "run.finished" and "spooled" in journal[-1]["data"]
    # Applied on the host, so it can be seen as applied and rolled back.
    rolled = irtool(env, "incident", "rollback", incident, "block", "--yes")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert not (work / "applied-web01").exists()
    assert irtool(env, "verify", incident).returncode == 0


def partial_stdout(env: dict[str, str], incident: str) -> bytes:
    for path in (directory(env, incident) / "evidence").glob(".partial-*-stdout"):
        return path.read_bytes()
    return b""


@contextmanager
def streaming(
    env: dict[str, str], tmp_path: Path, farm: SshdFarm
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`irtool incident run` of a collector that prints a line and goes on running, once that
    line is on disk (while the command still runs); the host's loop ends on leaving."""
    work = tmp_path / "work"
    work.mkdir()
    incident = open_incident(env, tmp_path, {"web01": host("ssh", farm, work)})
    irtool(env, "incident", "skip", incident, "block", "--reason", "collect first")
    run = start(env, "incident", "run", incident, "watch")
    try:
        wait_until(lambda: b"first-line" in partial_stdout(env, incident), "output on disk", 10)
        yield incident, run
    finally:
        (work / "stop").touch()


def test_output_of_a_run_killed_mid_stream_becomes_interrupted_evidence(
    farm: SshdFarm, env: dict[str, str], tmp_path: Path
) -> None:
    with streaming(env, tmp_path, farm) as (incident, run):
        run.kill()
        run.wait(timeout=10)
    shown = irtool(env, "incident", "show", incident, "--json")
    assert shown.returncode == 0, shown.stderr
    assert "kept the output of 1 interrupted command(s)" in shown.stderr
    runs = json.loads(shown.stdout)["unfinished_runs"]
    assert [(r["step"], r["state"]) for r in runs] == [("watch", "interrupted")]
    journal = events(env, incident)
    ran = next(e for e in journal if e["kind"] == "command.ran")
    assert ran["data"]["interrupted"] is True and ran["data"]["exit_status"] is None
    assert "interrupted" in ran["data"]["failure"]
    kept = directory(env, incident) / "evidence" / ran["data"]["stdout"]["sha256"]
    assert kept.read_bytes() == b"first-line\n"
    assert journal[-1]["kind"] == "run.finished" and journal[-1]["data"]["interrupted"] is True
    checked = irtool(env, "verify", incident)
    assert checked.returncode == 0, checked.stderr
    exported = irtool(env, "export", incident, "--format", "json")
    assert exported.returncode == 0 and '"interrupted": true' in exported.stdout
    # The dead run's lock died with it: the step runs again.
    again = irtool(env, "incident", "run", incident, "watch")
    assert again.returncode == 0, again.stdout + again.stderr


def test_sighup_cancels_a_run_as_ctrl_c_does(
    farm: SshdFarm, env: dict[str, str], tmp_path: Path
) -> None:
    with streaming(env, tmp_path, farm) as (incident, run):
        run.send_signal(signal.SIGHUP)
        out, err = run.communicate(timeout=30)
    assert run.returncode == 1, out + err
    assert "Traceback" not in err and "SIGHUP" in err
    journal = events(env, incident)
    ran = next(e for e in journal if e["kind"] == "command.ran")
    assert ran["data"]["failure"].startswith("cancelled")
    kept = directory(env, incident) / "evidence" / ran["data"]["stdout"]["sha256"]
    assert kept.read_bytes().startswith(b"first-line\n")
    assert journal[-1]["kind"] == "run.finished" and journal[-1]["data"]["cancelled"] is True


def test_one_run_of_a_step_at_a_time_from_any_terminal(
    farm: SshdFarm, env: dict[str, str], tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    incident = open_incident(env, tmp_path, {"web01": host("ssh", farm, work)})
    first = start(env, "incident", "run", incident, "block", "--yes", "--reason", "attacker")
    try:
        wait_until(lambda: (work / "go").exists(), "the first run to reach the host")
        second = irtool(
            env, "incident", "run", incident, "block", "--yes", "--reason", "me too", "--as", "bob"
        )
        assert second.returncode == 2
        assert "step 'block' is already running: action by ann since" in second.stderr
        assert f"(pid {first.pid} on " in second.stderr
        rollback = irtool(env, "incident", "rollback", incident, "block", "--yes", "--as", "bob")
        assert rollback.returncode == 2 and "already running" in rollback.stderr
    finally:
        (work / "locked").touch()
    out, err = first.communicate(timeout=60)
    assert first.returncode == 0, out + err
    journal = events(env, incident)
    assert sum(e["kind"] == "run.started" for e in journal) == 1
    assert sum(e["kind"] == "command.ran" for e in journal) == 1


def test_a_rolled_back_action_shows_rolled_back_and_can_be_applied_again(
    env: dict[str, str], tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "locked").touch()  # the action runs straight through
    hosts = {name: host("local", None, work) for name in ("web01", "web02")}
    incident = open_incident(env, tmp_path, hosts)
    for name in ("web01", "web02"):
        applied = irtool(env, "incident", "run", incident, "block", "--yes", "--reason", "attacker",
                         "--host", name)  # fmt: skip
        assert applied.returncode == 0, applied.stderr
    journal = events(env, incident)
    done = next(e for e in journal if e["kind"] == "step.completed")
    assert done["data"]["note"] == "applied on 2 host(s) over 2 runs"  # both runs counted
    assert irtool(env, "incident", "rollback", incident, "block", "--yes").returncode == 0
    shown = irtool(env, "incident", "show", incident)
    assert "[<] block: Block (rolled back)" in shown.stdout
    step = next(
        s
        for s in json.loads(irtool(env, "incident", "show", incident, "--json").stdout)["steps"]
        if s["id"] == "block"
    )
    assert step["status"] == "rolled back"
    bare = irtool(env, "incident", "run", incident, "block", "--yes")
    assert bare.returncode == 2 and "needs a reason" in bare.stderr
    again = irtool(env, "incident", "run", incident, "block", "--yes", "--reason", "back again")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "step 'block' is done" in again.stdout
    assert all((work / f"applied-{n}").exists() for n in ("web01", "web02"))
    shown = irtool(env, "incident", "show", incident)
    assert "[x] block: Block" in shown.stdout


def test_verify_names_partial_files_nothing_accounts_for(
    env: dict[str, str], tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    incident = open_incident(env, tmp_path, {"web01": host("local", None, work)})
    stray = directory(env, incident) / "evidence" / ".partial-0123abcd-stdout"
    stray.write_bytes(b"who wrote this?")
    checked = irtool(env, "verify", incident)
    assert checked.returncode == 1
    assert "LEFTOVER .partial-0123abcd-stdout (15 bytes)" in checked.stderr


def test_the_terminal_ui_path_is_refused_while_another_process_runs_the_step(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The UI runs steps through the same Runner: a run held by another process refuses it."""
    from irtool.engine.runner import Runner
    from irtool.engine.session import IncidentSession, Refused
    from irtool.evidence.store import EvidenceStore
    from irtool.remote.local import LocalTransport

    work = tmp_path / "work"
    work.mkdir()
    incident = open_incident(env, tmp_path, {"web01": host("local", None, work)})
    first = start(env, "incident", "run", incident, "block", "--yes", "--reason", "attacker")
    try:
        wait_until(lambda: (work / "go").exists(), "the first run to reach the host")
        monkeypatch.setenv("IRTOOL_HOME", env["IRTOOL_HOME"])
        session = IncidentSession.open(incident)
        runner = Runner(
            session,
            {"local": LocalTransport()},
            EvidenceStore(directory(env, incident) / "evidence"),
            "ben",
        )
        with pytest.raises(Refused, match=rf"already running: action by ann .*pid {first.pid}"):
            runner.run("block", reason="from the UI")
        session.close_journal()
    finally:
        (work / "locked").touch()
    assert first.wait(timeout=60) == 0
