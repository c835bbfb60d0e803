"""A host's web root hash listing, as the triage `webroot` collector leaves it as evidence.

CSV with the header relative_path,size,created_utc,modified_utc,attributes,sha256 as
PowerShell's ConvertTo-Csv writes it (every value quoted, maybe a BOM, maybe a `#TYPE` line
first); or JSON: a list of the same objects, `{"value": [...]}`, or one object a line. A hash
`error: ...` is a file the host could not read (locked): kept, as a difference of its own.
Every row keeps its line in the file, so a finding points at it.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from itertools import repeat
from pathlib import Path
from typing import Any, NamedTuple

from irtool.model.problems import InvalidFile, Mark, Problem

_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_PATH_NAMES = ("relative_path", "path", "fullname")
_VALUE = re.compile(r'\{\s*"value"\s*:\s*\[')  # ConvertTo-Json of a wrapped array
_HEXES = re.compile(r"[0-9a-fA-F]*")
_BETWEEN = re.compile(r"[\s,]*")
MAX_PROBLEMS = 50  # a listing that is not one at all says so in 50 lines, not 100,000


class Listed(NamedTuple):
    """One row: `sha256` lower-case hex, or the host's `error: ...`."""

    path: str
    size: int
    sha256: str
    line: int
    modified: str | None = None


_new_listed = partial(tuple.__new__, Listed)


def read_listing(path: Path) -> list[Listed]:
    """Every row of a hash listing, or InvalidFile with each bad row located."""
    where = str(path)
    try:
        text = _decoded(path.read_bytes())
    except OSError as exc:
        raise InvalidFile([Problem(Mark(where, 1, 1), exc.strerror or str(exc))]) from exc
    except UnicodeDecodeError as exc:
        raise InvalidFile([Problem(Mark(where, 1, 1), f"not text: {exc.reason}")]) from exc
    start = len(text) - len(text.lstrip())
    if start == len(text):
        raise InvalidFile([Problem(Mark(where, 1, 1), "empty: no listing")])
    problems: list[Problem] = []
    try:
        if text[start] in "[{":
            rows = list(_json_rows(text, start, where, problems))
        else:
            rows = list(_csv_rows(text, where, problems))
    except RecursionError:  # JSON nested deeper than any listing: a hostile host's output
        raise InvalidFile([Problem(Mark(where, 1, 1), "nested too deep: not a listing")]) from None
    if problems:
        raise InvalidFile(problems[:MAX_PROBLEMS])
    return rows


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _decoded(data: bytes) -> str:
    # Windows PowerShell's Out-File writes UTF-16 with a BOM; a capture is UTF-8, maybe a BOM.
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    return data.decode("utf-8-sig")


def _row(values: dict[str, Any], line: int, where: str, problems: list[Problem]) -> Listed | None:
    keys = {str(k).lower(): v for k, v in values.items()}
    path = next((keys[n] for n in _PATH_NAMES if keys.get(n)), None)
    if not isinstance(path, str):
        problems.append(Problem(Mark(where, line, 1), "no relative_path"))
        return None
    sha256 = keys.get("sha256")
    if sha256 is None and "hash" in keys:
        sha256 = keys["hash"]
    sha256 = str(sha256 or "").strip()
    if _SHA256.fullmatch(sha256):
        sha256 = sha256.lower()
    elif not sha256.lower().startswith("error"):
        why = "no sha256" if not sha256 else "sha256: not 64 hex digits nor an error"
        problems.append(Problem(Mark(where, line, 1), why))
        return None
    try:
        size = int(keys.get("size") or keys.get("length") or 0)
    except (TypeError, ValueError, OverflowError):  # OverflowError: a JSON Infinity
        problems.append(Problem(Mark(where, line, 1), "size: not a number"))
        return None
    modified = keys.get("modified_utc")
    return Listed(path, size, sha256, line, str(modified) if modified else None)


