"""The record tells the truth at the edges: deadline kills, files that are not files, bad hashes.

Real sshd hosts on 127.0.0.1, the local transport, and the suite's WS-Management endpoint.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from irtool.engine.runner import Runner, RunReport
from irtool.engine.session import IncidentSession
from irtool.evidence.store import EvidenceStore
from irtool.journal.incidents import EVIDENCE_DIR, incident_dir
from irtool.model.inventory import Inventory, ResolvedHost
from irtool.remote import powershell
from irtool.remote.base import Connection, Deadline, Failure, HostFailure, Transport
from irtool.remote.local import LocalTransport
from irtool.remote.ssh import SshTransport
from irtool.remote.winrm import WinrmTransport
from irtool.secrets.run import RunSecrets
from irtool.tui.feed import RunFeed
from tests.support import wsman
from tests.support.runbooks import open_collect_incident
from tests.support.sshd import SshdFarm
from tests.support.wsman import DEFAULT_PASSWORD, DEFAULT_USER, WsmanServer


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdFarm]:
    with SshdFarm(tmp_path_factory.mktemp("sshd")) as started:
        yield started


@pytest.fixture(scope="module")
def special_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Paths that are not regular files, and the words a refusal must name each with."""
    where = tmp_path_factory.mktemp("special")
    (where / "folder").mkdir()
    os.mkfifo(where / "fifo")
    return {
        "/proc/version": "a pseudo-file",
        "/dev/zero": "a character device",
        str(where / "folder"): "a directory",
        str(where / "fifo"): "a named pipe (FIFO)",
    }


def ssh_settings(farm: SshdFarm, index: int = 0) -> dict[str, Any]:
    return {
        "address": "127.0.0.1",
        "port": farm[index].port,
        "transport": "ssh",
        "user": farm.user,
        "auth": "key",
        "identity_file": str(farm.client_key),
        "host_key": farm[index].fingerprint,
        "connect_timeout": 5,
    }


def ssh_transport(tmp_path: Path) -> SshTransport:
    # An empty ssh config and known_hosts: nothing of the tester's own ~/.ssh leaks in.
    (tmp_path / "ssh_config").write_text("")
    (tmp_path / "known_hosts").write_text("")
    return SshTransport(
        RunSecrets(),
        config_file=tmp_path / "ssh_config",
        known_hosts_file=tmp_path / "known_hosts",
    )


def resolved(settings: dict[str, Any]) -> ResolvedHost:
    return Inventory.model_validate({"hosts": {"web01": settings}}).resolve("web01")


def runner(session: IncidentSession, transports: dict[str, Transport], **options: Any) -> Runner:
    store = EvidenceStore(incident_dir(session.state.id) / EVIDENCE_DIR)
    return Runner(session, transports, store, "ann", **options)


def recorded(session: IncidentSession, kind: str) -> list[dict[str, Any]]:
    return [{"host": e.host, **e.data} for e in session.journal.events() if e.kind == kind]


# -- a deadline kill is a timeout ------------------------------------------------------------


