"""The WinRM transport driving pywinrm against the suite's WS-Management endpoint on 127.0.0.1."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from irtool.model.inventory import Inventory, ResolvedHost
from irtool.model.steps import Shell
from irtool.remote import powershell
from irtool.remote.base import Cancel, Deadline, Failure, HostFailure
from irtool.remote.winrm import WinrmTransport
from tests.support.poll import wait_until
from tests.support.remote import refused, run
from tests.support.sshd import closed_port
from tests.support.wsman import DEFAULT_PASSWORD, DEFAULT_USER, WsmanServer

MiB = 1024 * 1024


class Given:
    """The transports' Secrets protocol, from a dict (keyring lookups are tested elsewhere)."""

    def __init__(self, **values: str) -> None:
        self.values = values

    def secret(self, name: str) -> str:
        return self.values[name]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[WsmanServer]:
    with WsmanServer(tmp_path / "wsman", operation_timeout_cap=0.5) as started:
        yield started
        assert started.errors == []


@pytest.fixture
def transport() -> WinrmTransport:
    return WinrmTransport(Given(collect=DEFAULT_PASSWORD, wrong="nope"))


def host(server: WsmanServer, **settings: object) -> ResolvedHost:
    fields: dict[str, object] = {
        "address": "127.0.0.1",
        "port": server.port,
        "transport": "winrm",
        "scheme": "https" if server.tls else "http",
        "auth": "ntlm",
        "user": DEFAULT_USER,
        "credential": "collect",
        "tls": {"ca_file": str(server.ca_file)},
        "connect_timeout": 5,
    }
    fields.update(settings)
    fields = {k: v for k, v in fields.items() if v is not None}
    return Inventory.model_validate({"hosts": {"web01": fields}}).resolve("web01")


def test_https_ntlm_runs_a_command_with_a_verified_certificate_and_utf8_codepage(
    server: WsmanServer, transport: WinrmTransport
) -> None:
    connection = transport.connect(host(server), Deadline(10))
    try:
        assert run(connection, "echo hi; echo warn >&2; exit 7") == (7, b"hi\n", b"warn\n")
        assert run(connection, "printf 'caf\\303\\251'") == (0, "café".encode(), b"")
    finally:
        connection.close()
    assert connection.identity == f"tls sha256:{server.cert_sha256}"
    assert server.codepages == [65001]
    assert ("Negotiate", DEFAULT_USER, True) in server.auth_log
    assert server.actions[-1] == "Delete"


def test_powershell_runs_encoded_and_its_clixml_stderr_reads_as_text(
    server: WsmanServer, transport: WinrmTransport
) -> None:
    connection = transport.connect(host(server), Deadline(10))
    try:
        status, out, err = run(
            connection, "echo from-ps; echo 'Access is denied.' >&2; exit 1", Shell.POWERSHELL
        )
    finally:
        connection.close()
    assert (status, out) == (1, b"from-ps\n")
    assert err == b"Access is denied.\r\n"  # no '#< CLIXML', no progress record
    line = next(c for c in server.command_lines if c.startswith(powershell.POWERSHELL))
    script = powershell.decode_command_line(line)
    assert script is not None and script.startswith(powershell.PRELUDE)


def test_a_script_over_the_cmd_line_limit_goes_through_stdin(
    server: WsmanServer, transport: WinrmTransport
) -> None:
    payload = "x" * 9000
    script = f"# {'padding ' * 500}\nprintf '%s' '{payload}' | wc -c"
    assert len(powershell.POWERSHELL + powershell.encode(script)) > 8191
    connection = transport.connect(host(server), Deadline(10))
    try:
        status, out, _ = run(connection, script, Shell.POWERSHELL)
    finally:
        connection.close()
    assert (status, out.strip()) == (0, b"9000")
    assert all(len(line) <= 8191 for line in server.command_lines)
    assert "Send" in server.actions


