"""Issue 15, hostile hosts: nothing a host sends acts on the responder's terminal or a report.

A host on a compromised estate answers the SSH connection with lines full of terminal escapes
(OSC 52 clipboard, OSC 8 link, OSC 0 title, cursor moves, a reset, 8-bit CSI, a bidi override,
Rich markup). irtool records that text as the host's failure; these tests read the bytes the
CLI writes to a real terminal (a pty: click strips escapes only when it is not a terminal)
and the bytes of every export, and find the text shown (`\\x1b`, `\\u202e`), never acted on.
"""

from __future__ import annotations

import csv
import io
import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.cli import irtool
from tests.support.hostile_ssh import HOSTILE, hostile_ssh
from tests.support.runbooks import runbook
from tests.support.sshd import BlackHole, SshdFarm

RUNBOOK = runbook(
    "fleet",
    "Fleet triage",
    """\
- id: triage
  type: collect
  title: Triage
  shell: sh
  timeout: 10
  targets: [group:fleet]
  commands:
    - {id: name, title: Name, command: "echo {{ host.name }}"}
- id: wrap
  type: manual
  title: Wrap up
""",
)

FORMULA_ACTOR = "=cmd|' /C calc'!A0"
# A responder's note: written by us, but its controls must still never be interpreted.
NOTE = "first line \x1b]0;note title\x07\nsecond line \u202eevil"

# What must never reach a terminal or a report as it is.
RAW = {
    "ESC": b"\x1b",
    "8-bit CSI": b"\x9b",  # also the second byte of U+009B in UTF-8
    "U+202E": "\u202e".encode(),
}


# How each export shows the host's line and the note: markdown escapes its own `\` and `]`,
# timesketch's json its `\`.
SHOWN = {
    "markdown": [
        rb"pwned \\x1b\]52;c;cm0gLXJmIH4=\\x07",
        rb"\\x9b31m\\u202etxt.exe \[/\] \[bold red\]",
        rb"note: first line \\x1b\]0;note title\\x07 second line \\u202eevil",
    ],
    "html": [
        rb"pwned \x1b]52;c;cm0gLXJmIH4=\x07",
        rb"\x9b31m\u202etxt.exe [/] [bold red]",
        rb"note: first line \x1b]0;note title\x07 second line \u202eevil",
    ],
    "csv": [
        rb"pwned \x1b]52;c;cm0gLXJmIH4=\x07",
        rb"\x9b31m\u202etxt.exe [/] [bold red]",
        rb"note: first line \x1b]0;note title\x07 second line \u202eevil",
    ],
    "timesketch": [
        rb"pwned \\x1b]52;c;cm0gLXJmIH4=\\x07",
        rb"\\x9b31m\\u202etxt.exe [/] [bold red]",
        rb"note: first line \\x1b]0;note title\\x07 second line \\u202eevil",
    ],
}


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdFarm]:
    with SshdFarm(tmp_path_factory.mktemp("sshd"), count=1) as started:
        yield started


@pytest.fixture(scope="module")
def hostile() -> Iterator[BlackHole]:
    with hostile_ssh() as listener:
        yield listener


def _host(farm: SshdFarm, port: int) -> dict[str, Any]:
    return {
        "address": "127.0.0.1",
        "port": port,
        "transport": "ssh",
        "user": farm.user,
        "auth": "key",
        "identity_file": str(farm.client_key),
        "host_key": farm[0].fingerprint,
        "connect_timeout": 5,
        "groups": ["fleet"],
    }


def _on_a_terminal(env: dict[str, str], *args: str, timeout: float = 60) -> tuple[int, bytes]:
    """`irtool ARGS` with stdout and stderr on a pty, as at a responder's terminal: its exit
    status and every byte it wrote there."""
    master, slave = os.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "irtool", *args],
            stdin=subprocess.DEVNULL,
            stdout=slave,
            stderr=slave,
            env=env,
        )
    finally:
        os.close(slave)
    out = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every writer has closed the terminal
                break
            if not chunk:
                break
            out += chunk
        status = process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)
    assert b"Traceback" not in out, out.decode("utf-8", "replace")
    return status, bytes(out)


def _assert_shown_not_acted_on(data: bytes, where: str) -> None:
    for name, raw in RAW.items():
        assert raw not in data, f"{name} reached {where} raw"


@pytest.fixture(scope="module")
def incident(
    farm: SshdFarm, hostile: BlackHole, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, str], str, bytes]:
    """An incident whose run met a hostile host (and a good one), run at a terminal by a
    responder whose name a spreadsheet would read as a formula; and a note with controls."""
    where = tmp_path_factory.mktemp("hostile")
    env = {
        **os.environ,
        "IRTOOL_HOME": str(where / "home"),
        "IRTOOL_RESPONDER": "ann",
        "IRTOOL_LOG": str(where / "debug.log"),  # paramiko logs the host's banner too
    }
    (where / "fleet.yaml").write_text(RUNBOOK)
    hosts = {"web01": _host(farm, farm[0].port), "evil": _host(farm, hostile.port)}
    (where / "inventory.yaml").write_text(yaml.safe_dump({"hosts": hosts}))
    opened = irtool(
        env, "incident", "new", str(where / "fleet.yaml"),
        "--inventory", str(where / "inventory.yaml"), "--json",
    )  # fmt: skip
    assert opened.returncode == 0, opened.stderr
    incident_id = str(json.loads(opened.stdout)["id"])
    status, seen = _on_a_terminal(
        env, "incident", "run", incident_id, "triage", "--as", FORMULA_ACTOR
    )
    assert status == 1, seen.decode("utf-8", "replace")
    noted = irtool(env, "incident", "note", incident_id, NOTE)
    assert noted.returncode == 0, noted.stderr
    return env, incident_id, seen


