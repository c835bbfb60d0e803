"""Where each `{{ ... }}` of a command template lands in the grammar of its shell.

Every substituted value is quoted (templating.py): `'...'` for sh and for PowerShell.
That protects it only where those quotes are the only quotes: a word of its own in
code. Elsewhere the quoting is text inside something else, and the value escapes:
- inside quotes the author wrote, `'{{ s }}'` closes them around the value
  (`'a'VALUE'b'`), and `"{{ s }}"` leaves `$(...)` in the value live;
- in a comment, a newline in the value ends the comment and the rest runs;
- in a sh heredoc body, `$(...)` expands (unquoted delimiter) and a line equal to
  the delimiter ends the body early (either kind);
- in a PowerShell here-string, the same: `$(...)` expands in `@"`, a line starting
  `'@` ends `@'`;
- after an escape character (`\\` in sh, a backtick in PowerShell), the quoter's
  opening quote is escaped and the value stands unquoted;
- inside backquotes (bash), `$((...))`, `${...}` within double quotes, after `$`
  (bash's `$'...'`), or after PowerShell's `--%`, the quotes are not read as quotes.

This is a lexer good enough for quotes, comments, heredocs, here-strings and
escapes, one per shell, run over the template with every substitution replaced
by a placeholder character (`{% ... %}` tags are dropped, so both branches of an
`if` are read one after the other). Known limits: a `case` pattern's `)` inside
`$(...)` ends the substitution early, and backquotes and `${...}` within double
quotes are refused whole rather than read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from irtool.model.steps import Shell

PLACEHOLDER = "\ue000"

# PowerShell closes strings on typographic quotes as well as on the ASCII ones.
PS_SINGLE = "'\u2018\u2019\u201a\u201b"
PS_DOUBLE = '"\u201c\u201d\u201e'

_RAW_OPEN = re.compile(r"\{%[-+]?\s*raw\s*[-+]?%\}")
_RAW_CLOSE = re.compile(r"\{%[-+]?\s*endraw\s*[-+]?%\}")
_SH_SPECIAL_PARAM = "#?$!@*-0123456789"
_SH_OPERATOR = ";&|()<>"
_PS_OPERATOR = ";(){}|&,="
MAX_NESTING = 64


@dataclass(frozen=True)
class Unsafe:
    """A substitution its quoting cannot protect: where it is and why."""

    offset: int  # of its `{{` in the template
    ordinal: int  # how many `{{` come before it in the template text
    expression: str  # the template text from `{{` to `}}`
    context: str  # where it stands, e.g. "inside double quotes written in the template"


def _expression_end(source: str, start: int, closer: str) -> int:
    """The index just after `closer` ending the tag opened at `start`, skipping strings
    and brackets as Jinja's lexer does; len(source) when it is not closed."""
    i, depth, n = start + 2, 0, len(source)
    while i < n:
        c = source[i]
        if c in "'\"":
            i += 1
            while i < n and source[i] != c:
                i += 2 if source[i] == "\\" else 1
        elif depth == 0 and source.startswith(closer, i):
            return i + len(closer)
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth = max(0, depth - 1)
        i += 1
    return n


def split(source: str) -> tuple[str, list[tuple[int, str]]]:
    """The template as the shell sees it, every `{{ ... }}` a PLACEHOLDER and every
    `{% ... %}` and `{# ... #}` gone, with each placeholder's offset and text."""
    out: list[str] = []
    subs: list[tuple[int, str]] = []
    i, n, strip_next = 0, len(source), False

    def data(text: str) -> None:
        nonlocal strip_next
        if strip_next:
            text, strip_next = text.lstrip(), False
        out.append(text.replace(PLACEHOLDER, "?"))

    def strip_before() -> None:
        while out and not out[-1].rstrip():
            out.pop()
        if out:
            out[-1] = out[-1].rstrip()

    while i < n:
        j = source.find("{", i)
        while j != -1 and source[j + 1 : j + 2] not in ("{", "%", "#"):
            j = source.find("{", j + 1)
        if j == -1:
            data(source[i:])
            break
        data(source[i:j])
        kind = source[j + 1]
        if source[j + 2 : j + 3] == "-":
            strip_before()
        if kind == "{":
            end = _expression_end(source, j, "}}")
            out.append(PLACEHOLDER)
            subs.append((j, source[j:end]))
            closer = "}}"
        elif kind == "%":
            raw = _RAW_OPEN.match(source, j)
            if raw:
                close = _RAW_CLOSE.search(source, raw.end())
                stop = close.start() if close else n
                data(source[raw.end() : stop])
                i = close.end() if close else n
                continue
            end = _expression_end(source, j, "%}")
            closer = "%}"
        else:
            found = source.find("#}", j + 2)
            end = n if found == -1 else found + 2
            closer = "#}"
        if source[end - len(closer) - 1 : end - len(closer)] == "-":
            strip_next = True
        i = end
    return "".join(out), subs