def _csv_rows(text: str, where: str, problems: list[Problem]) -> Iterator[Listed]:
    lines = text.replace("\r\n", "\n").split("\n")
    number = 0  # lines before the header: blank ones, PowerShell's `#TYPE ...`
    while number < len(lines) and (not lines[number].strip() or lines[number].startswith("#")):
        number += 1
    header = next(csv.reader([lines[number]])) if number < len(lines) else []
    header = [h.strip().lower() for h in header]
    at = {name: i for i, name in reversed(list(enumerate(header)))}
    path_at = next((at[n] for n in _PATH_NAMES if n in at), None)
    sha_at = at.get("sha256", at.get("hash"))
    if path_at is None or sha_at is None:
        why = "no relative_path column" if sha_at is not None else "no sha256 column"
        problems.append(
            Problem(
                Mark(where, number + 1, 1),
                f"{why}: not a hash listing (the cmd variant lists no hashes; compare by hand)",
            )
        )
        return
    columns = _Columns(
        header, path_at, sha_at, at.get("size", at.get("length")), at.get("modified_utc")
    )
    number += 1
    while len(lines) > number and not lines[-1]:
        lines.pop()
    values = _split_all(lines[number:], len(header))
    rows = columns.rows(values, number + 1) if values is not None else None
    if rows is None:  # an unusual listing: line by line, each bad line said
        yield from _csv_slow(lines, number, columns, where, problems)
    else:
        yield from rows


def _split_all(body: list[str], width: int) -> list[str] | None:
    """Every value of every line, in one list, when each line is as PowerShell writes it:
    every value quoted, no quote within one (no file name holds a quote). Checked over all
    lines at once, in C: 100,000 lines one by one in Python would take most of a second."""
    quote = repeat('"')
    if (
        not body
        or "" in body
        or not all(map(str.startswith, body, quote))
        or not all(map(str.endswith, body, quote))
        or set(map(str.count, body, quote)) != {2 * width}
    ):
        return None
    values = ",".join(body)[1:-1].split('","')
    return values if len(values) == width * len(body) else None


@dataclass(frozen=True)
class _Columns:
    header: list[str]
    path: int
    sha256: int
    size: int | None
    modified: int | None

    def rows(self, values: list[str], first: int) -> list[Listed] | None:
        """The rows of `values` (every line's values in one list, from line `first`), if all
        are usual: a hash, a size, a path. None says: read them one by one."""
        width = len(self.header)
        hashes = "".join(values[self.sha256 :: width])
        sizes = values[self.size :: width] if self.size is not None else None
        paths = values[self.path :: width]
        count = len(paths)
        if (
            len(hashes) != 64 * count
            or not _HEXES.fullmatch(hashes)
            # isascii: `isdigit` is true of "²", which `int` refuses
            or (sizes is not None and ("" in sizes or not _digits("".join(sizes))))
            or "" in paths
        ):
            return None
        lower = hashes.lower()
        modified = (
            [v or None for v in values[self.modified :: width]]
            if self.modified is not None
            else repeat(None)
        )
        # Built in C (tuple.__new__ through map): a Python call per row costs more than
        # everything else together.
        return list(
            map(
                _new_listed,
                zip(
                    paths,
                    map(int, sizes) if sizes is not None else repeat(0),
                    [lower[at : at + 64] for at in range(0, len(lower), 64)],
                    range(first, first + count),
                    modified,
                    strict=False,  # `repeat` has no end
                ),
            )
        )

    def row(
        self, record: list[str], line: int, where: str, problems: list[Problem]
    ) -> Listed | None:
        sha256, size = record[self.sha256], record[self.size] if self.size is not None else "0"
        if _SHA256.fullmatch(sha256) and _digits(size) and record[self.path]:
            modified = record[self.modified] or None if self.modified is not None else None
            return Listed(record[self.path], int(size), sha256.lower(), line, modified)
        # Anything unusual (a locked file's error, a bad size) through the checks that say why.
        return _row(dict(zip(self.header, record, strict=True)), line, where, problems)