def test_a_hostile_ssh_banner_reaches_the_terminal_only_as_visible_text(
    incident: tuple[dict[str, str], str, bytes],
) -> None:
    _env, _id, seen = incident
    # The host's line did arrive, and is told: in the progress line and the FAILED line.
    assert b"FAILED evil: unreachable" in seen or b"FAILED evil:" in seen, seen
    assert b"Indecipherable protocol version" in seen
    _assert_shown_not_acted_on(seen, "the terminal")
    assert b"pwned \\x1b]52;c;cm0gLXJmIH4=\\x07" in seen  # OSC 52, shown
    assert b"\\x1b]8;;http://evil.example/\\x1b\\click" in seen  # OSC 8, shown
    assert b"\\x1b]0;owned title\\x07\\x1b[2J\\x1b[H\\x1b[5A\\x1bc\\x1b(0" in seen
    assert b"\\x9b31m\\u202etxt.exe" in seen  # 8-bit CSI and the override, shown
    assert b"[/] [bold red]markup[/bold red]" in seen  # markup is text, not style
    # Both the progress line (stderr) and the FAILED line (stdout) carry it, each made visible.
    assert seen.count(b"\\x1b]52;c;") >= 2


def test_show_and_verify_at_a_terminal_show_the_record_and_act_on_nothing(
    incident: tuple[dict[str, str], str, bytes],
) -> None:
    env, incident_id, _seen = incident
    skipped = irtool(env, "incident", "skip", incident_id, "triage", "--reason", HOSTILE)
    assert skipped.returncode == 0, skipped.stderr
    status, shown = _on_a_terminal(env, "incident", "show", incident_id)
    assert status == 0, shown
    assert b"triage: Triage (pwned \\x1b]52;c;" in shown
    _assert_shown_not_acted_on(shown, "show")
    status, verified = _on_a_terminal(env, "verify", incident_id)
    assert status == 0 and b"journal intact" in verified, verified
    _assert_shown_not_acted_on(verified, "verify")


@pytest.mark.parametrize("form", ["markdown", "html", "json", "csv", "timesketch"])
def test_every_export_shows_the_hosts_words_and_acts_on_none_of_them(
    incident: tuple[dict[str, str], str, bytes], tmp_path: Path, form: str
) -> None:
    env, incident_id, _seen = incident
    target = tmp_path / f"report.{form}"
    exported = irtool(env, "export", incident_id, "--format", form, "-o", str(target))
    assert exported.returncode == 0, exported.stderr
    data = target.read_bytes()
    _assert_shown_not_acted_on(data, f"the {form} export")
    assert b"Indecipherable protocol version" in data
    if form == "json":
        # json keeps every value exactly (the chain is checked from it), escaped: read back,
        # the host's words and the note are what was recorded, byte for byte.
        document = json.loads(data)
        reasons = [e["data"].get("reason", "") for e in document["events"]]
        assert any(HOSTILE in r for r in reasons)
        assert NOTE in [e["data"].get("text") for e in document["events"]]
        assert b"\\u001b]52;c;" in data and b"\\u009b31m\\u202etxt.exe" in data
    else:
        for shown in SHOWN[form]:
            assert shown in data, shown


def _cells(form: str, data: str) -> list[dict[str, Any]]:
    if form == "csv":
        return list(csv.DictReader(io.StringIO(data)))
    return [json.loads(line) for line in data.splitlines()]


@pytest.mark.parametrize("form", ["csv", "timesketch"])
def test_a_cell_a_spreadsheet_would_run_as_a_formula_starts_with_a_quote(
    incident: tuple[dict[str, str], str, bytes], form: str
) -> None:
    env, incident_id, _seen = incident
    exported = irtool(env, "export", incident_id, "--format", form)
    assert exported.returncode == 0, exported.stderr
    rows = _cells(form, exported.stdout)
    by_responder = [r for r in rows if r["kind"] in ("run.started", "command.ran")]
    assert by_responder and all(r["actor"] == "'" + FORMULA_ACTOR for r in by_responder)
    for row in rows:
        for name, value in row.items():
            if isinstance(value, str):
                assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), (name, value)


def test_the_debug_log_holds_the_hosts_words_only_as_visible_text(
    incident: tuple[dict[str, str], str, bytes],
) -> None:
    env, _id, _seen = incident
    logged = Path(env["IRTOOL_LOG"]).read_bytes()
    assert b"Indecipherable protocol version" in logged  # the host's line was logged
    _assert_shown_not_acted_on(logged, "the debug log")
