"""The json export: the whole journal and the state derived from it, in a stable schema.

Schema `irtool-export/1` (README, "Exports"): `incident` (what the incident is), `verification`
(the chain and the evidence), `state` (where it stands: steps, calls, actions, evidence,
notes, action items, and for an exercise the injects and the review's figures), `unfolding`
(parameters set, indicators, scope changes, steps started early, the close), `timeline` (each
event's line in the order things happened, with what corrects it and whether it was written
after closing) and `events` (every event exactly as the journal holds it, in the journal's
order, hashes included, so the chain can be checked from the file).

Every string is kept exactly (the chain is checked from it), but a character that could act on
a terminal or fool a reader (a C1 control such as the 8-bit CSI, a bidi override, a zero-width
or a line separator), which json would write raw, is written as its `\\u` escape, as json
already writes C0 controls: a `cat` of the file shows what a host sent and acts on none of it.
They are the characters `irtool.model.untrusted.visible` writes out; here json's own escape
keeps the value as it was.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from datetime import timedelta
from typing import Any, TextIO

from irtool.engine import kinds
from irtool.engine.state import (
    Attempt,
    Evidence,
    IncidentState,
    Note,
    correct_note,
    evidence_of,
    note_of,
)
from irtool.engine.timeline import describe
from irtool.export.recorded import Recorded
from irtool.export.unfolded import Change, Unfolded
from irtool.journal import Event

SCHEMA = "irtool-export/1"


def incident_facts(state: IncidentState) -> dict[str, Any]:
    return {
        "id": state.id,
        "title": state.title,
        "mode": state.mode,
        "runbook": {
            "id": state.runbook.id,
            "title": state.runbook.title,
            "version": state.runbook.version,
            "sha256": state.runbook_sha256,
        },
        "parameters": state.parameters,
        "opened_at": state.opened_at,
        "opened_by": state.opened_by,
        "commander": state.commander,
        "closed_at": state.closed_at,
    }


def _seconds(delta: timedelta | None) -> float | None:
    return None if delta is None else delta.total_seconds()


class Streamed:
    """A list written as its items come (every event, every piece of evidence): never held."""

    def __init__(self, items: Iterable[Any]) -> None:
        self.items = items


def steps_document(state: IncidentState) -> list[dict[str, Any]]:
    """Each step and where it stands (`irtool incident show --json` gives the same)."""
    return [
        {
            "id": s.id,
            "phase": s.phase,
            "kind": s.kind,
            "title": s.title,
            "status": s.status.value,
            "by": s.by,
            "at": s.at,
            "note": s.note,
            "checklist": s.checklist,
            "option": s.option,
            "reason": s.reason,
            "answers": s.answers,
        }
        for s in state.steps.values()
    ]


def evidence_document(e: Evidence) -> dict[str, Any]:
    # vars, not asdict: asdict deep-copies, and an incident may hold 1,000,000 of these.
    return dict(vars(e))


def state_document(
    state: IncidentState,
    evidence: Iterable[dict[str, Any]] | None = None,
    notes: Iterable[dict[str, Any]] | None = None,
    attempts: dict[str, list[Attempt]] | None = None,
) -> dict[str, Any]:
    """Where the incident stands. `evidence`, `notes` and `attempts` (by role): as an export
    streams them; else the state's own records, read now."""
    exercise = state.exercise
    calls = attempts if attempts is not None else {r: state.attempts(r) for r in state.calls}
    return {
        "reconvene_at": state.reconvene_at,
        "steps": steps_document(state),
        "contacts": {
            role: {
                "order": tree.order,
                "reached": tree.reached,
                "attempts": [
                    {
                        "seq": a.seq,
                        "at": a.at,
                        "by": a.by,
                        "person": a.person,
                        "method": a.method,
                        "outcome": a.outcome.value,
                    }
                    for a in calls.get(role, [])
                ],
            }
            for role, tree in state.calls.items()
        },
        "actions": {step: asdict(action) for step, action in sorted(state.actions.items())},
        "applied": {step: hosts for step, hosts in sorted(state.applied.items())},
        "evidence": Streamed(evidence)
        if evidence is not None
        else [evidence_document(e) for e in state.evidence],
        "notes": Streamed(notes) if notes is not None else [asdict(n) for n in state.notes],
        "action_items": [asdict(i) for i in state.action_items],
        "corrections": {str(seq): by for seq, by in sorted(state.corrections.items())},
        # Every finding, open, confirmed or dismissed, with the lines it stands on.
        "findings": [asdict(f) for _seq, f in sorted(state.findings.items())],
        "analyses": [asdict(a) for a in state.analyses],
        "exercise": None
        if exercise is None
        else {
            "scenario": exercise.scenario.id,
            "generic": exercise.generic,
            "speed": exercise.speed,
            "injects": [
                {
                    **{k: v for k, v in asdict(f).items() if k not in ("offset", "handled_offset")},
                    "offset_s": _seconds(f.offset),
                    "handled_offset_s": _seconds(f.handled_offset),
                }
                for f in exercise.fired.values()
            ],
            "observations": [
                {
                    "seq": o.seq,
                    "at": o.at,
                    "by": o.by,
                    "text": o.text,
                    "offset_s": _seconds(o.offset),
                }
                for o in exercise.observations
            ],
        },
    }


