"""The export formats by name: each a function of the recorded incident to text."""

from __future__ import annotations

from collections.abc import Callable

from irtool.export.document import as_json
from irtool.export.html import as_html
from irtool.export.markdown import as_markdown
from irtool.export.recorded import Recorded
from irtool.export.rows import as_csv, as_jsonl

FORMATS: dict[str, Callable[[Recorded], str]] = {
    "markdown": as_markdown,
    "html": as_html,
    "json": as_json,
    "csv": as_csv,
    "timesketch": as_jsonl,
}
