"""The timeline in a responder's words: one line per event, and a filter over kind/step/host/actor.

The terminal UI, `irtool incident show` and the exports read events through
here, so an event reads the same wherever it appears.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from irtool.engine import kinds
from irtool.journal import Event
from irtool.model.params import value_text
from irtool.model.untrusted import visible
from irtool.model.when import shown


def _size(data: dict[str, Any], stream: str) -> str:
    item = data.get(stream) or {}
    if item.get("incomplete"):
        return f"{stream} {item.get('size', 0)} of {item.get('received')} B kept"
    return f"{stream} {item.get('size', 0)} B" if item else ""


def _ran(event: Event) -> str:
    data = event.data
    what = data.get("item") or data.get("path") or "command"
    if event.kind == kinds.FILE_FETCHED and data.get("path"):
        # A fetch collector's files share its item: the path tells them apart.
        what = f"{data['item']} {data['path']}" if data.get("item") else data["path"]
    if data.get("purpose") == "provided":
        # A file a responder brought in (a known-good manifest, a baseline): no host ran it.
        return f"provided {what} ({_size(data, 'file')}): {data.get('reason', '')}".rstrip(": ")
    if data.get("failure"):
        outcome = f"failed: {data['failure']}"
    elif data.get("exit_status") is None:
        outcome = "no exit status"
    else:
        outcome = f"exit {data['exit_status']}"
    sizes = ", ".join(s for s in (_size(data, "stdout"), _size(data, "stderr")) if s)
    if event.kind == kinds.FILE_FETCHED:
        sizes = _size(data, "file")
        if data.get("changed"):
            outcome += f"; {data['changed']}"
    return f"{data.get('purpose', 'run')} {what}: {outcome}" + (f" ({sizes})" if sizes else "")


def _duration(seconds: object) -> str:
    """`behind_s` as a responder reads it: 2 h 0 min 3 s, or 0.25 s."""
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        return "?"
    if seconds < 60:
        return f"{seconds:g} s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return " ".join(
        part for part in (f"{hours} h" if hours else "", f"{minutes} min", f"{secs} s") if part
    )


_DESCRIBE: dict[str, Callable[[Event], str]] = {
    kinds.INCIDENT_OPENED: lambda e: (
        f"incident opened ({e.data.get('mode', 'live')}): {e.data.get('title', '')}"
    ),
    kinds.INCIDENT_CLOSED: lambda e: (
        "incident closed"
        + (f": {e.data['summary']}" if e.data.get("summary") else "")
        + (
            f" (over {len(e.data.get('open_items', []))} open item(s): {e.data['over']})"
            if e.data.get("over") and e.data.get("open_items")
            else ""
        )
    ),
    kinds.PARAMETER_SET: lambda e: (
        f"parameter {e.data.get('name')} = {value_text(e.data.get('value'))}"
        + (f" (was {value_text(e.data['previous'])})" if e.data.get("previous") is not None else "")
        + f": {e.data.get('reason', '')}"
    ),
    kinds.IOC_ADDED: lambda e: (
        f"indicator added: {e.data.get('kind')} {e.data.get('value')}: {e.data.get('reason', '')}"
    ),
    kinds.IOC_REMOVED: lambda e: (
        f"indicator removed: {e.data.get('kind')} {e.data.get('value')}: {e.data.get('reason', '')}"
    ),
    kinds.SCOPE_CHANGED: lambda e: (
        f"{e.data.get('host')} "
        + ("added to" if e.data.get("change") == "add" else "removed from")
        + f" {e.data.get('group')}"
        + (" (a new host)" if e.data.get("new_host") else "")
        + f": {e.data.get('reason', '')}"
    ),
    kinds.STEP_STARTED_EARLY: lambda e: (
        f"started early: {e.data.get('reason', '')}"
        + (f" (ahead: {', '.join(e.data['ahead'])})" if e.data.get("ahead") else "")
    ),
    kinds.POSTMORTEM_ANSWERED: lambda e: f"post-mortem: {len(e.data.get('answers', {}))} answer(s)",
    kinds.STEP_COMPLETED: lambda e: (
        "step done" + (f": {e.data['note']}" if e.data.get("note") else "")
    ),
    kinds.STEP_SKIPPED: lambda e: f"step skipped: {e.data.get('reason', '')}",
    kinds.DECISION_MADE: lambda e: (
        f"decided: {e.data.get('label') or e.data.get('option')}"
        + (f" ({e.data['note']})" if e.data.get("note") else "")
    ),
    kinds.NOTE_ADDED: lambda e: f"note: {e.data.get('text', '')}",
    kinds.ACTION_ITEM_ASSIGNED: lambda e: (
        f"action item for {e.data.get('owner')}: {e.data.get('text', '')}"
        + (f" (due {e.data['due']})" if e.data.get("due") else "")
    ),
    kinds.EVENT_CORRECTED: lambda e: (
        f"corrects event {e.data.get('corrects')}: {e.data.get('reason', '')}"
    ),
    kinds.CONTACT_ATTEMPTED: lambda e: (
        f"{e.data.get('role')}: {e.data.get('person')} "
        f"{str(e.data.get('outcome', '')).replace('-', ' ')}"
        + (f" by {e.data['method']}" if e.data.get("method") else "")
    ),
    kinds.CONTACT_ESCALATED: lambda e: (
        f"{e.data.get('role')}: escalated from "
        f"{e.data.get('from')} to {e.data.get('to')}"
        + (f" ({e.data['reason']})" if e.data.get("reason") else "")
    ),
    kinds.MEETING_OPENED: lambda e: "meeting opened",
    kinds.MEETING_CLOSED: lambda e: (
        "meeting closed"
        + (f", reconvene at {shown(e.data['reconvene_at'])}" if e.data.get("reconvene_at") else "")
    ),
    kinds.RECONVENE_SET: lambda e: f"reconvene at {shown(e.data.get('at'))}",
    kinds.ACTION_REQUESTED: lambda e: f"action requested: {e.data.get('reason', '')}",
    kinds.ACTION_APPROVED: lambda e: "action approved",
    kinds.ACTION_ROLLED_BACK: lambda e: (
        "action rolled back" + (f": {e.data['note']}" if e.data.get("note") else "")
    ),
    kinds.COMMAND_HANDED_OVER: lambda e: (
        f"command handed over: {e.data.get('from')} -> {e.data.get('to')}"
    ),
    kinds.RUN_STARTED: lambda e: (
        ("ad-hoc " if e.data.get("ad_hoc") else "")
        + f"{e.data.get('purpose', 'run')} started on {len(e.data.get('hosts', []))} host(s)"
    ),
    kinds.COMMAND_RAN: _ran,
    kinds.FILE_FETCHED: _ran,
    kinds.HOST_WARNING: lambda e: f"warning: {e.data.get('warning', '')}",
    kinds.FINDING_RAISED: lambda e: (
        f"finding ({e.data.get('severity')}, {e.data.get('hunt')}): {e.data.get('summary', '')}"
    ),
    kinds.FINDING_CONFIRMED: lambda e: (
        f"finding {e.data.get('finding')} confirmed: {e.data.get('reason', '')}"
    ),
    kinds.FINDING_DISMISSED: lambda e: (
        f"finding {e.data.get('finding')} dismissed: {e.data.get('reason', '')}"
    ),
    kinds.ANALYSIS_RAN: lambda e: (
        f"analysis{' (' + str(e.data['step']) + ')' if e.data.get('step') else ''}: "
        f"{len(e.data.get('hunts') or [])} hunt(s) and {len(e.data.get('rules') or [])} rule(s) "
        f"over {e.data.get('requests', 0)} request(s) from "
        f"{len(e.data.get('evidence') or [])} log(s): "
        f"{len(e.data.get('findings') or [])} new finding(s)"
    ),
    kinds.HOST_FACTS: lambda e: (
        f"host facts ({e.data.get('source', 'probe')}): {e.data.get('summary', '')}"
        + (" (the inventory said otherwise)" if e.data.get("inventory_said") else "")
    ),
    kinds.HOST_FAILED: lambda e: (
        f"host failed ({e.data.get('failure')}): {e.data.get('reason', '')}"
    ),
    kinds.INJECT_FIRED: lambda e: (
        f"inject for {e.data.get('to')}: {e.data.get('title', '')}"
        + (" (fired by the facilitator)" if e.data.get("why") == "facilitator" else "")
    ),
    kinds.INJECT_HANDLED: lambda e: f"inject {e.data.get('id')} handled: {e.data.get('note', '')}",
    kinds.CLOCK_PAUSED: lambda e: (
        "exercise clock paused" + (f": {e.data['reason']}" if e.data.get("reason") else "")
    ),
    kinds.CLOCK_RESUMED: lambda e: "exercise clock resumed",
    kinds.CLOCK_SKEWED: lambda e: (
        f"warning: the writer's clock ({e.data.get('writer_clock')}) was "
        f"{_duration(e.data.get('behind_s'))} behind the journal ({e.data.get('head_time')}); "
        "its event is recorded at the journal's time"
    ),
    kinds.OBSERVATION_RECORDED: lambda e: f"observation: {e.data.get('text', '')}",
    kinds.RUN_FINISHED: lambda e: (
        f"{e.data.get('purpose', 'run')} finished: "
        f"{len(e.data.get('ok', []))} ok, {len(e.data.get('failed', {}))} failed"
        + (", cancelled" if e.data.get("cancelled") else "")
        + (f", interrupted: {e.data.get('reason', '')}" if e.data.get("interrupted") else "")
    ),
}


def describe(event: Event) -> str:
    """One line saying what happened, without the who/when/where the columns already show.

    Hosts' words (failures, warnings, hashes) are in it, so it is made `visible`: no face or
    export that shows it can be made to act on an escape sequence a host sent."""
    describer = _DESCRIBE.get(event.kind)
    text = describer(event) if describer else event.kind
    return visible(" ".join(text.split()))  # a multi-line note still fits one row


FIELDS = ("kind", "step", "host", "actor")


class BadFilter(ValueError):
    """A filter the responder typed that cannot be read; the message says how to write it."""


@dataclass(frozen=True)
class TimelineFilter:
    """`kind:note step:triage host:web01 actor:ann some words`: every part must match.

    kind matches a prefix (`kind:action` takes every action.*), step, host and
    actor match exactly, and free words must all appear in the line (any case).
    """

    kind: str | None = None
    step: str | None = None
    host: str | None = None
    actor: str | None = None
    words: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> TimelineFilter:
        try:
            parts = shlex.split(text)
        except ValueError:
            parts = text.split()  # an apostrophe in a word ("couldn't") is not a quote
        fields: dict[str, str] = {}
        words: list[str] = []
        for part in parts:
            name, colon, value = part.partition(":")
            if colon and name in FIELDS:
                if not value:
                    raise BadFilter(f"filter: '{part}' needs a value, like {name}:something")
                fields[name] = value
            else:
                words.append(part.casefold())
        return cls(**fields, words=tuple(words))

    @property
    def empty(self) -> bool:
        return not (self.kind or self.step or self.host or self.actor or self.words)

    def matches(self, event: Event, line: str | None = None) -> bool:
        if self.kind and not (event.kind == self.kind or event.kind.startswith(f"{self.kind}.")):
            return False
        if self.step and event.step != self.step:
            return False
        if self.host and event.host != self.host:
            return False
        if self.actor and event.actor != self.actor:
            return False
        if self.words:
            haystack = (line if line is not None else describe(event)).casefold()
            return all(word in haystack for word in self.words)
        return True
