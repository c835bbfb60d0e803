"""Sigma's web-server rules as DuckDB SQL over the store's `requests`: the field mapping
(Sigma's and IIS's names onto the store's columns) and a pySigma backend that writes every
expression for DuckDB. `irtool.analysis.sigma` loads the rules and runs what this converts.

Matching follows Sigma: strings are case-insensitive unless ``|cased``, wildcards ``*``/``?``
are the only special characters, ``|re`` is RE2 (``regexp_matches``, case-sensitive unless
``(?i)``), numbers compare numerically, and ``not`` of a missing field is true. Values reach
SQL only as quoted literals (quotes doubled, LIKE metacharacters escaped), never as SQL.
Keyword rules (values bound to no field) search the ``raw`` line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, ClassVar, cast

from sigma.conditions import (
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.conversion.base import TextQueryBackend
from sigma.conversion.deferred import DeferredQueryExpression
from sigma.conversion.state import ConversionState
from sigma.exceptions import SigmaFeatureNotSupportedByBackendError
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import FieldMappingTransformation
from sigma.types import (
    SigmaCasedString,
    SigmaCompareExpression,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SpecialChars,
)

from irtool.analysis.store import COLUMNS, column_name

__all__ = ["KEYWORDS", "DuckDBBackend", "FieldError", "column_of", "packed", "pipeline", "quote"]

_TYPES = dict(COLUMNS)
_TEXT_TYPES = {"VARCHAR"}
# Sigma's web-server taxonomy that `column_name` does not already give (it knows IIS's names).
_TAXONOMY = {
    "cs-user-agent": "cs_user_agent",
    "cs-referer": "cs_referer",
    "cs-referrer": "cs_referer",
    "cs-cookie": "cs_cookie",
    "x-forwarded-for": "x_forwarded_for",
}
_URI = "cs_uri"  # a pseudo column: stem ? query
_EXTRA = "extra:"  # prefix of a field read from `extra`
# W3C's own shape of a field name: a prefix (c, s, r, cs, sc, sr, rs, x) and a name, or a
# header in parentheses. Sigma's other taxonomies (Image, CommandLine) are not it.
_W3C_NAME = re.compile(r"^(?:(?:c|s|r|cs|sc|sr|rs|x)-[a-z0-9-]+|(?:cs|sc|s|c)\([^()'\"\\]+\))$")
_NOT_FIELDS = {"date", "time"}  # the store has them as `ts`: a string match on it is not Sigma's


# -- fields -----------------------------------------------------------------------------------


def column_of(name: str) -> str | None:
    """The store column (or `cs_uri`, or `extra:<name>`) a rule's field reads; None: none."""
    lowered = name.strip().lower()
    if lowered in _NOT_FIELDS:
        return None
    if lowered in ("cs-uri", "c-uri", "cs(uri)"):
        return _URI
    mapped = _TAXONOMY.get(lowered) or column_name(lowered)
    if mapped is not None:
        return mapped
    if _W3C_NAME.match(lowered):
        return _EXTRA + lowered
    return None


class _FieldMapping(FieldMappingTransformation):
    """Sigma's and IIS's field names onto the store's columns (see `column_of`); a name with
    no column is left as it is, for the backend to refuse with its name."""

    def apply_field_name(self, field: str | None) -> str | list[str] | None:
        if field is None:
            return None
        return column_of(field)


def pipeline() -> ProcessingPipeline:
    return ProcessingPipeline(
        name="irtool web-server fields",
        priority=20,
        items=[ProcessingItem(_FieldMapping({}), identifier="irtool_w3c_fields")],
    )


_RE_FLAGS = {
    SigmaRegularExpressionFlag.IGNORECASE: "i",
    SigmaRegularExpressionFlag.MULTILINE: "m",
    SigmaRegularExpressionFlag.DOTALL: "s",
}
KEYWORDS = "_irtool_keywords"  # the prefilter's column: any rule's keyword is in the line
_RE2_SPECIAL = re.compile(r"([.^$*+?()\[\]{}|\\])")


# RE2 compiles an alternation to a DFA within a memory budget; past it, it falls back to a
# slow engine (measured: 1,000 keywords of 12 letters, 13k characters, run in 0.06 s over 100k
# lines; 1,500 took 17 s). Longer keyword lists are cut into patterns of at most this size,
# one pass over the raw lines each.
_RE2_PATTERN_MAX = 8000