class _Scanner:
    def __init__(self, text: str) -> None:
        self.t = text
        self.n = len(text)
        self.found: dict[int, str] = {}
        self.nesting = 0

    def flag(self, start: int, end: int, context: str) -> None:
        i = self.t.find(PLACEHOLDER, start, end)
        while i != -1:
            self.found.setdefault(i, context)
            i = self.t.find(PLACEHOLDER, i + 1, end)

    def code(self, i: int, closing: str | None = None) -> int:
        """Code from `i`; inside `$(`, up to and past the matching `)`."""
        if self.nesting >= MAX_NESTING:
            self.flag(i, self.n, f"nested more than {MAX_NESTING} substitutions deep")
            return self.n
        self.nesting += 1
        try:
            return self.commands(i, closing)
        finally:
            self.nesting -= 1

    def commands(self, i: int, closing: str | None) -> int:
        raise NotImplementedError

    def line_end(self, i: int) -> int:
        end = self.t.find("\n", i)
        return self.n if end == -1 else end


class _Sh(_Scanner):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.heredocs: list[tuple[str, bool]] = []

    def commands(self, i: int, closing: str | None) -> int:
        t, n = self.t, self.n
        word_start, depth = True, 0
        while i < n:
            c = t[i]
            if c in " \t":
                word_start, i = True, i + 1
            elif c == "\n":
                word_start, i = True, self.heredoc_bodies(i + 1)
            elif c == "#" and word_start:
                end = self.line_end(i)
                self.flag(i, end, "in a comment")
                i = end
            elif c == "\\":
                if t[i + 1 : i + 2] == PLACEHOLDER:
                    self.flag(i + 1, i + 2, "right after a backslash, which escapes its quote")
                word_start, i = False, i + 2
            elif c == "'":
                i = self.single(i + 1, "inside single quotes written in the template")
                word_start = False
            elif c == '"':
                word_start, i = False, self.double(i + 1)
            elif c == "`":
                word_start, i = False, self.backquotes(i + 1)
            elif c == "$":
                word_start, i = False, self.dollar(i + 1)
            elif t.startswith("<<<", i):
                word_start, i = True, i + 3
            elif t.startswith("<<", i):
                word_start, i = True, self.heredoc_operator(i + 2)
            elif c == "(" and closing:
                depth, word_start, i = depth + 1, True, i + 1
            elif c == ")" and closing:
                if depth == 0:
                    return i + 1
                depth, word_start, i = depth - 1, True, i + 1
            elif c in _SH_OPERATOR:
                word_start, i = True, i + 1
            else:
                word_start, i = False, i + 1
        return n

    def single(self, i: int, context: str, escapes: bool = False) -> int:
        t, start = self.t, i
        while i < self.n and t[i] != "'":
            i += 2 if escapes and t[i] == "\\" else 1
        self.flag(start, min(i, self.n), context)
        return i + 1

    def double(self, i: int) -> int:
        t, n = self.t, self.n
        while i < n:
            c = t[i]
            if c == '"':
                return i + 1
            if c == PLACEHOLDER:
                self.flag(i, i + 1, "inside double quotes written in the template")
                i += 1
            elif c == "\\":
                self.flag(i + 1, i + 2, "inside double quotes written in the template")
                i += 2
            elif c == "`":
                i = self.backquotes(i + 1)
            elif c == "$":
                i = self.dollar(i + 1, quoted=True)
            else:
                i += 1
        return n

    def backquotes(self, i: int) -> int:
        t, start = self.t, i
        while i < self.n and t[i] != "`":
            i += 2 if t[i] == "\\" else 1
        self.flag(start, min(i, self.n), "inside backquotes")
        return i + 1

    def balanced(self, i: int, opener: str, closer: str, depth: int, context: str) -> int:
        t, start = self.t, i
        while i < self.n and depth:
            if t[i] == "\\":
                i += 1
            elif t[i] == opener:
                depth += 1
            elif t[i] == closer:
                depth -= 1
            i += 1
        self.flag(start, i, context)
        return i

    def dollar(self, i: int, quoted: bool = False) -> int:
        """After a `$`: a command substitution, an expansion, or a plain `$`."""
        t = self.t
        if t.startswith("((", i):
            return self.balanced(i + 2, "(", ")", 2, "inside an arithmetic expansion $((...))")
        if t.startswith("(", i):
            return self.code(i + 1, ")")
        if t.startswith("{", i) and quoted:
            return self.balanced(
                i + 1, "{", "}", 1, "inside a parameter expansion ${...} within double quotes"
            )
        if t.startswith("{", i):
            return self.braced_word(i + 1)
        if t.startswith(PLACEHOLDER, i):
            if not quoted:  # bash reads $'...' with backslash escapes
                self.flag(i, i + 1, "right after a $, which makes its quotes $'...'")
            return i
        if t.startswith("'", i) and not quoted:
            return self.single(i + 1, "inside $'...' quotes written in the template", True)
        if i < self.n and t[i] in _SH_SPECIAL_PARAM:
            return i + 1
        return i

    def braced_word(self, i: int) -> int:
        """An unquoted `${name:-word}`: its word is read like a word of code."""
        if self.nesting >= MAX_NESTING:
            self.flag(i, self.n, f"nested more than {MAX_NESTING} substitutions deep")
            return self.n
        self.nesting += 1
        try:
            return self.word(i)
        finally:
            self.nesting -= 1

    def word(self, i: int) -> int:
        t, n, depth = self.t, self.n, 1
        while i < n:
            c = t[i]
            if c == "}":
                depth -= 1
                if depth == 0:
                    return i + 1
                i += 1
            elif c == "{":
                depth, i = depth + 1, i + 1
            elif c == "\\":
                if t[i + 1 : i + 2] == PLACEHOLDER:
                    self.flag(i + 1, i + 2, "right after a backslash, which escapes its quote")
                i += 2
            elif c == "'":
                i = self.single(i + 1, "inside single quotes written in the template")
            elif c == '"':
                i = self.double(i + 1)
            elif c == "`":
                i = self.backquotes(i + 1)
            elif c == "$":
                i = self.dollar(i + 1)
            else:
                i += 1
        return n

    def heredoc_operator(self, i: int) -> int:
        """After `<<`: note the delimiter; the body starts at the next line."""
        t, n = self.t, self.n
        strip_tabs = t.startswith("-", i)
        i += strip_tabs
        while i < n and t[i] in " \t":
            i += 1
        word: list[str] = []
        while i < n and t[i] not in " \t\n" + _SH_OPERATOR:
            c = t[i]
            if c in "'\"":
                close = t.find(c, i + 1)
                close = n if close == -1 else close
                word.append(t[i + 1 : close])
                i = close + 1
            elif c == "\\":
                word.append(t[i + 1 : i + 2])
                i += 2
            else:
                word.append(c)
                i += 1
        self.heredocs.append(("".join(word), strip_tabs))
        return i

    def heredoc_bodies(self, i: int) -> int:
        """Skip the bodies of the heredocs opened on the line that just ended."""
        pending, self.heredocs = self.heredocs, []
        for delimiter, strip_tabs in pending:
            while i < self.n:
                end = self.line_end(i)
                line = self.t[i:end]
                if (line.lstrip("\t") if strip_tabs else line) == delimiter:
                    i = end + 1
                    break
                self.flag(i, end, "in a heredoc body")
                i = end + 1
        return min(i, self.n)


