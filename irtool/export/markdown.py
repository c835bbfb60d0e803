"""The post-mortem as markdown (GitHub-flavoured: tables, anchors), for the team's wiki or ticket.

Table cells and list items are kept to one line each, with pipes escaped, so a responder's
note cannot break a table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

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


def _pipes(text: str) -> str:
    return text.replace("|", "\\|")


def _line(spans: Inline) -> str:
    """A table cell or a list item: pipes escaped, lines and runs of spaces joined."""
    return " ".join(_spans(spans, _pipes).split())


def _as_is(text: str) -> str:
    return text


def _spans(spans: Inline, text: Callable[[str], str]) -> str:
    out = []
    for span in spans:
        if isinstance(span, str):
            out.append(text(span))
        elif isinstance(span, Code):
            out.append(f"`{text(span.text)}`")
        elif isinstance(span, Strong):
            out.append(f"**{text(span.text)}**")
        else:
            label = _spans((span.text,), text)
            out.append(f"[{label}]({span.href})")
    return "".join(out)


def _table(table: Table) -> str:
    head = "|" + "|".join(f" {h} " if h else " " for h in table.head) + "|\n"
    rule = "|" + "|".join("---" for _ in table.head) + "|\n"
    rows = []
    for row in table.rows:
        cells = [_line(c) for c in row.cells]
        if row.id:
            cells[0] = f'<a id="{row.id}"></a>{cells[0]}'
        rows.append("| " + " | ".join(cells) + " |\n")
    return head + rule + "".join(rows)


def _block(block: Block) -> str:
    if isinstance(block, Heading):
        return f"{'#' * block.level} {block.text}\n"
    if isinstance(block, Para):
        return _spans(block.spans, _as_is) + "\n"
    if isinstance(block, Callout):
        return "> " + _line(block.spans) + "\n"
    if isinstance(block, Bullets):
        return "".join(f"- {_line(item)}\n" for item in block.items)
    return _table(block)


def render(blocks: Iterable[Block]) -> str:
    """Blocks with a blank line between them."""
    return "\n".join(_block(b) for b in blocks)


def as_markdown(recorded: Recorded) -> str:
    return render(postmortem(recorded))


def review_markdown(found: Review) -> str:
    """The after-action review alone: the facilitator's screen and `irtool incident review`."""
    return render(after_action(found))
