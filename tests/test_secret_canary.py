"""A host echoes a canary secret every way it can; it is kept only in the raw evidence files.

Real sshd hosts and a keyring backend registered through keyring's own API. The first host
prints the password of a credential only the second host uses (before that host is reached),
in upper and lower case, and split across two chunks with a pause between them (the host's
own workload); a fetch from the second host meets a host tool that answers with the secret
where a hash should be (irtool lower-cases what a host says its hash is).
"""

from __future__ import annotations

import json
import os
import random
import secrets
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keyring
import pytest
import yaml
from textual.widgets import Log

from irtool.secrets.redact import Redactor
from irtool.tui.app import IrtoolApp
from irtool.tui.screens.run import RunRequest, RunScreen
from tests.support.cli import irtool
from tests.support.keyring_backend import FileKeyring
from tests.support.runbooks import runbook
from tests.support.sshd import SshdFarm
from tests.support.tui import opened, wait_for

ROOT = Path(__file__).resolve().parent.parent
EXPORT_FORMATS = ("markdown", "html", "json", "csv", "timesketch")

RUNBOOK = runbook(
    "canary",
    "Canary",
    """\
- id: echo
  type: collect
  title: Echo
  shell: sh
  timeout: 30
  targets: [group:fleet]
  command: "sh {{ host.vars.script }}"
""",
)

# What each host runs: the secret as a banner, lower-cased, on stderr, and in two chunks with
# half a second between them (the sleep is the host's workload, not synchronisation).
ECHO = """\
s=$(cat '{secret}')
printf 'stderr: %s\\n' "$s" >&2
printf 'banner: %s\\n' "$s"
printf 'lower: %s\\n' "$(printf %s "$s" | tr 'A-Z' 'a-z')"
printf 'split: %s' "$(printf %s "$s" | cut -c1-30)"
sleep 0.5
printf '%s end\\n' "$(printf %s "$s" | cut -c31-)"
"""

# The host's sha256sum answers with the secret itself, upper-cased: 64 hex digits.
SHA256SUM = """\
#!/bin/sh
cat >/dev/null
printf '%s  -\\n' "$(cat '{secret}')"
"""


@dataclass
class Hosts:
    farm: SshdFarm
    canary: str  # 64 upper-case hex digits: the passphrase of h2's key
    directory: Path
    inventory: dict[str, Any]


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hosts]:
    directory = tmp_path_factory.mktemp("canary")
    canary = "CA" + secrets.token_hex(31).upper()
    (directory / "secret").write_text(canary)
    (directory / "echo.sh").write_text(ECHO.format(secret=directory / "secret"))
    tools = directory / "tools"
    tools.mkdir()
    (tools / "sha256sum").write_text(SHA256SUM.format(secret=directory / "secret"))
    (tools / "sha256sum").chmod(0o755)
    key = directory / "canary_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", canary, "-C", "canary", "-f", str(key)],
        check=True,
    )
    environment = {"PATH": f"{tools}:/usr/local/bin:/usr/bin:/bin"}
    with SshdFarm(directory / "sshd", count=2, environment=environment) as farm:
        with farm.authorized_keys.open("a") as keys:
            keys.write(key.with_suffix(".pub").read_text())

        def host(index: int, **settings: Any) -> dict[str, Any]:
            return {
                "address": "127.0.0.1",
                "port": farm[index].port,
                "transport": "ssh",
                "user": farm.user,
                "auth": "key",
                "host_key": farm[index].fingerprint,
                "connect_timeout": 5,
                "groups": ["fleet"],
                "vars": {"script": str(directory / "echo.sh")},
                **settings,
            }

        inventory = {
            "hosts": {
                # h1 uses no credential, and prints the one only h2 uses.
                "h1": host(0, identity_file=str(farm.client_key)),
                "h2": host(1, identity_file=str(key), credential="canary-key"),
            }
        }
        yield Hosts(farm, canary, directory, inventory)


@pytest.fixture
def env(tmp_path: Path, hosts: Hosts) -> dict[str, str]:
    env = {
        **os.environ,
        "IRTOOL_HOME": str(tmp_path / "home"),
        "IRTOOL_RESPONDER": "ann",
        "IRTOOL_TEST_KEYRING": str(tmp_path / "keyring.json"),
        "PYTHON_KEYRING_BACKEND": "tests.support.keyring_backend.FileKeyring",
        "PYTHONPATH": str(ROOT),
        "IRTOOL_LOG": str(tmp_path / "irtool.log"),
    }
    stored = irtool(env, "creds", "set", "canary-key", stdin=hosts.canary + "\n")
    assert stored.returncode == 0, stored.stderr
    return env


