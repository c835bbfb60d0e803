"""One evidence file read as lines, lazily: a 1 GB output never loads into memory.

The file is scanned in chunks (by whoever calls `scan`: the viewer does it in a thread),
and the index grows as it goes. The index is sparse, the start of every `EVERY`th line,
so ten million lines cost a megabyte of index, not eighty; a line between two marks is
found by reading from the mark before it.

A line longer than `LINE_LIMIT` bytes (a minified JSON blob, a binary with no newline) is
shown as several lines, cut where a UTF-8 character starts: no screen row, search block or
read ever holds more than that of one line. The cut depends only on the bytes from the
line's start, so the scan and every later read cut in the same places.

The file grows under a reader when it is a stream still being written (`refresh` picks up
what was added); a file named by its hash never changes, and `verify` says whether it did.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from irtool.evidence.store import EvidenceStore, stream_name

CHUNK = 1 << 20  # read this much at a time: scanning, searching, hashing
LINE_LIMIT = 16 * 1024  # longest screen line, in bytes: wider is never read across
EVERY = 64  # one index mark per this many lines
JSON_LIMIT = 4 << 20  # files up to this size may be pretty-printed as a whole

Cancelled = Callable[[], bool]


def _never() -> bool:
    return False


def _boundary(data: bytes, cut: int) -> int:
    """`cut`, moved back to where a UTF-8 character starts (binary data: left where it is)."""
    for back in range(4):
        at = cut - back
        if at <= 0:
            break
        if data[at] & 0xC0 != 0x80:
            return at
    return cut


def row_starts(data: bytes, limit: int = LINE_LIMIT) -> list[int]:
    """Where each row of `data` starts as the viewer shows it: each line, and a line longer
    than `limit` cut in rows of that size (data itself starts a row). The last start is that
    of the unfinished tail, which may be empty."""
    starts = [0]
    start, size, find = 0, len(data), data.find
    while True:
        newline = find(b"\n", start, start + limit + 1)
        if newline >= 0:
            start = newline + 1
        elif size - start > limit:
            start = _boundary(data, start + limit)
        else:
            return starts
        starts.append(start)


def _text(line: bytes) -> str:
    if line.endswith(b"\n"):
        line = line[:-2] if line.endswith(b"\r\n") else line[:-1]
    return line.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class Found:
    line: int
    column: int  # in characters of the decoded line


class EvidenceText:
    """An evidence file as numbered lines. Thread-safe: one thread scans, another reads."""

    def __init__(self, path: Path, sha256: str | None = None) -> None:
        self.path, self.sha256 = path, sha256
        self._fd = os.open(path, os.O_RDONLY)
        self._lock = threading.Lock()  # the index
        self._io = threading.Lock()  # the descriptor: a read, or closing it
        self._scanning = threading.Lock()  # one scan at a time
        self._marks = array("Q", [0])  # start of line k * EVERY
        self._lines = 0  # complete lines indexed
        self._tail = 0  # where the unfinished last line starts
        self._scanned = 0  # bytes looked at

    @classmethod
    def open(cls, directory: Path, sha256: str) -> EvidenceText:
        """The file named `sha256` in the evidence store at `directory`."""
        return cls(EvidenceStore(directory, create=False).path(sha256), sha256)

    def close(self) -> None:
        with self._io:  # never while another thread reads: the number could be reused
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def _read(self, size: int, offset: int) -> bytes:
        with self._io:
            if self._fd < 0:
                raise ValueError(f"{self.path} is closed")
            return os.pread(self._fd, size, offset)

    def __enter__(self) -> EvidenceText:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the index -------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Bytes in the file now."""
        with self._io:
            if self._fd < 0:
                raise ValueError(f"{self.path} is closed")
            return os.fstat(self._fd).st_size

    @property
    def scanned(self) -> int:
        return self._scanned

    @property
    def complete(self) -> bool:
        """Every byte there is now has been indexed."""
        return self._scanned >= self.size

    @property
    def line_count(self) -> int:
        """Lines known so far, the unfinished last one included."""
        with self._lock:
            return self._lines + (1 if self._scanned > self._tail else 0)

    def scan(self, budget: int = CHUNK) -> bool:
        """Index up to `budget` more bytes; False once every byte there is now is indexed."""
        with self._scanning:
            start, end = self._tail, min(self.size, self._tail + max(budget, 2 * LINE_LIMIT))
            if end <= self._scanned:
                return False
            data = self._read(end - start, start)
            starts = row_starts(data)
            with self._lock:
                for relative in starts[1:]:
                    self._lines += 1
                    if self._lines % EVERY == 0:
                        self._marks.append(start + relative)
                self._tail = start + starts[-1]
                self._scanned = start + len(data)
            return self._scanned < self.size

    def scan_all(self, cancelled: Cancelled = _never) -> None:
        while self.scan() and not cancelled():
            pass

    refresh = scan  # a file still being written: index what was added since

    # -- reading ---------------------------------------------------------------------

    def _block(self, first_mark: int, end_line: int) -> tuple[int, bytes, list[int]]:
        """The lines from mark `first_mark` to line `end_line` (or the end): the first line's
        number, their bytes, and where each starts in them."""
        with self._lock:
            first_line = first_mark * EVERY
            start = self._marks[first_mark]
            last_mark = -(-end_line // EVERY)  # the mark at or after end_line
            end = self._marks[last_mark] if last_mark < len(self._marks) else self._scanned
        data = self._read(max(0, end - start), start) if end > start else b""
        starts = row_starts(data)
        if starts[-1] == len(data):
            starts.pop()  # the tail is empty: no line there
        return first_line, data, starts

    def lines(self, first: int, count: int) -> list[str]:
        """Lines `first` to `first + count` (fewer at the end), decoded, without newlines."""
        total = self.line_count
        first, end = max(0, first), min(total, first + count)
        if end <= first:
            return []
        base, data, starts = self._block(first // EVERY, end)
        bounds = [*starts, len(data)]
        return [_text(data[bounds[i - base] : bounds[i - base + 1]]) for i in range(first, end)]

    def find(
        self, needle: str, after: int, backward: bool = False, cancelled: Cancelled = _never
    ) -> Found | None:
        """The next line after (or before) line `after` holding `needle`, ignoring the case
        of ASCII letters. Searching forward indexes the rest of the file as it goes."""
        if not needle:
            return None
        pattern = re.compile(re.escape(needle.encode("utf-8")), re.IGNORECASE)
        if backward:
            end = min(after, self.line_count)
            while end > 0 and not cancelled():
                first = self._back(end)
                found = self._search(pattern, first, end, last=True)
                if found:
                    return found
                end = first
            return None
        first = max(0, after + 1)
        while not cancelled():
            end = self._ahead(first)
            while end >= self.line_count and self.scan():  # index what the block needs
                if cancelled():
                    return None
                end = self._ahead(first)
            end = min(end, self.line_count)
            if first >= end:
                return None
            found = self._search(pattern, first, end, last=False)
            if found:
                return found
            first = end
        return None

    def _ahead(self, first: int) -> int:
        """The line ending a block of about CHUNK bytes that starts at line `first`."""
        with self._lock:
            mark = first // EVERY
            last = bisect_right(self._marks, self._marks[mark] + CHUNK) - 1
            return max(last, mark + 1) * EVERY

    def _back(self, end: int) -> int:
        """The line starting a block of about CHUNK bytes that ends at line `end`."""
        with self._lock:
            mark = -(-end // EVERY)
            stop = self._marks[mark] if mark < len(self._marks) else self._scanned
            first = bisect_left(self._marks, stop - CHUNK)
            return min(first, max(0, mark - 1)) * EVERY

    def _search(self, pattern: re.Pattern[bytes], first: int, end: int, last: bool) -> Found | None:
        base, data, starts = self._block(first // EVERY, end)
        bounds = [*starts, len(data)]
        low, high = bounds[first - base], bounds[min(end - base, len(starts))]
        match = None
        for match in pattern.finditer(data, low, high):  # noqa: B007 - the last one is kept
            if not last:
                break
        if match is None:
            return None
        index = bisect_right(starts, match.start()) - 1
        column = len(data[starts[index] : match.start()].decode("utf-8", errors="replace"))
        return Found(base + index, column)

    # -- the whole file --------------------------------------------------------------

    def verify(self, cancelled: Cancelled = _never) -> str | None:
        """None when the bytes still hash to the file's name; else what is wrong."""
        if self.sha256 is None:
            return None
        digest, offset = hashlib.sha256(), 0
        while block := self._read(CHUNK, offset):
            if cancelled():
                return None
            digest.update(block)
            offset += len(block)
        if digest.hexdigest() != self.sha256:
            return (
                f"evidence {self.sha256} was altered: its content now hashes to "
                f"{digest.hexdigest()}"
            )
        return None

    def pretty_json(self, limit: int = JSON_LIMIT) -> list[str] | None:
        """The file as indented JSON lines, when it is JSON as a whole and small enough."""
        size = self.size
        if size == 0 or size > limit:
            return None
        if self._read(256, 0).lstrip()[:1] not in (b"{", b"["):
            return None  # text, or a lone number or string: nothing to re-indent
        data = self._read(size, 0)
        try:
            parsed = json.loads(data)
        except ValueError:
            return None
        return json.dumps(parsed, indent=2, ensure_ascii=False).splitlines()


def in_flight(directory: Path, host: str, pid: int | None = None) -> Path | None:
    """The stdout file a command still running on `host` is writing (by process `pid`, if
    given): the latest one started, before it is named by its hash."""
    store = EvidenceStore(directory, create=False)
    for orphan in store.orphans():
        facts = orphan.facts
        if facts.get("host") != host or (pid is not None and facts.get("pid") != pid):
            continue
        for index in reversed(range(len(facts.get("commands", [])))):
            path = directory / stream_name(orphan.token, index, "stdout")
            if path.is_file():
                return path
    return None
