"""Where an incident stands: a fold over its journal, so reopening is the same path as opening.

The state has two parts. The standing state (steps, calls, actions, what is applied, runs
still open, findings, what was learned) is what every check reads; it stays small however long
the incident runs, so a checkpoint can hold it (`engine.checkpoint`). The records (every piece
of evidence, note and run) grow with every event: a state folded with `records=False` leaves
them out, and reads them from the journal the first time something asks for them
(`bind_records`), so a scribe's note never pays for a million events it does not look at.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from irtool.engine import dumped, kinds
from irtool.engine.exercise import ExerciseState
from irtool.engine.learned import (
    LEARNED,
    Analysis,
    Finding,
    IocChange,
    ParameterChange,
    ScopeChange,
)
from irtool.journal import Event

if TYPE_CHECKING:  # made from the journal's data when first read (`engine.dumped`)
    from irtool.model.contacts import Contacts
    from irtool.model.facts import HostFacts
    from irtool.model.inventory import Inventory
    from irtool.model.runbook import Runbook

AD_HOC = "ad-hoc"


class Outcome(StrEnum):
    REACHED = "reached"
    NO_ANSWER = "no-answer"
    LEFT_MESSAGE = "left-message"


class Status(StrEnum):
    PENDING = "pending"
    DONE = "done"
    SKIPPED = "skipped"
    ROLLED_BACK = "rolled back"  # an action undone on its hosts: it can be applied again


@dataclass
class StepState:
    id: str
    kind: str
    title: str
    phase: str
    status: Status = Status.PENDING
    by: str | None = None
    at: str | None = None
    note: str = ""
    checklist: list[str] = field(default_factory=list)
    option: str | None = None
    reason: str | None = None
    answers: dict[str, str] = field(default_factory=dict)  # a post-mortem: question -> answer
    early: str | None = None  # why it was started before the steps ahead of it were done
    # a rotation step: item id -> (rotated, note); what the team said of each credential
    rotations: dict[str, tuple[bool, str]] = field(default_factory=dict)


@dataclass
class Attempt:
    seq: int
    at: str
    by: str
    person: str
    method: str | None
    outcome: Outcome


@dataclass
class CallTree:
    """Who to call for a role: the primary, then each backup in turn after a no-answer."""

    role: str
    order: list[str]
    position: int = 0
    reached: str | None = None
    tried: int = 0  # attempts made (each is a record: `IncidentState.attempts`)
    last: Attempt | None = None  # the latest of them

    @property
    def next_person(self) -> str | None:
        if self.reached:
            return None
        return self.order[self.position] if self.position < len(self.order) else None


@dataclass
class Note:
    seq: int
    at: str
    recorded_at: str
    by: str
    text: str
    corrected_by: int | None = None


@dataclass
class ActionItem:
    """A follow-up the team agreed on: what, who owns it, and by when."""

    seq: int
    at: str
    by: str
    text: str
    owner: str
    due: str | None = None


@dataclass
class ActionState:
    requested_by: str
    request_seq: int
    reason: str
    approvals: list[str] = field(default_factory=list)
    rolled_back: bool = False


@dataclass
class Evidence:
    """One command's output on one host, or one fetched file, as its custody event recorded it."""

    seq: int
    at: str
    by: str
    step: str | None
    host: str
    purpose: str  # collect, action, rollback, fetch
    item: str | None
    command: str
    identity: str | None
    exit_status: int | None
    files: dict[str, dict[str, Any]]  # stdout / stderr / file -> {sha256, size}
    failure: str | None = None
    run: int | None = None  # the run.started it belongs to (None: a fetch outside a run)
    interrupted: bool = False  # irtool's process ended before the command did
    ad_hoc: bool = False  # a one-off command typed during the incident, not a runbook step
    variant: str | None = None  # the form of the step's command the host got (by its facts)