def open_incident(
    env: dict[str, str], tmp_path: Path, hosts: Hosts, h1_script: Path | None = None
) -> str:
    inventory = json.loads(json.dumps(hosts.inventory))
    if h1_script:
        inventory["hosts"]["h1"]["vars"]["script"] = str(h1_script)
    (tmp_path / "canary.yaml").write_text(RUNBOOK)
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump(inventory))
    opened = irtool(
        env, "incident", "new", str(tmp_path / "canary.yaml"),
        "--inventory", str(tmp_path / "inventory.yaml"), "--json",
    )  # fmt: skip
    assert opened.returncode == 0, opened.stderr
    return str(json.loads(opened.stdout)["id"])


def leaks(canary: str, texts: dict[str, bytes]) -> list[str]:
    """The names of the texts that hold the canary, in any case, or any 16 characters of it in
    a row (what one stream showed may have another's text in the middle)."""
    pieces = [canary[i : i + 16].lower().encode() for i in range(len(canary) - 15)]
    return [name for name, text in texts.items() if any(p in text.lower() for p in pieces)]


def evidence(env: dict[str, str], incident: str) -> dict[str, bytes]:
    directory = Path(env["IRTOOL_HOME"]) / "incidents" / incident / "evidence"
    return {str(p): p.read_bytes() for p in directory.rglob("*") if p.is_file()}


def test_a_canary_echoed_by_hosts_reaches_only_the_evidence_files(
    hosts: Hosts, env: dict[str, str], tmp_path: Path
) -> None:
    incident = open_incident(env, tmp_path, hosts)
    # One host at a time: h1 prints h2's password before h2 is reached.
    ran = irtool(env, "incident", "run", incident, "echo", "--parallel", "1", timeout=120)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    fetched_file = tmp_path / "fetched.txt"
    fetched_file.write_text("a log file\n")
    fetched = irtool(env, "incident", "fetch", incident, "h2", str(fetched_file), "--json")
    assert fetched.returncode != 0  # the "hash" the host gave is no hash of the file
    home = Path(env["IRTOOL_HOME"]) / "incidents" / incident
    texts = {
        "journal": (home / "journal.sqlite").read_bytes(),
        "log": Path(env["IRTOOL_LOG"]).read_bytes(),
        "run output": (ran.stdout + ran.stderr).encode(),
    }
    wal = home / "journal.sqlite-wal"
    if wal.exists():
        texts["journal wal"] = wal.read_bytes()
    for form in EXPORT_FORMATS:
        exported = irtool(env, "export", incident, "--format", form)
        assert exported.returncode == 0, exported.stderr
        texts[f"export {form}"] = exported.stdout.encode()
    shown = irtool(env, "incident", "show", incident, "--json")
    texts["show"] = shown.stdout.encode()
    assert texts["log"], "the debug log was really written"
    journal = texts["journal"] + texts.get("journal wal", b"")
    assert b"[redacted]" in journal  # the fetch's "hash" was the secret, lower-cased
    assert leaks(hosts.canary, texts) == []
    # The raw evidence keeps what the hosts printed, the secret included: it is evidence.
    held = leaks(hosts.canary, evidence(env, incident))
    assert len(held) >= 2, "both hosts' output holds the canary in the evidence"


