"""Reading evidence lazily: a huge output is indexed in chunks, searched, and checked by hash."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from pathlib import Path

import pytest

from irtool.evidence.reader import LINE_LIMIT, EvidenceText

BIG = 256 << 20  # bytes: more than a responder's screen should ever hold at once


def sparse_output(path: Path) -> None:
    """256 MiB that are mostly a hole, with a few lines of text at known places."""
    with path.open("wb") as out:
        out.write(b"first line\nsecond line\n")
        out.seek(BIG // 2)
        out.write(b"\nthe Needle in the middle\n")
        out.seek(BIG - 20)
        out.write(b"\nthe last needle\n")


def test_a_huge_output_is_indexed_and_searched_without_loading_it(tmp_path: Path) -> None:
    path = tmp_path / "big"
    sparse_output(path)
    tracemalloc.start()
    try:
        with EvidenceText(path) as text:
            assert text.scan()  # one chunk indexed: the first screen can be drawn
            assert text.lines(0, 2) == ["first line", "second line"]
            found = text.find("needle", 1)  # forward, indexing as it goes
            assert found is not None
            assert text.lines(found.line, 1) == ["the Needle in the middle"]
            assert not text.complete  # it stopped where it found it
            text.scan_all()
            last = text.find("needle", found.line)
            assert last is not None and text.lines(last.line, 1) == ["the last needle"]
            back = text.find("NEEDLE", last.line, backward=True)
            assert back == found
            assert text.find("needle", last.line) is None
            # The zeros between are cut into screen lines no wider than the limit.
            assert text.line_count > BIG // LINE_LIMIT
            assert max(len(line) for line in text.lines(found.line - 3, 3)) <= LINE_LIMIT
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, f"reading a 256 MiB file peaked at {peak >> 20} MiB"


def test_lines_read_back_the_same_whatever_the_chunking(tmp_path: Path) -> None:
    lines = [f"{'é' * (n % 7) * 3000}line {n}" for n in range(3000)]
    path = tmp_path / "lines"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with EvidenceText(path) as whole, EvidenceText(path) as bit_by_bit:
        whole.scan_all()
        while bit_by_bit.scan(budget=1000):
            pass
        assert whole.line_count == bit_by_bit.line_count
        # Long lines are cut where a character starts: nothing is garbled.
        shown = whole.lines(0, whole.line_count)
        assert "\ufffd" not in "".join(shown)
        assert "".join(shown) == "".join(lines)
        assert bit_by_bit.lines(1000, 500) == shown[1000:1500]
        found = whole.find("line 2999", 0)
        assert found is not None and shown[found.line].endswith("line 2999")


def test_a_growing_file_is_followed(tmp_path: Path) -> None:
    path = tmp_path / "growing"
    path.write_bytes(b"one\ntw")
    with EvidenceText(path) as text:
        text.scan_all()
        assert text.lines(0, 5) == ["one", "tw"]
        with path.open("ab") as more:
            more.write(b"o\nthree\n")
        text.refresh()
        assert text.lines(0, 5) == ["one", "two", "three"]


def test_a_changed_file_no_longer_matches_its_name(tmp_path: Path) -> None:
    content = b"w3wp.exe spawned cmd.exe\n"
    sha256 = hashlib.sha256(content).hexdigest()
    store = tmp_path / "evidence"
    store.mkdir()
    (store / sha256).write_bytes(content)
    with EvidenceText.open(store, sha256) as text:
        assert text.verify() is None
    (store / sha256).write_bytes(b"nothing to see here\n")
    with EvidenceText.open(store, sha256) as text:
        problem = text.verify()
    assert problem is not None and "altered" in problem
    with pytest.raises(ValueError, match="is not a SHA-256"):
        EvidenceText.open(store, "../../etc/passwd")


def test_json_is_indented_only_when_it_is_json(tmp_path: Path) -> None:
    (tmp_path / "doc").write_text('{"process": "w3wp.exe", "children": ["cmd.exe"]}')
    (tmp_path / "text").write_text("{ not json\n")
    with EvidenceText(tmp_path / "doc") as doc, EvidenceText(tmp_path / "text") as text:
        assert doc.pretty_json() == [
            "{",
            '  "process": "w3wp.exe",',
            '  "children": [',
            '    "cmd.exe"',
            "  ]",
            "}",
        ]
        assert text.pretty_json() is None
    assert os.path.exists(tmp_path / "doc")