@dataclass
class RunState:
    """One run of a collect or action step (or a rollback), from run.started on."""

    seq: int
    step: str
    purpose: str
    hosts: list[str]
    by: str
    at: str
    pid: int | None = None
    machine: str | None = None
    finished: bool = False
    interrupted: bool = False  # the process that ran it ended first; recovery closed it
    ad_hoc: bool = False
    failed: list[str] = field(default_factory=list)  # hosts run.finished says failed
    # an ad-hoc command: what was typed, in which shell, and how it is undone (or why not)
    command: str | None = None
    shell: str | None = None
    rollback: str | None = None
    irreversible: str | None = None


@dataclass
class IncidentState:
    id: str
    title: str
    mode: str
    # The runbook, contacts and inventory as the opening event holds them (`engine.dumped`):
    # `runbook`, `contacts` and `inventory` are the models, made when first read.
    runbook_data: dict[str, Any]
    runbook_sha256: str
    parameters: dict[str, Any]
    contacts_data: dict[str, Any] | None
    inventory_data: dict[str, Any] | None
    opened_at: str
    opened_by: str
    commander: str
    steps: dict[str, StepState]
    closed_at: str | None = None
    close_over: str | None = None  # the reason to close over what was still open
    parameter_changes: list[ParameterChange] = field(default_factory=list)
    iocs: dict[str, list[str]] = field(default_factory=dict)  # kind -> values, in order added
    ioc_changes: list[IocChange] = field(default_factory=list)
    scope_changes: list[ScopeChange] = field(default_factory=list)  # applied to the inventory
    facts_data: dict[str, dict[str, Any]] = field(default_factory=dict)  # what each host said
    findings: dict[int, Finding] = field(default_factory=dict)  # by the seq that raised it
    analyses: list[Analysis] = field(default_factory=list)  # in the order they ran
    action_items: list[ActionItem] = field(default_factory=list)
    calls: dict[str, CallTree] = field(default_factory=dict)
    meeting: str | None = None  # the agenda step whose meeting is open
    reconvene_at: str | None = None
    actions: dict[str, ActionState] = field(default_factory=dict)
    corrections: dict[int, list[int]] = field(default_factory=dict)
    # Runs not finished, or interrupted and not since run again to the end (what close lists).
    open_runs: dict[int, RunState] = field(default_factory=dict)
    # (step, purpose) -> the latest run.started seq of a run of it that finished uninterrupted
    clean_runs: dict[tuple[str, str], int] = field(default_factory=dict)
    # action step -> host -> seq of the command.ran that changed it; rollback removes the host
    applied: dict[str, dict[str, int]] = field(default_factory=dict)
    acted_on: set[str] = field(default_factory=set)  # action steps that ever ran on a host
    exercise: ExerciseState | None = None  # its scenario, clock and injects; None when live
    last_seq: int = 0
    last_at: str = ""  # when the latest event was recorded
    head: str = ""
    # The records: folded with everything else (the default), or read when first asked for.
    _records: Records | None = field(default=None, repr=False, compare=False)
    _read_records: RecordReader | None = field(default=None, repr=False, compare=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)
    _reading: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    _models: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def closed(self) -> bool:
        return self.closed_at is not None

    # -- the models, made from the journal's data when first read ------------------

    def _model(self, name: str, make: Callable[[], Any]) -> Any:
        with self._lock:
            if name not in self._models:
                self._models[name] = make()
            return self._models[name]

    @property
    def runbook(self) -> Runbook:
        made: Runbook = self._model("runbook", lambda: dumped.runbook(self.runbook_data))
        return made

    @property
    def contacts(self) -> Contacts | None:
        made: Contacts | None = self._model("contacts", lambda: dumped.contacts(self.contacts_data))
        return made

    @property
    def inventory(self) -> Inventory | None:
        """The inventory as opened, with every scope change since."""
        made: Inventory | None = self._model(
            "inventory", lambda: dumped.inventory(self.inventory_data, self.scope_changes)
        )
        return made

    def rescope(self, change: ScopeChange) -> None:
        """A scope change: kept, and applied to the inventory if it is made already (else it
        is applied, with those before it, when the inventory is first read)."""
        with self._lock:
            self.scope_changes.append(change)
            if "inventory" in self._models:
                self._models["inventory"] = dumped.rescoped(self._models["inventory"], change)

    @property
    def facts(self) -> dict[str, HostFacts]:
        """What each host said it is (facts.learned), by host."""
        made: dict[str, HostFacts] = self._model("facts", lambda: dumped.facts(self.facts_data))
        return made

    def learned_facts(self, host: str, said: dict[str, Any]) -> None:
        with self._lock:
            self.facts_data[host] = said
            self._models.pop("facts", None)  # made again, with this host's, when next read

    # -- the records -------------------------------------------------------------

    @property
    def evidence(self) -> list[Evidence]:
        """Every command's output and fetched file, in the journal's order."""
        return self.records().evidence

    @property
    def notes(self) -> list[Note]:
        return self.records().notes

    @property
    def runs(self) -> dict[int, RunState]:
        """Every run, by the seq of its run.started."""
        return self.records().runs

    def attempts(self, role: str) -> list[Attempt]:
        """Every call made for `role`, in order."""
        return self.records().attempts.get(role, [])

    @property
    def records_read(self) -> bool:
        """The records are in memory (folded, or read since): asking for them costs nothing."""
        return self._records is not None

    def bind_records(self, read: RecordReader) -> None:
        """Where the records are read from when first asked for: `read(after, upto)` gives
        the journal's events of RECORD_KINDS with after < seq <= upto, in order."""
        self._read_records = read

    def records(self) -> Records:
        """The records, read from the journal first if this state was folded without them.

        Read outside the lock (a million events take seconds, and the UI folds new events
        meanwhile), then brought up to the state's own last event under it."""
        found = self._records
        if found is not None:
            return found
        with self._reading:  # a second asker waits for the first reader, not reads again
            if self._records is not None:
                return self._records
            read = self._read_records
            if read is None:
                raise RuntimeError("this state was folded without its records: none to read")
            # The journal is never read under the state's lock: a write holds the journal's
            # lock and then takes the state's to fold what it caught up (the other order
            # would deadlock). So read up to where the state stands, and again for what it
            # folded meanwhile, until nothing came in between.
            records, seen = Records(), 0
            while True:
                upto = self.last_seq
                for event in read(seen, upto):
                    records.apply(event)
                seen = upto
                with self._lock:
                    if self.last_seq == seen:
                        self._records = records
                        return records

    def __getstate__(self) -> dict[str, Any]:
        """What a checkpoint keeps: the standing state alone (no records, no reader, no lock)."""
        kept = dict(self.__dict__)
        kept.update(_records=None, _read_records=None)
        # The models are made again from the data when read: loading a checkpoint imports
        # no pydantic and builds no validator.
        del kept["_lock"], kept["_reading"], kept["_models"]
        return kept

    def __setstate__(self, kept: dict[str, Any]) -> None:
        self.__dict__.update(kept, _lock=threading.RLock(), _reading=threading.Lock(), _models={})

    @classmethod
    def opened(cls, event: Event, *, records: bool = True) -> IncidentState:
        """The state after the opening event. `records=False`: without the records (see
        `records()`); they are read when asked for, once `bind_records` says from where."""
        data = event.data
        runbook = data["runbook"]["model"]
        contacts = dumped.dumped_contacts(data)
        inventory = (data.get("inventory") or {}).get("model")
        state = cls(
            id=event.incident,
            title=data["title"],
            mode=data["mode"],
            runbook_data=runbook,
            runbook_sha256=data["runbook"]["sha256"],
            # a copy: what is learned later must not rewrite the opening event as it reads
            parameters=dict(data["parameters"]),
            contacts_data=contacts,
            inventory_data=inventory,
            opened_at=event.occurred_at,
            opened_by=event.actor,
            commander=data["commander"],
            steps={
                step["id"]: StepState(step["id"], step["type"], step["title"], phase)
                for phase, step in dumped.steps_of(runbook)
            },
            exercise=ExerciseState.opened(event),
            _records=Records() if records else None,
        )
        for role in runbook["roles"]:
            state.calls[role] = CallTree(role, dumped.call_order(contacts, role))
        state.last_seq, state.last_at, state.head = event.seq, event.recorded_at, event.hash
        return state

    def host_facts(self) -> dict[str, HostFacts]:
        """What is known of each host: what it said of itself over what the inventory states."""
        stated = {
            name: host.facts
            for name, host in (self.inventory.hosts.items() if self.inventory else ())
            if host.facts is not None
        }
        return {**stated, **self.facts}

    def unfinished_runs(self) -> list[RunState]:
        """Runs with no run.finished: in flight, or left by a process that died."""
        return [run for run in self.open_runs.values() if not run.finished]

    def available(self) -> list[str]:
        """Pending steps the flow has reached: the first step, and wherever done steps lead."""
        from irtool.model.flow import following
        from irtool.model.steps import DecisionStep

        after = following(self.runbook)
        order = list(self.steps)
        # A step started early is reached, and so is wherever it leads once done.
        reached = ({order[0]} if order else set()) | {s for s in order if self.steps[s].early}
        todo = list(reached)
        while todo:
            step = self.steps[todo.pop()]
            if step.status is Status.PENDING:
                continue
            spec = self.runbook.step(step.id)
            if isinstance(spec, DecisionStep):
                chosen = next((o for o in spec.options if o.id == step.option), None)
                targets = [(chosen.next if chosen else None) or after[step.id]]
            else:
                targets = [(spec.next if spec else None) or after[step.id]]
            for target in targets:
                if target and target in self.steps and target not in reached:
                    reached.add(target)
                    todo.append(target)
        return [s for s in order if s in reached and self.steps[s].status is Status.PENDING]

    def apply(self, event: Event) -> None:
        """Fold one more event into the state."""
        with self._lock:
            handler = _HANDLERS.get(event.kind)
            if handler:
                handler(self, event)
            if self._records is not None and event.kind in RECORD_KINDS:
                self._records.apply(event)
            if self.exercise:
                self.exercise.apply(event)
            self.last_seq, self.last_at, self.head = event.seq, event.recorded_at, event.hash