async def test_the_run_screen_never_shows_a_canary_a_host_echoes(
    hosts: Hosts, env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    incident = open_incident(env, tmp_path, hosts)
    monkeypatch.setenv("IRTOOL_HOME", env["IRTOOL_HOME"])
    monkeypatch.setenv("IRTOOL_TEST_KEYRING", env["IRTOOL_TEST_KEYRING"])
    monkeypatch.setenv("IRTOOL_KEYMAP", str(tmp_path / "keymap.yaml"))
    previous = keyring.get_keyring()
    keyring.set_keyring(FileKeyring())
    try:
        app = IrtoolApp(actor="ann", incident=incident)
        async with app.run_test(size=(120, 30)) as pilot:
            await opened(pilot)
            # One host at a time, h1 shown: h1 prints h2's password before h2 is reached.
            request = RunRequest(incident, "echo", "Echo", ["h1", "h2"])
            run = RunScreen(request, "ann", app.live_transports, pool=1)
            await app.push_screen(run)
            await wait_for(pilot, lambda: run.report is not None, timeout=60, what="the run")
            await pilot.pause(0.3)  # the last tick drains what is left
            assert run.report is not None and not run.report.failed, run.report
            drained = "\n".join(run.query_one("#output", Log).lines)
            shown = {
                "h1 drained": drained,
                "h1 history": run.feed.history("h1"),
                "h2 history": run.feed.history("h2"),
            }
    finally:
        keyring.set_keyring(previous)
    # (stderr may arrive between the two halves: the pane shows streams as they come)
    assert "banner: [redacted]" in drained and "[redacted] end" in drained, drained
    assert leaks(hosts.canary, {k: v.encode() for k, v in shown.items()}) == []
    assert len(leaks(hosts.canary, evidence(env, incident))) >= 2


def host_failures(env: dict[str, str], incident: str) -> dict[str, str]:
    shown = irtool(env, "incident", "show", incident, "--json")
    assert shown.returncode == 0, shown.stderr
    journal = Path(env["IRTOOL_HOME"]) / "incidents" / incident / "journal.sqlite"
    rows = sqlite3.connect(journal).execute(
        "select host, data from events where kind = 'host.failed'"
    )
    return {host: json.loads(data)["failure"] for host, data in rows}


def test_every_credential_is_loaded_before_the_first_host_is_reached(
    hosts: Hosts, env: dict[str, str], tmp_path: Path
) -> None:
    """h1, reached first, empties the keyring: h2 still logs in with what was loaded."""
    tamper = tmp_path / "tamper.sh"
    tamper.write_text(f"printf '{{}}' > '{env['IRTOOL_TEST_KEYRING']}'\n")
    incident = open_incident(env, tmp_path, hosts, h1_script=tamper)
    ran = irtool(env, "incident", "run", incident, "echo", "--parallel", "1", timeout=120)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert json.loads(Path(env["IRTOOL_TEST_KEYRING"]).read_text()) == {}  # h1 did empty it
    assert host_failures(env, incident) == {}


def test_a_credential_that_cannot_be_had_fails_its_host_not_the_run(
    hosts: Hosts, env: dict[str, str], tmp_path: Path
) -> None:
    deleted = irtool(env, "creds", "delete", "canary-key")
    assert deleted.returncode == 0, deleted.stderr
    incident = open_incident(env, tmp_path, hosts)
    ran = irtool(env, "incident", "run", incident, "echo", "--parallel", "1", timeout=120)
    assert ran.returncode != 0
    assert "FAILED h2" in ran.stdout and "canary-key" in ran.stdout, ran.stdout
    assert host_failures(env, incident) == {"h2": "credential"}
    # h1 ran all the same: its stdout and stderr are kept.
    assert len(leaks(hosts.canary, evidence(env, incident))) == 2


def test_the_debug_log_redacts_whatever_logs_a_secret(tmp_path: Path) -> None:
    """paramiko, or anything else, logging a secret in any case, or in a traceback."""
    script = """\
import logging, os, sys
from irtool.secrets.redact import RedactingFilter, Redactor
secret = os.environ["CANARY"]
redactor = Redactor()
redactor.add(secret)
handler = logging.FileHandler(sys.argv[1])
handler.addFilter(RedactingFilter(redactor))
log = logging.getLogger("paramiko.transport")
log.addHandler(handler)
log.warning("Banner: %s", secret.lower())
try:
    raise ValueError("bad password " + secret.upper())
except ValueError:
    log.exception("auth failed")
"""
    canary = "Canary-" + secrets.token_hex(8)
    log = tmp_path / "debug.log"
    done = subprocess.run(
        [sys.executable, "-c", script, str(log)],
        capture_output=True, text=True, env={**os.environ, "CANARY": canary}, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    written = log.read_bytes()
    assert written.count(b"[redacted]") == 2, written
    assert leaks(canary, {"log": written}) == []


def test_a_stream_redacts_as_the_whole_text_would_however_it_is_cut() -> None:
    """Every way of cutting a text into chunks shows what redacting it whole shows; a line
    that cannot begin a secret is shown at once, not held back."""
    redactor = Redactor()
    for secret in ("canary-Secret1", "Straße-pw"):
        redactor.add(secret)
    words = ["x", "canary-secret1", "CANARY-SECRET1", "can", "\n", "STRASSE-PW", "straße-pw"]
    chance = random.Random(15)
    for _ in range(500):
        text = "".join(chance.choice(words) for _ in range(20))
        stream, shown, at = redactor.stream(), [], 0
        while at < len(text):
            step = chance.randint(1, 12)
            shown.append(stream.feed(text[at : at + step]))
            at += step
        shown.append(stream.end())
        assert "".join(shown) == redactor.text(text)
    assert redactor.stream().feed("started\n") == "started\n"
