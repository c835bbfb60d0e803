"""What every table screen needs: the row under the cursor, and the cursor kept in its place
when the table is filled again from the journal."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from textual.widgets import DataTable


def row_under_cursor(table: DataTable[Any]) -> str | None:
    """The key of the row the cursor is on; None for an empty table."""
    if not table.row_count:
        return None
    return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)


@contextmanager
def refilled(table: DataTable[Any]) -> Iterator[None]:
    """Empty the table for the block to fill again; the cursor stays on the same row number
    (or the last row, when there are fewer), so a redraw does not throw the responder's place."""
    keep = table.cursor_row
    table.clear()
    yield
    if table.row_count:
        table.move_cursor(row=min(keep, table.row_count - 1))
