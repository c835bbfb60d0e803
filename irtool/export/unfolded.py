"""How the incident changed as it unfolded, read off the events themselves: parameters learned
late, indicators added and withdrawn, hosts brought into scope, steps started early, what was
written after closing, and the order in which things happened.

Every export reads the same fold, so the post-mortem and the json say the same thing. It reads
events, not the engine's state, so an export of an old journal says what that journal holds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from irtool.engine import kinds
from irtool.engine.dumped import dumped_contacts
from irtool.journal import Event
from irtool.model.sshkeys import team_signs


@dataclass(frozen=True)
class Change:
    """One event that changed what the incident is about: a parameter, an indicator, the scope."""

    seq: int
    at: str
    by: str
    data: dict[str, Any]

    def get(self, key: str) -> Any:
        return self.data.get(key)


@dataclass
class Unfolded:
    parameters: list[Change] = field(default_factory=list)
    indicators: dict[str, list[str]] = field(default_factory=dict)  # kind -> values held now
    indicator_changes: list[Change] = field(default_factory=list)  # data gains "change"
    scope: list[Change] = field(default_factory=list)
    early: list[Change] = field(default_factory=list)  # data gains "step"
    closed: Change | None = None  # the last incident.closed
    after_close: set[int] = field(default_factory=set)
    corrected_by: dict[int, list[int]] = field(default_factory=dict)
    ad_hoc: set[int] = field(default_factory=set)  # custody events of ad-hoc commands
    # rotate step -> item id -> (rotated, note), from the step's completion
    rotations: dict[str, dict[str, tuple[bool, str]]] = field(default_factory=dict)
    # The team signs its events (its contacts file lists keys, or requires signatures): an
    # event without a signature is then marked unsigned wherever it is shown.
    signing: bool = False

    def unsigned(self, e: Event) -> bool:
        return self.signing and e.signature is None

    def corrections(self, seq: int) -> list[int]:
        return self.corrected_by.get(seq, [])

    def see(self, e: Event) -> None:
        """One more event, in the journal's order."""
        if e.data.get("after_close"):
            self.after_close.add(e.seq)
        if e.data.get("ad_hoc"):
            self.ad_hoc.add(e.seq)
        kind = e.kind
        if kind == kinds.INCIDENT_OPENED:
            self.signing = team_signs(dumped_contacts(e.data))
        if kind not in _CHANGES:
            return
        change = Change(e.seq, e.occurred_at, e.actor, e.data)
        if kind == kinds.PARAMETER_SET:
            self.parameters.append(change)
        elif kind in (kinds.IOC_ADDED, kinds.IOC_REMOVED):
            _indicator(self, e, change)
        elif kind == kinds.SCOPE_CHANGED:
            self.scope.append(change)
        elif kind == kinds.STEP_STARTED_EARLY:
            self.early.append(Change(e.seq, e.occurred_at, e.actor, {**e.data, "step": e.step}))
        elif kind == kinds.INCIDENT_CLOSED:
            self.closed = change
        elif kind == kinds.EVENT_CORRECTED and isinstance(e.data.get("corrects"), int):
            self.corrected_by.setdefault(e.data["corrects"], []).append(e.seq)
        elif kind == kinds.STEP_COMPLETED and isinstance(e.data.get("rotations"), dict):
            self.rotations[e.step or ""] = {
                str(item): (bool(said.get("rotated")), str(said.get("note") or ""))
                for item, said in e.data["rotations"].items()
                if isinstance(said, dict)
            }


_CHANGES = frozenset(
    {
        kinds.PARAMETER_SET,
        kinds.IOC_ADDED,
        kinds.IOC_REMOVED,
        kinds.SCOPE_CHANGED,
        kinds.STEP_STARTED_EARLY,
        kinds.INCIDENT_CLOSED,
        kinds.EVENT_CORRECTED,
        kinds.STEP_COMPLETED,
    }
)


def unfold(events: Iterable[Event]) -> Unfolded:
    found = Unfolded()
    for e in events:
        found.see(e)
    return found


def _indicator(found: Unfolded, event: Event, change: Change) -> None:
    added = event.kind == kinds.IOC_ADDED
    kind, value = str(event.data.get("kind")), str(event.data.get("value"))
    held = found.indicators.setdefault(kind, [])
    if added and value not in held:
        held.append(value)
    elif not added and value in held:
        held.remove(value)
    if not held:
        del found.indicators[kind]
    said = {**event.data, "change": "add" if added else "remove"}
    found.indicator_changes.append(Change(change.seq, change.at, change.by, said))