@dataclass
class Records:
    """What grows with every event: evidence, notes, runs and calls made, each folded from its
    own event."""

    evidence: list[Evidence] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    runs: dict[int, RunState] = field(default_factory=dict)
    attempts: dict[str, list[Attempt]] = field(default_factory=dict)  # role -> calls made
    _notes_by_seq: dict[int, Note] = field(default_factory=dict, repr=False)

    def apply(self, event: Event) -> None:
        kind = event.kind
        if kind == kinds.CONTACT_ATTEMPTED:
            self.attempts.setdefault(event.data["role"], []).append(attempt_of(event))
        elif kind in (kinds.COMMAND_RAN, kinds.FILE_FETCHED):
            self.evidence.append(evidence_of(event))
        elif kind == kinds.NOTE_ADDED:
            note = note_of(event)
            self.notes.append(note)
            self._notes_by_seq[note.seq] = note
        elif kind == kinds.EVENT_CORRECTED:
            corrected = self._notes_by_seq.get(event.data["corrects"])
            if corrected is not None:
                correct_note(corrected, event)
        elif kind == kinds.RUN_STARTED:
            self.runs[event.seq] = run_of(event)
        elif kind == kinds.RUN_FINISHED:
            run = self.runs.get(event.data.get("run", -1))
            if run is not None:
                finish_run(run, event)


