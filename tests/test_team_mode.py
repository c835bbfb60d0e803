"""Team mode from the command line: one incident in a real PostgreSQL (Debian's, started by
the test on 127.0.0.1), worked by responders on two "machines" (two IRTOOL_HOMEs), each with
its own copy; offline work given back with `irtool sync`."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest

from tests.conftest import ROOT
from tests.support.cli import irtool
from tests.support.postgres import Postgres, postgres_server

if TYPE_CHECKING:
    from irtool.engine.session import IncidentSession
    from irtool.engine.state import Evidence

RUNBOOK = str(ROOT / "tests/corpus/valid/every-kind.yaml")
CONTACTS = str(ROOT / "tests/corpus/valid/contacts.yaml")
ROLE = "responder"


@pytest.fixture(scope="module")
def server() -> Iterator[Postgres]:
    with postgres_server() as running:
        with psycopg.connect(running.url(), autocommit=True) as admin:
            admin.execute(f"CREATE ROLE {ROLE} LOGIN")
        # As the administrator would: the command, its URL with no password (trust here).
        env = {**os.environ, "IRTOOL_DATABASE": f"{running.url()}?sslmode=disable"}
        made = irtool(env, "install-database", "--writer", ROLE)
        assert made.returncode == 0, made.stderr
        assert "responder may INSERT and SELECT" in made.stdout
        yield running


def machine(tmp_path: Path, name: str, server: Postgres, who: str) -> dict[str, str]:
    home = tmp_path / name
    home.mkdir()
    url = f"postgresql://{ROLE}@{server.host}:{server.port}/irtool?sslmode=disable"
    return {**os.environ, "IRTOOL_HOME": str(home), "IRTOOL_RESPONDER": who,
            "IRTOOL_DATABASE": url}  # fmt: skip


def opened(env: dict[str, str]) -> str:
    result = irtool(env, "incident", "new", RUNBOOK, "--param", "attacker_ip=203.0.113.7",
                    "--param", "account=CORP\\mallory", "--contacts", CONTACTS, "--as", "ann",
                    "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    return str(json.loads(result.stdout)["id"])


def shown(env: dict[str, str], incident: str) -> dict[str, object]:
    result = irtool(env, "incident", "show", incident, "--json")
    assert result.returncode == 0, result.stderr
    found: dict[str, object] = json.loads(result.stdout)
    return found


def test_two_machines_share_one_incident_and_each_copy_verifies(
    server: Postgres, tmp_path: Path
) -> None:
    ann = machine(tmp_path, "ann-laptop", server, "ann")
    ben = machine(tmp_path, "ben-laptop", server, "ben")
    incident = opened(ann)
    # Ben's machine has never seen it: it is listed from the database, found by a prefix of
    # its id as any incident, and copied when opened.
    listed = json.loads(irtool(ben, "incident", "list", "--json").stdout)
    assert incident in [row["id"] for row in listed]
    note = irtool(ben, "incident", "note", incident[:-1], "seen from ben's laptop")
    assert note.returncode == 0, note.stderr
    assert irtool(ann, "incident", "done", incident, "assemble").returncode == 0
    for env in (ann, ben):
        result = irtool(env, "verify", incident, "--json")
        assert result.returncode == 0, result.stdout + result.stderr
        assert json.loads(result.stdout)["events"] == 3
    heads = {json.loads(irtool(e, "verify", incident, "--json").stdout)["head"] for e in (ann, ben)}
    assert len(heads) == 1
    timeline = irtool(ann, "export", incident, "--format", "json")
    assert "seen from ben's laptop" in timeline.stdout


def test_a_password_in_the_url_is_refused_and_plain_text_needs_loopback(
    server: Postgres, tmp_path: Path
) -> None:
    env = machine(tmp_path, "m", server, "ann")
    env["IRTOOL_DATABASE"] = f"postgresql://{ROLE}:hunter2@{server.host}:{server.port}/irtool"
    result = irtool(env, "incident", "new", RUNBOOK)
    assert result.returncode == 2 and "holds a password" in result.stderr
    assert "hunter2" not in result.stderr
    env["IRTOOL_DATABASE"] = "postgresql://responder@db.example.org/irtool?sslmode=require"
    result = irtool(env, "incident", "new", RUNBOOK, "--param", "attacker_ip=203.0.113.7",
                    "--param", "account=x")  # fmt: skip
    assert result.returncode == 2 and "sslmode=require" in result.stderr, result.stderr


def test_offline_work_is_synced_in_order_and_a_conflict_becomes_a_note(
    server: Postgres, tmp_path: Path
) -> None:
    ann = machine(tmp_path, "ann-laptop", server, "ann")
    ben = machine(tmp_path, "ben-laptop", server, "ben")
    incident = opened(ann)
    assert irtool(ben, "incident", "note", incident, "ben joins").returncode == 0
    # Ben loses the server (its port answers no more): he keeps working on his copy.
    away = {**ben, "IRTOOL_DATABASE": ben["IRTOOL_DATABASE"].replace(
        f":{server.port}/", f":{_dead_port()}/")}  # fmt: skip
    for args in (("note", incident, "written on the train"), ("done", incident, "assemble")):
        result = irtool(away, "incident", *args)
        assert result.returncode == 0, result.stderr
        assert "out of reach" in result.stderr and f"irtool sync {incident}" in result.stderr
    listed = irtool(away, "incident", "list", "--json")  # the database's are not, this one is
    assert incident in [row["id"] for row in json.loads(listed.stdout)], listed.stderr
    # Meanwhile the team goes on: Ann completes the same step, and notes.
    assert irtool(ann, "incident", "done", incident, "assemble", "--note", "bridge").returncode == 0
    assert irtool(ann, "incident", "note", incident, "ann carries on").returncode == 0
    # Back online, Ben's copy holds events the server has not: sync gives them.
    result = irtool(ben, "sync", incident, "--json")
    assert result.returncode == 0, result.stderr
    synced = json.loads(result.stdout)
    assert len(synced["given"]) == 1 and len(synced["refused"]) == 1
    events = json.loads(irtool(ann, "export", incident, "--format", "json").stdout)["events"]
    texts = [e["data"].get("text") for e in events]
    assert "written on the train" in texts
    train = next(e for e in events if e["data"].get("text") == "written on the train")
    assert train["data"]["origin"]["seq"] == 3  # Ben's copy: opening, his note, this
    refused = next(e for e in events if "Refused at sync" in str(e["data"].get("text")))
    assert refused["data"]["refused_offline"]["kind"] == "step.completed"
    assert "already done by ann" in refused["data"]["text"]
    # Nothing is lost, and every chain verifies: the server's, both copies, the offline one.
    for env in (ann, ben):
        result = irtool(env, "verify", incident, "--json")
        assert result.returncode == 0, result.stdout + result.stderr
    offline = list((Path(ben["IRTOOL_HOME"]) / "incidents" / incident).glob("journal.offline-*"))
    assert len(offline) == 1
    # A second sync gives nothing twice.
    again = json.loads(irtool(ben, "sync", incident, "--json").stdout)
    assert again["given"] == [] and again["refused"] == []


def _dead_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def collected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], command: str
) -> tuple[IncidentSession, Evidence]:
    """A team incident opened in this process on the machine `env` describes, one command
    run on this machine (the local transport), its session left open."""
    from irtool.engine.runner import Runner
    from irtool.evidence.store import EvidenceStore
    from irtool.journal.incidents import EVIDENCE_DIR, incident_dir
    from irtool.remote.local import LocalTransport
    from tests.support.runbooks import open_collect_incident

    monkeypatch.setenv("IRTOOL_DATABASE", env["IRTOOL_DATABASE"])
    hosts = {"web01": {"address": "127.0.0.1", "transport": "local"}}
    session = open_collect_incident(Path(env["IRTOOL_HOME"]), monkeypatch, hosts, command)
    store = EvidenceStore(incident_dir(session.state.id) / EVIDENCE_DIR)
    Runner(session, {"local": LocalTransport()}, store, "ann").run("collect")
    (item,) = session.state.evidence
    return session, item


def test_evidence_one_machine_collected_is_opened_verified_and_exported_on_another(
    server: Postgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from irtool.journal.incidents import EVIDENCE_DIR

    ann = machine(tmp_path, "ann-laptop", server, "ann")
    # Several chunks of the database's, the last one partial.
    command = "head -c 2500000 /dev/zero | tr '\\0' 'w'; echo ' w3wp.exe'"
    session, item = collected(tmp_path, monkeypatch, ann, command)
    incident = session.state.id
    session.close_journal()  # gives the database what this session collected
    sha256 = item.files["stdout"]["sha256"]

    ben = machine(tmp_path, "ben-laptop", server, "ben")
    shown = irtool(ben, "evidence", incident, str(item.seq))
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.endswith("w3wp.exe\n") and len(shown.stdout) == item.files["stdout"]["size"]
    kept = Path(ben["IRTOOL_HOME"]) / "incidents" / incident / EVIDENCE_DIR / sha256
    assert kept.is_file()
    kept.unlink()  # verify fetches it again, and checks it
    checked = irtool(ben, "verify", incident, "--json")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert json.loads(checked.stdout)["evidence_problems"] == []
    assert kept.is_file()
