"""The text of one evidence file, drawn lazily: only the lines on screen are ever read.

The file is an `EvidenceText` (indexed in a thread by the viewer screen) or, pretty-printed
JSON, a list of lines. Each line drawn is redacted (a secret a host echoed stays in the
evidence, never on screen) and written out by `visible` before it is drawn.
"""

from __future__ import annotations

from typing import ClassVar

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from irtool.evidence.reader import EvidenceText
from irtool.model.untrusted import visible
from irtool.secrets.redact import Redactor

PAGE = 64  # lines read from the file at a time


class EvidenceView(ScrollView, can_focus=True):
    """Lines of evidence, scrolled both ways: a long line is never cut at the screen's edge."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "scroll_up", "Up", show=False, id="viewer.up"),
        Binding("down", "scroll_down", "Down", show=False, id="viewer.down"),
        Binding("left", "scroll_left", "Left", show=False, id="viewer.left"),
        Binding("right", "scroll_right", "Right", show=False, id="viewer.right"),
        Binding("pageup", "page_up", "Page up", show=False, id="viewer.page_up"),
        Binding("pagedown", "page_down", "Page down", show=False, id="viewer.page_down"),
        Binding("home", "scroll_home", "Top", show=False, id="viewer.top"),
        Binding("end", "scroll_end", "Bottom", show=False, id="viewer.bottom"),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {"evidence-view--match", "evidence-view--number"}
    DEFAULT_CSS = """
    EvidenceView {
        background: $surface;
        overflow-x: auto;
        overflow-y: auto;
        & > .evidence-view--match { background: $accent 40%; text-style: bold; }
        & > .evidence-view--number { color: $text-muted; }
    }
    """

    def __init__(
        self, text: EvidenceText, redactor: Redactor | None = None, *, id: str | None = None
    ) -> None:
        super().__init__(id=id)
        self.text = text
        self.redactor = redactor or Redactor()
        self.pretty: list[str] | None = None  # JSON, indented: shown instead of the file
        self.match: int | None = None  # the line of the current search match
        self._pages: LRUCache[tuple[bool, int], list[str]] = LRUCache(64)
        self._widest = 0

    # -- what is shown -------------------------------------------------------------------

    @property
    def line_count(self) -> int:
        return len(self.pretty) if self.pretty is not None else self.text.line_count

    @property
    def top(self) -> int:
        return round(self.scroll_y)

    def show_pretty(self, lines: list[str] | None) -> None:
        """Show these lines (indented JSON) instead of the file, or the file again (None)."""
        self.pretty, self.match = lines, None
        self._widest = 0
        self._pages.clear()
        self.grown()
        self.scroll_to(0, 0, animate=False, force=True)

    def grown(self, follow: bool = False) -> None:
        """The file has more lines indexed (or grew): size the scroll area to them."""
        if self.pretty is None:
            # The last page may have held an unfinished line, or fewer lines than now.
            last = (self.line_count - 1) // PAGE
            self._pages.discard((False, last))
            self._pages.discard((False, last - 1))
        self.virtual_size = Size(self._widest + self._gutter(), self.line_count)
        if follow:
            self.scroll_end(animate=False, immediate=True, force=True, x_axis=False)
        self.refresh()

    def go_to(self, line: int) -> None:
        """Put `line` in view (a third of the way down) and mark it as the match."""
        self.match = line
        height = max(1, self.scrollable_content_region.height)
        if not self.top <= line < self.top + height:
            self.scroll_to(y=max(0, line - height // 3), animate=False, force=True)
        self.refresh()

    def page(self, first: int, count: int) -> list[str]:
        """Lines as drawn (redacted, written out), from the file or the pretty JSON."""
        return [self._line(n) for n in range(first, min(first + count, self.line_count))]

    # -- drawing -------------------------------------------------------------------------

    def _gutter(self) -> int:
        return len(str(max(1, self.line_count))) + 1

    def _line(self, number: int) -> str:
        pretty = self.pretty is not None
        key = (pretty, number // PAGE)
        lines = self._pages.get(key)
        if lines is None:
            first = key[1] * PAGE
            raw = (
                self.pretty[first : first + PAGE]
                if self.pretty is not None
                else self.text.lines(first, PAGE)
            )
            lines = [visible(self.redactor.text(line)).expandtabs(8) for line in raw]
            self._pages[key] = lines
            widest = max((cell_len(line) for line in lines), default=0)
            if widest > self._widest:
                self._widest = widest
                # Widened later, off the drawing path: a resize while drawing re-enters.
                self.call_later(self.grown)
        index = number - key[1] * PAGE
        return lines[index] if index < len(lines) else ""

    def render_line(self, y: int) -> Strip:
        number = self.top + y
        width = self.scrollable_content_region.width
        if not 0 <= number < self.line_count:
            return Strip.blank(width, self.rich_style)
        gutter = self._gutter()
        base = self.rich_style
        tone = base
        if number == self.match:
            tone = base + self.get_component_rich_style("evidence-view--match", partial=True)
        muted = base + self.get_component_rich_style("evidence-view--number", partial=True)
        segments = [
            Segment(str(number + 1).rjust(gutter - 1) + " ", muted),
            Segment(self._line(number), tone),
        ]
        # Scroll sideways over the text; the line numbers stay where they are.
        strip = Strip(segments)
        left = round(self.scroll_x)
        if left:
            numbers = strip.crop(0, gutter)
            rest = strip.crop(gutter + left, gutter + left + width)
            strip = Strip.join([numbers, rest])
        return strip.crop_extend(0, width, tone if number == self.match else Style.null() + base)

    def _on_resize(self, _: events.Resize) -> None:
        self.refresh()
