"""Records: the structured rows a collector's output holds, read as its `records:` spec says.

What a collector prints (see `irtool.model.records.RecordSpec`):

- JSON from PowerShell 3 and later: an object with the list at ``spec.path``, a bare list,
  or one object (``ConvertTo-Json`` of a pipeline of one); PowerShell 3 and 4 write an
  array inside an object as ``{"value": [...], "Count": n}``, which is read as the array;
- JSON lines (one object a line);
- CSV from a PowerShell 2 variant (``ConvertTo-Csv``: every value quoted, maybe a
  ``#TYPE ...`` first line). Such a variant writes several of the PowerShell 3 lists as
  one table, each row's ``kind`` column naming its list in the singular
  (``administrators``, ``run_key``, ``consumer``): with a ``path``, only the rows whose
  kind is the path's last part (or its singular) are records;
- any of them with a UTF-8 byte order mark, or as UTF-16 with one (what ``>`` writes on
  Windows PowerShell).

A record's identity is the canonical text of its key fields: a dotted name reads into
nested objects and lists (every value found, sorted, joined with ``,``); in a flat CSV row
the last part of the name is read; values are case-folded (Windows compares names, paths
and accounts regardless of case, and a hash is the same hex in either case), fields are
joined with ``|``. A local account is written ``COMPUTER\\name`` by the host it is on: where
the output names its computer (a JSON document's ``computer``, a CSV ``computer`` column),
it is read as ``.\\name``, so the local Administrator is the same record on every host. A
row whose key fields are all empty is no record (a row of another table, or an error row).
What cannot be read is a located problem, never an exception.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from irtool.model.problems import Mark, Problem, Severity
from irtool.model.records import RecordSpec

__all__ = ["Record", "RecordsRead", "canonical", "field_values", "read_records"]

#: The field a collector names its host's computer name in (the JSON document's, or a
#: CSV column): a local account's `COMPUTER\\name` is read as `.\\name`.
COMPUTER = "computer"
# CSV cells can be as long as a script block a WMI consumer holds.
csv.field_size_limit(16 * 1024 * 1024)


@dataclass(frozen=True)
class Record:
    """One record of a collector's output, and where it was read."""

    kind: str
    identity: str  # the canonical text of the key fields (the module docstring)
    fields: Mapping[str, Any]
    line: int  # a JSON record's place in its list (1 = first), a CSV or JSON line's number
    show: str  # the `show` fields as a responder reads them (original case)
    source: str = ""  # the evidence it was read from, as findings name it
    sha256: str = ""  # that evidence file's SHA-256

    @property
    def ref(self) -> tuple[str, str, int]:
        """(evidence sha256, source, line): a finding's reference to this record."""
        return (self.sha256, self.source, self.line)


@dataclass
class RecordsRead:
    """What one output held: its records, the problems met reading it, its format."""

    records: list[Record] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    format: str = "empty"  # json, jsonl, csv, empty; raw: not records (a cmd variant's text)
    skipped: int = 0  # rows without a key value, or of another table


def read_records(data: bytes, spec: RecordSpec, *, source: str, sha256: str = "") -> RecordsRead:
    """The records `data` holds, read as `spec` says; problems are located at `source`."""
    result = RecordsRead()
    text = _decode(data, source, result.problems)
    body = text.lstrip()
    if not body:
        return result
    try:
        if body[0] in "[{":
            rows = _json_rows(text, spec, source, result)
        else:
            result.format = "csv"
            rows = _csv_rows(text, spec, source, result)
    except RecursionError:  # JSON nested deeper than any collector writes: a hostile host
        result.problems.append(Problem(Mark(source, 1, 1), "nested too deep: not records"))
        return result
    show_names = spec.show or spec.key
    for line, row, computer in rows:
        identity = _identity(row, spec.key, computer)
        if not identity.strip("|,"):
            result.skipped += 1
            continue
        shown = " ".join(v for n in show_names if (v := ",".join(field_values(row, n, fold=False))))
        result.records.append(
            Record(spec.kind, identity, row, line, shown or identity, source, sha256)
        )
    return result