def test_a_command_killed_at_its_deadline_is_recorded_as_timeout_never_as_an_exit_status(
    farm: SshdFarm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At the deadline the channel is closed; the command dies of SIGPIPE and sshd sends its
    exit status, 141, often before the close is noticed. Five hosts printing as fast as they
    can, read by the run screen's feed, showed it in nearly every run before the fix."""
    hosts = {f"web{i}": ssh_settings(farm) for i in range(5)}
    session = open_collect_incident(tmp_path, monkeypatch, hosts, command="yes | cat", timeout=2)
    feed = RunFeed(list(hosts))
    report = runner(
        session,
        {"ssh": ssh_transport(tmp_path)},
        on_output=feed.output,
        on_progress=feed.progress,
    ).run("collect")
    ran = recorded(session, "command.ran")
    assert len(ran) == 5
    assert [(r["exit_status"], (r["failure"] or "").split(":")[0]) for r in ran] == [
        (None, "timeout")
    ] * 5, [(r["host"], r["exit_status"], r["failure"]) for r in ran]
    failed = recorded(session, "host.failed")
    assert sorted(f["failure"] for f in failed) == ["timeout"] * 5
    assert {h: r.failure.kind if r.failure else None for h, r in report.results.items()} == {
        h: Failure.TIMEOUT for h in hosts
    }


def test_local_commands_killed_by_a_cancel_are_recorded_as_cancelled_not_as_signal_9(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The responder cancels (x on the run screen, Ctrl-C) from another thread: SIGKILL, both
    pipes end, and the process's -9 is there to be read before anything looks at the cancel
    again. Half the commands were recorded as exiting -9 before the fix; six are run."""
    hosts = {f"gw{i}": {"address": "localhost", "transport": "local"} for i in range(6)}
    session = open_collect_incident(
        tmp_path, monkeypatch, hosts, command="echo started; sleep 30", timeout=30
    )
    started: set[str] = set()
    all_started = threading.Event()

    def on_output(host: str, stream: str, data: bytes) -> None:
        started.add(host)
        if len(started) == len(hosts):
            all_started.set()

    run = runner(session, {"local": LocalTransport()}, on_output=on_output)
    reports: list[RunReport] = []
    worker = threading.Thread(target=lambda: reports.append(run.run("collect")))
    worker.start()
    try:
        assert all_started.wait(20)
    finally:
        run.cancel.cancel()
        worker.join(20)
    ran = recorded(session, "command.ran")
    assert [(r["exit_status"], r["failure"]) for r in ran] == [
        (None, "cancelled: cancelled by the responder")
    ] * len(hosts), [(r["host"], r["exit_status"], r["failure"]) for r in ran]
    assert reports[0].cancelled


# -- what is not a regular file is not fetched -------------------------------------------------


def fetch_refused(connection: Connection, path: str) -> HostFailure:
    received: list[bytes] = []
    with pytest.raises(HostFailure) as refused:
        connection.fetch(path, Deadline(5), received.append)
    assert received == [], f"{path}: bytes were taken before the refusal"
    return refused.value


def test_ssh_refuses_to_fetch_what_is_not_a_regular_file_and_says_what_it_is(
    farm: SshdFarm, tmp_path: Path, special_files: dict[str, str]
) -> None:
    connection = ssh_transport(tmp_path).connect(resolved(ssh_settings(farm)), Deadline(10))
    try:
        refusals = {path: fetch_refused(connection, path) for path in special_files}
        # The connection is still good for a file that is one.
        (tmp_path / "ok.log").write_bytes(b"GET / 200\n")
        kept: list[bytes] = []
        fetched = connection.fetch(str(tmp_path / "ok.log"), Deadline(5), kept.append)
    finally:
        connection.close()
    for path, kind in special_files.items():
        assert f"{path} is {kind}" in refusals[path].reason, refusals[path]
        assert "not a regular file" in refusals[path].reason
    assert (fetched.size, b"".join(kept)) == (10, b"GET / 200\n")


def test_the_local_transport_refuses_to_fetch_what_is_not_a_regular_file_and_says_what_it_is(
    special_files: dict[str, str],
) -> None:
    connection = LocalTransport().connect(
        resolved({"address": "localhost", "transport": "local"}), Deadline(5)
    )
    for path, kind in special_files.items():
        refused = fetch_refused(connection, path)  # a FIFO must not hang it either
        assert f"{path} is {kind}" in refused.reason, refused
    empty = special_files_dir(special_files) / "empty.log"
    empty.write_bytes(b"")
    assert connection.fetch(str(empty), Deadline(5), lambda data: None).size == 0


def special_files_dir(special_files: dict[str, str]) -> Path:
    return Path(next(p for p, kind in special_files.items() if kind == "a directory")).parent


@pytest.fixture
def winrm_server(tmp_path: Path) -> Iterator[WsmanServer]:
    with WsmanServer(tmp_path / "wsman", operation_timeout_cap=0.5) as started:
        yield started


def winrm_connection(server: WsmanServer) -> Connection:
    class Given:
        def secret(self, name: str) -> str:
            return DEFAULT_PASSWORD

    settings = {
        "address": "127.0.0.1",
        "port": server.port,
        "transport": "winrm",
        "auth": "ntlm",
        "user": DEFAULT_USER,
        "credential": "collect",
        "tls": {"ca_file": str(server.ca_file)},
        "connect_timeout": 5,
    }
    return WinrmTransport(Given()).connect(resolved(settings), Deadline(10))


def test_winrm_refuses_a_file_whose_size_reads_as_zero_yet_has_content(
    winrm_server: WsmanServer,
) -> None:
    """The endpoint runs the fetch script's ops in Python with the file as it is: /proc/version
    and /dev/zero both say 0 bytes, and both have content. (A FIFO is not tried: the endpoint's
    open() would wait for a writer; on Windows the script refuses a pipe as unseekable.)"""
    connection = winrm_connection(winrm_server)
    try:
        refusals = [fetch_refused(connection, path) for path in ("/proc/version", "/dev/zero")]
    finally:
        connection.close()
    for path, refused in zip(("/proc/version", "/dev/zero"), refusals, strict=True):
        assert f"{path} is a pseudo-file" in refused.reason, refused


def test_winrm_turns_the_fetch_scripts_refusal_into_what_the_path_is(
    winrm_server: WsmanServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the fetch script says on Windows for a directory (Get-Item gives no FileInfo):
    its refusal line, raw, after powershell.exe's CLIXML preamble, and exit 3."""
    emulate = wsman._Command._fetch  # the endpoint's Python rendering of the script's ops

    def as_the_script_does(command: Any, op: str, path: str, offset: int, count: int) -> None:
        if os.path.isdir(path):
            preamble = wsman.CLIXML_HEADER + wsman.CLIXML_PROGRESS + wsman.CLIXML_FOOTER
            command._finish(3, stderr=f"{preamble}{powershell.NOT_A_FILE} a directory\r\n".encode())
            return
        emulate(command, op, path, offset, count)

    monkeypatch.setattr(wsman._Command, "_fetch", as_the_script_does)
    connection = winrm_connection(winrm_server)
    try:
        refused = fetch_refused(connection, str(tmp_path))
    finally:
        connection.close()
    assert refused.reason == (
        f"{tmp_path} is a directory, not a regular file: only regular files can be fetched"
    )


def test_the_fetch_script_looks_at_what_it_is_given_before_it_opens_it() -> None:
    for op in ("stat", "chunk", "hash"):
        script = powershell.fetch_script(op, r"C:\inetpub\logs\u_ex261121.log", 0, 1)
        look, refuse, open_ = (
            script.index("Get-Item -LiteralPath $path"),
            script.index("-isnot [System.IO.FileInfo]"),
            script.index("[System.IO.File]::Open("),
        )
        assert look < refuse < open_
        assert "if (-not $f.CanSeek)" in script  # a device or pipe behind a file name
        assert script.count(powershell.NOT_A_FILE) == 2


# -- a hash that is not a hash is a protocol failure -------------------------------------------

SHA256SUM_STANDIN = """#!/bin/sh
# What a broken or lying host answers in place of sha256sum: the test's chosen answer.
cat > /dev/null
cat "{answer}"
"""


@pytest.fixture(scope="module")
def lying_farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SshdFarm, Path]]:
    """An sshd whose sessions find a stand-in sha256sum first on their PATH."""
    where = tmp_path_factory.mktemp("lying")
    (where / "bin").mkdir()
    answer = where / "answer"
    standin = where / "bin" / "sha256sum"
    standin.write_text(SHA256SUM_STANDIN.format(answer=answer))
    standin.chmod(0o755)
    path = f"{where / 'bin'}:/usr/local/bin:/usr/bin:/bin"
    with SshdFarm(where / "sshd", environment={"PATH": path}) as started:
        yield started, answer