def _changes(changes: list[Change]) -> list[dict[str, Any]]:
    return [{"seq": c.seq, "at": c.at, "by": c.by, **c.data} for c in changes]


def unfolding_document(found: Unfolded) -> dict[str, Any]:
    closed = found.closed
    return {
        "parameter_changes": _changes(found.parameters),
        "indicators": found.indicators,
        "indicator_changes": _changes(found.indicator_changes),
        "scope_changes": _changes(found.scope),
        "started_early": _changes(found.early),
        "rotations": {
            step: {item: {"rotated": r, "note": note} for item, (r, note) in said.items()}
            for step, said in found.rotations.items()
        },
        "closed": None
        if closed is None
        else {
            "seq": closed.seq,
            "at": closed.at,
            "by": closed.by,
            "summary": closed.get("summary") or "",
            "over": closed.get("over") or "",
            "open_items": closed.get("open_items") or [],
        },
        "written_after_close": sorted(found.after_close),
        "ad_hoc": sorted(found.ad_hoc),
    }


def timeline_document(events: Iterable[Event], found: Unfolded) -> Iterator[dict[str, Any]]:
    """Each event's line, for `events` in the order things happened."""
    for e in events:
        yield {
            "seq": e.seq,
            "occurred_at": e.occurred_at,
            "kind": e.kind,
            "what": describe(e),
            "corrected_by": found.corrections(e.seq),
            "after_close": e.seq in found.after_close,
        }


def notes(recorded: Recorded) -> Iterator[Note]:
    """Every note as its corrections leave it, in the journal's order."""
    corrections = recorded.state.corrections
    for event in recorded.events(kinds.NOTE_ADDED):
        note = note_of(event)
        for correction in recorded.at(corrections.get(note.seq, ())):
            if correction.kind == kinds.EVENT_CORRECTED:
                correct_note(note, correction)
        yield note


def as_json(recorded: Recorded, out: TextIO) -> None:
    verification, found = recorded.verification, recorded.found
    evidence = (
        evidence_document(evidence_of(e))
        for e in recorded.events(kinds.COMMAND_RAN, kinds.FILE_FETCHED)
    )
    document = {
        "schema": SCHEMA,
        "incident": incident_facts(recorded.state),
        "verification": {
            "intact": recorded.intact,
            "chain_ok": verification.ok,
            "events": verification.count,
            "head": verification.head,
            "first_bad_seq": verification.first_bad_seq,
            "problem": verification.problem,
            "evidence_files": recorded.evidence_files,
            "evidence_problems": [str(p) for p in recorded.evidence_problems],
            "custody_gaps": recorded.gaps,
        },
        "state": state_document(
            recorded.state, evidence, (asdict(n) for n in notes(recorded)), recorded.attempts()
        ),
        "unfolding": unfolding_document(found),
        "timeline": Streamed(timeline_document(recorded.events(order="time"), found)),
        "events": Streamed(event.as_dict() for event in recorded.events()),
    }
    _write(out, document)
    out.write("\n")


# What json leaves raw with ensure_ascii=False: DEL and everything beyond ASCII. Of those only
# the hidden categories (as `visible` counts them) are escaped; letters of any script stay.
_RAW = re.compile(r"[^\x00-\x7e]")
_HIDDEN = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if unicodedata.category(char) not in _HIDDEN:
        return char
    code = ord(char)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000  # json has no longer escape: a surrogate pair
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def _compact(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    # Outside its strings json writes only ASCII, so every match is inside a string.
    return text if _RAW.search(text) is None else _RAW.sub(_escape, text)


def _write(out: TextIO, value: Any, indent: str = "") -> None:
    """Objects spread over lines, two spaces a level; a list's items one to a line, each on
    that line whole: an event per line, readable and diffable. (json's own `indent` would
    give the same shape a line per key, and turn off its C encoder: 4x slower at 100k events.)
    """
    inner = indent + "  "
    if isinstance(value, dict) and value:
        out.write("{\n")
        for n, key in enumerate(sorted(value)):
            out.write((",\n" if n else "") + f"{inner}{_compact(str(key))}: ")
            _write(out, value[key], inner)
        out.write(f"\n{indent}}}")
    elif isinstance(value, Streamed | list):
        _items(out, value.items if isinstance(value, Streamed) else value, inner, indent)
    else:
        out.write(_compact(value))


def _items(out: TextIO, items: Iterable[Any], inner: str, indent: str) -> None:
    """A list, its items written a thousand lines at a time; `[]` when it has none."""
    batch: list[str] = []
    opened = False
    for item in items:
        batch.append(inner + _compact(item))
        if len(batch) == 1000:
            out.write((",\n" if opened else "[\n") + ",\n".join(batch))
            batch, opened = [], True
    if batch:
        out.write((",\n" if opened else "[\n") + ",\n".join(batch))
        opened = True
    out.write(f"\n{indent}]" if opened else "[]")
