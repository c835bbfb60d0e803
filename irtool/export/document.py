"""The json export: the whole journal and the state derived from it, in a stable schema.

Schema `irtool-export/1` (README, "Exports"): `incident` (what the incident is), `verification`
(the chain and the evidence), `state` (where it stands: steps, calls, actions, evidence,
notes, action items, and for an exercise the injects and the review's figures) and `events`
(every event exactly as the journal holds it, hashes included, so the chain can be checked
from the file).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import timedelta
from typing import Any

from irtool.engine.state import IncidentState
from irtool.export.recorded import Recorded

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


def state_document(state: IncidentState) -> dict[str, Any]:
    exercise = state.exercise
    return {
        "reconvene_at": state.reconvene_at,
        "steps": [
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
        ],
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
                    for a in tree.attempts
                ],
            }
            for role, tree in state.calls.items()
        },
        "actions": {step: asdict(action) for step, action in sorted(state.actions.items())},
        "applied": {step: hosts for step, hosts in sorted(state.applied.items())},
        # vars, not asdict: asdict deep-copies, and an incident may hold 100,000 of these.
        "evidence": [dict(vars(e)) for e in state.evidence],
        "notes": [asdict(n) for n in state.notes],
        "action_items": [asdict(i) for i in state.action_items],
        "corrections": {str(seq): by for seq, by in sorted(state.corrections.items())},
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


def as_json(recorded: Recorded) -> str:
    verification = recorded.verification
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
        "state": state_document(recorded.state),
        "events": [event.as_dict() for event in recorded.events],
    }
    return _dump(document) + "\n"


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _dump(value: Any, indent: str = "") -> str:
    """Objects spread over lines, two spaces a level; a list's items one to a line, each on
    that line whole: an event per line, readable and diffable. (json's own `indent` would
    give the same shape a line per key, and turn off its C encoder: 4x slower at 100k events.)
    """
    inner = indent + "  "
    if isinstance(value, dict) and value:
        members = (f"{inner}{_compact(str(k))}: {_dump(value[k], inner)}" for k in sorted(value))
        return "{\n" + ",\n".join(members) + f"\n{indent}}}"
    if isinstance(value, list) and value:
        return "[\n" + ",\n".join(inner + _compact(v) for v in value) + f"\n{indent}]"
    return _compact(value)
