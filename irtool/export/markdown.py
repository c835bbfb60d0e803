"""The post-mortem as markdown (GitHub-flavoured: tables, anchors), for the team's wiki or ticket.

Table cells and list items are kept to one line each, with pipes escaped, so a responder's
note cannot break a table.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Iterator
from typing import TextIO

from irtool.exercise.review import Review
from irtool.export.after_action import after_action
from irtool.export.postmortem import postmortem
from irtool.export.recorded import Recorded
from irtool.export.report import (
    Block,
    Bullets,
    Callout,
    Code,
    Heading,
    Inline,
    Para,
    Strong,
    Table,
)
from irtool.model.untrusted import visible

# What could turn text into markup that loads or links: raw html and autolinks (<), images
# and links ([ ]), code spans (`), and the backslash that would undo an escape. Emphasis is
# left alone: it cannot load anything, and file names are full of underscores.
_SPECIAL = re.compile(r"[\\<\[\]`]")


# Most text is printable ASCII with nothing to escape: one search says so (millions of cells).
_AS_IT_IS = re.compile(r"[^\x20-\x7e\t\n]|[\\<\[\]`]")


def _text(text: str) -> str:
    """Text as text, so a viewer of the report loads nothing a note or a host put there, and
    a terminal that shows the file (`cat`, `less -R`) acts on no escape a host sent."""
    if _AS_IT_IS.search(text) is None:
        return text
    text = visible(text, lines=True)  # line breaks are the renderer's to keep or join
    # Most cells need nothing: a search and, rarely, C-speed replaces (str.translate with a
    # table of strings is 3x slower, and there are two million cells in a 100k-event report).
    if not _SPECIAL.search(text):
        return text
    for c in "\\<[]`":  # the backslash first, or it would double the escapes
        text = text.replace(c, "\\" + c)
    return text


def _code(text: str) -> str:
    """A code span whose fence is longer than any run of backticks inside it (CommonMark)."""
    longest = max((len(run) for run in re.findall("`+", text)), default=0) if "`" in text else 0
    fence = "`" * (longest + 1)
    pad = " " if longest or text.startswith(" ") or text.endswith(" ") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _spans(spans: Inline, table: bool = False) -> str:
    def cell(text: str) -> str:  # a pipe would end the cell, in code too
        return text.replace("|", "\\|") if table else text

    out = []
    for span in spans:
        if isinstance(span, str):
            out.append(cell(_text(span)))
        elif isinstance(span, Code):
            out.append(_code(cell(visible(span.text, lines=True))))
        elif isinstance(span, Strong):
            out.append(f"**{cell(_text(span.text))}**")
        else:
            out.append(f"[{_spans((span.text,), table)}]({span.href})")
    return "".join(out)


def _line(spans: Inline) -> str:
    """A table cell or a list item: lines and runs of spaces joined, pipes escaped."""
    if len(spans) == 1 and type(spans[0]) is str:  # most cells: one plain text
        text = _text(spans[0])
        return " ".join((text.replace("|", "\\|") if "|" in text else text).split())
    return " ".join(_spans(spans, table=True).split())


def _table(table: Table) -> Iterator[str]:
    yield "|" + "|".join(f" {_text(h)} " if h else " " for h in table.head) + "|\n"
    yield "|" + "|".join("---" for _ in table.head) + "|\n"
    for row in table.rows:
        cells = [_line(c) for c in row.cells]
        if row.id:
            cells[0] = f'<a id="{row.id}"></a>{cells[0]}'
        yield "| " + " | ".join(cells) + " |\n"


def _block(block: Block) -> Iterator[str]:
    if isinstance(block, Heading):
        yield f"{'#' * block.level} {_text(visible(block.text))}\n"
    elif isinstance(block, Para):
        yield _spans(block.spans) + "\n"
    elif isinstance(block, Callout):
        yield "> " + _line(block.spans) + "\n"
    elif isinstance(block, Bullets):
        yield from (f"- {_line(item)}\n" for item in block.items)
    else:
        yield from _table(block)


def render(blocks: Iterable[Block], out: TextIO) -> None:
    """Blocks with a blank line between them, written as they come."""
    pieces: list[str] = []
    for n, block in enumerate(blocks):
        if n:
            pieces.append("\n")
        for piece in _block(block):
            pieces.append(piece)
            if len(pieces) >= 1000:  # a long table: written a thousand rows at a time
                out.write("".join(pieces))
                pieces = []
    out.write("".join(pieces))


def as_markdown(recorded: Recorded, out: TextIO) -> None:
    render(postmortem(recorded), out)


def review_markdown(found: Review) -> str:
    """The after-action review alone: the facilitator's screen and `irtool incident review`."""
    out = io.StringIO()
    render(after_action(found), out)
    return out.getvalue()
