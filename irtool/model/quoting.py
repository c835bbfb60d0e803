"""Quoting a value as one literal for the shell a command runs in."""

from __future__ import annotations

from irtool.model.steps import Shell

# PowerShell closes a single-quoted string on any of these, not only on the ASCII quote.
POWERSHELL_SINGLE_QUOTES = "'\u2018\u2019\u201a\u201b"


def powershell_literal(value: str) -> str:
    """A PowerShell verbatim string: only single quotes (and their look-alikes) are special,
    and each is escaped by doubling it."""
    _refuse_uncarriable(value)
    return "'" + "".join(c * 2 if c in POWERSHELL_SINGLE_QUOTES else c for c in value) + "'"


def sh_literal(value: str) -> str:
    """A POSIX shell single-quoted word: nothing inside is special, a quote is spliced in."""
    _refuse_uncarriable(value)
    return "'" + value.replace("'", "'\\''") + "'"


# cmd.exe has no quoting that carries these: `%` and `!` expand inside double quotes, a `"`
# ends them, `^` escapes, and a line break ends the command.
CMD_UNCARRIABLE = '"%!^\r\n'


def cmd_literal(value: str) -> str:
    """A cmd.exe double-quoted word. Inside the quotes `& | < > ( )` are plain text; what
    cmd would still read (CMD_UNCARRIABLE) is refused, since no escape is reliable there."""
    _refuse_uncarriable(value)
    bad = sorted({c for c in value if c in CMD_UNCARRIABLE})
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        raise ValueError(f"a value containing {shown} cannot be put in a cmd.exe command")
    # Programs split their own command line (CommandLineToArgvW): a backslash before the
    # closing quote would escape it; doubled, it stays a backslash (`"D:\\sites\\\\"`).
    stripped = value.rstrip("\\")
    return '"' + stripped + "\\" * (2 * (len(value) - len(stripped))) + '"'


def literal(value: str, shell: Shell) -> str:
    if shell is Shell.POWERSHELL:
        return powershell_literal(value)
    if shell is Shell.CMD:
        return cmd_literal(value)
    return sh_literal(value)


def _refuse_uncarriable(value: str) -> None:
    if "\x00" in value:
        # Neither shell can carry NUL in a command line; truncation would change the meaning.
        raise ValueError("a value containing a NUL character cannot be put in a command")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates (undecodable bytes from argv) have no encoding a host would read back.
        raise ValueError(
            "a value that is not valid Unicode text cannot be put in a command"
        ) from None