class _PowerShell(_Scanner):
    def commands(self, i: int, closing: str | None) -> int:
        t, n = self.t, self.n
        token_start, depth = True, 0
        while i < n:
            c = t[i]
            if c in " \t\r\n":
                token_start, i = True, i + 1
            elif t.startswith("<#", i):
                end = t.find("#>", i + 2)
                end = n if end == -1 else end + 2
                self.flag(i, end, "in a comment")
                token_start, i = True, end
            elif c == "#" and token_start:
                end = self.line_end(i)
                self.flag(i, end, "in a comment")
                i = end
            elif c == "`":
                if t[i + 1 : i + 2] == PLACEHOLDER:
                    self.flag(i + 1, i + 2, "right after a backtick, which escapes its quote")
                token_start, i = False, i + 2
            elif c in PS_SINGLE:
                token_start, i = False, self.single(i + 1)
            elif c in PS_DOUBLE:
                token_start, i = False, self.double(i + 1)
            elif c == "@" and i + 1 < n and t[i + 1] in PS_SINGLE + PS_DOUBLE:
                token_start, i = False, self.here_string(i + 1)
            elif c == "$" and t.startswith("(", i + 1):
                token_start, i = False, self.code(i + 2, ")")
            elif c == "$" and t.startswith("{", i + 1):
                end = t.find("}", i + 2)
                end = n if end == -1 else end + 1
                self.flag(i, end, "inside a braced variable name ${...}")
                token_start, i = False, end
            elif token_start and t.startswith("--%", i) and t[i + 3 : i + 4] in ("", " ", "\t"):
                end = self.line_end(i)
                self.flag(i, end, "after --%, which passes the rest of the line unparsed")
                i = end
            elif c == "(" and closing:
                depth, token_start, i = depth + 1, True, i + 1
            elif c == ")" and closing:
                if depth == 0:
                    return i + 1
                depth, token_start, i = depth - 1, True, i + 1
            elif c in _PS_OPERATOR:
                token_start, i = True, i + 1
            else:
                token_start, i = False, i + 1
        return n

    def single(self, i: int) -> int:
        t, start = self.t, i
        while i < self.n:
            if t[i] in PS_SINGLE:
                if i + 1 < self.n and t[i + 1] in PS_SINGLE:
                    i += 2
                    continue
                break
            i += 1
        self.flag(start, i, "inside a single-quoted string written in the template")
        return i + 1

    def double(self, i: int) -> int:
        t, n = self.t, self.n
        context = "inside a double-quoted string written in the template"
        while i < n:
            c = t[i]
            if c in PS_DOUBLE:
                if i + 1 < n and t[i + 1] in PS_DOUBLE:
                    i += 2
                    continue
                return i + 1
            if c == "`":
                self.flag(i + 1, i + 2, context)
                i += 2
            elif c == "$" and t.startswith("(", i + 1):
                i = self.code(i + 2, ")")
            else:
                self.flag(i, i + 1, context)
                i += 1
        return n

    def here_string(self, i: int) -> int:
        """From the quote after `@`: a here-string runs from the next line to a line
        starting with the same kind of quote and `@`; a quote not followed by the end
        of its line is no here-string, but a string as usual."""
        t, n = self.t, self.n
        quotes = PS_SINGLE if t[i] in PS_SINGLE else PS_DOUBLE
        after = i + 1
        while after < n and t[after] in " \t\r":
            after += 1
        if after < n and t[after] != "\n":
            return self.single(i + 1) if quotes == PS_SINGLE else self.double(i + 1)
        j = after + 1
        while j < n:
            end = self.line_end(j)
            if t[j : j + 1] in tuple(quotes) and t[j + 1 : j + 2] == "@":
                self.flag(i, j, "in a here-string written in the template")
                return j + 2
            j = end + 1
        self.flag(i, n, "in a here-string written in the template")
        return n