def canonical(value: Any) -> str:
    """One value as an identity holds it: text, case-folded, surrounding blanks removed."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip().casefold()


def field_values(row: Mapping[str, Any], name: str, *, fold: bool = True) -> list[str]:
    """Every value the dotted `name` reaches in `row` (into objects and lists), in order;
    where it reaches nothing (a flat CSV row), the value of its last part. `fold`:
    canonical (for identities), else as written (for people and indicators)."""
    value = row.get(name)
    if value is not None and not isinstance(value, dict | list):  # the usual case, quickly
        text = canonical(value) if fold else str(value).strip()
        return [text] if text else []
    parts = [name] if name in row else name.split(".")
    found = list(_walk(row, parts))
    if not found and len(parts) > 1 and parts[-1] in row:
        found = list(_walk(row, parts[-1:]))
    shown = [canonical(v) if fold else ("" if v is None else str(v).strip()) for v in found]
    return [v for v in shown if v]


def _walk(node: Any, parts: Sequence[str]) -> Iterator[Any]:
    node = _unwrap(node)
    if isinstance(node, list):
        for item in node:
            yield from _walk(item, parts)
        return
    if not parts:
        if isinstance(node, dict):
            yield json.dumps(node, sort_keys=True)  # an object where a value was expected
        else:
            yield node
        return
    if isinstance(node, dict) and parts[0] in node:
        yield from _walk(node[parts[0]], parts[1:])


def _identity(row: Mapping[str, Any], key: Sequence[str], computer: str) -> str:
    return "|".join(
        ",".join(sorted(_local(v, computer) for v in field_values(row, name))) for name in key
    )


def _local(value: str, computer: str) -> str:
    """A local account, `WEB01\\ann` on host WEB01, as `.\\ann`: the same account name on
    every host of a group, as Windows itself writes a local account."""
    if computer and value.startswith(computer + "\\"):
        return "." + value[len(computer) :]
    return value


def _unwrap(node: Any) -> Any:
    """PowerShell 3 and 4 write an array inside an object as {"value": [...], "Count": n}."""
    if isinstance(node, dict) and set(node) == {"value", "Count"}:
        return node["value"]
    return node


# -- decoding ---------------------------------------------------------------------------------


def _decode(data: bytes, source: str, problems: list[Problem]) -> str:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", errors="replace")
    if len(data) >= 2 and data[0] != 0 and data[1] == 0:
        return data.decode("utf-16-le", errors="replace")  # UTF-16 without its mark
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as bad:
        line = data.count(b"\n", 0, bad.start) + 1
        col = bad.start - (data.rfind(b"\n", 0, bad.start) + 1) + 1
        problems.append(
            Problem(
                Mark(source, line, col),
                f"not UTF-8 (byte 0x{data[bad.start]:02x}): read with replacement characters",
                Severity.WARNING,
            )
        )
        return data.decode("utf-8-sig", errors="replace")


# -- JSON -------------------------------------------------------------------------------------


def _json_rows(
    text: str, spec: RecordSpec, source: str, result: RecordsRead
) -> list[tuple[int, dict[str, Any], str]]:
    result.format = "json"
    try:
        documents: list[tuple[int, Any]] = [(0, json.loads(text))]
    except json.JSONDecodeError as bad:
        if bad.msg != "Extra data":
            result.problems.append(_json_problem(source, bad))
            return []
        result.format = "jsonl"
        documents = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                documents.append((number, json.loads(line)))
            except json.JSONDecodeError as torn:
                result.problems.append(
                    Problem(Mark(source, number, torn.colno), f"not JSON: {torn.msg}")
                )
    rows: list[tuple[int, dict[str, Any], str]] = []
    for number, document in documents:
        found = _at_path(document, spec.path)
        # A finding names the line each record starts on, as the viewer shows the output.
        starts = element_lines(text, spec.path) if number == 0 and found else None
        if starts is not None and len(starts) != len(found or ()):
            starts = None  # a shape the scan does not follow: the record's place instead
        computer = canonical(document.get(COMPUTER)) if isinstance(document, dict) else ""
        if found is None:
            result.problems.append(
                Problem(Mark(source, max(number, 1), 1), f"no '{spec.path}' in the output")
            )
            continue
        for index, item in enumerate(found, 1):
            if isinstance(item, dict):
                starts_on = number or (starts[index - 1] if starts else index)
                rows.append((starts_on, item, canonical(item.get(COMPUTER)) or computer))
            elif item is not None:
                result.problems.append(
                    Problem(
                        Mark(source, max(number, 1), 1),
                        f"record {index} of '{spec.path or 'the output'}' is not an object",
                    )
                )
    return rows


_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\]:,]')


def element_lines(text: str, path: str | None) -> list[int]:
    """The line (1-based) each object of the list at `path` starts on, in order: what
    `_at_path` reaches, found by a scan of the text's brackets and strings (no second parse).
    PowerShell's `{"value": [...], "Count": n}` wrapping is looked through."""
    wanted = tuple(path.split(".")) if path else ()
    found: list[int] = []
    # frames: [is_object, logical path, last key (objects)]
    frames: list[list[Any]] = []
    line, at = 1, 0
    expect_key = False
    for token in _TOKEN.finditer(text):
        lexeme = token.group()
        if lexeme in "{[":
            parent = frames[-1] if frames else None
            if parent is None:
                where: tuple[str, ...] = ()
            elif parent[0]:  # a value of an object: its key extends the path
                key = parent[2]
                where = parent[1] if key == "value" else (*parent[1], key)
            else:
                where = parent[1]  # an item of a list: the list's path
            if lexeme == "{" and (parent is None or not parent[0]) and where == wanted:
                line += text.count("\n", at, token.start())
                at = token.start()
                found.append(line)
            frames.append([lexeme == "{", where, None])
            expect_key = lexeme == "{"
        elif lexeme in "}]":
            if frames:
                frames.pop()
            expect_key = False
        elif lexeme == ",":
            expect_key = bool(frames and frames[-1][0])
        elif lexeme == ":":
            expect_key = False
        elif expect_key and frames:
            frames[-1][2] = json.loads(lexeme)
            expect_key = False
    if not wanted and len(found) > 1 and text.lstrip().startswith("{"):
        return found[1:]  # the root object was PowerShell's wrapper of the list it holds
    return found


