"""An exercise whose inventory points at a live sshd never opens a socket and never reads a
secret: every command of the CLI is run in this process under an audit hook that sees each
`socket.connect`, with a keyring backend that records every question put to it."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keyring
import pytest
import yaml
from click.testing import CliRunner
from keyring.backend import KeyringBackend

from irtool.cli import cli
from irtool.journal import Journal
from tests.support.drill import CONTACTS, RUNBOOK
from tests.support.sshd import SshdFarm

# Audit hooks cannot be removed: this one records only while a test has armed it.
CONNECTS: list[Any] | None = None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if CONNECTS is not None and event == "socket.connect":
        CONNECTS.append(args[1])


sys.addaudithook(_audit)


class RecordingKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    def get_password(self, service: str, username: str) -> str | None:
        self.asked.append(f"{service}/{username}")
        return "canary-not-to-be-read"

    def set_password(self, service: str, username: str, password: str) -> None:
        self.asked.append(f"set {service}/{username}")

    def delete_password(self, service: str, username: str) -> None:
        self.asked.append(f"delete {service}/{username}")


@pytest.fixture
def watched() -> Iterator[tuple[list[Any], RecordingKeyring]]:
    global CONNECTS
    before = keyring.get_keyring()
    recorder = RecordingKeyring()
    keyring.set_keyring(recorder)
    CONNECTS = []
    try:
        yield CONNECTS, recorder
    finally:
        CONNECTS = None
        keyring.set_keyring(before)


def connections_logged(farm: SshdFarm) -> int:
    return farm[0].log_text().count("Connection from")


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_no_socket_connects_and_no_secret_is_read_in_an_exercise_on_a_live_inventory(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    watched: tuple[list[Any], RecordingKeyring],
) -> None:
    connects, recorder = watched
    monkeypatch.setenv("IRTOOL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("IRTOOL_RESPONDER", "ann")
    with SshdFarm(tmp_path / "sshd") as farm:
        marker = tmp_path / "blocked"
        inventory = {
            "hosts": {
                "web01": {
                    "address": "127.0.0.1",
                    "port": farm[0].port,
                    "transport": "ssh",
                    "user": farm.user,
                    "auth": "password",
                    "credential": "web01-admin",  # a live run would ask the keyring for it
                    "host_key": farm[0].fingerprint,
                    "groups": ["fleet"],
                    "vars": {"marker": str(marker)},
                }
            }
        }
        (tmp_path / "inventory.yaml").write_text(yaml.safe_dump(inventory))
        (tmp_path / "drill.yaml").write_text(RUNBOOK)
        (tmp_path / "contacts.yaml").write_text(CONTACTS)
        before = connections_logged(farm)
        probed = len(connects)  # the farm's own readiness probes are over

        opened = json.loads(
            run(
                "incident",
                "new",
                str(tmp_path / "drill.yaml"),
                "--exercise",
                "--inventory",
                str(tmp_path / "inventory.yaml"),
                "--contacts",
                str(tmp_path / "contacts.yaml"),
                "--param",
                "attacker_ip=203.0.113.9",
                "--json",
            )
        )
        incident = opened["id"]
        run("incident", "done", incident, "assess")
        run("incident", "done", incident, "call-team")
        run("incident", "decide", incident, "is-compromise", "confirmed")
        ran = run("incident", "run", incident, "collect-state")
        assert "collect ok on 1 of 1 host(s)" in ran
        run("incident", "request", incident, "block", "--reason", "drill")
        run("incident", "approve", incident, "block", "--as", "ben")
        applied = run("incident", "run", incident, "block", "--yes")
        assert "step 'block' is done" in applied
        run("incident", "rollback", incident, "block", "--yes", "--reason", "drill over")
        run("incident", "fetch", incident, "web01", "/var/log/iis/u_ex261121.log")

        assert connects[probed:] == []
        assert connections_logged(farm) == before, farm[0].log_text()[-2000:]
    assert recorder.asked == []
    assert not marker.exists()

    path = tmp_path / "home" / "incidents" / incident / "journal.sqlite"
    with Journal(path, incident) as journal:
        events = list(journal.events())
    assert events[0].data["mode"] == "exercise"
    custody = [e for e in events if e.kind in ("command.ran", "file.fetched")]
    assert {e.data["purpose"] for e in custody} == {"collect", "action", "rollback", "fetch"}
    assert {e.data["transport"] for e in custody} == {"simulated"}
    assert {e.data["identity"] for e in custody} == {
        "simulated host (exercise: no connection was made)"
    }
    assert "canary-not-to-be-read" not in path.read_bytes().decode("utf-8", "replace")
