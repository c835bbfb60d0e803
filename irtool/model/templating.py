"""Rendering command templates: sandboxed Jinja2 in which every substituted value is quoted.

Quoting happens in Jinja's `finalize` hook, which sees the value of every
`{{ ... }}` expression before it is written. Authors therefore never quote by
hand and cannot forget to: `{{ attacker_ip }}` becomes `'203.0.113.7'` in
PowerShell and in sh. The one way to insert text raw is the `unquoted`
filter, named so that it stands out in review and is flagged by lint.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from irtool.model.quoting import literal
from irtool.model.steps import Shell

RAW_FILTER = "unquoted"
# `host`: the target host (its facts too); `iocs`: the incident's indicators by kind, each a
# list; `incident`: its id, to name what irtool creates on a host.
BUILTIN_NAMES = frozenset({"host", "iocs", "incident"})


class TemplateProblem(Exception):
    """A template that cannot be parsed or rendered; `line` counts within the template."""

    def __init__(self, message: str, line: int | None = None) -> None:
        self.message, self.line = message, line
        super().__init__(message if line is None else f"{message} (template line {line})")


class Unquoted(str):
    """Text the author chose to insert without quoting, through the `unquoted` filter."""


class Unset(str):
    """A parameter not yet known (the attacker's address before triage): empty and false in
    a template's `if`, shown as `<NAME: not set>` in a plan. A run refuses before it would
    send one (the engine checks `names_used`), so this text never reaches a host."""

    name: str

    def __new__(cls, name: str) -> Unset:
        made = super().__new__(cls, "")
        made.name = name
        return made


def _finalizer(shell: Shell) -> Callable[[Any], str]:
    separator = ", " if shell is Shell.POWERSHELL else " "  # sh and cmd: words

    def finalize(value: Any) -> str:
        if isinstance(value, Unset):
            return f"<{value.name}: not set>"
        if isinstance(value, Unquoted):
            return str(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)  # digits are one token in both shells
        if isinstance(value, list | tuple):
            joined = separator.join(finalize(item) for item in value)
            # PowerShell: an array whatever the count, so `$ips = {{ iocs.ip }}` is @() when
            # there is none and a foreach over one address still loops once.
            return f"@({joined})" if shell is Shell.POWERSHELL else joined
        if value is None:
            return literal("", shell)
        return literal(str(value), shell)

    return finalize


@lru_cache(maxsize=4)
def environment(shell: Shell) -> jinja2.Environment:
    env = ImmutableSandboxedEnvironment(
        undefined=jinja2.StrictUndefined,
        finalize=_finalizer(shell),
        autoescape=False,
        keep_trailing_newline=True,
    )
    env.filters[RAW_FILTER] = lambda value: Unquoted(str(value))
    return env


@lru_cache(maxsize=2048)
def _compile(source: str, shell: Shell) -> jinja2.Template:
    try:
        return environment(shell).from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateProblem(f"template syntax: {exc.message}", exc.lineno) from None


def render(source: str, shell: Shell, context: Mapping[str, Any]) -> str:
    """The command exactly as it will run, every substituted value quoted for `shell`."""
    template = _compile(source, shell)
    try:
        return template.render(context)
    except jinja2.UndefinedError as exc:
        raise TemplateProblem(f"template uses an undefined value: {exc.message}") from None
    except SecurityError as exc:
        raise TemplateProblem(f"template does something not allowed: {exc}") from None
    except ValueError as exc:  # from quoting: a NUL character
        raise TemplateProblem(str(exc)) from None
    except jinja2.TemplateError as exc:
        raise TemplateProblem(f"template: {exc.message}") from None


def _plain_finalizer(refuse: str) -> Callable[[Any], str]:
    def finalize(value: Any) -> str:
        if isinstance(value, Unset):
            return f"<{value.name}: not set>"
        if isinstance(value, list | tuple):
            return " ".join(finalize(v) for v in value)
        text = "" if value is None else str(value)
        if isinstance(value, Unquoted):
            return text
        if bad := sorted({c for c in text if c in refuse}):
            raise ValueError(
                f"a value holding {', '.join(map(repr, bad))} would widen the pattern it is put in"
            )
        return text

    return finalize


@lru_cache(maxsize=4)
def _plain(refuse: str) -> jinja2.Environment:
    return ImmutableSandboxedEnvironment(
        undefined=jinja2.StrictUndefined, finalize=_plain_finalizer(refuse), autoescape=False
    )


def render_text(source: str, context: Mapping[str, Any], refuse: str = "") -> str:
    """A template rendered as plain text, nothing quoted: for data that never reaches a shell
    as code (a fetch collector's paths, which its listing script quotes as literals). A
    substituted value holding one of `refuse` (a glob's `*` and `?`) is refused: only the
    template's own text may widen a pattern."""
    try:
        return _plain(refuse).from_string(source).render(context)
    except ValueError as bad:
        raise TemplateProblem(str(bad)) from None
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateProblem(f"template syntax: {exc.message}", exc.lineno) from None
    except jinja2.UndefinedError as exc:
        raise TemplateProblem(f"template uses an undefined value: {exc.message}") from None
    except SecurityError as exc:
        raise TemplateProblem(f"template does something not allowed: {exc}") from None
    except jinja2.TemplateError as exc:
        raise TemplateProblem(f"template: {exc.message}") from None


def _parse(source: str) -> nodes.Template:
    try:
        return environment(Shell.SH).parse(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateProblem(f"template syntax: {exc.message}", exc.lineno) from None


def names_used(source: str) -> set[str]:
    """Names a template reads from its context (parameters and built-ins)."""
    return set(meta.find_undeclared_variables(_parse(source)))


def raw_insertions(source: str) -> list[int]:
    """Template lines on which the `unquoted` filter inserts text without quoting."""
    return sorted({f.lineno for f in _parse(source).find_all(nodes.Filter) if f.name == RAW_FILTER})
