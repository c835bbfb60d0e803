"""cmd.exe on the wire: a `shell: cmd` script becomes one command line.

WinRM and Windows OpenSSH start a command with `cmd.exe /c LINE`: whatever follows the
first line break of LINE is never run. So each line of the script is one command, and
the lines are joined with ` & ` (run the next whatever the last one's result), as a
responder would type them one after another. `rem` and `::` lines are comments and are
dropped, blank lines too. A line ending in `^` (cmd's line continuation) or in `(` (a
block spanning lines) cannot be joined so: such a script is refused, as is a joined line
longer than cmd.exe's 8191 characters.
"""

from __future__ import annotations

import re

CMD_LINE_LIMIT = 8191
JOIN = " & "

_COMMENT = re.compile(r"@?rem(\s|$)|::", re.IGNORECASE)
_STATEMENT = re.compile(r"@?(if|for)\s", re.IGNORECASE)


def cmd_line(script: str) -> str:
    """The one cmd.exe line that runs `script` line by line; ValueError when it cannot."""
    commands: list[str] = []
    for number, raw in enumerate(script.splitlines(), 1):
        line = raw.strip()
        if not line or _COMMENT.match(line):
            continue
        if line.endswith("^"):
            raise ValueError(
                f"line {number} ends in '^' (a continuation): cmd scripts are sent one "
                "command per line, joined with ' & '; put the command on one line"
            )
        if line.endswith("("):
            raise ValueError(
                f"line {number} opens a block '(' that spans lines: cmd scripts are sent one "
                "command per line, joined with ' & '; put the block on one line"
            )
        commands.append(line)
    if not commands:
        raise ValueError("the cmd script has no command (only blank and rem lines)")
    # `if c A & B` runs B only when c holds, and `for ... do A & B` runs B each time round:
    # joined, the next line would fall into the statement. Bracketed, it cannot.
    commands = [
        f"({command})" if _STATEMENT.match(command) and n < len(commands) - 1 else command
        for n, command in enumerate(commands)
    ]
    line = JOIN.join(commands)
    if line.startswith('"'):
        # `cmd /c` strips a line's first and last quote when it starts with one: an `@`
        # (do not echo) in front keeps the line as written.
        line = "@" + line
    if len(line) > CMD_LINE_LIMIT:
        raise ValueError(
            f"the cmd script joins into a line of {len(line)} characters; cmd.exe takes at "
            f"most {CMD_LINE_LIMIT}: split it into steps or collectors"
        )
    return line
