"""The html post-mortem: one self-contained file that opens without a single request, escapes
what the journal holds, and renders in a real browser (headless Chromium) on screen and on paper.

The golden files and determinism are tested with the other formats in test_export.py.
"""

from __future__ import annotations

import json
import re
import struct
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from tests.support.chromium import Chromium
from tests.support.cli import irtool
from tests.support.recorded import HOSTILE_NOTE

# Everything that could make a page load something: what a report must never contain.
LOADING_TAGS = {"script", "link", "img", "iframe", "frame", "object", "embed", "source"}
LOADING_TAGS |= {"video", "audio", "track", "base", "form", "input", "svg", "picture"}


def export_html(recorded: dict[str, Any], which: str, folder: Path) -> Path:
    out = folder / f"{which}.html"
    done = irtool(recorded["env"], "export", recorded[which], "--format", "html", "-o", str(out))
    assert done.returncode == 0, done.stderr
    return out


class Page(HTMLParser):
    """Every tag, attribute, id and text of a page, and the style sheets' text."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.style = ""
        self._in_style = False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.style += data
        else:
            self.text.append(data)

    def attribute(self, name: str) -> list[str]:
        return [a[name] or "" for _, a in self.tags if name in a]


@pytest.mark.parametrize("which", ["live", "exercise"])
def test_the_report_is_one_file_that_loads_nothing(
    recorded: dict[str, Any], which: str, tmp_path: Path
) -> None:
    page = Page(export_html(recorded, which, tmp_path).read_text(encoding="utf-8"))
    assert not LOADING_TAGS & {tag for tag, _ in page.tags}
    assert not page.attribute("src") and not page.attribute("srcset")
    assert "url(" not in page.style and "@import" not in page.style
    policy = [
        a["content"] for t, a in page.tags if a.get("http-equiv") == "Content-Security-Policy"
    ]
    assert policy and "default-src 'none'" in (policy[0] or "")
    # Links stay inside the report or point at the evidence files beside it...
    ids = set(page.attribute("id"))
    hrefs = page.attribute("href")
    assert hrefs and all(h.startswith(("#", "evidence/")) for h in hrefs), hrefs
    # ...and every link inside it lands somewhere: each section, event and evidence row.
    assert {h[1:] for h in hrefs if h.startswith("#")} <= ids
    events = json.loads(
        irtool(recorded["env"], "export", recorded[which], "--format", "json").stdout
    )
    assert {f"event-{e['seq']}" for e in events["events"]} <= ids
    evidence = {h.removeprefix("evidence/") for h in hrefs if h.startswith("evidence/")}
    assert evidence == {
        item["sha256"] for e in events["state"]["evidence"] for item in e["files"].values()
    }


def test_what_the_journal_holds_is_shown_as_text_never_as_markup(
    recorded: dict[str, Any], tmp_path: Path
) -> None:
    page = Page(export_html(recorded, "live", tmp_path).read_text(encoding="utf-8"))
    assert "img" not in {tag for tag, _ in page.tags}
    assert f"note: {HOSTILE_NOTE}" in page.text  # the timeline's row, as the responder wrote it
    # The shell's redirection in a containment command survives escaping too.
    # The value the action ran with: set during the incident (parameter.set), not at opening.
    assert "block / echo '198.51.100.23' > 'web01.block'" in page.text


def png_size(png: bytes) -> tuple[int, int]:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def test_chromium_renders_the_report_on_screen_and_on_paper_without_a_request(
    recorded: dict[str, Any], tmp_path: Path
) -> None:
    with Chromium(tmp_path / "profile", width=1280) as browser:
        # The browser reports what a page loads: an external image is caught.
        canary = tmp_path / "canary.html"
        canary.write_text('<p>canary</p><img src="http://canary.invalid/pixel.png">')
        assert "http://canary.invalid/pixel.png" in browser.open(canary)

        for which in ("live", "exercise"):
            report = export_html(recorded, which, tmp_path)
            assert browser.open(report) == [report.as_uri()]  # the file itself, nothing else
            # Laid out as a reader sees it: every section, the note as its writer typed it.
            shown = browser.evaluate("document.body.innerText")
            for section in ("The incident", "Evidence manifest", "Timeline", "The journal"):
                assert section in shown
            assert (HOSTILE_NOTE in shown) == (which == "live")
            # The whole page in one picture, taller than a screen.
            shot = browser.screenshot()
            (tmp_path / f"{which}.png").write_bytes(shot)
            height = browser.evaluate("document.documentElement.scrollHeight")
            assert png_size(shot) == (1280, height) and height > 3000, (png_size(shot), height)
            paper = browser.pdf()
            pages = len(re.findall(rb"/Type\s*/Page(?![A-Za-z])", paper))
            assert pages >= 3, f"{which}: {pages} page(s)"
