"""The export formats by name: each writes the recorded incident to a text stream, as it reads
the events, so an export of any size takes the same memory."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import TextIO

from irtool.export.document import as_json
from irtool.export.html import as_html
from irtool.export.markdown import as_markdown
from irtool.export.recorded import Recorded
from irtool.export.rows import as_csv, as_jsonl

Format = Callable[[Recorded, TextIO], None]

FORMATS: dict[str, Format] = {
    "markdown": as_markdown,
    "html": as_html,
    "json": as_json,
    "csv": as_csv,
    "timesketch": as_jsonl,
}


def exported(recorded: Recorded, form: str) -> str:
    """The whole export as one string: for tests and small incidents."""
    out = io.StringIO()
    FORMATS[form](recorded, out)
    return out.getvalue()