# after < seq <= upto, RECORD_KINDS only, in the journal's order
RecordReader = Callable[[int, int], Iterable[Event]]

RECORD_KINDS = frozenset(
    {
        kinds.CONTACT_ATTEMPTED,
        kinds.COMMAND_RAN,
        kinds.FILE_FETCHED,
        kinds.NOTE_ADDED,
        kinds.EVENT_CORRECTED,
        kinds.RUN_STARTED,
        kinds.RUN_FINISHED,
    }
)


# -- one record from one event, as the fold makes it (exports stream them the same way) ------


def attempt_of(event: Event) -> Attempt:
    data = event.data
    return Attempt(
        event.seq,
        event.occurred_at,
        event.actor,
        data["person"],
        data.get("method"),
        Outcome(data["outcome"]),
    )


def note_of(event: Event) -> Note:
    return Note(event.seq, event.occurred_at, event.recorded_at, event.actor, event.data["text"])


def correct_note(note: Note, event: Event) -> None:
    """`event` (event.corrected) corrects `note`: its text or time as the correction gives."""
    note.corrected_by = event.seq
    replacement = event.data.get("replacement", {})
    note.text = replacement.get("text", note.text)
    note.at = replacement.get("occurred_at", note.at)


def action_item_of(event: Event) -> ActionItem:
    data = event.data
    return ActionItem(
        event.seq, event.occurred_at, event.actor, data["text"], data["owner"], data.get("due")
    )


