"""The W3C extended log reader (IIS): files, directories, gzip and zip archives, streamed.

Format (https://www.w3.org/TR/WD-logfile, as IIS writes it): directive lines start with ``#``
(``#Software``, ``#Version``, ``#Date``, ``#Fields``); every other line is one request whose
values are separated by single spaces, in the order of the ``#Fields`` line in force. A
``#Fields`` line can come again anywhere (IIS writes the header again when it restarts or
when logging is reconfigured) with a different list: the reader re-keys on every one. In a
value, ``+`` stands for a space and ``-`` for an empty value.

What the reader yields: ``Batch`` objects, each up to ``batch`` rows read under one
``#Fields`` line of one source, column by column (values decoded: ``+`` -> space, ``-`` ->
None; split from the raw lines only when asked for), with each row's 1-based line number and
raw line, and the SHA-256 of the evidence file it came from: custody back to the line.

Bad input is a located warning (``source:line: message``), counted in ``ReadStats``, never an
exception:

- a *torn* line: the last line of a source, without a newline and with the wrong number of
  values (a log copied while IIS was writing it); a last line without a newline but with
  the right number of values is kept, with a warning (its last value may be cut short);
- an *invalid* line: the wrong number of values for the ``#Fields`` in force, binary
  garbage, a line longer than ``MAX_LINE``;
- rows before any ``#Fields`` line (a header cut off): if the first of them has exactly the
  IIS default fields' count and starts with a date and a time, the IIS default fields
  (``IIS_DEFAULT_FIELDS``) are assumed for the source until a ``#Fields`` line, with one
  warning; otherwise they are invalid (one warning for the run of them);
- a UTF-8 byte order mark is dropped; invalid UTF-8 is decoded with replacement characters,
  with one warning per source (at the first bad line);
- an empty source, a broken archive, an encrypted zip member, a read error: one warning each,
  rows read before the error are kept.

Lines with no characters at all are skipped and counted (``blank``), without a warning.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import repeat
from typing import BinaryIO

from irtool.analysis import sources as _sources

IIS_DEFAULT_FIELDS: tuple[str, ...] = (
    "date",
    "time",
    "s-ip",
    "cs-method",
    "cs-uri-stem",
    "cs-uri-query",
    "s-port",
    "cs-username",
    "c-ip",
    "cs(user-agent)",
    "cs(referer)",
    "sc-status",
    "sc-substatus",
    "sc-win32-status",
    "time-taken",
)
"""The fields IIS logs by default, canonical (lowercased)."""

DEFAULT_BATCH = 50_000
#: Bytes read at a time: small enough to stay in the CPU's cache (faster than larger reads).
CHUNK = 1 << 16
#: A line longer than this is invalid (skipped up to its newline, never held whole).
MAX_LINE = 1 << 20
#: Line-level warnings given per source; the rest are counted, and one warning says so.
MAX_WARNINGS_PER_SOURCE = 100


@dataclass(frozen=True)
class ReadWarning:
    """Something wrong in the input, located: ``str()`` is ``source:line: message`` (or
    ``source: message`` for the source as a whole, line 0)."""

    source: str
    line: int
    message: str

    def __str__(self) -> str:
        if self.line:
            return f"{self.source}:{self.line}: {self.message}"
        return f"{self.source}: {self.message}"


class Batch:
    """Up to ``batch`` rows read under one ``#Fields`` line of one source.

    ``columns`` is computed from ``raw`` when first asked for if the batch is ``exact``: the
    reader's common case, so that a consumer that reads the raw lines (the store hands them to
    DuckDB) pays nothing for millions of decoded values it never looks at."""

    __slots__ = ("_columns", "exact", "fields", "lines", "raw", "sha256", "source")

    source: str
    """Display name: the path, or ``archive.zip!member.log`` (``a.zip!b.zip!c.log``)."""
    sha256: str
    """SHA-256 of the evidence file the lines came from (the archive for a member)."""
    fields: tuple[str, ...]
    """The ``#Fields`` in force, canonical: lowercased as written (``cs(user-agent)``)."""
    lines: list[int]
    """1-based line number of each row in its source (the member, for an archive)."""
    raw: list[str]
    """Each row's raw line (decoded text, without its newline)."""
    exact: bool
    """Every raw line is exactly its values joined by single spaces (no trailing space):
    ``columns`` is that split, decoded. The reader's batches are exact but where a line had a
    trailing space."""

    def __init__(
        self,
        source: str,
        sha256: str,
        fields: tuple[str, ...],
        columns: list[list[str | None]] | None,
        lines: list[int],
        raw: list[str],
        *,
        exact: bool = False,
    ) -> None:
        if columns is None and not exact:
            raise ValueError("a batch without columns is exact: they are split from raw")
        self.source = source
        self.sha256 = sha256
        self.fields = fields
        self._columns = columns
        self.lines = lines
        self.raw = raw
        self.exact = exact

    @property
    def columns(self) -> list[list[str | None]]:
        """One list per field, values decoded (``+`` -> space, ``-`` -> None)."""
        if self._columns is None:
            self._columns = _split(self.raw, len(self.fields))
        return self._columns

    def __len__(self) -> int:
        return len(self.lines)

    def __repr__(self) -> str:
        return f"Batch({self.source!r}, {len(self.lines)} rows, {len(self.fields)} fields)"

    def column(self, name: str) -> list[str | None] | None:
        """The column of a field (canonical or as IIS writes it), or None if absent."""
        try:
            return self.columns[self.fields.index(name.lower())]
        except ValueError:
            return None

    def records(self) -> Iterator[dict[str, str | None]]:
        """Row by row, as dicts (for tests and small outputs; columns are faster)."""
        for values in zip(*self.columns, strict=True):
            yield dict(zip(self.fields, values, strict=True))