def packed(fragments: Sequence[str], prefix: str) -> list[str]:
    """`fragments` as alternations (`prefix` + "a|b|..."), each at most `_RE2_PATTERN_MAX`
    characters long (but for a single fragment longer than that)."""
    patterns: list[str] = []
    current: list[str] = []
    size = 0
    for fragment in fragments:
        if current and size + len(fragment) + 1 > _RE2_PATTERN_MAX:
            patterns.append(prefix + "|".join(current))
            current, size = [], 0
        current.append(fragment)
        size += len(fragment) + 1
    if current:
        patterns.append(prefix + "|".join(current))
    return patterns


def _keyword_regex(parts: Sequence[str | SpecialChars], space: str = "[ +]") -> str:
    """An RE2 pattern found anywhere in a line where the Sigma string is (`*` and `?` are
    its only wildcards; every other character is literal). A space matches `space`: W3C
    writes a space inside a value as '+', so a web log's keyword space matches either."""
    return "".join(
        (".*" if p == SpecialChars.WILDCARD_MULTI else ".")
        if isinstance(p, SpecialChars)
        else _RE2_SPECIAL.sub(r"\\\1", p).replace(" ", space)
        for p in parts
    )


def _render(text: str, shape: str, literal: str, cased: bool) -> str:
    """SQL: `text` (a text expression) is, contains, starts or ends with `literal`, or is
    LIKE it (`literal` is then a LIKE pattern, escaped with backslashes)."""
    value = quote(literal)
    if not cased:
        text, value = f"lower({text})", f"lower({value})"
    if shape == "eq":
        return f"{text} = {value}"
    if shape == "like":
        return f"{text} LIKE {value} ESCAPE '\\'"
    return f"{shape}({text}, {value})"


def quote(text: str) -> str:
    """A DuckDB string literal: quotes doubled, backslashes are plain characters there."""
    return "'" + text.replace("'", "''") + "'"


# -- the DuckDB backend -----------------------------------------------------------------------


