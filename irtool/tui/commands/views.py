"""The screens over the incident: the call tree (p), the evidence (e), the whole timeline (t),
the findings (F), and in an exercise the facilitator's screen (f). Each is given the hub to
read and write through; none imports the incident screen."""

from __future__ import annotations

from irtool.journal import Event, Journal
from irtool.tui.commands.command import Command, Incident
from irtool.tui.screens.calltree import CallTreeScreen
from irtool.tui.screens.evidence import EvidenceScreen
from irtool.tui.screens.facilitator import FacilitatorScreen
from irtool.tui.screens.findings import FindingsScreen
from irtool.tui.screens.timeline import TimelineScreen


def call_tree(hub: Incident) -> None:
    hub.push(CallTreeScreen(hub))


def in_exercise(hub: Incident) -> bool | str:
    return hub.state.exercise is not None


def facilitate(hub: Incident) -> None:
    if hub.state.exercise:
        hub.push(FacilitatorScreen(hub))


def evidence(hub: Incident) -> None:
    hub.push(EvidenceScreen(hub.state, gather=hub.session.journal.gather_evidence))


def findings(hub: Incident) -> None:
    hub.push(FindingsScreen(hub))


def has_findings(hub: Incident) -> bool | str:
    return bool(hub.state.findings) or (
        f"no findings yet: run an analyze step (r), or irtool analyze {hub.state.id}"
    )


def timeline(hub: Incident) -> None:
    screen = TimelineScreen(hub.events or [], corrected=hub.state.corrections)
    hub.push(screen)
    if hub.events is not None:
        return
    path, incident = hub.session.journal.path, hub.state.id

    def read() -> None:
        # Tens of thousands of events take a while to read: not on the event loop.
        journal = Journal(path, incident)
        try:
            events = list(journal.events())
        finally:
            journal.close()
        hub.app.call_from_thread(timeline_read, hub, screen, events)

    hub.app.run_worker(read, thread=True, exclusive=True, exit_on_error=False, group="timeline")


def timeline_read(hub: Incident, screen: TimelineScreen, read: list[Event]) -> None:
    """Back on the event loop: what was read, plus what polls folded in meanwhile, up to
    exactly what the state holds, so no event is shown twice or missed."""
    last = hub.state.last_seq
    since = read[-1].seq if read else 0
    hub.events = [e for e in read if e.seq <= last] + [
        e for e in hub.session.journal.events(after=since) if e.seq <= last
    ]
    screen.extend(hub.events)
    screen.mark_corrected(hub.state.corrections)


def reading_timeline(hub: Incident, screen: object) -> bool:
    """The timeline screen still waiting for its first read: the read brings every event."""
    return hub.events is None and isinstance(screen, TimelineScreen)


# Reading what happened is never over: these stay once the incident is closed.
COMMANDS = [
    Command(
        "p",
        "call_tree",
        "Call tree",
        call_tree,
        tooltip="Who to call",
        id="calltree",
        after_close=True,
    ),
    Command("e", "evidence", "Evidence", evidence, tooltip="Evidence kept", after_close=True),
    Command("t", "timeline", "Timeline", timeline, tooltip="Every event", after_close=True),
    Command(
        "F",
        "findings",
        "Findings",
        findings,
        has_findings,
        "Findings of the hunts and rules",
        footer=False,
        after_close=True,
    ),
    Command(
        "f",
        "facilitate",
        "Facilitator",
        facilitate,
        in_exercise,
        "Exercise: the clock, injects, observations, the review",
        footer=False,  # in the key bar's first line: the footer has no room left at 80 columns
        after_close=True,
    ),
]