def run_of(event: Event) -> RunState:
    data = event.data
    return RunState(
        event.seq,
        event.step or "",
        data.get("purpose", ""),
        list(data.get("hosts", [])),
        event.actor,
        event.occurred_at,
        data.get("pid"),
        data.get("machine"),
        ad_hoc=bool(data.get("ad_hoc")),
        command=data.get("command"),
        shell=data.get("shell"),
        rollback=data.get("rollback"),
        irreversible=data.get("irreversible"),
    )


def finish_run(run: RunState, event: Event) -> None:
    """`event` (run.finished) ends `run`."""
    run.finished = True
    run.interrupted = bool(event.data.get("interrupted"))
    run.failed = sorted(event.data.get("failed", {}))


def evidence_of(event: Event) -> Evidence:
    """One command.ran or file.fetched as the evidence it records."""
    data = event.data
    files = {name: data[name] for name in ("stdout", "stderr", "file") if data.get(name)}
    return Evidence(
        event.seq,
        event.occurred_at,
        event.actor,
        event.step,
        event.host or "",
        data["purpose"],
        data.get("item"),
        data.get("command") or data.get("path", ""),
        data.get("identity"),
        data.get("exit_status"),
        files,
        data.get("failure"),
        data.get("run"),
        bool(data.get("interrupted")),
        bool(data.get("ad_hoc")),
        data.get("variant"),
    )


def _finish(state: IncidentState, event: Event, status: Status) -> None:
    step = state.steps[event.step or ""]
    step.status, step.by, step.at = status, event.actor, event.occurred_at
    step.note = event.data.get("note", "")
    step.checklist = list(event.data.get("checklist", []))
    step.reason = event.data.get("reason")
    step.option = event.data.get("option")
    step.answers = {**step.answers, **event.data.get("answers", {})}
    step.rotations = {
        item: (bool(said.get("rotated")), str(said.get("note", "")))
        for item, said in event.data.get("rotations", {}).items()
    }


def _action_item(state: IncidentState, event: Event) -> None:
    state.action_items.append(action_item_of(event))


def _corrected(state: IncidentState, event: Event) -> None:
    state.corrections.setdefault(event.data["corrects"], []).append(event.seq)


def _contact(state: IncidentState, event: Event) -> None:
    data = event.data
    tree = state.calls.setdefault(data["role"], CallTree(data["role"], []))
    tree.last, tree.tried = attempt_of(event), tree.tried + 1
    outcome = tree.last.outcome
    if outcome is Outcome.REACHED:
        tree.reached = data["person"]
    elif outcome is Outcome.NO_ANSWER and data["person"] in tree.order:
        tree.position = max(tree.position, tree.order.index(data["person"]) + 1)


def _escalated(state: IncidentState, event: Event) -> None:
    tree = state.calls.get(event.data["role"])
    if tree and event.data["from"] in tree.order:
        tree.position = max(tree.position, tree.order.index(event.data["from"]) + 1)


def _meeting_opened(state: IncidentState, event: Event) -> None:
    state.meeting = event.step


def _meeting_closed(state: IncidentState, event: Event) -> None:
    state.meeting = None
    if event.data.get("reconvene_at"):
        state.reconvene_at = event.data["reconvene_at"]


