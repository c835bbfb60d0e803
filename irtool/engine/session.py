"""An incident session: every command is checked against the state, then written as one event.

A command folds in whatever other writers appended, checks, and appends
inside a single journal transaction: two responders completing the same step
at once cannot both succeed. A refused command writes nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from irtool.engine import checkpoint, kinds, window
from irtool.engine.closing import open_items
from irtool.engine.exercise_commands import ExerciseCommands
from irtool.engine.meeting_commands import MeetingCommands
from irtool.engine.refusal import Refused as Refused
from irtool.engine.refusal import check_responder, no_step
from irtool.engine.state import RECORD_KINDS, IncidentState, Outcome, Status
from irtool.engine.unfolding import UnfoldingCommands, answers_by_question
from irtool.journal import Event, EventDraft
from irtool.journal.backends import is_team, new_journal, open_journal
from irtool.journal.events import utc_text
from irtool.journal.incidents import journal_path, new_incident_id
from irtool.journal.protocol import IncidentJournal
from irtool.journal.spool import Spool
from irtool.journal.store import Unsigned
from irtool.model.names import same_responder
from irtool.model.sshkeys import team_signs

# A scribe's note loads no model: neither pydantic nor the YAML loader. Each command that
# reads a step's model imports its class (the state makes the runbook when first read).
if TYPE_CHECKING:
    from pydantic import BaseModel

    from irtool.engine.signatures import AgentSigner
    from irtool.model.contacts import Contacts
    from irtool.model.inventory import Inventory
    from irtool.model.loader import Loaded
    from irtool.model.runbook import Runbook
    from irtool.model.scenario import Scenario

MODES = ("live", "exercise")


def _rotations(
    spec: object, step: str, given: dict[str, tuple[bool, str]]
) -> dict[str, dict[str, Any]]:
    """What became of each credential of a rotation step, in the runbook's order."""
    from irtool.model.steps import RotateStep

    if not isinstance(spec, RotateStep):
        raise Refused(f"step '{step}' rotates nothing: only a rotation step does")
    ids = [item.id for item in spec.items]
    unknown = [item for item in given if item not in ids]
    if unknown:
        raise Refused(f"step '{step}' has no rotation item '{unknown[0]}' ({', '.join(ids)})")
    said: dict[str, dict[str, Any]] = {}
    for item in ids:
        if item in given:
            rotated, note = given[item]
            if not rotated and not note.strip():
                raise Refused(f"'{item}' was not rotated: say why (what is pending)")
            said[item] = {"rotated": rotated, "note": note.strip()}
    return said


def _folded(journal: IncidentJournal, opened: Callable[[Event], IncidentState]) -> IncidentState:
    """Every event of the journal folded, from its opening event on."""
    first, events = checkpoint.opening(journal)
    state = opened(first)
    for event in events:
        state.apply(event)
    return state


def _standing(journal: IncidentJournal) -> IncidentState:
    """The standing state, from a sound checkpoint and the events since, or folded anew;
    records read when asked for. A checkpoint is written only of a fold whose every event
    was checked against the chain (never of a journal found altered), and only once the
    events folded past the last one make it worth it."""
    state, tail = checkpoint.load(journal), 0
    if state is not None:
        try:
            tail = checkpoint.fold_tail(state, journal.events(after=state.last_seq))
        except checkpoint.TailBroken:
            state = None  # not the journal the checkpoint was made of
    if state is None:
        try:
            state = checkpoint.fold_checked(journal)
            tail = state.last_seq
        except checkpoint.TailBroken:
            # Altered somewhere: read as it now stands (verify names where), never sealed.
            state = _folded(journal, partial(IncidentState.opened, records=False))
            tail = 0
    if tail >= checkpoint.EVERY:
        checkpoint.save(state)
    state.bind_records(partial(_record_events, journal))
    return state