def _cmd_contexts(text: str) -> dict[int, str]:
    """cmd.exe: a value is `"..."`-quoted; inside quotes the author wrote that closes them, and
    after a `^` its opening quote is escaped. Quotes do not span lines (each line is one
    command on the wire)."""
    found: dict[int, str] = {}
    quoted = False
    for i, c in enumerate(text):
        if c == "\n":
            quoted = False
        elif c == '"':
            quoted = not quoted
        elif c == PLACEHOLDER:
            if quoted:
                found[i] = "inside double quotes written in the template"
            elif i and text[i - 1] == "^":
                found[i] = "after a ^ escape"
    return found


def unsafe_substitutions(source: str, shell: Shell) -> list[Unsafe]:
    """Every substitution of `source` that stands where its quoting cannot protect it."""
    text, subs = split(source)
    if not subs:
        return []
    if shell is Shell.CMD:
        contexts = _cmd_contexts(text)
    else:
        scanner: _Sh | _PowerShell = _PowerShell(text) if shell is Shell.POWERSHELL else _Sh(text)
        scanner.code(0)
        contexts = scanner.found
    placeholders = [i for i, c in enumerate(text) if c == PLACEHOLDER]
    unsafe: list[Unsafe] = []
    for index, (offset, expression) in zip(placeholders, subs, strict=True):
        context = contexts.get(index)
        if context is not None:
            unsafe.append(Unsafe(offset, _ordinal(source, offset), expression, context))
    return unsafe


def _ordinal(source: str, offset: int) -> int:
    """How many `{{` a left-to-right search finds in `source` before `offset`."""
    count, i = 0, source.find("{{")
    while i != -1 and i < offset:
        count, i = count + 1, source.find("{{", i + 2)
    return count
