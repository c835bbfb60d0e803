"""The WinRM test double is faithful: pywinrm's own Protocol drives it end to end."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pytest
import requests
from winrm.exceptions import InvalidCredentialsError, WinRMOperationTimeoutError
from winrm.protocol import Protocol

from irtool.remote.powershell import command_line, decode_clixml, fetch_script
from tests.support.wsman import (
    DEFAULT_PASSWORD,
    DEFAULT_USER,
    SIGNAL_TERMINATE,
    WsmanServer,
)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[WsmanServer]:
    with WsmanServer(tmp_path, operation_timeout_cap=0.3) as endpoint:
        yield endpoint
    assert endpoint.errors == []


def protocol(
    server: WsmanServer,
    transport: Literal["ntlm", "basic"] = "ntlm",
    password: str = DEFAULT_PASSWORD,
    **options: Any,
) -> Protocol:
    return Protocol(
        endpoint=server.url,
        transport=transport,
        username=DEFAULT_USER,
        password=password,
        server_cert_validation="validate",
        ca_trust_path=str(server.ca_file),
        read_timeout_sec=10,
        operation_timeout_sec=5,
        **options,
    )


def run(
    client: Protocol, line: str, stdin: bytes | None = None, codepage: int = 65001
) -> tuple[bytes, bytes, int]:
    shell = client.open_shell(codepage=codepage)
    command = client.run_command(shell, line)
    if stdin is not None:
        client.send_command_input(shell, command, stdin, end=True)
    result: tuple[bytes, bytes, int] = client.get_command_output(shell, command)
    client.cleanup_command(shell, command)
    client.close_shell(shell)
    return result


def test_ntlm_over_https_round_trips_output_and_exit_code(server: WsmanServer) -> None:
    out, err, code = run(protocol(server), "echo hello; echo oops >&2; exit 7")
    assert (out, err, code) == (b"hello\n", b"oops\n", 7)
    # Receive repeats for as long as the command runs.
    actions = [a for i, a in enumerate(server.actions) if server.actions[i - 1 : i] != [a]]
    assert actions == ["Create", "Command", "Receive", "Signal", "Delete"]
    assert server.command_lines == ["echo hello; echo oops >&2; exit 7"]
    assert server.codepages == [65001]
    # One handshake for the whole shell: later requests ride the authenticated connection.
    assert server.auth_log == [("Negotiate", DEFAULT_USER, True)]


def test_ntlm_refuses_a_wrong_password(server: WsmanServer) -> None:
    with pytest.raises(InvalidCredentialsError):
        protocol(server, password="wrong").open_shell()
    assert server.auth_log == [("Negotiate", DEFAULT_USER, False)]
    assert server.actions == []


@pytest.mark.parametrize(("cbt", "accepted"), [("relaxed", True), ("strict", False)])
def test_a_client_without_channel_binding(tmp_path: Path, cbt: Any, accepted: bool) -> None:
    with WsmanServer(tmp_path, cbt=cbt) as endpoint:
        client = protocol(endpoint, send_cbt=False)
        if accepted:
            assert run(client, "printf ok") == (b"ok", b"", 0)
        else:
            with pytest.raises(InvalidCredentialsError):
                client.open_shell()
        assert endpoint.auth_log == [("Negotiate", DEFAULT_USER, accepted)]


@pytest.mark.parametrize("tls", [True, False], ids=["https", "http"])
def test_basic_auth(tmp_path: Path, tls: bool) -> None:
    with WsmanServer(tmp_path, tls=tls, auth="basic") as endpoint:
        assert run(protocol(endpoint, "basic"), "printf ok") == (b"ok", b"", 0)
        with pytest.raises(InvalidCredentialsError):
            protocol(endpoint, "basic", password="wrong").open_shell()
        assert ("Basic", DEFAULT_USER, False) in endpoint.auth_log
        assert endpoint.errors == []


def test_ntlm_over_http_seals_every_message(tmp_path: Path) -> None:
    with WsmanServer(tmp_path, tls=False) as endpoint:
        assert run(protocol(endpoint), "printf sealed") == (b"sealed", b"", 0)
        assert endpoint.sealed_messages == len(endpoint.actions) >= 5
        assert endpoint.errors == []


def test_a_certificate_from_an_unknown_ca_is_refused(tmp_path: Path) -> None:
    with WsmanServer(tmp_path, untrusted_cert=True) as endpoint:
        with pytest.raises(requests.exceptions.SSLError):
            protocol(endpoint).open_shell()
        assert endpoint.actions == []


def test_cmd_line_limit_and_stdin(server: WsmanServer) -> None:
    client = protocol(server)
    too_long = "echo " + "x" * 8187
    assert len(too_long) == 8192
    assert run(client, too_long) == (b"", b"The command line is too long.\r\n", 1)
    assert run(client, "cat", stdin=b"line one\r\nline two") == (b"line one\r\nline two", b"", 0)
    # Big output on both streams at once takes several bounded Receives.
    out, err, code = run(client, "head -c 700000 /dev/zero; head -c 600000 /dev/zero >&2")
    assert (len(out), len(err), code) == (700000, 600000, 0)
    assert server.actions.count("Receive") >= 3 + 3


def test_fake_powershell_serialises_stderr_and_reads_long_scripts_from_stdin(
    server: WsmanServer, tmp_path: Path
) -> None:
    client = protocol(server)
    line, stdin = command_line("printf 'out\\n'; echo 'bad <thing>' >&2; exit 3")
    assert stdin is None
    out, err, code = run(client, line)
    assert (out, code) == (b"out\n", 3)
    assert err.startswith(b"#< CLIXML\r\n") and b'<Obj S="progress"' in err
    assert decode_clixml(err) == b"bad <thing>\r\n"

    long_line, long_stdin = command_line("# " + "pad " * 3000 + "\nprintf long")
    assert long_stdin is not None
    assert run(client, long_line, stdin=long_stdin) == (b"long", b"", 0)

    evidence = tmp_path / "u_ex240101.log"
    evidence.write_bytes(b"GET / 200\r\n" * 100)
    line, _ = command_line(fetch_script("hash", str(evidence), 0, 11))
    assert run(client, line) == (
        (hashlib.sha256(b"GET / 200\r\n").hexdigest() + "\r\n").encode(),
        b"",
        0,
    )
    line, _ = command_line(fetch_script("chunk", str(evidence), 4, 5))
    assert run(client, line)[0] == base64.b64encode(b"/ 200") + b"\r\n"
    line, _ = command_line(fetch_script("stat", str(tmp_path / "missing.log")))
    _, err, code = run(client, line)
    assert code == 1 and b"Could not find file" in decode_clixml(err)


def test_receive_times_out_and_terminate_kills_the_process_group(server: WsmanServer) -> None:
    client = protocol(server)
    shell = client.open_shell()
    command = client.run_command(shell, "sleep 30 & wait")
    started = time.monotonic()
    with pytest.raises(WinRMOperationTimeoutError):
        client.get_command_output_raw(shell, command)
    assert time.monotonic() - started < 3
    client.cleanup_command(shell, command)
    assert server.signals == [SIGNAL_TERMINATE]
    (pid,) = server.process_ids
    deadline = time.monotonic() + 5
    while server.process_group_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)  # polling for the kernel to reap, bounded by the deadline
    assert not server.process_group_alive(pid)
    client.close_shell(shell)
