"""Shared pieces of every file format: the strict base model and the identifier types."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, WithJsonSchema


class Model(BaseModel):
    """Unknown keys are errors; numbers written where text belongs are read as text."""

    # defer_build: a model's validator is built when it first validates, not on import, so a
    # command pays only for the models it reads (a scribe's note never reads a scenario or
    # a hunt, and one reopened from a checkpoint reads none).
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        coerce_numbers_to_str=True,
        serialize_by_alias=True,
        defer_build=True,
    )


def _identifier(pattern: str, what: str, rule: str) -> Any:
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"'{value}' is not a valid {what}: {rule}")
        return value

    return AfterValidator(check)


_KEBAB = r"[a-z0-9][a-z0-9_-]{0,63}"
_KEBAB_RULE = "use lowercase letters, digits, '-' and '_'"

StepId = Annotated[str, _identifier(_KEBAB, "step id", _KEBAB_RULE)]
RoleId = Annotated[str, _identifier(_KEBAB, "role id", _KEBAB_RULE)]
PersonId = Annotated[str, _identifier(_KEBAB, "person id", _KEBAB_RULE)]
ItemId = Annotated[str, _identifier(_KEBAB, "id", _KEBAB_RULE)]
ParamName = Annotated[
    str,
    _identifier(
        r"[a-z_][a-z0-9_]{0,63}",
        "parameter name",
        "use lowercase letters, digits and '_' (it is a template variable)",
    ),
]
HostName = Annotated[
    str,
    _identifier(
        r"[A-Za-z0-9][A-Za-z0-9_.-]{0,252}", "host name", "use letters, digits, '.', '-', '_'"
    ),
]
GroupName = Annotated[str, _identifier(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", "group name", "")]

_DURATION = re.compile(r"(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?")


def parse_duration(value: Any) -> Any:
    """`90` (minutes), `45m`, `1h30m`, `30s`, `14d`: how responders write intervals."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of minutes or text like '45m' or '1h30m'")
    if isinstance(value, int):
        return timedelta(minutes=value)
    if isinstance(value, str):
        match = _DURATION.fullmatch(value.strip())
        if match and any(match.groupdict().values()):
            parts = {k: int(v) for k, v in match.groupdict().items() if v}
            return timedelta(
                days=parts.get("d", 0),
                hours=parts.get("h", 0),
                minutes=parts.get("m", 0),
                seconds=parts.get("s", 0),
            )
    if isinstance(value, timedelta) or (isinstance(value, str) and value.startswith("P")):
        return value  # already a duration, or ISO 8601 as a journal stores it: pydantic reads it
    raise ValueError(f"'{value}' is not a duration: write minutes, or text like '45m' or '1h30m'")


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 1, "description": "minutes"},
                {"type": "string", "pattern": r"^(\d+d)?(\d+h)?(\d+m)?(\d+s)?$"},
            ]
        }
    ),
]