@dataclass
class ReadStats:
    """What one read went through; pass the same object to several reads to add them up."""

    lines: int = 0
    """Lines seen (rows, directives, blank, torn and invalid lines)."""
    rows: int = 0
    """Rows yielded in batches."""
    directives: int = 0
    torn: int = 0
    invalid: int = 0
    blank: int = 0
    sources: int = 0
    """Sources read (a file, a .gz, a zip member)."""
    evidence: int = 0
    """Evidence files opened."""
    skipped: int = 0
    """Evidence files not read because ``skip`` said so."""
    unreadable: int = 0
    """Sources or archives that could not be read (or only in part)."""
    bytes: int = 0
    """Bytes of evidence files hashed (the files' sizes)."""
    warnings: int = 0
    """Warnings, given and suppressed."""
    suppressed: int = 0
    """Line warnings not given past ``MAX_WARNINGS_PER_SOURCE`` (still counted above)."""
    fields_changes: int = 0
    """``#Fields`` lines that changed the fields in force in a source."""


WarningSink = Callable[[ReadWarning], None]


def read_paths(
    paths: Iterable[str | os.PathLike[str]],
    *,
    batch: int = DEFAULT_BATCH,
    on_warning: WarningSink | None = None,
    stats: ReadStats | None = None,
    skip: Callable[[str], bool] | None = None,
) -> Iterator[Batch]:
    """Read W3C logs from files, directories (recursively), ``.gz`` and ``.zip`` archives.

    A path named here is read whatever its name (gzip and zip are known by their first
    bytes); inside a directory or an archive, only files whose name ends in ``.log``,
    ``.txt``, ``.gz`` or ``.zip``, or that start with ``#Software``, ``#Version`` or
    ``#Fields``. Each evidence file is hashed (SHA-256) before its rows are read, and read
    again as it is parsed and re-hashed (plain and gzip files): a change in between is a
    warning. ``skip(sha256)`` returning True leaves that evidence file unread (for example
    one already in the store).

    Raises OSError only for a path that does not exist or cannot be opened (checked for every
    path before any is read); a file inside a directory that cannot be opened is a warning.
    """
    st = stats if stats is not None else ReadStats()
    found = _sources.expand(paths)
    for path, explicit in found:
        display = str(path)
        try:
            f = open(path, "rb")  # noqa: SIM115 (closed below, after the generator is done)
        except OSError as e:
            if explicit:
                raise OSError(e.errno, f"cannot read {path}: {e.strerror or e}") from e
            _warn_source(display, f"cannot read: {e.strerror or e}", on_warning, st)
            st.unreadable += 1
            continue
        with f:
            if not explicit:
                head = f.read(16)
                f.seek(0)
                if not _sources.is_candidate(path.name, head):
                    continue
            try:
                sha256, size = _sources.hash_file(f)
            except OSError as e:
                _warn_source(display, f"cannot read: {e.strerror or e}", on_warning, st)
                st.unreadable += 1
                continue
            st.evidence += 1
            st.bytes += size
            if skip is not None and skip(sha256):
                st.skipped += 1
                continue
            evidence = _sources.Evidence(path, sha256, size)

            def warn(source: str, line: int, message: str) -> None:
                if line == 0:
                    st.unreadable += 1
                _emit(ReadWarning(source, line, message), on_warning, st)

            members = _sources.sources_of(f, evidence, explicit=explicit, warn=warn)
            while True:
                try:
                    item = next(members)
                except StopIteration:
                    break
                except _sources.READ_ERRORS as e:
                    warn(display, 0, f"cannot read: {e}")
                    break
                name, stream = item
                yield from read_stream(
                    stream, source=name, sha256=sha256, batch=batch, on_warning=on_warning,
                    stats=st,
                )  # fmt: skip


