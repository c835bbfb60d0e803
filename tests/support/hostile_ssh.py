"""A compromised host's SSH port: it answers every connection with lines of terminal escapes.

SSH lets a server send lines before its version line (RFC 4253, 4.2). paramiko reads up to
100 of them; when none is an `SSH-` line it fails with the last line quoted whole
("Indecipherable protocol version ..."), and irtool records and shows that as the host's
failure reason: host-controlled text, byte for byte, in the journal, on the responder's
terminal and in every export.
"""

from __future__ import annotations

from tests.support.sshd import BlackHole

# Everything a hostile line can do to a terminal or a reader, in one line (no LF, no "SSH-").
HOSTILE = (
    "pwned "
    "\x1b]52;c;cm0gLXJmIH4=\x07"  # OSC 52: write the clipboard ("rm -rf ~")
    "\x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\"  # OSC 8: a hyperlink
    "\x1b]0;owned title\x07"  # OSC 0: the window title
    "\x1b[2J\x1b[H\x1b[5A"  # CSI: clear the screen, move the cursor
    "\x1bc"  # RIS: reset the terminal
    "\x1b(0"  # the line-drawing character set
    "\u009b31m"  # 8-bit CSI (C1), sent as UTF-8
    "\u202etxt.exe"  # a right-to-left override
    " [/] [bold red]markup[/bold red]"
)
LINES = 100  # paramiko gives up after this many lines without a version


def hostile_ssh(line: str = HOSTILE) -> BlackHole:
    """A listener on 127.0.0.1 that sends `line` as every pre-version line of each
    connection; `port` is where it listens; use as a context manager."""
    return BlackHole(greeting=(line + "\r\n").encode("utf-8") * LINES)
