"""What irtool sends to PowerShell parses, and what PowerShell sends back reads as text."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from irtool.remote import powershell
from tests.support.powershell import syntax_problems

PROGRESS = (
    '<Obj S="progress" RefId="0"><TN RefId="0"><T>System.Management.Automation.PSCustomObject'
    '</T><T>System.Object</T></TN><MS><I64 N="SourceId">1</I64><PR N="Record"><AV>Preparing '
    "modules for first use.</AV><AI>0</AI><Nil /><PI>-1</PI><PC>-1</PC><T>Completed</T>"
    "<SR>-1</SR><SD> </SD></PR></MS></Obj>"
)


def clixml(*records: str) -> bytes:
    body = "".join(records)
    return (
        '#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/'
        f'2004/04">{PROGRESS}{body}</Objs>'
    ).encode()


@pytest.mark.parametrize(
    "script",
    [
        powershell.PRELUDE,
        powershell.STDIN_BOOTSTRAP,
        powershell.fetch_script("stat", r"C:\inetpub\logs\LogFiles\W3SVC1\u_ex261121.log"),
        powershell.fetch_script("chunk", "C:\\it's\u2019 here.log", 4096, 1 << 20),
        powershell.fetch_script("hash", r"D:\sites\web.config", 0, 123),
    ],
)
def test_every_script_irtool_generates_parses(script: str) -> None:
    assert syntax_problems(script) == []


def test_the_stdin_route_carries_the_script_exactly() -> None:
    script = "Write-Output 'caf\u00e9'\n" + "# padding\n" * 2000
    line, stdin = powershell.command_line(script)
    assert len(line) <= powershell.CMD_LINE_LIMIT and stdin is not None
    assert powershell.decode_command_line(line) == powershell.STDIN_BOOTSTRAP
    assert base64.b64decode(stdin).decode() == powershell.PRELUDE + script
    short, none = powershell.command_line("Get-Date")
    assert none is None and powershell.decode_command_line(short) == powershell.PRELUDE + "Get-Date"


def test_clixml_errors_read_as_console_text_without_progress_records() -> None:
    data = clixml(
        powershell.clixml_error_record("Get-Item : Cannot find path 'C:\\nope'.\r\n"),
        '<S S="warning">disk &lt;10% free</S>',
        powershell.clixml_error_record("planted: x\U0001f600y.aspx\r\n"),
    )
    # PowerShell escapes each UTF-16 half of a character beyond the BMP on its own.
    data = data.replace("\U0001f600".encode(), b"_xD83D__xDE00_")
    assert powershell.decode_clixml(data).decode() == (
        "Get-Item : Cannot find path 'C:\\nope'.\r\nWARNING: disk <10% freeplanted: "
        "x\U0001f600y.aspx\r\n"
    )


@given(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=60))
def test_clixml_decodes_the_same_however_the_receives_split_it(cuts: list[int]) -> None:
    data = clixml(
        powershell.clixml_error_record("first line é\r\n"),
        PROGRESS,
        powershell.clixml_error_record("second line\r\n"),
    )
    decoder, out, pos = powershell.ClixmlDecoder(), b"", 0
    for cut in cuts:
        out += decoder.feed(data[pos : pos + cut])
        pos += cut
    out += decoder.feed(data[pos:]) + decoder.feed(b"", final=True)
    assert out == powershell.decode_clixml(data) == "first line é\r\nsecond line\r\n".encode()


def test_stderr_that_is_not_clixml_passes_through_even_when_not_utf8() -> None:
    decoder = powershell.ClixmlDecoder()
    first = decoder.feed(b"native tool: caf\xe9 failed\n")
    assert first == "native tool: caf\ufffd failed\n".encode()
    assert decoder.feed(b"", final=True) == b""