def _at_path(document: Any, path: str | None) -> list[Any] | None:
    """The items at `path` (through lists: each item's), or None when the path is not there."""
    document = _unwrap(document)
    if not path:
        return document if isinstance(document, list) else [document]
    items = document if isinstance(document, list) else [document]
    for part in path.split("."):
        reached: list[Any] = []
        there = False
        for item in items:
            item = _unwrap(item)
            if isinstance(item, dict) and part in item:
                there = True
                value = _unwrap(item[part])
                if isinstance(value, list):
                    reached.extend(value)
                elif value is not None:
                    reached.append(value)
        if not there:
            return None
        items = reached
    return items


def _json_problem(source: str, bad: json.JSONDecodeError) -> Problem:
    return Problem(Mark(source, bad.lineno, bad.colno), f"not JSON: {bad.msg}")


# -- CSV --------------------------------------------------------------------------------------


def _csv_rows(
    text: str, spec: RecordSpec, source: str, result: RecordsRead
) -> list[tuple[int, dict[str, Any], str]]:
    lines = io.StringIO(text, newline="")
    start = 0
    first = lines.readline()
    if first.startswith("#TYPE"):
        start = 1
    else:
        lines.seek(0)
    reader = csv.reader(lines)
    try:
        header = next(reader, None)
    except csv.Error as bad:
        result.problems.append(Problem(Mark(source, start + 1, 1), f"not CSV: {bad}"))
        return []
    if not header or not any(h.strip() for h in header):
        result.problems.append(Problem(Mark(source, start + 1, 1), "no CSV header"))
        return []
    names = [h.strip() for h in header]
    if not any(k in names or k.rsplit(".", 1)[-1] in names for k in spec.key):
        result.problems.append(
            Problem(
                Mark(source, start + 1, 1),
                f"no column of the key ({', '.join(spec.key)}): not the CSV this collector writes",
            )
        )
        return []
    wanted = _table(spec.path)
    rows: list[tuple[int, dict[str, Any], str]] = []
    while True:
        begins = start + reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as bad:
            result.problems.append(Problem(Mark(source, begins, 1), f"not CSV: {bad}"))
            break
        line = begins
        if not cells or not any(c.strip() for c in cells):
            continue
        if len(cells) != len(names):
            result.problems.append(
                Problem(
                    Mark(source, line, 1),
                    f"{len(cells)} values where the header names {len(names)}",
                    Severity.WARNING,
                )
            )
        row = dict(zip(names, cells, strict=False))
        if wanted and "kind" in row and row["kind"].strip().casefold() not in wanted:
            result.skipped += 1
            continue
        rows.append((line, row, canonical(row.get(COMPUTER))))
    return rows


def _table(path: str | None) -> set[str]:
    """The `kind` values of a PowerShell 2 CSV's rows that belong to the list `path` names."""
    if not path:
        return set()
    last = path.rsplit(".", 1)[-1].casefold()
    return {last, last.removesuffix("s"), last.removesuffix("es")}