def _csv_slow(
    lines: list[str], first: int, columns: _Columns, where: str, problems: list[Problem]
) -> Iterator[Listed]:
    """Lines `first`... through the csv module: quotes within values, values over lines."""
    reader = csv.reader(io.StringIO("\n".join(lines[first:]), newline=""))
    width = len(columns.header)
    for record in reader:
        line = first + reader.line_num
        if len(record) != width:
            if record:
                problems.append(Problem(Mark(where, line, 1), f"{len(record)} values for {width}"))
            continue
        row = columns.row(record, line, where, problems)
        if row is not None:
            yield row


def _json_rows(text: str, start: int, where: str, problems: list[Problem]) -> Iterator[Listed]:
    lines = _Lines(text)
    wrapped = _VALUE.match(text, start)
    if text[start] == "[" or wrapped:
        yield from _json_array(text, wrapped.end() if wrapped else start + 1, where, problems)
        return
    decoder = json.JSONDecoder()
    try:
        first, end = decoder.raw_decode(text, start)
    except json.JSONDecodeError as exc:
        problems.append(Problem(Mark(where, exc.lineno, exc.colno), f"not JSON: {exc.msg}"))
        return
    if isinstance(first, dict) and text[end:].strip():  # JSON lines: one object a line
        yield from _json_lines(text, where, problems)
    elif isinstance(first, dict):
        row = _fast_row(first, lines.line(start), where, problems)
        if row is not None:
            yield row
    else:
        problems.append(Problem(lines.mark(where, start), "not a list of files"))


def _json_array(text: str, index: int, where: str, problems: list[Problem]) -> Iterator[Listed]:
    """The items of the array whose `[` is just before `index`, each decoded where it stands,
    so its line is known: a finding cites it."""
    decode, skip, lines = json.JSONDecoder().raw_decode, _BETWEEN.match, _Lines(text)
    index = _skipped(skip(text, index)).end()
    if text.startswith("]", index):
        return
    while True:
        at = index
        try:
            item, index = decode(text, index)
        except json.JSONDecodeError as exc:
            problems.append(Problem(Mark(where, exc.lineno, exc.colno), f"not JSON: {exc.msg}"))
            return
        line = lines.line(at)
        if isinstance(item, dict):
            row = _fast_row(item, line, where, problems)
            if row is not None:
                yield row
        else:
            problems.append(Problem(Mark(where, line, 1), "not an object"))
        separator = _skipped(skip(text, index))
        index = separator.end()
        if text.startswith("]", index):
            return
        if "," not in separator.group() or index >= len(text):
            problems.append(Problem(lines.mark(where, index), "not JSON: expected ',' or ']'"))
            return


def _skipped(match: re.Match[str] | None) -> re.Match[str]:
    assert match is not None  # `[\s,]*` matches everywhere, if only nothing
    return match


def _fast_row(
    item: dict[str, Any], line: int, where: str, problems: list[Problem]
) -> Listed | None:
    path, sha256, size = item.get("relative_path"), item.get("sha256"), item.get("size")
    if (
        isinstance(path, str)
        and path
        and type(size) is int  # not a bool
        and isinstance(sha256, str)
        and _SHA256.fullmatch(sha256)
    ):
        modified = item.get("modified_utc")
        return Listed(path, size, sha256.lower(), line, str(modified) if modified else None)
    return _row(item, line, where, problems)


def _json_lines(text: str, where: str, problems: list[Problem]) -> Iterator[Listed]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(Problem(Mark(where, number, exc.colno), f"not JSON: {exc.msg}"))
            continue
        if not isinstance(item, dict):
            problems.append(Problem(Mark(where, number, 1), "not an object"))
            continue
        row = _fast_row(item, number, where, problems)
        if row is not None:
            yield row


class _Lines:
    """Line numbers of offsets asked for in increasing order, counted once."""

    def __init__(self, text: str) -> None:
        self.text, self.offset, self.number = text, 0, 1

    def line(self, offset: int) -> int:
        if offset < self.offset:
            self.offset, self.number = 0, 1
        self.number += self.text.count("\n", self.offset, offset)
        self.offset = offset
        return self.number

    def mark(self, where: str, offset: int) -> Mark:
        line = self.line(offset)
        return Mark(where, line, offset - (self.text.rfind("\n", 0, offset) + 1) + 1)