def _reconvene(state: IncidentState, event: Event) -> None:
    state.reconvene_at = event.data["at"]


def _requested(state: IncidentState, event: Event) -> None:
    state.actions[event.step or ""] = ActionState(
        event.actor, event.seq, event.data.get("reason", "")
    )


def _approved(state: IncidentState, event: Event) -> None:
    state.actions[event.step or ""].approvals.append(event.actor)


def _rolled_back(state: IncidentState, event: Event) -> None:
    if event.step in state.actions:
        state.actions[event.step].rolled_back = True
    state.applied.pop(event.step or "", None)
    step = state.steps.get(event.step or "")
    if step is not None:
        step.status, step.by, step.at = Status.ROLLED_BACK, event.actor, event.occurred_at
        step.note = event.data.get("note", "")


def _run_started(state: IncidentState, event: Event) -> None:
    state.open_runs[event.seq] = run_of(event)


def _run_finished(state: IncidentState, event: Event) -> None:
    """A run that ended cleanly leaves the open runs, and so do the interrupted runs of its
    step before it (run again, to the end); an interrupted one stays, unless a later run of
    its step already ended cleanly. An ad-hoc run is never counted as run again."""
    seq = event.data.get("run", -1)
    run = state.open_runs.get(seq)
    if run is None:
        return
    finish_run(run, event)
    key = (run.step, run.purpose)
    if not run.interrupted:
        del state.open_runs[seq]
        state.clean_runs[key] = max(state.clean_runs.get(key, 0), seq)
        if run.step:
            for other in [r for r in state.open_runs.values() if r.interrupted]:
                if (other.step, other.purpose) == key and other.seq < seq:
                    del state.open_runs[other.seq]
    elif run.step and state.clean_runs.get(key, 0) > seq:
        del state.open_runs[seq]


def _command_ran(state: IncidentState, event: Event) -> None:
    data, host = event.data, event.host or ""
    # An ad-hoc change is kept under its run ("ad-hoc-SEQ"), so close lists it while applied.
    step = event.step or f"{AD_HOC}-{data.get('undoes') or data.get('run')}"
    if data["purpose"] == "action":
        state.applied.setdefault(step, {})[host] = event.seq
        state.acted_on.add(step)
    elif data["purpose"] == "rollback" and data.get("exit_status") == 0:
        state.applied.get(step, {}).pop(host, None)
        if not state.applied.get(step):
            state.applied.pop(step, None)


def _handover(state: IncidentState, event: Event) -> None:
    state.commander = event.data["to"]


def _closed(state: IncidentState, event: Event) -> None:
    state.closed_at = event.occurred_at
    state.close_over = event.data.get("over") or None


_HANDLERS = {
    kinds.STEP_COMPLETED: lambda s, e: _finish(s, e, Status.DONE),
    kinds.DECISION_MADE: lambda s, e: _finish(s, e, Status.DONE),
    kinds.STEP_SKIPPED: lambda s, e: _finish(s, e, Status.SKIPPED),
    kinds.ACTION_ITEM_ASSIGNED: _action_item,
    kinds.EVENT_CORRECTED: _corrected,
    kinds.CONTACT_ATTEMPTED: _contact,
    kinds.CONTACT_ESCALATED: _escalated,
    kinds.MEETING_OPENED: _meeting_opened,
    kinds.MEETING_CLOSED: _meeting_closed,
    kinds.RECONVENE_SET: _reconvene,
    kinds.ACTION_REQUESTED: _requested,
    kinds.ACTION_APPROVED: _approved,
    kinds.ACTION_ROLLED_BACK: _rolled_back,
    kinds.COMMAND_HANDED_OVER: _handover,
    kinds.RUN_STARTED: _run_started,
    kinds.RUN_FINISHED: _run_finished,
    kinds.COMMAND_RAN: _command_ran,
    kinds.FILE_FETCHED: _command_ran,
    kinds.INCIDENT_CLOSED: _closed,
    **LEARNED,
}
