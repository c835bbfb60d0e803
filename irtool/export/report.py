"""The post-mortem as a document: headings, paragraphs, tables and lists of inline spans.

The content is written once (`postmortem`, `after_action`) and rendered twice (`markdown`,
`html`), so the two reports cannot drift apart. Text is kept as the responders wrote it; each
renderer escapes for its own syntax.

A long table (the timeline, the evidence manifest) holds its rows as an iterator that reads
them from the journal as the renderer writes them: a renderer goes through a block once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class Code:
    """An identifier, a hash or a command: shown in a fixed-width font."""

    text: str


@dataclass(frozen=True)
class Strong:
    text: str


# Inside the report, or an evidence file beside it named by its SHA-256: nothing else.
TARGET = re.compile(r"#[a-z0-9-]+|evidence/[0-9a-f]{64}")


@dataclass(frozen=True)
class Link:
    """A link inside the report (`#event-12`) or to a file beside it (`evidence/<sha256>`).

    Never to the network: the report is read offline, often on an isolated machine."""

    text: str | Code
    href: str

    def __post_init__(self) -> None:
        if not TARGET.fullmatch(self.href):
            raise ValueError(f"a report links only inside itself or to its evidence: {self.href}")


Span = str | Code | Strong | Link
Inline = tuple[Span, ...]


def inline(*spans: Span | None) -> Inline:
    """Spans in order, leaving out the absent ones (`None`, empty text)."""
    return tuple(s for s in spans if s)


@dataclass(frozen=True)
class Heading:
    level: int
    text: str
    id: str | None = None  # a stable anchor for the table of contents


@dataclass(frozen=True)
class Para:
    spans: Inline


@dataclass(frozen=True)
class Callout:
    """Said before anything else: an exercise, or a record that cannot be trusted."""

    spans: Inline
    tone: Literal["exercise", "danger"]


@dataclass(frozen=True)
class Bullets:
    items: Iterable[Inline]


@dataclass(frozen=True)
class Row:
    cells: Sequence[Inline]
    id: str | None = None  # the event's anchor, which links elsewhere in the report point to


@dataclass(frozen=True)
class Table:
    head: Sequence[str]
    rows: Iterable[Row] = field(default_factory=list)
    kind: str = ""  # lets the html give a table its column widths (timeline, evidence)


Block = Heading | Para | Callout | Bullets | Table