class DuckDBBackend(TextQueryBackend):
    """pySigma's text backend, with every expression written for DuckDB (see the module
    docstring for the semantics). Conversions that DuckDB spells differently from the
    templates' assumptions (quote doubling, case-insensitive matching, RE2, typed columns)
    are methods here, not templates."""

    name: ClassVar[str] = "irtool DuckDB"
    formats: ClassVar[dict[str, str]] = {"default": "a boolean SQL condition over requests"}
    requires_pipeline: ClassVar[bool] = False

    group_expression: ClassVar[str | None] = "({expr})"
    or_token: ClassVar[str] = "OR"  # noqa: S105 - SQL tokens, not passwords
    and_token: ClassVar[str] = "AND"  # noqa: S105
    not_token: ClassVar[str] = "NOT"  # noqa: S105
    eq_token: ClassVar[str] = " = "  # noqa: S105
    str_quote: ClassVar[str] = "'"
    escape_char: ClassVar[str | None] = "\\"
    wildcard_multi: ClassVar[str | None] = "%"
    wildcard_single: ClassVar[str | None] = "_"
    add_escaped: ClassVar[str] = "\\"
    field_null_expression: ClassVar[str | None] = "{field} IS NULL"
    field_exists_expression: ClassVar[str | None] = "{field} IS NOT NULL"
    field_not_exists_expression: ClassVar[str | None] = "{field} IS NULL"
    re_expression: ClassVar[str | None] = "regexp_matches({field}, {regex})"
    compare_operators: ClassVar[dict[Any, str] | None] = {
        SigmaCompareExpression.CompareOperators.LT: "<",
        SigmaCompareExpression.CompareOperators.LTE: "<=",
        SigmaCompareExpression.CompareOperators.GT: ">",
        SigmaCompareExpression.CompareOperators.GTE: ">=",
    }

    # What differs for another table (`irtool.analysis.sigma_windows.EventsBackend`): the
    # text keywords and `|re` without a field search, what a keyword's space matches, and
    # whether a value's '+' is a space (W3C's encoding of it).
    keyword_text: ClassVar[str] = "raw"
    keyword_space: ClassVar[str] = "[ +]"
    decode_plus: ClassVar[bool] = True

    # -- fields ---------------------------------------------------------------------------

    def escape_and_quote_field(self, field_name: str) -> str:
        """The field as text (VARCHAR), for string matching."""
        column = self._column(field_name)
        if column == _URI:
            return "(cs_uri_stem || coalesce('?' || cs_uri_query, ''))"
        if column.startswith(_EXTRA):
            return f"extra[{quote(column[len(_EXTRA) :])}]"
        if _TYPES[column] in _TEXT_TYPES:
            return column
        return f"CAST({column} AS VARCHAR)"

    def _numeric(self, field_name: str) -> str:
        """The field as a number, NULL when it holds none (a string field)."""
        column = self._column(field_name)
        if column in _TYPES and _TYPES[column] not in _TEXT_TYPES | {"TIMESTAMP"}:
            return column
        return f"TRY_CAST({self.escape_and_quote_field(field_name)} AS DOUBLE)"

    @staticmethod
    def _column(field_name: str) -> str:
        # The pipeline mapped every name it could; one it left is refused here by name.
        if field_name in _TYPES or field_name == _URI or field_name.startswith(_EXTRA):
            return field_name
        mapped = column_of(field_name)
        if mapped is None:
            raise FieldError(field_name)
        return mapped

    # -- strings --------------------------------------------------------------------------

    @staticmethod
    def _parts(value: SigmaString) -> list[str | SpecialChars]:
        parts: list[str | SpecialChars] = []
        for part in value.iter_parts():
            if not isinstance(part, str | SpecialChars):
                raise SigmaFeatureNotSupportedByBackendError(
                    f"placeholder %{getattr(part, 'name', part)}% is not supported"
                )
            parts.append(part)
        return parts

    def _match(self, field_name: str, value: SigmaString, cased: bool) -> str:
        """The field matches the Sigma string `value`."""
        # The store decodes every '+' of a W3C value to a space (how W3C writes spaces), so a
        # rule written against the log as it reads ("net+user") is decoded the same way.
        parts = self._parts(value)
        if self.decode_plus:
            parts = [p.replace("+", " ") if isinstance(p, str) else p for p in parts]
        wild = [p for p in parts if isinstance(p, SpecialChars)]
        inner = parts
        shape = "eq"
        star = SpecialChars.WILDCARD_MULTI
        if len(parts) >= 2 and parts[0] == star and parts[-1] == star and len(wild) == 2:
            shape, inner = "contains", parts[1:-1]
        elif parts and parts[-1] == star and len(wild) == 1:
            shape, inner = "starts_with", parts[:-1]
        elif parts and parts[0] == star and len(wild) == 1:
            shape, inner = "ends_with", parts[1:]
        elif wild:
            shape = "like"
        if shape == "like":
            pattern = "".join(
                ("%" if p == star else "_")
                if isinstance(p, SpecialChars)
                else re.sub(r"([\\%_])", r"\\\1", p)
                for p in parts
            )
            literal = pattern
        else:
            literal = "".join(p for p in inner if isinstance(p, str))
        if self._is_uri(field_name) and shape != "like" and "?" not in literal:
            # stem || '?' || query, without building it for every row (it is costly): a
            # value with no '?' lies inside the stem or inside the query.
            stem = _render("cs_uri_stem", shape, literal, cased)
            query = _render("cs_uri_query", shape, literal, cased)
            return {
                "eq": f"(cs_uri_query IS NULL AND {stem})",
                "contains": f"({stem} OR {query})",
                "starts_with": stem,
                "ends_with": f"(CASE WHEN cs_uri_query IS NULL THEN {stem} ELSE {query} END)",
            }[shape]
        return _render(self.escape_and_quote_field(field_name), shape, literal, cased)

    def _is_uri(self, field_name: str) -> bool:
        return self._column(field_name) == _URI

    def convert_condition_field_eq_val_str(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        assert isinstance(cond.value, SigmaString)
        return self._match(cond.field, cond.value, cased=False)

    def convert_condition_field_eq_val_str_case_sensitive(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        assert isinstance(cond.value, SigmaCasedString)
        return self._match(cond.field, cond.value, cased=True)

    # -- keywords: the raw line ---------------------------------------------------------

    # Keywords are matched by RE2 over `raw`, all the values of an OR in ONE expression: a
    # case-insensitive pass over the raw lines is the costly part of a scan, one per keyword
    # would be several. In prefilter mode (see `_Loader.convert`) a keyword is the shared
    # column `KEYWORDS` instead, and its pattern is collected for the one regex that column is.
    prefilter: bool = False
    fragments: list[str]
    keywords_negated: bool = False

    def _keywords(self, values: Sequence[SigmaString]) -> str:
        patterns: list[str] = []
        for cased in (False, True):
            fragments = [
                _keyword_regex(self._parts(v), self.keyword_space)
                for v in values
                if isinstance(v, SigmaCasedString) == cased
            ]
            patterns += packed(fragments, "" if cased else "(?i)")
        if self.prefilter:
            self.fragments += patterns
            return KEYWORDS
        text = self.keyword_text
        return "(" + " OR ".join(f"regexp_matches({text}, {quote(p)})" for p in patterns) + ")"

    def convert_condition_or(self, cond: ConditionOR, state: ConversionState) -> Any:
        values = [a.value for a in cond.args if isinstance(a, ConditionValueExpression)]
        if len(values) == len(cond.args) and all(isinstance(v, SigmaString) for v in values):
            return self._keywords(cast(list[SigmaString], values))
        return super().convert_condition_or(cond, state)

    def convert_condition_val_str(
        self, cond: ConditionValueExpression, state: ConversionState
    ) -> str:
        assert isinstance(cond.value, SigmaString)
        return self._keywords([cond.value])

    def convert_condition_val_num(
        self, cond: ConditionValueExpression, state: ConversionState
    ) -> str:
        return self._keywords([SigmaString(str(cond.value))])

    def convert_condition_val_re(
        self, cond: ConditionValueExpression, state: ConversionState
    ) -> str:
        assert isinstance(cond.value, SigmaRegularExpression)
        return f"regexp_matches({self.keyword_text}, {self.convert_value_re(cond.value, state)})"

    def convert_value_re(self, r: SigmaRegularExpression, state: ConversionState) -> str:
        # Sigma's flags as RE2 reads them inline: (?i), (?m), (?s).
        flags = "".join(sorted(_RE_FLAGS[f] for f in r.flags))
        prefix = f"(?{flags})" if flags else ""
        return quote(prefix + r.to_plain())

    # -- numbers, NULL, fields compared ---------------------------------------------------

    def convert_condition_field_eq_val_num(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        assert isinstance(cond.value, SigmaNumber)
        return f"{self._numeric(cond.field)} = {cond.value.number!r}"

    def convert_condition_field_compare_op_val(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        assert isinstance(cond.value, SigmaCompareExpression)
        assert self.compare_operators is not None
        op = self.compare_operators[cond.value.op]
        return f"{self._numeric(cond.field)} {op} {cond.value.number.number!r}"

    def convert_condition_field_eq_field(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        other = getattr(cond.value, "field", None)
        if not isinstance(other, str):
            raise SigmaFeatureNotSupportedByBackendError("fieldref without a field")
        left = self.escape_and_quote_field(cond.field)
        right = self.escape_and_quote_field(other)
        return f"lower({left}) = lower({right})"

    def convert_condition_not(self, cond: ConditionNOT, state: ConversionState) -> str:
        """`not` of a missing field is true: the negated part is false when it is NULL."""
        arg = cond.args[0]
        before = len(self.fragments)
        inner = self.convert_condition(arg, state)
        # A prefilter must match at least what the rule matches: a keyword under a NOT breaks
        # that (the shared column matches more than the keyword, so its NOT matches less).
        self.keywords_negated |= len(self.fragments) > before
        if isinstance(inner, DeferredQueryExpression):
            raise SigmaFeatureNotSupportedByBackendError("deferred expressions")
        return f"NOT coalesce(({inner}), false)"

    def convert_condition_field_eq_val_timestamp_part(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        raise SigmaFeatureNotSupportedByBackendError(
            "time part modifiers (|hour, |day, ...) are not supported"
        )


class FieldError(SigmaFeatureNotSupportedByBackendError):
    """A field the records do not have, named (the loader locates the rule's line by it)."""

    def __init__(self, name: str, message: str | None = None) -> None:
        if message is None and name.strip().lower() in _NOT_FIELDS:
            message = f"field '{name}' is not supported (the store has date and time as ts)"
        super().__init__(message or f"field '{name}' is not a web-server log field")
        self.field = name
