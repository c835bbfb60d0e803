"""What a collector's output holds when it emits records: structured rows that irtool reads.

A collector whose output is structured (JSON from PowerShell 3 and later, CSV from a
PowerShell 2 variant that cannot write JSON) declares it under ``records``::

    records:
      kind: global-module        # what each record is (stacking and baselines group by it)
      path: modules              # where the list is in a JSON object (absent: the output is
                                 # the list itself, or one object, or CSV rows)
      key: [name, image, files.sha256]

``key`` names the fields that make two records on two hosts the same thing (a module by its
name, image and hash; a scheduled task by its path and action). A dotted name reads into
nested objects and lists (``files.sha256``: every file's hash); in a flat CSV row, where a
PowerShell 2 variant writes the same fact at the top level, the last part of the name is
read (``sha256``). ``show`` names the fields a responder reads first (default: the key).

One output may hold several kinds (the local accounts listing has its users and the members of
Administrators): ``records`` is then a list of specs, each with its own ``path``.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from irtool.model.base import ItemId, Model

__all__ = ["RECORD_KINDS", "RecordSpec", "RecordSpecs"]

#: The kinds the shipped collectors emit (a runbook may name its own).
RECORD_KINDS: tuple[str, ...] = (
    "global-module",
    "site-module",
    "handler",
    "isapi-filter",
    "app-pool",
    "scheduled-task",
    "service",
    "autorun",
    "local-user",
    "local-admin",
    "loaded-dll",
    "wmi-subscription",
    "webroot-file",
)


class RecordSpec(Model):
    """How to read the records of a collector's output (see the module docstring)."""

    kind: ItemId = Field(description="What each record is: global-module, scheduled-task, ...")
    path: str | None = Field(
        default=None,
        description="Dotted path to the list of records in a JSON object; absent: the output "
        "is the list (or one record, or CSV rows).",
    )
    key: list[str] = Field(
        min_length=1, description="The fields that make two records the same thing on two hosts."
    )
    show: list[str] = Field(
        default_factory=list, description="The fields a responder reads first (default: key)."
    )


def _listed(value: Any) -> Any:
    """One spec may be written without the list around it."""
    return [value] if isinstance(value, dict) else value


#: What `records:` takes: one spec, or a list of them (one per kind the output holds).
RecordSpecs = Annotated[list[RecordSpec], BeforeValidator(_listed), Field(min_length=1)]