def read_stream(
    stream: BinaryIO,
    *,
    source: str,
    sha256: str,
    batch: int = DEFAULT_BATCH,
    on_warning: WarningSink | None = None,
    stats: ReadStats | None = None,
) -> Iterator[Batch]:
    """Read one W3C log from a binary stream (already decompressed), to its end.

    ``source`` names it in batches and warnings; ``sha256`` is the evidence file's hash as
    custody recorded it (this function does not hash). Read errors of the stream (a broken
    archive) end the source with a warning; rows read before are kept."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    st = stats if stats is not None else ReadStats()
    parser = _Parser(source, sha256, batch, on_warning, st)
    st.sources += 1
    pending = b""
    first = True
    total = 0
    skipping = False  # inside a line longer than MAX_LINE: dropped up to its newline
    while True:
        try:
            chunk = stream.read(CHUNK)
        except _sources.READ_ERRORS as e:
            st.unreadable += 1
            parser.warn_source(f"read error after line {parser.line_no + 1}: {e}")
            chunk = b""
            pending = b""  # a partial line before a read error is not a torn line
            skipping = False
        if not chunk:
            break
        total += len(chunk)
        if first:
            first = False
            if chunk.startswith(_sources.BOM):
                chunk = chunk[len(_sources.BOM) :]
            elif len(chunk) < len(_sources.BOM) and _sources.BOM.startswith(chunk):
                # a tiny read that may be the start of a BOM: finish it first
                more = stream.read(len(_sources.BOM) - len(chunk))
                chunk += more
                total += len(more)
                if chunk.startswith(_sources.BOM):
                    chunk = chunk[len(_sources.BOM) :]
        if skipping:
            nl = chunk.find(b"\n")
            if nl < 0:
                continue
            chunk = chunk[nl + 1 :]
            skipping = False
            parser.skip_line()
        cut = chunk.rfind(b"\n")
        if cut < 0:
            pending += chunk
            if len(pending) > MAX_LINE:
                parser.long_line()
                pending = b""
                skipping = True
            continue
        block = pending + chunk[: cut + 1] if pending else chunk[: cut + 1]
        pending = chunk[cut + 1 :]
        parser.feed(block)
        yield from parser.take()
    if skipping:
        parser.skip_line()
    if pending:
        parser.last_line(pending)
    parser.end(empty=total == 0)
    yield from parser.take()


def _emit(w: ReadWarning, sink: WarningSink | None, st: ReadStats) -> None:
    st.warnings += 1
    if sink is not None:
        sink(w)


def _warn_source(source: str, message: str, sink: WarningSink | None, st: ReadStats) -> None:
    _emit(ReadWarning(source, 0, message), sink, st)


_NULL = {"-": None}.get
# str.translate: ' ' -> '+' (the separator), '+' -> ' ' (decoded).
_SWAP_TEXT = str.maketrans(" +", "+ ")


def _split(raw: list[str], n: int) -> list[list[str | None]]:
    """The decoded columns of exact lines (each its ``n`` values joined by single spaces)."""
    if not raw:
        return [[] for _ in range(n)]
    flat = " ".join(raw).translate(_SWAP_TEXT).split("+")
    if len(flat) != len(raw) * n:
        raise ValueError("a line of an exact batch does not have its fields' count of values")
    return [_dashes(flat[j::n]) for j in range(n)]


def _dashes(col: list[str]) -> list[str | None]:
    """'-' -> None: in C where it can be (a column with none costs one scan)."""
    n = col.count("-")
    if not n:
        return col  # type: ignore[return-value]
    out: list[str | None] = col  # type: ignore[assignment]
    if n * 8 < len(col):
        index = col.index
        i = -1
        try:
            while True:
                i = index("-", i + 1)
                out[i] = None
        except ValueError:
            pass
        return out
    return list(map(_NULL, col, col))


def _decode(col: list[str]) -> list[str | None]:
    """W3C values to Python: ``+`` -> space, ``-`` -> None (the general path)."""
    joined = "\n".join(col)  # a value never holds a newline: lines were split on them
    if "+" in joined:
        col = joined.replace("+", " ").split("\n")
    return _dashes(col)


def _looks_like_date_time(values: list[str]) -> bool:
    d, t = values[0], values[1]
    return (
        len(d) == 10
        and d[4] == "-"
        and d[7] == "-"
        and d[:4].isdigit()
        and len(t) >= 8
        and t[2] == ":"
        and t[5] == ":"
    )


class _Parser:
    """The state of one source being read: the #Fields in force, the line number, the rows
    gathered for the next batch."""

    def __init__(
        self, source: str, sha256: str, batch: int, sink: WarningSink | None, st: ReadStats
    ) -> None:
        self.source = source
        self.sha256 = sha256
        self.batch = batch
        self.sink = sink
        self.st = st
        self.fields: tuple[str, ...] | None = None
        self.line_no = 0  # lines consumed so far
        self.warned = 0
        self.bad_utf8 = False
        self.headerless_warned = False
        self.out: list[Batch] = []
        # rows gathered under self.acc_fields
        self.acc_fields: tuple[str, ...] | None = None
        self.acc_cols: list[list[str | None]] | None = []  # None: exact lines, no columns yet
        self.acc_lines: list[int] = []
        self.acc_raw: list[str] = []

    # -- warnings ---------------------------------------------------------------------------
    def warn_line(self, line: int, message: str) -> None:
        self.warned += 1
        if self.warned <= MAX_WARNINGS_PER_SOURCE:
            _emit(ReadWarning(self.source, line, message), self.sink, self.st)
            return
        self.st.suppressed += 1
        self.st.warnings += 1

    def warn_source(self, message: str) -> None:
        _emit(ReadWarning(self.source, 0, message), self.sink, self.st)

    # -- input ------------------------------------------------------------------------------
    def skip_line(self) -> None:
        self.line_no += 1
        self.st.lines += 1

    def long_line(self) -> None:
        self.st.invalid += 1
        self.warn_line(self.line_no + 1, f"line longer than {MAX_LINE} bytes: skipped")

    def feed(self, block: bytes) -> None:
        """Complete lines (``block`` ends with a newline)."""
        errors = "strict"
        try:
            text = block.decode("utf-8")
        except UnicodeDecodeError as e:
            if not self.bad_utf8:
                # the lines before the bad one first, so that warnings come in line order
                cut = block.rfind(b"\n", 0, e.start) + 1
                if cut:
                    self.feed(block[:cut])
                    block = block[cut:]
                self.bad_utf8 = True
                self.warn_line(
                    self.line_no + 1, "invalid UTF-8 (decoded with replacement characters)"
                )
            errors = "replace"
            text = block.decode("utf-8", errors)
        crlf = b"\r" in block
        lines = text.split("\r\n" if crlf else "\n")
        lines.pop()  # after the last newline
        directives = b"#" in block and (block[:1] == b"#" or b"\n#" in block)
        fields = self.fields
        if not directives and fields:
            # The fast path, for a block of rows with the right count of values each: the
            # lines are kept as they are and the batch splits them into columns only if they
            # are asked for (the store never asks: DuckDB splits them). A bare newline among
            # CRLF ones takes the general path below (it ends a line there).
            n = len(fields)
            k = len(lines)
            if set(map(str.count, lines, repeat(" "))) == {n - 1} and (
                not crlf or text.count("\n") == k
            ):
                first = self.line_no + 1
                self.line_no += k
                self.st.lines += k
                self._add(fields, None, list(range(first, first + k)), lines)
                return
        if crlf and "\n" in text.replace("\r\n", ""):  # bare newlines among CRLF ones
            lines = text.replace("\r\n", "\n").split("\n")
            lines.pop()
        self._lines(lines, directives)

    def last_line(self, tail: bytes) -> None:
        """The last line of the source, without a newline."""
        if tail.endswith(b"\r"):
            tail = tail[:-1]
        text = tail.decode("utf-8", "replace")
        if text.startswith("#") or not text or self.fields is None:
            self._lines([text], text[:1] == "#")
            return
        n = len(self.fields)
        count = text.count(" ") + 1
        line = self.line_no + 1
        if count == n or (count == n + 1 and text.endswith(" ")):
            self.warn_line(line, "last line has no newline: its last value may be cut short")
            self._lines([text], False)
            return
        self.line_no += 1
        self.st.lines += 1
        self.st.torn += 1
        self.warn_line(line, f"torn last line ({count} of {n} values, no newline): skipped")

    def _lines(self, lines: list[str], directives: bool) -> None:
        """Whole lines, in order: directives split them into runs of rows."""
        if not lines:
            return
        start = 0
        if directives:
            for i, line in enumerate(lines):
                if line[:1] == "#":
                    if i > start:
                        self._rows(lines[start:i])
                    self._directive(line)
                    start = i + 1
        if start == 0:
            self._rows(lines)
        elif start < len(lines):
            self._rows(lines[start:])

    def _directive(self, line: str) -> None:
        self.line_no += 1
        self.st.lines += 1
        self.st.directives += 1
        name, _, rest = line.partition(":")
        if name.strip().lower() != "#fields":
            return
        fields = tuple(f.lower() for f in rest.split())
        if not fields:
            self.warn_line(self.line_no, "#Fields line with no fields: rows skipped until one")
            self.fields = ()
            return
        if len(set(fields)) != len(fields):
            self.warn_line(self.line_no, "#Fields line names a field twice")
        if self.fields is not None and fields != self.fields:
            self.st.fields_changes += 1
        self.fields = fields
        self.headerless_warned = False

    def _rows(self, lines: list[str]) -> None:
        """A run of data lines, all under the #Fields in force."""
        first = self.line_no + 1
        self.line_no += len(lines)
        self.st.lines += len(lines)
        if self.fields is None:
            if _headerless_default(lines):
                self.fields = IIS_DEFAULT_FIELDS
                self.warn_line(
                    first,
                    "no #Fields line before this row: the IIS default fields are assumed",
                )
            else:
                self._no_fields(lines, first)
                return
        if not self.fields:
            self._no_fields(lines, first)
            return
        fields = self.fields
        n = len(fields)
        if set(map(str.count, lines, repeat(" "))) == {n - 1}:
            # every line exact: the batch splits them if its columns are asked for
            self._add(fields, None, list(range(first, first + len(lines))), lines)
            return
        good: list[str] = []
        numbers: list[int] = []
        raw: list[str] = []
        trimmed = False
        for i, line in enumerate(lines):
            count = line.count(" ") + 1
            if count == n:
                good.append(line)
            elif count == n + 1 and line.endswith(" "):
                good.append(line[:-1])  # a trailing space: the row is whole
                trimmed = True
            elif not line:
                self.st.blank += 1
                continue
            else:
                self.st.invalid += 1
                self.warn_line(first + i, f"{count} values where #Fields has {n}: skipped")
                continue
            numbers.append(first + i)
            raw.append(line)
        if not good:
            return
        if not trimmed:  # the good lines are exact
            self._add(fields, None, numbers, raw)
            return
        flat = " ".join(good).split(" ")
        columns = [_decode(flat[j::n]) for j in range(n)]
        self._add(fields, columns, numbers, raw)

    def _no_fields(self, lines: list[str], first: int) -> None:
        for i, line in enumerate(lines):
            if not line:
                self.st.blank += 1
                continue
            self.st.invalid += 1
            if not self.headerless_warned:
                self.headerless_warned = True
                self.warn_line(
                    first + i, "row before any #Fields line (fields unknown): skipped until one"
                )

    # -- output -----------------------------------------------------------------------------
    def _add(
        self,
        fields: tuple[str, ...],
        columns: list[list[str | None]] | None,
        numbers: list[int],
        raw: list[str],
    ) -> None:
        """Rows to the batch being gathered; ``columns`` None: the lines are exact (their
        columns are split from them when asked for). The gathered rows stay without columns
        while every part is exact; a part that is not (rare: a trailing space) gives them
        their columns."""
        if self.acc_fields != fields:
            self._flush()
            self.acc_fields = fields
            self.acc_cols = columns
            self.acc_lines = numbers
            self.acc_raw = raw
        else:
            if (self.acc_cols is None) != (columns is None):
                n = len(fields)
                if self.acc_cols is None:
                    self.acc_cols = _split(self.acc_raw, n)
                else:
                    columns = _split(raw, n)
            if self.acc_cols is not None:
                assert columns is not None
                for acc, col in zip(self.acc_cols, columns, strict=True):
                    acc.extend(col)
            self.acc_lines.extend(numbers)
            self.acc_raw.extend(raw)
        b = self.batch
        total = len(self.acc_lines)
        if total < b:
            return
        cols, lines, raw = self.acc_cols, self.acc_lines, self.acc_raw
        if total == b:
            self._emit(cols, lines, raw)
            self.acc_cols = None if cols is None else [[] for _ in fields]
            self.acc_lines = []
            self.acc_raw = []
            return
        whole = total - total % b
        for i in range(0, whole, b):
            part = None if cols is None else [c[i : i + b] for c in cols]
            self._emit(part, lines[i : i + b], raw[i : i + b])
        self.acc_cols = None if cols is None else [c[whole:] for c in cols]
        self.acc_lines = lines[whole:]
        self.acc_raw = raw[whole:]

    def _emit(self, cols: list[list[str | None]] | None, lines: list[int], raw: list[str]) -> None:
        assert self.acc_fields is not None
        self.st.rows += len(lines)
        self.out.append(
            Batch(self.source, self.sha256, self.acc_fields, cols, lines, raw, exact=cols is None)
        )

    def _flush(self) -> None:
        if self.acc_fields is not None and self.acc_lines:
            self._emit(self.acc_cols, self.acc_lines, self.acc_raw)
        self.acc_fields = None
        self.acc_cols = []
        self.acc_lines = []
        self.acc_raw = []

    def end(self, *, empty: bool) -> None:
        self._flush()
        if empty:
            self.warn_source("empty: no lines")

    def take(self) -> list[Batch]:
        out, self.out = self.out, []
        return out


def _headerless_default(lines: list[str]) -> bool:
    for line in lines:
        if not line:
            continue
        values = line.split(" ")
        return len(values) == len(IIS_DEFAULT_FIELDS) and _looks_like_date_time(values)
    return False


__all__ = [
    "DEFAULT_BATCH",
    "IIS_DEFAULT_FIELDS",
    "Batch",
    "ReadStats",
    "ReadWarning",
    "read_paths",
    "read_stream",
]