@pytest.mark.parametrize(
    "answer",
    [
        "z" * 64 + "  -",  # 64 characters, not hex
        "abc123  -",  # hex, too short
        "{good}0  -",  # the right hash with a digit more
        "{good}\x1b[2J  -",  # and a terminal escape
    ],
    ids=["not-hex", "short", "too-long", "escape"],
)
def test_a_remote_hash_that_is_not_64_hex_digits_fails_the_fetch_as_protocol(
    lying_farm: tuple[SshdFarm, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    answer: str,
) -> None:
    farm, answer_file = lying_farm
    log = tmp_path / "u_ex261121.log"
    log.write_bytes(b"GET /shell.aspx 200\n")
    answer_file.write_text(answer.format(good=hashlib.sha256(log.read_bytes()).hexdigest()))
    session = open_collect_incident(tmp_path, monkeypatch, {"web01": ssh_settings(farm)})
    with pytest.raises(HostFailure) as failed:
        runner(session, {"ssh": ssh_transport(tmp_path)}).fetch("web01", str(log), timeout=10)
    assert failed.value.kind is Failure.PROTOCOL
    assert f"the host's hash of {log} is not a SHA-256" in failed.value.reason
    assert "\x1b" not in failed.value.reason  # the host's text is shown escaped
    (record,) = recorded(session, "file.fetched")
    # The host's answer is never recorded as its hash.
    assert record["remote_sha256"] is None
    assert record["failure"].startswith("protocol: the host's hash")


def test_a_winrm_hash_that_is_not_64_hex_digits_fails_the_fetch_as_protocol(
    winrm_server: WsmanServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The endpoint hashes honestly; the hash op is swapped for a script that answers with
    something else, and the client must refuse what comes back over WS-Man."""
    honest = powershell.fetch_script

    def lying(op: powershell.FetchOp, path: str, offset: int = 0, count: int = 0) -> str:
        return "echo 'NOT-A-HASH'" if op == "hash" else honest(op, path, offset, count)

    monkeypatch.setattr(powershell, "fetch_script", lying)
    log = tmp_path / "u_ex261121.log"
    log.write_bytes(b"GET /shell.aspx 200\n")
    connection = winrm_connection(winrm_server)
    try:
        with pytest.raises(HostFailure) as failed:
            connection.fetch(str(log), Deadline(10), lambda data: None)
    finally:
        connection.close()
    assert failed.value.kind is Failure.PROTOCOL
    assert "is not a SHA-256" in failed.value.reason and "NOT-A-HASH" in failed.value.reason


def test_an_uppercase_hash_is_still_a_hash(
    lying_farm: tuple[SshdFarm, Path], tmp_path: Path
) -> None:
    farm, answer_file = lying_farm
    log = tmp_path / "web.config"
    log.write_bytes(b"<configuration/>\n")
    digest = hashlib.sha256(log.read_bytes()).hexdigest()
    answer_file.write_text(digest.upper() + "  -\n")
    connection = ssh_transport(tmp_path).connect(resolved(ssh_settings(farm)), Deadline(10))
    try:
        fetched = connection.fetch(str(log), Deadline(10), lambda data: None)
    finally:
        connection.close()
    assert fetched.sha256 == digest
