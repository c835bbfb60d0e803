"""The incident screen, the UI's hub: where the incident stands, what to do next, and every
command by key.

It holds the session the UI reads and writes through. The journal is polled every second,
so a note a scribe adds with `irtool incident note` from another terminal shows within
seconds; each command writes one event and redraws.

Adding a command
----------------
The commands live in modules under `irtool/tui/commands/`, one per group (steps, runs,
views, records, minutes, live...). To add one:

1. Write what its key does as a function of the hub (`Incident`, from
   `irtool.tui.commands.command`), in a new module or the group it belongs to. Read through
   `hub.state`; write through `hub.write(lambda s: s.some_command(...))` (a refusal becomes
   a notification); open a form with `hub.push(form, then)`:

       def handover(hub: Incident) -> None:
           def handed(result: Typed | None) -> None:
               if result:
                   hub.write(lambda s: s.handover(result.text, hub.actor))

           hub.push(TextPrompt("Hand over command", "To:"), handed)

2. List it in that module's `COMMANDS`: key, action name, label, the function, and when it
   applies (True; False; or a sentence saying why not, which its key then says). A rarer
   command takes `footer=False` and shows in the key bar; one that stays once the incident
   is closed, `after_close=True`:

       COMMANDS = [Command("h", "handover", "Hand over", handover, footer=False)]

3. Add the module to `GROUPS` below. The key, the footer or key bar, the command palette,
   the keymap id (`incident.<action>`), the `?` screen and the availability check follow;
   a key used twice stops the UI at import, naming it. A command on the selected step that
   should offer to start it ahead of the flow is named in `early.ON_STEP`.

Commands never import this module, and the screens they open are given the hub (the `Hub`
protocol of `irtool.tui.commands.hub`), so no screen imports another back in a circle.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from textual import events
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, OptionList

from irtool.engine import kinds
from irtool.engine.session import IncidentSession
from irtool.engine.state import IncidentState, Status
from irtool.exercise import director
from irtool.journal import Event
from irtool.journal.protocol import Watching
from irtool.model.plan import PlanError, PlanRow, build_plan
from irtool.model.steps import ActionStep
from irtool.model.untrusted import visible
from irtool.tui.commands import early, live, minutes, records, runs, steps, team, views
from irtool.tui.commands.command import Command
from irtool.tui.guard import guarded
from irtool.tui.screens.confirm import Confirmed
from irtool.tui.screens.run import RunRequest, Transports
from irtool.tui.widgets.detail import StepDetail
from irtool.tui.widgets.header import IncidentHeader
from irtool.tui.widgets.recent import RECENT, KeyBar, RecentEvents
from irtool.tui.widgets.steps import StepList

POLL_S = 1.0
# The events after which the plan's commands read differently: drawn again from the state.
# A host's facts choose the form of each command it gets.
PLAN_CHANGES = {
    kinds.PARAMETER_SET,
    kinds.IOC_ADDED,
    kinds.IOC_REMOVED,
    kinds.SCOPE_CHANGED,
    kinds.HOST_FACTS,
}

# The command groups, in the footer's order. A new group is one more module here.
GROUPS = (steps, runs, views, records, minutes, live, team)
COMMANDS: dict[str, Command] = {c.action: c for group in GROUPS for c in group.COMMANDS}


def _one_command_per_key() -> None:
    """Two commands on one key, or two under one name, would each hide the other."""
    keys: dict[str, str] = {}
    for group in GROUPS:
        for command in group.COMMANDS:
            taken = keys.setdefault(command.key, command.action)
            if taken != command.action or COMMANDS[command.action] is not command:
                raise RuntimeError(f"key {command.key} or name {command.action} used twice")


_one_command_per_key()


def plan_by_step(session: IncidentSession) -> tuple[dict[str, dict[str, list[PlanRow]]], str]:
    """step -> host -> the exact commands, and what keeps the plan from being made, if
    anything. Made again whenever a parameter or the scope changes."""
    state = session.state
    try:
        rows = build_plan(
            state.runbook,
            state.parameters,
            state.inventory,
            state.iocs,
            facts=state.host_facts(),
            incident=state.id,
        )
    except PlanError as bad:
        return {}, "; ".join(bad.messages)
    plan: dict[str, dict[str, list[PlanRow]]] = {}
    for row in rows:
        if row.host and (row.command is not None or row.unfit):
            plan.setdefault(row.step, {}).setdefault(row.host, []).append(row)
    return plan, ""


class IncidentScreen(Screen[None]):
    BINDINGS = [command.binding() for command in COMMANDS.values()]
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
        self.watching: Watching | None = None
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
        yield KeyBar()
        yield Footer()

    def on_mount(self) -> None:
        self.recent = list(self.session.journal.events(after=max(0, self.state.last_seq - RECENT)))
        self.redraw()
        self.query_one(StepList).focus()
        self.set_interval(1.0, self.tick_clock)
        self.set_interval(POLL_S, self.poll)
        # A team incident tells of others' events as they are committed (LISTEN/NOTIFY): they
        # show at once, not at the next poll. Its thread hands each to this screen's.
        self.watching = self.session.journal.watch(self.heard, self.linked)
        exercise = self.state.exercise
        if exercise and exercise.scenario.briefing and self.state.last_seq == 1:
            from irtool.tui.screens.facilitator import briefing

            self.push(briefing(exercise))  # a new exercise starts with its briefing

    # -- drawing -------------------------------------------------------------------

    def redraw(self) -> None:
        self.query_one(StepList).show(self.state)
        self.show_detail()
        self.tick_clock()
        self.query_one(RecentEvents).show(self.recent)
        self.refresh_bindings()
        self.redraw_keys()

    def show_detail(self) -> None:
        step = self.selected
        if step:
            detail = self.query_one(StepDetail)
            detail.show(self.state, step, self.plan.get(step, {}), self.plan_problem)

    def tick_clock(self) -> None:
        header = self.query_one(IncidentHeader)
        header.show(self.state, self.clock(), self.session.journal.connection)

    def on_unmount(self) -> None:
        if self.watching is not None:
            self.watching.stop()

    def heard(self, seq: int) -> None:
        """From the listener's thread: someone committed event `seq` (0: after a reconnect,
        read whatever came meanwhile)."""
        if seq == 0 or seq > self.state.last_seq:
            self.app.call_from_thread(self.poll)

    def linked(self, connected: bool, why: str) -> None:
        """From the listener's thread: the team's database came back, or went."""
        self.app.call_from_thread(self.relinked, connected, why)

    def sync_offline(self) -> None:
        """`irtool sync`, from here: the copy is made anew from the database (its offline
        chain kept beside it), so the session is opened again on it and the screen redrawn
        from what it now holds."""
        from irtool.engine.syncing import sync

        incident = self.state.id
        self.session.close_journal()
        try:
            with guarded(self.app):
                synced = sync(incident, self.actor)
                self.app.notify(
                    f"{len(synced.given)} event(s) written here offline are in the team's "
                    f"database; {len(synced.refused)} refused as conflicts (each now a note)",
                    title="Synced",
                )
        finally:
            self.session = IncidentSession.open(incident, records=False)
            self.session.journal.reconnect()
            self.plan, self.plan_problem = plan_by_step(self.session)
            self.recent = list(
                self.session.journal.events(after=max(0, self.state.last_seq - RECENT))
            )
            self.events = None  # the timeline reads the chain again when next opened
            self.redraw()

    def relinked(self, connected: bool, why: str) -> None:
        if connected:
            self.session.journal.reconnect()  # writes go to the database again, if they can
        else:
            self.poll()  # the journal finds the loss too: what is written now stays here
            self.app.notify(
                f"{why}. This screen goes on with this machine's copy.",
                title="Team database lost",
                severity="warning",
            )
        self.tick_clock()

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
            if event.kind in PLAN_CHANGES:
                self.plan, self.plan_problem = plan_by_step(self.session)
        self.recent = (self.recent + events)[-RECENT:]
        if self.events is not None:
            self.events.extend(events)
        self.redraw()
        for screen in self.app.screen_stack:
            if screen is self or not hasattr(screen, "extend"):
                continue
            if views.reading_timeline(self, screen):
                continue  # still reading the journal for it: the read brings these too
            screen.extend(events)

    def write(self, command: Callable[[IncidentSession], Event]) -> None:
        """One engine command: refused or failed, it becomes a notification; done, it shows."""
        before = self.state.last_seq
        step = self.selected
        was = self.state.steps[step].status if step else None
        with guarded(self.app):
            command(self.session)
        # Only what this command finished moves on: a note or a parameter written while a
        # done step is selected must leave the cursor (and the command to follow) on it.
        if step and was is Status.PENDING and self.state.steps[step].status is not Status.PENDING:
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
        self.redraw_keys()

    def redraw_keys(self) -> None:
        self.query_one(KeyBar).show(
            (c.key, c.label) for c in COMMANDS.values() if not c.footer and self.applies(c) is True
        )

    @property
    def selected(self) -> str | None:
        return self.query_one(StepList).selected_step

    # -- commands ------------------------------------------------------------------------

    def applies(self, command: Command) -> bool | str:
        if self.state.closed and not command.after_close:
            return False
        return command.applies(self)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        command = COMMANDS.get(action)
        return True if command is None else self.applies(command) is True

    def command(self, action: str) -> None:
        """A command's key (or its palette entry): run it, if it applies now."""
        if self.app.screen is not self:
            # A form or screen is over this one (or opening): a letter typed for it is not a
            # command here, however it got here.
            return
        command = COMMANDS[action]
        verdict = self.applies(command)
        if early.takes(self, action, verdict):
            # On a step the flow has not reached: started early first, with a reason (or
            # refused, for a strict step); before a run, the parameters it still needs.
            early.first(self, action, lambda: command.run(self))
        elif verdict is True:
            command.run(self)
        elif verdict:
            self.app.notify(verdict, severity="warning")

    def on_key(self, event: events.Key) -> None:
        """The key of a command hidden from the footer for a reason it can say (a step not
        reached yet) offers to start the step early, or says why not, once: without this it
        would do nothing at all."""
        if self.app.screen is not self:
            return
        keymap: dict[str, str] = getattr(self.app, "_keymap", {})
        for command in COMMANDS.values():
            keys = keymap.get(f"incident.{command.id or command.action}", command.key)
            if event.key in (k.strip() for k in keys.split(",")):
                verdict = self.applies(command)
                if isinstance(verdict, str) and verdict:
                    event.stop()
                    self.command(command.action)  # started early, or said why not
                return

    def push(self, screen: Screen[Any], then: Callable[[Any], None] | None = None) -> None:
        self.app.push_screen(screen, then)

    # What command modules outside the hub's groups call it for (the `Hub` protocol).

    def confirm(self, spec: ActionStep, rollback: bool, hosts: list[str] | None = None) -> None:
        runs.confirm(self, spec, rollback, hosts)

    def authorise(self, spec: Any, confirmed: Confirmed) -> None:
        runs.authorise(self, spec, confirmed)

    def start_run(self, request: RunRequest) -> None:
        runs.start_run(self, request)


def _action(name: str) -> Callable[[IncidentScreen], None]:
    def action(screen: IncidentScreen) -> None:
        screen.command(name)

    action.__doc__ = COMMANDS[name].tooltip or COMMANDS[name].label
    return action


# Each command is an `action_<name>` of the screen, as Textual's bindings and palette expect.
for _name in COMMANDS:
    setattr(IncidentScreen, f"action_{_name}", _action(_name))
