"""The post-mortem's account of what changed as the incident unfolded: parameters learned late,
indicators, scope, steps started before their turn, and closing over what was still open."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from irtool.export.links import event_link, moment, or_empty
from irtool.export.report import Block, Bullets, Code, Heading, Para, Row, Strong, Table
from irtool.export.unfolded import Change, Unfolded
from irtool.model.params import value_text


def _when(change: Change) -> Any:
    return (event_link(change.seq, moment(change.at)),)


def unfolding(found: Unfolded) -> Iterator[Block]:
    yield Heading(2, "How the incident unfolded", "unfolding")
    yield Heading(3, "Parameters set or amended")
    if found.parameters:
        yield Table(
            ("When", "Parameter", "Was", "Now", "By", "Why"),
            [
                Row(
                    (
                        _when(c),
                        (Code(or_empty(c.get("name"))),),
                        (value_text(c.get("previous")),),
                        (value_text(c.get("value")),),
                        (c.by,),
                        (or_empty(c.get("reason")),),
                    )
                )
                for c in found.parameters
            ],
        )
    else:
        yield Para(("None: the parameters are those the incident opened with.",))
    yield from _indicators(found)
    yield Heading(3, "Scope changes")
    if found.scope:
        yield Table(
            ("When", "Host", "Group", "Change", "New host", "By", "Why"),
            [
                Row(
                    (
                        _when(c),
                        (or_empty(c.get("host")),),
                        (or_empty(c.get("group")),),
                        ("added to the group" if c.get("change") == "add" else "removed",),
                        (_new_host(c.get("new_host")),),
                        (c.by,),
                        (or_empty(c.get("reason")),),
                    )
                )
                for c in found.scope
            ],
        )
    else:
        yield Para(("None: the scope is the inventory the incident opened with.",))
    yield Heading(3, "Steps started early")
    if found.early:
        yield Table(
            ("When", "Step", "Still pending ahead of it", "By", "Why"),
            [
                Row(
                    (
                        _when(c),
                        (Code(or_empty(c.get("step"))),),
                        (", ".join(str(s) for s in c.get("ahead") or []) or "–",),
                        (c.by,),
                        (or_empty(c.get("reason")),),
                    )
                )
                for c in found.early
            ],
        )
    else:
        yield Para(("None: every step was worked in its turn.",))


def _indicators(found: Unfolded) -> Iterator[Block]:
    yield Heading(3, "Indicators of compromise")
    if not found.indicator_changes:
        yield Para(("None recorded.",))
        return
    if found.indicators:
        yield Table(
            ("Kind", "Indicators held at the end"),
            [
                Row(((kind,), tuple(_listed(values))))
                for kind, values in sorted(found.indicators.items())
            ],
        )
    else:
        yield Para(("Every indicator added was withdrawn.",))
    yield Table(
        ("When", "Change", "Kind", "Indicator", "By", "Why"),
        [
            Row(
                (
                    _when(c),
                    ("added" if c.get("change") == "add" else "removed",),
                    (or_empty(c.get("kind")),),
                    (Code(or_empty(c.get("value"))),),
                    (c.by,),
                    (or_empty(c.get("reason")),),
                )
            )
            for c in found.indicator_changes
        ],
    )


def _listed(values: list[str]) -> list[str | Code]:
    spans: list[str | Code] = []
    for n, value in enumerate(values):
        spans += [", "] if n else []
        spans.append(Code(value))
    return spans


def _new_host(entry: Any) -> str:
    """A host that was not in the inventory: how it is reached (never a secret: the entry
    holds a keyring name at most)."""
    if not isinstance(entry, dict):
        return "no"
    where = or_empty(entry.get("address"))
    if entry.get("port"):
        where += f":{entry['port']}"
    how = ", ".join(
        part
        for part in (
            or_empty(entry.get("transport")),
            where,
            f"credential {entry['credential']}" if entry.get("credential") else "",
        )
        if part
    )
    return f"yes ({how})" if how else "yes"


def closing(found: Unfolded) -> Iterator[Block]:
    """Closed over open items: the reason, and what was still open then. (A reason given when
    nothing was open is no closing over anything.)"""
    if found.closed is None or not found.closed.get("open_items"):
        return
    yield Para(
        (
            Strong("Closed over open items"),
            f" by {found.closed.by} at {moment(found.closed.at)}: {found.closed.get('over')}",
        )
    )
    yield Bullets([(str(item),) for item in found.closed.get("open_items")])
