"""Text a host sent, or a file the responder did not write, made safe to show.

The one choke point (architecture.md, "Untrusted text"): every face and every export
passes host- or file-derived text through `visible` before a terminal, a widget, a log
line or an export sees it. Nothing else sanitises.

What it does: every C0 and C1 control, ESC and so every escape sequence, and every
format or separator character (bidi overrides like U+202E, zero-width characters,
U+2028/U+2029) is written out visibly as `\\x1b`, `\\u202e`, ... so that it is seen and
never interpreted: an OSC 52 cannot write the clipboard, a CSI cannot move the cursor,
an override cannot reverse what a reader sees. A backslash is left as it is (Windows
paths are full of them); tabs stay; line breaks stay only where the sink shows several
lines (`lines=True`). Plain printable text comes back unchanged, and quickly.

It does not parse markup: a face that renders Rich or Textual markup must hand the result
to a plain-text renderable (`rich.text.Text(...)`), never to a markup string.
"""

from __future__ import annotations

import re
import unicodedata

# Fast path: printable ASCII, tab and newline need no look at all.
_SUSPECT = re.compile(r"[^\x20-\x7e\t\n]")
_SUSPECT_NO_LINES = re.compile(r"[^\x20-\x7e\t]")
_HIDDEN = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})


def _shown(match: re.Match[str]) -> str:
    char = match.group()
    if unicodedata.category(char) not in _HIDDEN:
        return char  # a letter, a symbol, a space of another script: shown as it is
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def visible(text: str, *, lines: bool = False) -> str:
    """`text` with every character a terminal or a reader could be fooled by written out.
    `lines`: keep line breaks (a pane of output, a multi-line note); else they are shown
    as `\\n` too, for a one-line sink (a progress line, a table cell, a notification)."""
    pattern = _SUSPECT if lines else _SUSPECT_NO_LINES
    if pattern.search(text) is None:
        return text
    return pattern.sub(_shown, text)
