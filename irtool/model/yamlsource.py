"""Safe YAML reading that remembers where every node came from.

PyYAML composes a node graph in which every scalar, sequence and mapping
keeps its start mark; we turn that graph into plain data ourselves instead of
handing it to a constructor. That gives us, in one place:
- a line and column for every value and every key, so any later problem can
  be reported at the node that caused it;
- no tags beyond plain data (no object construction, whatever the file says);
- duplicate keys as errors (PyYAML silently keeps the last one);
- a budget on alias expansion, so an alias bomb is refused in milliseconds;
- YAML 1.2 core scalars, so `no`, `on` and `2024-01-01` stay strings.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from irtool.model.problems import InvalidFile, Mark, Problem

Key = str | int
NodePath = tuple[Key, ...]

# A runbook with a few thousand nodes is large; a million-node expansion is an attack.
MAX_NODES = 50_000
MAX_DEPTH = 64
MAX_BYTES = 8 * 1024 * 1024

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"

_Base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _CoreSchemaLoader(_Base):  # type: ignore[valid-type,misc]
    """Parser + composer with the YAML 1.2 core schema's implicit types and nothing else."""

    yaml_implicit_resolvers: dict[str, list[tuple[str, re.Pattern[str]]]] = {}


for _tag, _regexp, _first in [
    (_BOOL, r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    (_INT, r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        _FLOAT,
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+.0123456789",
    ),
    (_NULL, r"^(?:~|null|Null|NULL|)$", "~nN"),
]:
    _CoreSchemaLoader.add_implicit_resolver(_tag, re.compile(_regexp), list(_first))
_CoreSchemaLoader.add_implicit_resolver(_NULL, re.compile(r"^$"), [""])


@dataclass
class Document:
    """Plain data read from one YAML file, with the mark of every value and key."""

    path: str
    data: Any
    marks: dict[NodePath, Mark] = field(default_factory=dict)
    key_marks: dict[NodePath, Mark] = field(default_factory=dict)
    # The exact bytes read, this file's first, then every file it included: what a
    # journal records so an incident can show the very runbook it followed.
    sources: list[tuple[str, bytes]] = field(default_factory=list)

    def mark(self, loc: Sequence[Any], *, key: bool = False) -> Mark:
        """The mark of the deepest node along `loc` that exists in the data.

        Elements of `loc` that are not in the data (a pydantic union tag, a
        missing key) are skipped, so a validation error always lands on the
        nearest real node.
        """
        node: Any = self.data
        here: NodePath = ()
        for element in loc:
            if isinstance(node, dict):
                found = isinstance(element, str) and element in node
            elif isinstance(node, list):
                found = type(element) is int and 0 <= element < len(node)
            else:
                found = False
            if found:
                here, node = (*here, element), node[element]
        if key and here in self.key_marks:
            return self.key_marks[here]
        return self.marks.get(here, Mark(self.path, 1, 1))

    def graft(self, source: Document, source_at: NodePath, target_at: NodePath) -> None:
        """Copy the marks of `source` below `source_at` to stand below `target_at` here."""
        n = len(source_at)
        for table, into in ((source.marks, self.marks), (source.key_marks, self.key_marks)):
            for path, mark in table.items():
                if path[:n] == source_at:
                    into[target_at + path[n:]] = mark


class _Refused(Exception):
    def __init__(self, problem: Problem) -> None:
        self.problem = problem


def _mark(path: str, node: Node) -> Mark:
    m = node.start_mark
    return Mark(path, m.line + 1, m.column + 1)


class _Builder:
    """Turns a composed node graph into plain data, refusing what plain data cannot be."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.doc = Document(path, None)
        self.problems: list[Problem] = []
        self.count = 0
        self.open_collections: set[int] = set()

    def problem(self, node: Node, message: str) -> None:
        self.problems.append(Problem(_mark(self.path, node), message))

    def build(self, node: Node, at: NodePath) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise _Refused(
                Problem(
                    _mark(self.path, node),
                    f"document expands to more than {MAX_NODES} nodes through aliases "
                    "(an alias bomb?): refused",
                )
            )
        if len(at) > MAX_DEPTH:
            raise _Refused(
                Problem(_mark(self.path, node), f"nesting deeper than {MAX_DEPTH} levels")
            )
        self.doc.marks[at] = _mark(self.path, node)
        if isinstance(node, ScalarNode):
            return self.scalar(node)
        if id(node) in self.open_collections:
            self.problem(node, "an alias refers to a node that contains it (recursive alias)")
            return None
        self.open_collections.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return self.sequence(node, at)
            if isinstance(node, MappingNode):
                return self.mapping(node, at)
        finally:
            self.open_collections.discard(id(node))
        raise AssertionError(f"unexpected node {node!r}")  # pragma: no cover

    def sequence(self, node: SequenceNode, at: NodePath) -> list[Any]:
        if node.tag != _SEQ:
            self.problem(node, f"tag {node.tag} is not allowed: irtool reads plain YAML data only")
        return [self.build(child, (*at, i)) for i, child in enumerate(node.value)]

    def mapping(self, node: MappingNode, at: NodePath) -> dict[str, Any]:
        if node.tag != _MAP:
            self.problem(node, f"tag {node.tag} is not allowed: irtool reads plain YAML data only")
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self.problem(key_node, "a key must be a plain scalar, not a list or mapping")
                continue
            if key_node.tag == "tag:yaml.org,2002:merge" or key_node.value == "<<":
                self.problem(key_node, "merge keys (<<) are not supported: repeat the keys")
                continue
            key = key_node.value
            child_at = (*at, key)
            if key in result:
                first = self.doc.key_marks[child_at]
                self.problem(key_node, f"duplicate key '{key}' (first at line {first.line})")
                continue
            self.doc.key_marks[child_at] = _mark(self.path, key_node)
            result[key] = self.build(value_node, child_at)
        return result

    def scalar(self, node: ScalarNode) -> Any:
        tag, value = node.tag, node.value
        if tag == _STR:
            return value
        if tag == _NULL:
            if value not in ("", "~", "null", "Null", "NULL"):
                self.problem(node, f"'{value}' is not null")
            return None
        if tag == _BOOL:
            if value.lower() not in ("true", "false"):
                self.problem(node, f"'{value}' is not a boolean (true or false)")
            return value.lower() == "true"
        if tag == _INT:
            try:
                return int(value, 0) if value.startswith(("0o", "0x")) else int(value, 10)
            except ValueError:
                self.problem(node, f"'{value}' is not an integer")
                return None
        if tag == _FLOAT:
            try:
                return float(value.replace(".inf", "inf").replace(".Inf", "inf"))
            except ValueError:
                self.problem(node, f"'{value}' is not a number")
                return None
        self.problem(node, f"tag {tag} is not allowed: irtool reads plain YAML data only")
        return value


def _yaml_error(path: str, text: str, exc: yaml.MarkedYAMLError) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    where = Mark(path, mark.line + 1, mark.column + 1) if mark else Mark(path, 1, 1)
    message = exc.problem or exc.context or "invalid YAML"
    if mark and 0 <= mark.index < len(text) and text[mark.index] == "\t":
        # libyaml's wording ("cannot start any token") hides the usual cause.
        return Problem(where, "YAML syntax: tab character: YAML indents with spaces only")
    if exc.context and exc.problem and exc.context_mark and exc.problem_mark:
        message = f"{message} ({exc.context} at line {exc.context_mark.line + 1})"
    return Problem(where, f"YAML syntax: {message}")


def _decode(raw: bytes, path: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        bad = raw[exc.start : exc.start + 1].hex()
        raise InvalidFile(
            [Problem(Mark(path, line, col), f"not UTF-8: byte 0x{bad} cannot be decoded")]
        ) from None


def parse(source: str | bytes, path: str) -> Document:
    """Read one YAML document from `source`; every problem raises InvalidFile, located."""
    if len(source) > MAX_BYTES:
        raise InvalidFile([Problem(Mark(path, 1, 1), f"file is larger than {MAX_BYTES} bytes")])
    text = _decode(source, path) if isinstance(source, bytes) else source
    loader = _CoreSchemaLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        raise InvalidFile([_yaml_error(path, text, exc)]) from None
    except yaml.YAMLError as exc:
        raise InvalidFile([Problem(Mark(path, 1, 1), f"YAML: {exc}")]) from None
    except RecursionError:
        raise InvalidFile([Problem(Mark(path, 1, 1), "nesting too deep to read")]) from None
    finally:
        loader.dispose()
    if root is None:
        raise InvalidFile([Problem(Mark(path, 1, 1), "file is empty")])
    builder = _Builder(path)
    builder.doc.sources = [(path, source if isinstance(source, bytes) else source.encode())]
    try:
        builder.doc.data = builder.build(root, ())
    except _Refused as refused:
        raise InvalidFile([refused.problem]) from None
    if builder.problems:
        raise InvalidFile(builder.problems)
    return builder.doc


def read(path: Path | str) -> Document:
    """Read and parse a YAML file; an unreadable file is a located problem too."""
    name = str(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise InvalidFile([Problem(Mark(name, 1, 1), f"cannot read: {exc.strerror}")]) from None
    return parse(raw, name)
