"""PowerShell syntax checks with tree-sitter-powershell, and PowerShell's own literal rules."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import tree_sitter
import tree_sitter_powershell

# PowerShell's tokenizer treats all of these as single quotes (CharTraits.IsSingleQuote).
SINGLE_QUOTES = "'\u2018\u2019\u201a\u201b"


@cache
def parser() -> tree_sitter.Parser:
    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))


@dataclass(frozen=True)
class SyntaxProblem:
    line: int
    col: int
    text: str


def syntax_problems(source: str) -> list[SyntaxProblem]:
    """ERROR and MISSING nodes in the parse of `source`; empty when it parses cleanly."""
    data = source.encode()
    tree = parser().parse(data)
    found: list[SyntaxProblem] = []

    def walk(node: tree_sitter.Node) -> None:
        if node.type == "ERROR" or node.is_missing:
            line, col = node.start_point
            found.append(
                SyntaxProblem(
                    line + 1, col + 1, data[node.start_byte : node.end_byte][:60].decode()
                )
            )
        elif node.has_error:
            for child in node.children:
                walk(child)

    walk(tree.root_node)
    return found


# In an expandable string, `$name:` followed by anything but a name character is a parse
# error in PowerShell ("Variable reference is not valid"), which tree-sitter accepts.
_BAD_DRIVE_VARIABLE = re.compile(r"(?<!`)\$[A-Za-z_][A-Za-z0-9_]*:(?![A-Za-z0-9_{])")


def string_problems(source: str) -> list[SyntaxProblem]:
    """Mistakes inside double-quoted strings that PowerShell refuses and tree-sitter does not."""
    data = source.encode()
    found = []
    for node in _descendants(parser().parse(data).root_node):
        if node.type == "expandable_string_literal":
            text = data[node.start_byte : node.end_byte].decode()
            for match in _BAD_DRIVE_VARIABLE.finditer(text):
                line, col = node.start_point
                found.append(SyntaxProblem(line + 1, col + 1, f"{match.group(0)} in {text[:60]}"))
    return found


def command_arguments(source: str) -> list[tuple[str, str]]:
    """For a one-command script, each argument's node type and exact text."""
    data = source.encode()
    tree = parser().parse(data)
    commands = [n for n in _descendants(tree.root_node) if n.type == "command"]
    assert len(commands) == 1, f"expected one command, found {len(commands)} in {source!r}"
    elements = next(c for c in commands[0].children if c.type == "command_elements")
    return [
        (child.type, data[child.start_byte : child.end_byte].decode())
        for child in elements.children
        if child.type != "command_argument_sep"
    ]


def _descendants(node: tree_sitter.Node) -> list[tree_sitter.Node]:
    result = [node]
    for child in node.children:
        result += _descendants(child)
    return result


def decode_verbatim(literal: str) -> str:
    """The value of a single-quoted PowerShell string, decoded as PowerShell's tokenizer does.

    Raises ValueError if the string ends before the last character: a quote in
    the middle that was not doubled would close it there.
    """
    if len(literal) < 2 or literal[0] not in SINGLE_QUOTES:
        raise ValueError("not a single-quoted string")
    value: list[str] = []
    i = 1
    while i < len(literal):
        c = literal[i]
        if c in SINGLE_QUOTES:
            if i + 1 < len(literal) and literal[i + 1] in SINGLE_QUOTES:
                value.append(literal[i + 1])
                i += 2
                continue
            if i != len(literal) - 1:
                raise ValueError(f"string closes early at offset {i}: {literal[i:]!r} follows")
            return "".join(value)
        value.append(c)
        i += 1
    raise ValueError("string is never closed")