def _record_events(journal: IncidentJournal, after: int, upto: int) -> Iterator[Event]:
    return journal.events(after, upto=upto, kinds=RECORD_KINDS)


def _signer(contacts: dict[str, Any] | None) -> AgentSigner | None:
    """Who signs what this session writes: each responder with their own key, where the
    contacts file lists keys or requires signatures (engine.signatures); else no one, and
    nothing of the signing is loaded."""
    if not team_signs(contacts):
        return None
    from irtool.engine.signatures import AgentSigner

    return AgentSigner(contacts)


def _source(loaded: Loaded[Any] | BaseModel) -> dict[str, Any]:
    """The exact files read, with their SHA-256, and the model they resolved to. A model no
    file holds (an exercise's simulated hosts) is kept with the SHA-256 of its JSON."""
    from pydantic import BaseModel

    if isinstance(loaded, BaseModel):
        text = json.dumps(loaded.model_dump(mode="json"), sort_keys=True)
        return {
            "path": None,
            "sha256": hashlib.sha256(text.encode()).hexdigest(),
            "text": None,
            "includes": [],
            "model": loaded.model_dump(mode="json"),
        }
    files = [
        {
            "path": path,
            "sha256": hashlib.sha256(raw).hexdigest(),
            "text": raw.decode("utf-8", "replace"),
        }
        for path, raw in loaded.doc.sources
    ]
    model: BaseModel = loaded.model
    return {**files[0], "includes": files[1:], "model": model.model_dump(mode="json")}


