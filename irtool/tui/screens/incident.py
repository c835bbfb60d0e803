"""The incident screen: where the incident stands, what to do next, and every command by key.

It holds the session the UI reads and writes through. The journal is polled
every second, so a note a scribe adds with `irtool incident note` from another
terminal shows within seconds; each command writes one event and redraws.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static

from irtool.engine import kinds
from irtool.engine.runner import Runner
from irtool.engine.session import IncidentSession, Refused
from irtool.engine.state import IncidentState, Status
from irtool.engine.timeline import describe
from irtool.evidence.store import EvidenceStore
from irtool.exercise import director
from irtool.journal import Event, Journal
from irtool.journal.incidents import EVIDENCE_DIR, incident_dir
from irtool.model.plan import PlanError, PlanRow, build_plan
from irtool.model.steps import ActionStep, AgendaStep, CollectStep, DecisionStep, PostmortemStep
from irtool.model.untrusted import visible
from irtool.tui.guard import guarded
from irtool.tui.screens import minutes
from irtool.tui.screens.confirm import ConfirmAction, Confirmed
from irtool.tui.screens.prompts import (
    Choice,
    ChoicePrompt,
    CompletePrompt,
    Completion,
    NoteEntry,
    NotePrompt,
    TextPrompt,
)
from irtool.tui.screens.prompts import (
    Text as Typed,
)
from irtool.tui.screens.run import RunRequest, RunScreen, Transports
from irtool.tui.widgets.detail import StepDetail
from irtool.tui.widgets.header import IncidentHeader
from irtool.tui.widgets.steps import StepList

if TYPE_CHECKING:
    from irtool.tui.screens.timeline import TimelineScreen

POLL_S = 1.0
RECENT = 5


def plan_by_step(session: IncidentSession) -> tuple[dict[str, dict[str, list[PlanRow]]], str]:
    """step -> host -> the exact commands, rendered once (parameters are fixed at opening),
    and what keeps the plan from being made, if anything."""
    state = session.state
    try:
        rows = build_plan(state.runbook, state.parameters, state.inventory)
    except PlanError as bad:
        return {}, "; ".join(bad.messages)
    plan: dict[str, dict[str, list[PlanRow]]] = {}
    for row in rows:
        if row.host and row.command is not None:
            plan.setdefault(row.step, {}).setdefault(row.host, []).append(row)
    return plan, ""


class RecentEvents(Static):
    """The latest events, newest last: the room's shared memory at a glance."""

    DEFAULT_CSS = """
    RecentEvents { height: 6; border-top: solid $panel-lighten-2; padding: 0 1;
        text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def show(self, events: list[Event]) -> None:
        lines = []
        for event in events[-RECENT:]:
            line = Text.assemble(
                (visible(event.occurred_at[11:19]), "dim"),
                " ",
                (visible(event.actor), "bold"),
                " ",
                visible(f"[{'@'.join(p for p in (event.step, event.host) if p)}] ")
                if event.step
                else "",
                visible(describe(event)),
                no_wrap=True,
                overflow="ellipsis",
            )
            lines.append(line)
        self.update(Text("\n", no_wrap=True, overflow="ellipsis").join(lines))


class IncidentScreen(Screen[None]):
    BINDINGS = [
        Binding("c", "complete", "Done", id="incident.complete", tooltip="Mark the step done"),
        Binding("d", "decide", "Decide", id="incident.decide", tooltip="Answer the decision"),
        Binding("r", "run", "Run", id="incident.run", tooltip="Run or apply on its hosts"),
        Binding("a", "approve", "Approve", id="incident.approve", tooltip="Approve an action"),
        Binding("b", "rollback", "Roll back", id="incident.rollback", tooltip="Undo an action"),
        Binding("s", "skip", "Skip", id="incident.skip", tooltip="Skip the step, with a reason"),
        Binding("n", "note", "Note", id="incident.note", tooltip="Add a note to the timeline"),
        Binding("p", "call_tree", "Call tree", id="incident.calltree", tooltip="Who to call"),
        Binding("e", "evidence", "Evidence", id="incident.evidence", tooltip="Evidence kept"),
        Binding("t", "timeline", "Timeline", id="incident.timeline", tooltip="Every event"),
        Binding(
            "f",
            "facilitate",
            "Facilitator",
            id="incident.facilitate",
            tooltip="Exercise: the clock, injects, observations, the review",
        ),
        # Rarer commands: in the command palette and on their keys, not in an 80-column footer.
        Binding(
            "g",
            "reconvene",
            "Reconvene",
            id="incident.reconvene",
            show=False,
            tooltip="Set the time to reconvene",
        ),
        Binding(
            "m",
            "meeting",
            "Meeting",
            id="incident.meeting",
            show=False,
            tooltip="Open the agenda step's meeting; again, adjourn it with its outcomes",
        ),
        Binding(
            "i",
            "action_item",
            "Action item",
            id="incident.action_item",
            show=False,
            tooltip="Record an action item with its owner",
        ),
        Binding(
            "h",
            "handover",
            "Hand over",
            id="incident.handover",
            show=False,
            tooltip="Hand over incident command",
        ),
        Binding(
            "X",
            "close_incident",
            "Close",
            id="incident.close",
            show=False,
            tooltip="Close the incident",
        ),
    ]
    DEFAULT_CSS = """
    IncidentScreen #body { height: 1fr; }
    IncidentScreen StepList { border-right: solid $panel-lighten-2; }
    """

    def __init__(
        self,
        session: IncidentSession,
        actor: str,
        transports: Transports,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__()
        self.session, self.actor, self.transports = session, actor, transports
        self.clock = clock or (lambda: datetime.now(UTC))
        self.plan, self.plan_problem = plan_by_step(session)
        self.recent: list[Event] = []
        self.events: list[Event] | None = None  # every event, read when the timeline is opened

    @property
    def state(self) -> IncidentState:
        return self.session.state

    def compose(self) -> ComposeResult:
        yield IncidentHeader()
        with Horizontal(id="body"):
            yield StepList(id="steps")
            yield StepDetail(id="detail")
        yield RecentEvents()
        yield Footer()

    def on_mount(self) -> None:
        self.recent = list(self.session.journal.events(after=max(0, self.state.last_seq - RECENT)))
        self.redraw()
        self.query_one(StepList).focus()
        self.set_interval(1.0, self.tick_clock)
        self.set_interval(POLL_S, self.poll)
        exercise = self.state.exercise
        if exercise and exercise.scenario.briefing and self.state.last_seq == 1:
            from irtool.tui.screens.facilitator import briefing

            self.app.push_screen(briefing(exercise))  # a new exercise starts with its briefing

    # -- drawing -------------------------------------------------------------------

    def redraw(self) -> None:
        self.query_one(StepList).show(self.state)
        self.show_detail()
        self.tick_clock()
        self.query_one(RecentEvents).show(self.recent)
        self.refresh_bindings()

    def show_detail(self) -> None:
        step = self.selected
        if step:
            detail = self.query_one(StepDetail)
            detail.show(self.state, step, self.plan.get(step, {}), self.plan_problem)

    def tick_clock(self) -> None:
        self.query_one(IncidentHeader).show(self.state, self.clock())

    def poll(self) -> None:
        """Fold in what others wrote (a scribe's note, a run from another terminal); in an
        exercise, fire the injects now due."""
        before = self.state.last_seq
        with guarded(self.app):
            self.session.refresh()
            if self.state.exercise and not self.state.closed:
                director.tick(self.session, self.actor, self.clock())
        self.absorb(list(self.session.journal.events(after=before)))

    def absorb(self, events: list[Event]) -> None:
        if not events:
            return
        for event in events:
            if event.kind == kinds.INJECT_FIRED:  # whoever fired it: every screen hears it
                # The facilitator's words: line breaks kept, never read as markup.
                self.app.notify(
                    visible(str(event.data.get("detail") or event.data["title"]), lines=True),
                    title=visible(f"INJECT for {event.data['to']}: {event.data['title']}"),
                    severity="warning",
                    timeout=30,
                    markup=False,
                )
        self.recent = (self.recent + events)[-RECENT:]
        if self.events is not None:
            self.events.extend(events)
        self.redraw()
        for screen in self.app.screen_stack:
            if screen is self or not hasattr(screen, "extend"):
                continue
            if self.events is None and type(screen).__name__ == "TimelineScreen":
                continue  # still reading the journal for it: `timeline_read` brings these too
            screen.extend(events)

    def write(self, command: Callable[[IncidentSession], Event]) -> None:
        """One engine command: refused or failed, it becomes a notification; done, it shows."""
        before = self.state.last_seq
        step = self.selected
        with guarded(self.app):
            command(self.session)
        if step and self.state.steps[step].status is not Status.PENDING:
            self.follow_on()
        self.absorb(list(self.session.journal.events(after=before)))

    def follow_on(self) -> None:
        """A step was finished here: move to what is next, as a responder would."""
        available = self.state.available()
        if available:
            steps = self.query_one(StepList)
            steps.show(self.state)
            steps.highlighted = steps.get_option_index(available[0])

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self.show_detail()
        self.refresh_bindings()

    @property
    def selected(self) -> str | None:
        return self.query_one(StepList).selected_step

    # -- what applies now ---------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        state = self.state
        if action == "facilitate":
            return state.exercise is not None
        if state.closed and action not in ("call_tree", "evidence", "timeline"):
            return False
        step = self.selected
        spec = state.runbook.step(step) if step else None
        pending = bool(step) and state.steps[step or ""].status is Status.PENDING
        match action:
            case "complete" | "skip":
                return pending and not isinstance(spec, DecisionStep)
            case "decide":
                return pending and isinstance(spec, DecisionStep)
            case "run":
                if isinstance(spec, CollectStep):
                    return state.steps[spec.id].status is not Status.SKIPPED
                return pending and isinstance(spec, ActionStep)
            case "approve":
                action_state = state.actions.get(step or "")
                return bool(action_state and not action_state.rolled_back and pending)
            case "rollback":
                return isinstance(spec, ActionStep) and bool(state.applied.get(spec.id))
            case "meeting":
                return state.meeting is not None or isinstance(spec, AgendaStep)
        return True

    # -- commands -------------------------------------------------------------------------

    def action_complete(self) -> None:
        step = self.selected
        if not step:
            return
        spec = self.state.runbook.step(step)
        if isinstance(spec, PostmortemStep):
            minutes.answer_postmortem(self, spec)
            return
        checklist = list(getattr(self.state.runbook.step(step), "checklist", []))

        def done(result: Completion | None) -> None:
            if result:
                self.write(lambda s: s.complete(step, self.actor, result.note, result.checklist))

        self.app.push_screen(
            CompletePrompt(f"Done: {self.state.steps[step].title}", checklist), done
        )

    def action_skip(self) -> None:
        step = self.selected
        if not step:
            return

        def skipped(result: Typed | None) -> None:
            if result:
                self.write(lambda s: s.skip(step, self.actor, result.text))

        self.app.push_screen(
            TextPrompt(f"Skip: {self.state.steps[step].title}", "Reason:", ok="Skip"), skipped
        )

    def action_decide(self) -> None:
        step = self.selected
        spec = self.state.runbook.step(step or "")
        if not isinstance(spec, DecisionStep):
            return

        def decided(result: Choice | None) -> None:
            if result:
                self.write(lambda s: s.decide(spec.id, result.option, self.actor, result.note))

        options = [(o.id, o.label) for o in spec.options]
        self.app.push_screen(ChoicePrompt(spec.title, spec.question, options), decided)

    def action_meeting(self) -> None:
        minutes.meeting(self)

    def action_action_item(self) -> None:
        minutes.action_item(self)

    def action_note(self) -> None:
        def noted(result: NoteEntry | None) -> None:
            if result:
                self.write(lambda s: s.note(result.text, self.actor, result.at))

        self.app.push_screen(NotePrompt("Note for the timeline", ok="Add"), noted)

    def action_handover(self) -> None:
        def handed(result: Typed | None) -> None:
            if result:
                self.write(lambda s: s.handover(result.text, self.actor))

        self.app.push_screen(
            TextPrompt(
                f"Hand over incident command (now {self.state.commander})",
                "To:",
                ok="Hand over",
            ),
            handed,
        )

    def action_reconvene(self) -> None:
        def chosen(result: Typed | None) -> None:
            if not result:
                return
            try:
                minutes = float(result.text)
            except ValueError:
                self.app.notify(f"'{result.text}' is not a number of minutes", severity="error")
                return
            at = self.clock() + timedelta(minutes=minutes)
            self.write(lambda s: s.set_reconvene(at, self.actor))

        self.app.push_screen(TextPrompt("Time to reconvene", "In how many minutes:"), chosen)

    def action_close_incident(self) -> None:
        def closed(result: Typed | None) -> None:
            if result:
                self.write(lambda s: s.close(self.actor, result.text))

        open_steps = [s for s in self.state.available()]
        warning = f" ({len(open_steps)} step(s) still open)" if open_steps else ""
        self.app.push_screen(
            TextPrompt(f"Close the incident{warning}", "Summary:", ok="Close incident"), closed
        )

    def action_approve(self) -> None:
        step = self.selected
        if step:
            self.write(lambda s: s.approve(step, self.actor))

    # -- runs ---------------------------------------------------------------------------

    def _runner(self) -> Runner:
        store = EvidenceStore(incident_dir(self.state.id) / EVIDENCE_DIR, create=True)
        return Runner(self.session, {}, store, self.actor)

    def action_run(self) -> None:
        step = self.selected
        spec = self.state.runbook.step(step or "")
        with guarded(self.app):
            if isinstance(spec, CollectStep):
                per_host = self._runner().commands(spec.id)
                self.start_run(RunRequest(self.state.id, spec.id, spec.title, list(per_host)))
            elif isinstance(spec, ActionStep):
                self.confirm(spec, rollback=False)

    def action_rollback(self) -> None:
        spec = self.state.runbook.step(self.selected or "")
        if isinstance(spec, ActionStep):
            with guarded(self.app):
                self.confirm(spec, rollback=True)

    def confirm(self, spec: ActionStep, rollback: bool) -> None:
        if rollback:
            if spec.rollback is None:
                raise Refused(f"action '{spec.id}' is irreversible: {spec.irreversible}")
            hosts: list[str] | None = list(self.state.applied.get(spec.id, {}))
        else:
            hosts = None
        per_host = self._runner().commands(spec.id, hosts)

        def confirmed(result: Confirmed | None) -> None:
            if result is None:
                return
            with guarded(self.app):
                if not rollback:
                    self.authorise(spec, result)
                self.start_run(
                    RunRequest(
                        self.state.id, spec.id, spec.title, list(per_host), rollback, result.reason
                    )
                )

        self.app.push_screen(
            ConfirmAction(
                spec,
                per_host,
                rollback=rollback,
                actor=self.actor,
                action=lambda: self.state.actions.get(spec.id),
                exercise=self.state.exercise is not None,
            ),
            confirmed,
        )

    def authorise(self, spec: ActionStep, confirmed: Confirmed) -> None:
        """Record the two-person request and approval made at this keyboard."""
        if spec.approvals != 2:
            return
        action = self.state.actions.get(spec.id)
        if action is None or action.rolled_back:
            self.write(lambda s: s.request_action(spec.id, self.actor, confirmed.reason))
        if confirmed.approver:
            self.write(lambda s: s.approve(spec.id, confirmed.approver))
        action = self.state.actions.get(spec.id)
        if action is None or not action.approvals:
            raise Refused(f"action '{spec.id}' waits for a second responder's approval")

    def start_run(self, request: RunRequest) -> None:
        def finished(report: object) -> None:
            self.poll()

        self.app.push_screen(
            RunScreen(request, self.actor, self.transports, clock=self.clock), finished
        )

    # -- other screens ---------------------------------------------------------------------

    def action_call_tree(self) -> None:
        from irtool.tui.screens.calltree import CallTreeScreen

        self.app.push_screen(CallTreeScreen(self))

    def action_facilitate(self) -> None:
        from irtool.tui.screens.facilitator import FacilitatorScreen

        if self.state.exercise:
            self.app.push_screen(FacilitatorScreen(self))

    def action_evidence(self) -> None:
        from irtool.tui.screens.evidence import EvidenceScreen

        self.app.push_screen(EvidenceScreen(self.state))

    def action_timeline(self) -> None:
        from irtool.tui.screens.timeline import TimelineScreen

        screen = TimelineScreen(self.events or [], corrected=self.state.corrections)
        self.app.push_screen(screen)
        if self.events is None:
            # Tens of thousands of events take a while to read: not on the event loop.
            self.read_timeline(screen)

    @work(thread=True, exclusive=True, exit_on_error=False, group="timeline")
    def read_timeline(self, screen: TimelineScreen) -> None:
        journal = Journal(self.session.journal.path, self.state.id)
        try:
            read = list(journal.events())
        finally:
            journal.close()
        self.app.call_from_thread(self.timeline_read, screen, read)

    def timeline_read(self, screen: TimelineScreen, read: list[Event]) -> None:
        """Back on the event loop: what was read, plus what polls folded in meanwhile, up to
        exactly what the state holds, so no event is shown twice or missed."""
        last = self.state.last_seq
        since = read[-1].seq if read else 0
        self.events = [e for e in read if e.seq <= last] + [
            e for e in self.session.journal.events(after=since) if e.seq <= last
        ]
        screen.extend(self.events)
        screen.mark_corrected(self.state.corrections)
