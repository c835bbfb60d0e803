"""`shell: cmd` on the wire: a script becomes one cmd.exe line, over WinRM and Windows SSH."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from irtool.model.inventory import Inventory, OsFamily, ResolvedHost
from irtool.model.steps import Shell
from irtool.remote.base import Deadline, Failure, HostFailure
from irtool.remote.cmdline import CMD_LINE_LIMIT, cmd_line
from irtool.remote.ssh import remote_command
from irtool.remote.winrm import WinrmTransport
from tests.support.remote import run
from tests.support.wsman import DEFAULT_PASSWORD, DEFAULT_USER, WsmanServer

SCRIPT = """\
rem What the host is
@REM and where it keeps its sites

echo first
  echo second
:: a label-style comment
echo third
"""


class Given:
    def __init__(self, **values: str) -> None:
        self.values = values

    def secret(self, name: str) -> str:
        return self.values[name]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[WsmanServer]:
    # Reads every line not for PowerShell as cmd.exe reads `cmd /c LINE`: the first line only.
    with WsmanServer(tmp_path / "wsman", operation_timeout_cap=0.5, cmd_exe=True) as started:
        yield started
        assert started.errors == []


def host(server: WsmanServer) -> ResolvedHost:
    return Inventory.model_validate(
        {
            "hosts": {
                "web01": {
                    "address": "127.0.0.1",
                    "port": server.port,
                    "transport": "winrm",
                    "scheme": "https",
                    "auth": "ntlm",
                    "user": DEFAULT_USER,
                    "credential": "collect",
                    "tls": {"ca_file": str(server.ca_file)},
                }
            }
        }
    ).resolve("web01")


def test_lines_are_joined_comments_and_blanks_dropped() -> None:
    assert cmd_line(SCRIPT) == "echo first & echo second & echo third"
    assert cmd_line("remark.exe /x\r\necho b") == "remark.exe /x & echo b"  # not a comment


@pytest.mark.parametrize(
    ("script", "why"),
    [
        ("echo a ^\necho b", "ends in '^'"),
        ("if exist x (\necho y\n)", "opens a block '('"),
        ("rem only a comment\n\n", "no command"),
        ("echo " + "x" * CMD_LINE_LIMIT, f"at most {CMD_LINE_LIMIT}"),
    ],
)
def test_what_cannot_be_one_line_is_refused(script: str, why: str) -> None:
    with pytest.raises(ValueError, match=re.escape(why)):
        cmd_line(script)


def test_winrm_sends_a_cmd_script_as_one_joined_line_and_every_line_runs(
    server: WsmanServer,
) -> None:
    connection = WinrmTransport(Given(collect=DEFAULT_PASSWORD)).connect(host(server), Deadline(10))
    try:
        status, out, _ = run(connection, SCRIPT, Shell.CMD)
    finally:
        connection.close()
    assert server.command_lines == ["echo first & echo second & echo third"]
    # Sent as written, cmd.exe would have run `rem What the host is` and nothing else.
    assert (status, out.split()) == (0, [b"first", b"second", b"third"])


def test_winrm_refuses_a_cmd_script_too_long_for_one_line_before_sending_it(
    server: WsmanServer,
) -> None:
    connection = WinrmTransport(Given(collect=DEFAULT_PASSWORD)).connect(host(server), Deadline(10))
    try:
        with pytest.raises(HostFailure) as refused:
            run(connection, "\n".join(["echo " + "y" * 90] * 100), Shell.CMD)
    finally:
        connection.close()
    assert refused.value.kind is Failure.PROTOCOL
    assert f"at most {CMD_LINE_LIMIT}" in refused.value.reason
    assert server.command_lines == []


def test_windows_ssh_sends_the_same_joined_line() -> None:
    assert remote_command(SCRIPT, Shell.CMD, OsFamily.WINDOWS) == (
        "echo first & echo second & echo third",
        None,
    )
    with pytest.raises(HostFailure) as refused:
        remote_command("echo a ^\necho b", Shell.CMD, OsFamily.WINDOWS)
    assert refused.value.kind is Failure.PROTOCOL


def test_an_if_or_for_before_another_line_is_bracketed_so_the_next_line_stays_out() -> None:
    """Joined as `if c A & B`, B would run only when c holds; `for ... do A & B` would run B
    each time round. Bracketed, each stays one statement."""
    script = (
        "if exist C:\\x (echo found)\n"
        "netsh advfirewall firewall add rule name=x dir=in action=block protocol=TCP localport=80\n"
        "for %i in (a b) do echo %i\n"
        "echo done\n"
        "if exist C:\\y echo last\n"
    )
    assert cmd_line(script) == (
        "(if exist C:\\x (echo found)) & "
        "netsh advfirewall firewall add rule name=x dir=in action=block protocol=TCP "
        "localport=80 & (for %i in (a b) do echo %i) & echo done & if exist C:\\y echo last"
    )


def test_a_line_that_starts_with_a_quote_keeps_its_quotes_under_cmd_c() -> None:
    line = cmd_line('"%windir%\\system32\\inetsrv\\appcmd.exe" list site\necho "x"\n')
    assert line == '@"%windir%\\system32\\inetsrv\\appcmd.exe" list site & echo "x"'


def test_a_value_ending_in_a_backslash_does_not_escape_its_closing_quote() -> None:
    from irtool.model.quoting import cmd_literal

    assert cmd_literal("D:\\sites\\") == '"D:\\sites\\\\"'
    assert cmd_literal("D:\\sites") == '"D:\\sites"'