class IncidentSession(UnfoldingCommands, MeetingCommands, ExerciseCommands):
    def __init__(self, journal: IncidentJournal, state: IncidentState) -> None:
        self.journal, self.state = journal, state
        # Each responder signs what they write, where the contacts file lists their keys.
        self.signer = _signer(state.contacts_data)
        journal.signer = self.signer

    # -- opening ---------------------------------------------------------------

    @classmethod
    def new(
        cls,
        runbook: Loaded[Runbook],
        parameters: dict[str, Any],
        *,
        actor: str,
        mode: str = "live",
        contacts: Loaded[Contacts] | None = None,
        inventory: Loaded[Inventory] | Inventory | None = None,
        scenario: Loaded[Scenario] | Scenario | None = None,
        generic: bool = False,
        clock: Callable[[], datetime] | None = None,
    ) -> IncidentSession:
        if mode not in MODES:
            raise Refused(f"mode must be one of {', '.join(MODES)}")
        if (mode == "exercise") != (scenario is not None):
            raise Refused("an exercise is played from a scenario, and only an exercise is")
        incident = new_incident_id((clock or (lambda: datetime.now(UTC)))())
        contacts_source = _source(contacts) if contacts else None
        signer = _signer(contacts_source["model"] if contacts_source else None)
        # Refused before anything is made: an incident whose opening its commander cannot
        # sign would be left behind with no opening event.
        why = signer.unable(actor) if signer and signer.required else None
        if why:
            raise Refused(f"{why}, and this team's events must be signed")
        journal = new_journal(incident, clock=clock)
        journal.signer = signer
        opening = journal.append(
            EventDraft(
                kinds.INCIDENT_OPENED,
                actor,
                {
                    "title": runbook.model.title,
                    "mode": mode,
                    "runbook": _source(runbook),
                    "parameters": parameters,
                    "contacts": contacts_source,
                    "inventory": _source(inventory) if inventory else None,
                    "scenario": ({**_source(scenario), "generic": generic} if scenario else None),
                    "commander": actor,
                },
            )
        )
        return cls(journal, IncidentState.opened(opening))

    @classmethod
    def open(
        cls,
        incident: str,
        clock: Callable[[], datetime] | None = None,
        *,
        records: bool = True,
    ) -> IncidentSession:
        """Reopen an incident exactly where its journal says it stands.

        `records=False`: from the checkpoint of its standing state when there is a sound one
        (only the events since are read, and checked to follow it), without the records
        (evidence, notes, runs), which are read from the journal when first asked for. What
        a command checks before it writes is all in the standing state, so a write costs the
        same at event 10 and at event 1,000,000."""
        if not is_team(incident) and not journal_path(incident).exists():
            raise Refused(f"no incident {incident}")
        journal = open_journal(incident, clock=clock)
        try:
            state = _standing(journal) if not records else _folded(journal, IncidentState.opened)
        except BaseException:
            journal.close()
            raise
        return cls(journal, state)

    def close_journal(self) -> None:
        self.journal.close()

    @property
    def directory(self) -> Path:
        return self.journal.path.parent

    @property
    def spool(self) -> Spool:
        return Spool(self.directory)

    def refresh(self) -> list[Event]:
        """Fold in what other writers (a scribe's terminal) appended since we last looked."""
        new = list(self.journal.events(after=self.state.last_seq))
        for event in new:
            self.state.apply(event)
        return new

    # -- the one way anything is written ----------------------------------------

    def _write(
        self, decide: Callable[[IncidentState], EventDraft], *, after_close: bool = False
    ) -> Event:
        """`after_close`: a command the post-mortem still needs once the incident is closed
        (notes, action items, answers); what it writes then says so."""
        # What waits in the spool happened first. Another responder's records, which only
        # their key can sign, wait there for them (recovery says so): no one else's write is
        # held up.
        with contextlib.suppress(Unsigned):
            self.append_pending()
        with self.journal.transaction() as tx:
            for event in tx.events(after=self.state.last_seq):
                self.state.apply(event)
            closed = self.state.closed
            if closed and not after_close:
                raise Refused(
                    f"incident {self.state.id} is closed: only notes, action items and "
                    "post-mortem answers can still be added"
                )
            draft = decide(self.state)
            if closed:
                draft = replace(draft, data={**draft.data, "after_close": True})
            event = tx.append(draft)
        self.state.apply(event)
        return event

    def record_custody(self, draft: EventDraft, busy_timeout: float | None = None) -> Event:
        """A custody record (a command ran, a host failed, a run ended): written whatever the
        incident's state, closed included, since it says what happened on a host. The spool
        is not looked at here: a run appends what waited there before it starts, and
        queues its own records behind any it had to spool."""
        with self.journal.transaction(busy_timeout) as tx:
            for event in tx.events(after=self.state.last_seq):
                self.state.apply(event)
            event = tx.append(draft)
        self.state.apply(event)
        return event

    def record_custody_together(
        self, drafts: Sequence[EventDraft], busy_timeout: float | None = None
    ) -> list[Event]:
        """Custody records of several hosts in one transaction (one commit, one fsync), in
        order: all of them are durable when this returns, or none is written."""
        with self.journal.transaction(busy_timeout) as tx:
            for event in tx.events(after=self.state.last_seq):
                self.state.apply(event)
            events = [tx.append(draft) for draft in drafts]
        for event in events:
            self.state.apply(event)
        return events

    def append_pending(self, busy_timeout: float | None = None) -> list[Event]:
        """Append what the spool holds, in order; raises JournalError if the journal still
        cannot take it (the records stay spooled)."""
        spool = self.spool
        pending = spool.pending()
        if not pending:
            return []
        with self.journal.transaction(busy_timeout) as tx:
            for event in tx.events(after=self.state.last_seq):
                self.state.apply(event)
            appended = spool.append_to(tx, pending)
        spool.remove(pending)
        for event in appended:
            self.state.apply(event)
        return appended

    def _pending_available(self, state: IncidentState, step_id: str, reapply: bool = False) -> None:
        """The step can be worked now; `reapply`: a rolled-back action counts as open again."""
        if step_id not in state.steps:
            raise no_step(state, step_id)
        step = state.steps[step_id]
        if reapply and step.status is Status.ROLLED_BACK:
            return  # it was reached once; rolling it back does not unreach it
        if step.status is not Status.PENDING:
            raise Refused(f"step '{step_id}' is already {step.status} (by {step.by} at {step.at})")
        available = state.available()
        if step_id not in available:
            upcoming = ", ".join(available) or "none"
            spec = state.runbook.step(step_id)
            how = (
                "it is strict"
                if spec is not None and spec.strict
                else f"or start it early: irtool incident start {state.id} {step_id} --reason"
            )
            raise Refused(f"step '{step_id}' is not reachable yet; next: {upcoming} ({how})")

    # -- commands ----------------------------------------------------------------

    def complete(
        self,
        step: str,
        actor: str,
        note: str = "",
        checklist: list[str] | None = None,
        answers: dict[str, str] | None = None,
        rotations: dict[str, tuple[bool, str]] | None = None,
    ) -> Event:
        """Mark a step done; a post-mortem step takes the team's answers to its questions, a
        rotation step what became of each credential (rotated, or not and why)."""

        def decide(state: IncidentState) -> EventDraft:
            from irtool.model.steps import ActionStep, DecisionStep, PostmortemStep

            if state.closed and not isinstance(state.runbook.step(step), PostmortemStep):
                raise Refused(f"incident {state.id} is closed: only a post-mortem step is done now")
            # A rolled-back action is done again only once it is applied again somewhere.
            self._pending_available(state, step, reapply=bool(state.applied.get(step)))
            spec = state.runbook.step(step)
            if isinstance(spec, DecisionStep):
                raise Refused(f"step '{step}' is a decision: answer it with one of its options")
            items = list(checklist or [])
            known = getattr(spec, "checklist", [])
            unknown = [item for item in items if item not in known]
            if unknown:
                raise Refused(f"'{unknown[0]}' is not on the checklist of step '{step}'")
            data: dict[str, Any] = {"note": note, "checklist": items}
            given = {k: a.strip() for k, a in (answers or {}).items() if a.strip()}
            if given:
                data["answers"] = answers_by_question(spec, step, given)
            if rotations:
                data["rotations"] = _rotations(spec, step, rotations)
            if isinstance(spec, ActionStep) and spec.approvals == 2:
                action = state.actions.get(step)
                if action is None or not action.approvals:
                    raise Refused(f"action '{step}' needs a second responder's approval first")
            return EventDraft(kinds.STEP_COMPLETED, actor, data, step=step)

        return self._write(decide, after_close=True)

    def skip(self, step: str, actor: str, reason: str) -> Event:
        def decide(state: IncidentState) -> EventDraft:
            from irtool.model.steps import DecisionStep

            if not reason.strip():
                raise Refused("skipping a step needs a reason")
            self._pending_available(state, step)
            if isinstance(state.runbook.step(step), DecisionStep):
                raise Refused(f"step '{step}' is a decision: it cannot be skipped, only answered")
            return EventDraft(kinds.STEP_SKIPPED, actor, {"reason": reason}, step=step)

        return self._write(decide)

    def decide(self, step: str, option: str, actor: str, note: str = "") -> Event:
        def decide(state: IncidentState) -> EventDraft:
            from irtool.model.steps import DecisionStep

            spec = state.runbook.step(step)
            if spec is not None and not isinstance(spec, DecisionStep):
                raise Refused(f"step '{step}' is not a decision")
            self._pending_available(state, step)
            assert isinstance(spec, DecisionStep)
            chosen = next((o for o in spec.options if o.id == option), None)
            if chosen is None:
                ids = ", ".join(o.id for o in spec.options)
                raise Refused(f"'{option}' is not an option of '{step}' (options: {ids})")
            return EventDraft(
                kinds.DECISION_MADE,
                actor,
                {"option": option, "label": chosen.label, "next": chosen.next, "note": note},
                step=step,
            )

        return self._write(decide)

    def note(self, text: str, actor: str, at: datetime | None = None) -> Event:
        def decide(state: IncidentState) -> EventDraft:
            check_responder(actor)
            if not text.strip():
                raise Refused("a note needs text")
            if at is not None:
                self._within(window.occurred(state, self.journal.now()), "the note's time", at)
            return EventDraft(kinds.NOTE_ADDED, actor, {"text": text}, occurred_at=at)

        return self._write(decide, after_close=True)

    def assign_action_item(
        self, text: str, owner: str, actor: str, due: date | None = None
    ) -> Event:
        """A follow-up for the post-mortem's list: it has an owner, or it is not an action item."""

        def decide(state: IncidentState) -> EventDraft:
            if not text.strip():
                raise Refused("an action item needs text")
            if not owner.strip():
                raise Refused("an action item needs an owner")
            return EventDraft(
                kinds.ACTION_ITEM_ASSIGNED,
                actor,
                {
                    "text": text.strip(),
                    "owner": owner.strip(),
                    "due": due.isoformat() if due else None,
                },
            )

        return self._write(decide, after_close=True)

    def correct(
        self, seq: int, actor: str, reason: str, text: str | None = None, at: datetime | None = None
    ) -> Event:
        """Record that event `seq` was wrong; the original stays, the correction points at it."""

        def decide(state: IncidentState) -> EventDraft:
            check_responder(actor)
            if not 1 < seq <= state.last_seq:
                raise Refused(f"no event {seq} to correct (events 2..{state.last_seq})")
            if not reason.strip():
                raise Refused("a correction needs a reason")
            replacement: dict[str, str] = {}
            if text is not None:
                replacement["text"] = text
            if at is not None:
                self._within(window.occurred(state, self.journal.now()), "the corrected time", at)
                replacement["occurred_at"] = utc_text(at)
            return EventDraft(
                kinds.EVENT_CORRECTED,
                actor,
                {"corrects": seq, "reason": reason, "replacement": replacement},
            )

        return self._write(decide)

    def reach(
        self, role: str, person: str, outcome: str, actor: str, method: str | None = None
    ) -> Event:
        def decide(state: IncidentState) -> EventDraft:
            if role not in state.calls:
                raise Refused(
                    f"no role '{role}' in this incident (roles: {', '.join(state.calls)})"
                )
            try:
                result = Outcome(outcome)
            except ValueError:
                raise Refused(
                    f"outcome must be one of {', '.join(o.value for o in Outcome)}"
                ) from None
            return EventDraft(
                kinds.CONTACT_ATTEMPTED,
                actor,
                {"role": role, "person": person, "method": method, "outcome": result.value},
            )

        return self._write(decide)

    def escalate(self, role: str, actor: str, reason: str = "") -> Event:
        """Stop waiting for the person the role is on (a message left, no call back): go to the
        next backup."""

        def decide(state: IncidentState) -> EventDraft:
            tree = state.calls.get(role)
            if tree is None:
                raise Refused(
                    f"no role '{role}' in this incident (roles: {', '.join(state.calls)})"
                )
            if tree.reached:
                raise Refused(f"{role} is already reached: {tree.reached}")
            person = tree.next_person
            if person is None:
                raise Refused(f"no one is left to call for {role}")
            after = tree.order[tree.position + 1] if tree.position + 1 < len(tree.order) else None
            if after is None:
                raise Refused(f"{person} is the last backup for {role}: no one to escalate to")
            return EventDraft(
                kinds.CONTACT_ESCALATED,
                actor,
                {"role": role, "from": person, "to": after, "reason": reason},
            )

        return self._write(decide)

    @staticmethod
    def _within(allowed: window.Window, what: str, moment: datetime) -> None:
        problem = allowed.problem(what, moment)
        if problem:
            raise Refused(problem)

    def request_action(self, step: str, actor: str, reason: str) -> Event:
        def decide(state: IncidentState) -> EventDraft:
            from irtool.model.steps import ActionStep

            check_responder(actor)
            if state.runbook.step(step) is None:
                raise no_step(state, step)
            if not isinstance(state.runbook.step(step), ActionStep):
                raise Refused(f"step '{step}' is not an action")
            self._signs_for_two(actor)
            self._pending_available(state, step, reapply=True)
            if step in state.actions and not state.actions[step].rolled_back:
                raise Refused(
                    f"action '{step}' was already requested by {state.actions[step].requested_by}"
                )
            if not reason.strip():
                raise Refused("requesting an action needs a reason")
            return EventDraft(kinds.ACTION_REQUESTED, actor, {"reason": reason}, step=step)

        return self._write(decide)

    def _signs_for_two(self, actor: str) -> None:
        """Where the team signs its events, a request and its approval are signatures, not
        names typed: the two-person rule is two people's keys, so neither is written
        unsigned, whatever `signed_events` allows of other events."""
        why = self.signer.unable(actor) if self.signer else None
        if why:
            raise Refused(f"the two-person rule needs two people's keys: {why}")

    def approve(self, step: str, actor: str) -> Event:
        def decide(state: IncidentState) -> EventDraft:
            check_responder(actor)
            action = state.actions.get(step)
            if action is None:
                raise Refused(f"action '{step}' has not been requested")
            # One person however spelt ('alice', 'ALICE ', fullwidth): the two-person rule
            # must not be met by typing one's own name differently.
            if same_responder(action.requested_by, actor):
                raise Refused(
                    f"{action.requested_by} requested '{step}': a second responder must approve it"
                )
            if any(same_responder(approver, actor) for approver in action.approvals):
                raise Refused(f"{actor} already approved '{step}'")
            self._signs_for_two(actor)
            return EventDraft(
                kinds.ACTION_APPROVED, actor, {"request": action.request_seq}, step=step
            )

        return self._write(decide)

    def record_rollback(self, step: str, actor: str, note: str = "") -> Event:
        def decide(state: IncidentState) -> EventDraft:
            from irtool.model.steps import ActionStep

            spec = state.runbook.step(step)
            if spec is None:
                raise no_step(state, step)
            if not isinstance(spec, ActionStep):
                raise Refused(f"step '{step}' is not an action")
            if not spec.reversible:
                raise Refused(f"action '{step}' is irreversible: {spec.irreversible}")
            applied_somewhere = step in state.acted_on  # a --host run, before the step is done
            if state.actions.get(step) and state.actions[step].rolled_back:
                raise Refused(f"action '{step}' was already rolled back")
            if state.steps[step].status is not Status.DONE and not applied_somewhere:
                raise Refused(f"action '{step}' was not applied, so there is nothing to roll back")
            return EventDraft(kinds.ACTION_ROLLED_BACK, actor, {"note": note}, step=step)

        return self._write(decide)

    def handover(self, to: str, actor: str) -> Event:
        def decide(state: IncidentState) -> EventDraft:
            if not to.strip():
                raise Refused("hand over to whom?")
            check_responder(to, actor)
            if same_responder(to, state.commander):
                raise Refused(f"{state.commander} already has incident command")
            return EventDraft(kinds.COMMAND_HANDED_OVER, actor, {"from": state.commander, "to": to})

        return self._write(decide)

    def close(self, actor: str, summary: str = "", over: str = "") -> Event:
        """Close the incident; what is still open (containment applied, open action items,
        unanswered questions, unfinished runs) is listed, and closing over it needs a reason."""

        def decide(state: IncidentState) -> EventDraft:
            still = open_items(state, len(self.spool.pending()))
            if still and not over.strip():
                raise Refused(
                    "still open: " + "; ".join(still) + ". Close over it with a reason (--over)"
                )
            return EventDraft(
                kinds.INCIDENT_CLOSED,
                actor,
                # A reason to close over nothing open is no part of the record.
                {"summary": summary, "over": over.strip() if still else "", "open_items": still},
            )

        return self._write(decide)
