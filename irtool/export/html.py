"""The post-mortem as one self-contained html file: read on screen, printed for the file.

No external asset of any kind (no font, script, image or stylesheet), and a
Content-Security-Policy that forbids loading one, so opening the report makes no request:
it is often read on an isolated analysis machine, and everything in it came from a
compromised estate. All text is escaped; links only point inside the report or to the
evidence files beside it.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from typing import TypeGuard

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


def _escape(text: str) -> str:
    """Escaped for html, and every control and bidi character written out: the file is also
    read with `cat` and `less`, and a reader must see what a host sent, not its effect."""
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


def _table(table: Table) -> str:
    kind = f' class="{table.kind}"' if table.kind else ""
    out = [f'<div class="wide"><table{kind}>\n<thead><tr>']
    out += [f"<th>{_escape(h)}</th>" for h in table.head]
    out.append("</tr></thead>\n<tbody>\n")
    for row in table.rows:
        out.append(f'<tr id="{_escape(row.id)}">' if row.id else "<tr>")
        out += [f"<td>{_spans(c)}</td>" for c in row.cells]
        out.append("</tr>\n")
    out.append("</tbody>\n</table></div>\n")
    return "".join(out)


def _block(block: Block) -> str:
    if isinstance(block, Heading):
        anchor = f' id="{_escape(block.id)}"' if block.id else ""
        return f"<h{block.level}{anchor}>{_escape(block.text)}</h{block.level}>\n"
    if isinstance(block, Para):
        return f"<p>{_spans(block.spans)}</p>\n"
    if isinstance(block, Callout):
        return f'<div class="callout {block.tone}" role="note">{_spans(block.spans)}</div>\n'
    if isinstance(block, Bullets):
        return "<ul>\n" + "".join(f"<li>{_spans(i)}</li>\n" for i in block.items) + "</ul>\n"
    return _table(block)


def _section(block: Block) -> TypeGuard[Heading]:
    return isinstance(block, Heading) and block.level == 2 and block.id is not None


def render(blocks: Iterable[Block]) -> str:
    """A whole html page: the first heading is its title, the sections get a contents list."""
    document = list(blocks)
    title = next((b.text for b in document if isinstance(b, Heading)), "irtool report")
    contents = [
        f'<li><a href="#{_escape(b.id or "")}">{_escape(b.text)}</a></li>\n'
        for b in document
        if _section(b)
    ]
    out = [
        "<!DOCTYPE html>\n",
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n',
        f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">\n',
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
        '<meta name="generator" content="irtool">\n',
        f"<title>{_escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
    ]
    in_section = False
    for block in document:
        if _section(block):
            if in_section:
                out.append("</section>\n")
            else:  # the contents come after the title and the callouts, before the first section
                out.append('<nav class="contents" aria-label="Contents"><strong>Contents</strong>')
                out += ["<ol>\n", *contents, "</ol></nav>\n"]
            out.append("<section>\n")
            in_section = True
        out.append(_block(block))
    out.append("</section>\n" if in_section else "")
    out.append("</body>\n</html>\n")
    return "".join(out)


def as_html(recorded: Recorded) -> str:
    return render(postmortem(recorded))
