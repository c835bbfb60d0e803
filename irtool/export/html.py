"""The post-mortem as one self-contained html file: read on screen, printed for the file.

No external asset of any kind (no font, script, image or stylesheet), and a
Content-Security-Policy that forbids loading one, so opening the report makes no request:
it is often read on an isolated analysis machine, and everything in it came from a
compromised estate. All text is escaped; links only point inside the report or to the
evidence files beside it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from html import escape
from typing import TextIO, TypeGuard

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

# Most text is printable ASCII with nothing to escape: one search says so (millions of cells).
_AS_IT_IS = re.compile(r"[^\x20-\x7e\t\n]|[&<>\"']")


def _escape(text: str) -> str:
    """Escaped for html, and every control and bidi character written out: the file is also
    read with `cat` and `less`, and a reader must see what a host sent, not its effect."""
    if _AS_IT_IS.search(text) is None:
        return text
    return escape(visible(text, lines=True))


# Nothing may be fetched: styles are inline, and everything else is refused.
POLICY = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

STYLE = """
:root {
  --ink: #1d232b; --muted: #5b6672; --rule: #d5dae0; --stripe: #f5f7f9; --head: #e9edf1;
  --link: #0b5cad; --exercise: #8a5a00; --exercise-bg: #fff6e0; --danger: #a4161a;
  --danger-bg: #fde8e8; --target: #fff3b0;
  --sans: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  --mono: ui-monospace, "Cascadia Mono", Consolas, "DejaVu Sans Mono", "Liberation Mono",
    monospace;
}
* { box-sizing: border-box; }
html { color: var(--ink); background: #fff; font: 15px/1.45 var(--sans); }
body { margin: 0 auto; padding: 1.5rem 2rem 3rem; max-width: 100rem; }
h1 { font-size: 1.7rem; margin: 0 0 .75rem; }
h2 { font-size: 1.25rem; margin: 2rem 0 .6rem; padding-bottom: .2rem;
  border-bottom: 2px solid var(--rule); }
h3 { font-size: 1.05rem; margin: 1.3rem 0 .4rem; }
p { margin: .45rem 0; white-space: pre-line; max-width: 60rem; }
ul { margin: .45rem 0; padding-left: 1.4rem; max-width: 60rem; }
li { margin: .15rem 0; }
a { color: var(--link); }
code { font: .86em/1.3 var(--mono); background: var(--stripe); padding: 0 .2em;
  border-radius: 3px; overflow-wrap: anywhere; }
.callout { margin: .6rem 0; padding: .55rem .8rem; border-left: 5px solid; border-radius: 3px;
  max-width: 60rem; }
.callout.exercise { color: var(--exercise); background: var(--exercise-bg); }
.callout.danger { color: var(--danger); background: var(--danger-bg); }
nav.contents { margin: 1rem 0 0; font-size: .92rem; }
nav.contents ol { margin: .3rem 0; padding-left: 1.4rem; columns: 2 16rem; }
.wide { overflow-x: auto; margin: .5rem 0 1rem; }
table { border-collapse: collapse; font-size: .88rem; }
th, td { border: 1px solid var(--rule); padding: .25rem .45rem; text-align: left;
  vertical-align: top; }
th { background: var(--head); position: sticky; top: 0; }
tbody tr:nth-child(even) { background: var(--stripe); }
tr:target { background: var(--target); }
table.facts th:empty { display: none; }
table.facts td:first-child { font-weight: 600; white-space: nowrap; }
table.timeline td:nth-child(1), table.evidence td:nth-child(1) { text-align: right; }
table.timeline td:nth-child(2), table.timeline td:nth-child(3) { white-space: nowrap; }
table.timeline td:nth-child(7) { min-width: 22rem; }
/* A hash is read whole and compared whole: one line, never broken into four. */
table.evidence td:nth-child(8) code { font-size: .8em; white-space: nowrap;
  overflow-wrap: normal; }
@media print {
  @page { size: A4; margin: 14mm 12mm; }
  html { font-size: 9.5pt; }
  body { padding: 0; max-width: none; }
  a { color: inherit; text-decoration: none; }
  .wide { overflow: visible; }
  table { font-size: 8pt; width: 100%; }
  th { position: static; }
  thead { display: table-header-group; }
  tr, .callout, li { break-inside: avoid; }
  h2, h3 { break-after: avoid; }
  .callout, th, tbody tr:nth-child(even) { -webkit-print-color-adjust: exact;
    print-color-adjust: exact; }
  table.timeline td:nth-child(7) { min-width: 0; width: 38%; }
  table.timeline td:nth-child(2), table.timeline td:nth-child(3) { white-space: normal; }
}
"""


def _spans(spans: Inline) -> str:
    out = []
    for span in spans:
        if isinstance(span, str):
            out.append(_escape(span))
        elif isinstance(span, Code):
            out.append(f"<code>{_escape(span.text)}</code>")
        elif isinstance(span, Strong):
            out.append(f"<strong>{_escape(span.text)}</strong>")
        else:
            out.append(f'<a href="{_escape(span.href)}">{_spans((span.text,))}</a>')
    return "".join(out)


def _table(table: Table) -> Iterator[str]:
    kind = f' class="{table.kind}"' if table.kind else ""
    yield (
        f'<div class="wide"><table{kind}>\n<thead><tr>'
        + "".join(f"<th>{_escape(h)}</th>" for h in table.head)
        + "</tr></thead>\n<tbody>\n"
    )
    for row in table.rows:
        yield (
            (f'<tr id="{_escape(row.id)}">' if row.id else "<tr>")
            + "".join(f"<td>{_spans(c)}</td>" for c in row.cells)
            + "</tr>\n"
        )
    yield "</tbody>\n</table></div>\n"


def _block(block: Block) -> Iterator[str]:
    if isinstance(block, Heading):
        anchor = f' id="{_escape(block.id)}"' if block.id else ""
        yield f"<h{block.level}{anchor}>{_escape(block.text)}</h{block.level}>\n"
    elif isinstance(block, Para):
        yield f"<p>{_spans(block.spans)}</p>\n"
    elif isinstance(block, Callout):
        yield f'<div class="callout {block.tone}" role="note">{_spans(block.spans)}</div>\n'
    elif isinstance(block, Bullets):
        yield "<ul>\n" + "".join(f"<li>{_spans(i)}</li>\n" for i in block.items) + "</ul>\n"
    else:
        yield from _table(block)


def _section(block: Block) -> TypeGuard[Heading]:
    return isinstance(block, Heading) and block.level == 2 and block.id is not None


_NAV = '<nav class="contents" aria-label="Contents"><strong>Contents</strong>'


def render(blocks: Callable[[], Iterable[Block]], out: TextIO) -> None:
    """A whole html page: the first heading is its title, the sections get a contents list.

    `blocks` is called twice: once for the title and the sections (a table's rows are not
    read), then for the page, written as it comes."""
    title, sections = None, []
    for block in blocks():
        if isinstance(block, Heading):
            title = block.text if title is None else title
            if _section(block):
                sections.append(block)
    contents = [
        f'<li><a href="#{_escape(b.id or "")}">{_escape(b.text)}</a></li>\n' for b in sections
    ]
    pieces = [
        "<!DOCTYPE html>\n",
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n',
        f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">\n',
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
        '<meta name="generator" content="irtool">\n',
        f"<title>{_escape('irtool report' if title is None else title)}</title>\n",
        f"<style>{STYLE}</style>\n</head>\n<body>\n",
    ]
    in_section = False
    for block in blocks():
        if _section(block):
            if in_section:
                pieces.append("</section>\n")
            else:  # the contents come after the title and the callouts, before the first section
                pieces.append(
                    '<nav class="contents" aria-label="Contents"><strong>Contents</strong>'
                )
                pieces += ["<ol>\n", *contents, "</ol></nav>\n"]
            pieces.append("<section>\n")
            in_section = True
        for piece in _block(block):
            pieces.append(piece)
            if len(pieces) >= 1000:  # a long table: written a thousand rows at a time
                out.write("".join(pieces))
                pieces = []
    pieces.append("</section>\n" if in_section else "")
    pieces.append("</body>\n</html>\n")
    out.write("".join(pieces))


def as_html(recorded: Recorded, out: TextIO) -> None:
    render(lambda: postmortem(recorded), out)