def test_ten_mib_on_both_streams_arrive_whole(
    server: WsmanServer, transport: WinrmTransport
) -> None:
    sizes = {"stdout": 0, "stderr": 0}
    digests = {"stdout": hashlib.sha256(), "stderr": hashlib.sha256()}

    def keep(stream: str, data: bytes) -> None:
        sizes[stream] += len(data)
        digests[stream].update(data)

    connection = transport.connect(host(server), Deadline(10))
    try:
        command = "yes out | head -c 10485760 & yes err | head -c 10485760 >&2; wait"
        assert connection.run(command, Shell.SH, Deadline(60), keep) == 0
    finally:
        connection.close()
    for stream, word in (("stdout", b"out\n"), ("stderr", b"err\n")):
        assert sizes[stream] == 10 * MiB
        expected = hashlib.sha256((word * (10 * MiB // 4))[: 10 * MiB]).hexdigest()
        assert digests[stream].hexdigest() == expected


def test_a_file_is_fetched_in_chunks_and_checked_against_the_hosts_hash(
    server: WsmanServer, transport: WinrmTransport, tmp_path: Path
) -> None:
    log = tmp_path / "u_ex261121.log"
    log.write_bytes(os.urandom(2 * MiB + 12345))
    received: list[bytes] = []
    connection = transport.connect(host(server), Deadline(10))
    try:
        fetched = connection.fetch(str(log), Deadline(30), received.append, chunk=MiB)  # type: ignore[call-arg]
    finally:
        connection.close()
    data = b"".join(received)
    assert data == log.read_bytes()
    assert len(received) == 3
    assert (fetched.size, fetched.sha256) == (len(data), hashlib.sha256(data).hexdigest())


def test_fetching_a_missing_file_names_it(
    server: WsmanServer, transport: WinrmTransport, tmp_path: Path
) -> None:
    connection = transport.connect(host(server), Deadline(10))
    try:
        with pytest.raises(HostFailure) as failed:
            connection.fetch(str(tmp_path / "nope.log"), Deadline(10), lambda data: None)
    finally:
        connection.close()
    assert "nope.log" in failed.value.reason


def test_plaintext_basic_is_refused_before_anything_is_sent_unless_marked_insecure(
    tmp_path: Path, transport: WinrmTransport
) -> None:
    with WsmanServer(tmp_path / "plain", tls=False, auth="basic") as plain:
        target = host(plain, auth="basic", tls=None)
        failure = refused(transport, target)
        assert failure.kind is Failure.INSECURE
        assert "insecure: true" in failure.reason
        assert plain.actions == [] and plain.auth_log == []
        connection = transport.connect(
            host(plain, auth="basic", tls=None, insecure=True), Deadline(10)
        )
        try:
            assert run(connection, "echo ok")[:2] == (0, b"ok\n")
        finally:
            connection.close()
    assert any("plain HTTP" in w for w in connection.warnings)
    assert any("Basic" in w for w in connection.warnings)


def test_basic_over_https_also_needs_the_insecure_mark(
    tmp_path: Path, transport: WinrmTransport
) -> None:
    with WsmanServer(tmp_path / "basic", auth="basic") as basic:
        assert refused(transport, host(basic, auth="basic")).kind is Failure.INSECURE
        assert basic.actions == []


def test_an_untrusted_certificate_is_refused_unless_its_thumbprint_is_pinned(
    tmp_path: Path, transport: WinrmTransport
) -> None:
    with WsmanServer(tmp_path / "untrusted", untrusted_cert=True) as untrusted:
        failure = refused(transport, host(untrusted))
        assert failure.kind is Failure.TLS and "not trusted" in failure.reason
        assert untrusted.actions == []
        pinned = host(untrusted, tls={"thumbprint": untrusted.cert_sha256})
        connection = transport.connect(pinned, Deadline(10))
        try:
            assert run(connection, "echo pinned")[:2] == (0, b"pinned\n")
        finally:
            connection.close()
        wrong = refused(transport, host(untrusted, tls={"thumbprint": "ab" * 32}))
    assert wrong.kind is Failure.TLS and "CHANGED" in wrong.reason


def test_a_wrong_password_fails_authentication(server: WsmanServer) -> None:
    transport = WinrmTransport(Given(collect="not-the-password"))
    failure = refused(transport, host(server))
    assert failure.kind is Failure.AUTH
    assert (DEFAULT_USER, False) in {(user, ok) for _, user, ok in server.auth_log}


def test_a_closed_port_is_unreachable(transport: WinrmTransport, tmp_path: Path) -> None:
    with WsmanServer(tmp_path / "w") as server:
        target = host(server, port=closed_port())
    failure = refused(transport, target)
    assert failure.kind is Failure.UNREACHABLE


def test_a_silent_endpoint_fails_at_the_deadline(tmp_path: Path, transport: WinrmTransport) -> None:
    with WsmanServer(tmp_path / "stall", tls=False, auth="basic", stall=True) as silent:
        began = time.monotonic()
        failure = refused(transport, host(silent, auth="basic", tls=None, insecure=True), seconds=2)
        elapsed = time.monotonic() - began
    assert failure.kind is Failure.TIMEOUT
    assert elapsed < 4


def test_a_hanging_command_fails_at_its_deadline_and_is_terminated(
    server: WsmanServer, transport: WinrmTransport
) -> None:
    connection = transport.connect(host(server), Deadline(10))
    began = time.monotonic()
    try:
        with pytest.raises(HostFailure) as failed:
            run(connection, "sleep 30", seconds=2)
    finally:
        connection.close()
    assert failed.value.kind is Failure.TIMEOUT
    assert time.monotonic() - began < 4
    assert any(code.endswith("/terminate") for code in server.signals)
    # Killed: gone within a moment (a loaded machine may take that long to run the kill).
    wait_until(
        lambda: not any(server.process_group_alive(pid) for pid in server.process_ids),
        "the terminated command's processes to be gone",
        timeout=2,
    )


def test_cancelling_stops_a_running_command_promptly(
    server: WsmanServer, transport: WinrmTransport
) -> None:
    cancel = Cancel()
    started = threading.Event()
    failures: list[HostFailure] = []
    connection = transport.connect(host(server), Deadline(10))

    def work() -> None:
        try:
            connection.run(
                "echo go; sleep 30", Shell.SH, Deadline(60, cancel), lambda s, d: started.set()
            )
        except HostFailure as failed:
            failures.append(failed)

    worker = threading.Thread(target=work)
    worker.start()
    assert started.wait(10)
    began = time.monotonic()
    cancel.cancel()
    worker.join(10)
    connection.close()
    assert [f.kind for f in failures] == [Failure.CANCELLED]
    assert time.monotonic() - began < 3
