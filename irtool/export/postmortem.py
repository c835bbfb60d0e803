"""The post-mortem: what a team circulates after an incident (or an exercise), as a document.

Everything comes from the journal; nothing is summarised away. A broken chain is said first.
Evidence links are relative to the incident's directory (`evidence/<sha256>`), where the
files are, so the report can travel with the directory.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from irtool.engine import kinds
from irtool.engine.state import IncidentState, Status
from irtool.engine.timeline import describe
from irtool.exercise.review import review
from irtool.export.after_action import after_action
from irtool.export.recorded import Recorded
from irtool.export.report import (
    TARGET,
    Block,
    Bullets,
    Callout,
    Code,
    Heading,
    Inline,
    Link,
    Para,
    Row,
    Span,
    Strong,
    Table,
    inline,
)
from irtool.journal import Event
from irtool.model.steps import AgendaStep, PostmortemStep, RotateStep


def _time(at: str | None) -> str:
    return (at or "").replace("T", " ").replace("Z", "")[:19] + (" UTC" if at else "")


def _or_empty(value: object) -> str:
    return "" if value is None else str(value)


def _event_link(seq: int, text: str) -> Link:
    return Link(text, f"#event-{seq}")


def _evidence_link(sha256: str, text: str | Code) -> Span:
    """A link to the evidence file; a value that is no SHA-256 (a tampered journal) is shown
    as it is, unlinked."""
    href = f"evidence/{sha256}"
    return Link(text, href) if TARGET.fullmatch(href) else text


def _evidence_links(event: Event) -> Inline:
    links: list[Span] = []
    for stream in ("stdout", "stderr", "file"):
        item = event.data.get(stream)
        if isinstance(item, dict) and item.get("sha256"):
            links += [" "] if links else []
            links.append(_evidence_link(item["sha256"], stream))
    return tuple(links)


def _of(events: list[Event], *wanted: str) -> list[Event]:
    return [e for e in events if e.kind in wanted]


def postmortem(recorded: Recorded) -> Iterator[Block]:
    state, events = recorded.state, recorded.events
    yield Heading(1, f"Post-mortem: {state.title}")
    if state.mode == "exercise":
        yield Callout(
            inline(
                Strong("EXERCISE."),
                " A tabletop exercise on simulated hosts: nothing here happened.",
            ),
            "exercise",
        )
    for line in recorded.broken():
        yield Callout(
            inline(
                Strong(f"{line}."),
                " What follows is as the journal reads now; it cannot be trusted.",
            ),
            "danger",
        )
    for gap in recorded.gaps:
        yield Callout(
            inline(Strong(f"{gap}."), " The journal does not yet say how this ended."), "danger"
        )
    yield from _incident(state)
    yield from _summary(state, events)
    yield from _people(state, events)
    yield from _agenda(state, events)
    yield from _decisions(state, events)
    yield from _containment(state, events)
    yield from _rotation(state)
    yield from _evidence(state)
    yield from _postmortem(state)
    if state.exercise is not None:
        yield from after_action(review(state))
    yield from _timeline(events)
    yield from _journal(recorded)


def _incident(state: IncidentState) -> Iterator[Block]:
    yield Heading(2, "The incident", "incident")
    rows: list[tuple[Inline, Inline]] = [
        (("Incident",), (Code(state.id),)),
        (("Mode",), (state.mode.upper(),)),
        (
            ("Runbook",),
            (f"{state.runbook.id} v{state.runbook.version} ({state.runbook.title})",),
        ),
        (("Runbook SHA-256",), (Code(state.runbook_sha256),)),
        (("Opened",), (f"{_time(state.opened_at)} by {state.opened_by}",)),
        (("Closed",), (_time(state.closed_at) if state.closed_at else "still open",)),
        (("Incident commander",), (state.commander,)),
    ]
    rows += [(("Parameter ", Code(k)), (str(v),)) for k, v in state.parameters.items() if v]
    yield Table(("", ""), [Row(r) for r in rows], "facts")


def _summary(state: IncidentState, events: list[Event]) -> Iterator[Block]:
    yield Heading(2, "Summary and impact", "summary")
    closing = _of(events, kinds.INCIDENT_CLOSED)
    summary = closing[-1].data.get("summary", "") if closing else ""
    yield Para((summary or "No summary was written when the incident was closed.",))
    skipped = [s for s in state.steps.values() if s.status is Status.SKIPPED]
    done = sum(s.status is Status.DONE for s in state.steps.values())
    undone = sum(s.status is Status.ROLLED_BACK for s in state.steps.values())
    rolled_back = f"{undone} rolled back, " if undone else ""
    yield Para(
        (
            f"{done} step(s) done, {rolled_back}{len(skipped)} skipped, "
            f"{len(state.steps) - done - undone - len(skipped)} not reached or still open.",
        )
    )


def _people(state: IncidentState, events: list[Event]) -> Iterator[Block]:
    yield Heading(2, "Responders, roles and command", "people")
    actors = sorted({e.actor for e in events})
    yield Para((f"Responders who wrote to the timeline: {', '.join(actors)}.",))
    yield Table(
        ("Role", "Reached", "Attempts"),
        [
            Row(
                (
                    (role,),
                    (tree.reached,) if tree.reached else (Strong("not reached"),),
                    (
                        "; ".join(
                            f"{_time(a.at)} {a.person}: {a.outcome.value}"
                            + (f" ({a.method})" if a.method else "")
                            for a in tree.attempts
                        )
                        or "none",
                    ),
                )
            )
            for role, tree in state.calls.items()
        ],
    )
    handovers = _of(events, kinds.COMMAND_HANDED_OVER)
    yield Para(
        (
            "Command: "
            + (
                "; ".join(
                    f"{_time(e.occurred_at)} {e.data.get('from')} handed over to {e.data.get('to')}"
                    for e in handovers
                )
                or f"{state.opened_by} kept incident command throughout."
            ),
        )
    )


def _agenda(state: IncidentState, events: list[Event]) -> Iterator[Block]:
    yield Heading(2, "The standing agenda", "agenda")
    meetings = _of(events, kinds.MEETING_CLOSED)
    reconvenes = _of(events, kinds.RECONVENE_SET)
    if not meetings and not reconvenes:
        yield Para(("No meeting was recorded.",))
        return
    for meeting in meetings:
        spec = state.runbook.step(meeting.step or "")
        titles = {t.id: t.title for t in spec.topics} if isinstance(spec, AgendaStep) else {}
        yield Heading(3, f"{_time(meeting.occurred_at)}, {spec.title if spec else meeting.step}")
        outcomes = meeting.data.get("outcomes", {})
        order = [t for t in titles if t in outcomes] + [t for t in outcomes if t not in titles]
        if order:
            yield Bullets(
                [(Strong(_or_empty(titles.get(t, t))), ": ", _or_empty(outcomes[t])) for t in order]
            )
        else:
            yield Para(("No outcome was written down.",))
        if meeting.data.get("reconvene_at"):
            yield Para((f"Reconvene at {_time(meeting.data['reconvene_at'])}.",))
    if reconvenes:
        yield Bullets(
            [(f"Reconvene set for {_time(e.data.get('at'))} by {e.actor}.",) for e in reconvenes]
        )


def _decisions(state: IncidentState, events: list[Event]) -> Iterator[Block]:
    yield Heading(2, "Decisions", "decisions")
    made = _of(events, kinds.DECISION_MADE)
    if not made:
        yield Para(("None.",))
        return
    rows = []
    for e in made:
        spec = state.runbook.step(e.step or "")
        question = getattr(spec, "question", e.step)
        rows.append(
            Row(
                (
                    (_time(e.occurred_at),),
                    (_or_empty(question),),
                    (_or_empty(e.data.get("label")),),
                    (e.actor,),
                    (_or_empty(e.data.get("note")),),
                )
            )
        )
    yield Table(("When", "Question", "Answer", "By", "Why"), rows)


def _containment(state: IncidentState, events: list[Event]) -> Iterator[Block]:
    yield Heading(2, "Containment applied and rolled back", "containment")
    relevant = [
        e
        for e in events
        if e.kind in (kinds.ACTION_REQUESTED, kinds.ACTION_APPROVED, kinds.ACTION_ROLLED_BACK)
        or (e.kind == kinds.COMMAND_RAN and e.data.get("purpose") in ("action", "rollback"))
    ]
    if not relevant:
        yield Para(("None.",))
        return
    yield Table(
        ("When", "Action", "Host", "What", "By"),
        [
            Row(
                (
                    (_event_link(e.seq, _time(e.occurred_at)),),
                    (_or_empty(e.step),),
                    (e.host or "",),
                    (describe(e),),
                    (e.actor,),
                )
            )
            for e in relevant
        ],
    )


def _rotation(state: IncidentState) -> Iterator[Block]:
    yield Heading(2, "Credentials rotated", "credentials")
    rows = []
    for _, spec in state.runbook.steps():
        if isinstance(spec, RotateStep):
            step = state.steps[spec.id]
            # Rotation is attested for the step as a whole: done, skipped (and why) or not yet.
            status = (
                f"{step.status.value} by {step.by} at {_time(step.at)}"
                + (f": {step.reason}" if step.reason else "")
                if step.status is not Status.PENDING
                else "not done"
            )
            rows += [
                Row(((item.title,), (item.kind,), (item.method,), (status,))) for item in spec.items
            ]
    if not rows:
        yield Para(("The runbook rotates no credential.",))
        return
    yield Para(("Which credentials, when and by whom; never a secret.",))
    yield Table(("Credential", "Kind", "How", "Done"), rows)


def _evidence(state: IncidentState) -> Iterator[Block]:
    yield Heading(2, "Evidence manifest", "evidence")
    if not state.evidence:
        yield Para(("No evidence was collected.",))
        return
    yield Para(
        (
            "Files are under the incident's ",
            Code("evidence/"),
            " directory, named by their SHA-256.",
        )
    )
    rows = []
    for e in state.evidence:
        what = f"{e.step or ''} / {e.item or e.command}" if e.step else e.command
        exit_status = str(e.exit_status) if e.exit_status is not None else e.failure or "–"
        for stream, item in e.files.items():
            sha256 = item.get("sha256") or ""  # none: nothing of the stream could be kept
            rows.append(
                Row(
                    (
                        (_event_link(e.seq, str(e.seq)),),
                        (e.host,),
                        (what,),
                        (e.purpose,),
                        (exit_status,),
                        (stream,),
                        (_kept(item),),
                        (_evidence_link(sha256, Code(sha256)),),
                        (e.by,),
                    )
                )
            )
    yield Table(
        ("Event", "Host", "Step / item", "Purpose", "Exit", "File", "Bytes", "SHA-256", "By"),
        rows,
        "evidence",
    )


def _kept(item: dict[str, Any]) -> str:
    """The bytes kept; a stream the disk could not take whole says so."""
    size = str(item.get("size", 0))
    if item.get("incomplete"):
        return f"{size} of {item.get('received')} (incomplete: {item.get('error')})"
    return size


def _postmortem(state: IncidentState) -> Iterator[Block]:
    yield Heading(2, "Lessons learned", "lessons")
    found = False
    for _, spec in state.runbook.steps():
        if isinstance(spec, PostmortemStep):
            found = True
            step = state.steps[spec.id]
            yield Table(
                ("#", "Question", "The team's answer"),
                [
                    Row(((str(n),), (q,), (step.answers[q],) if q in step.answers else ("–",)))
                    for n, q in enumerate(spec.questions, start=1)
                ],
                "lessons",
            )
            if step.status is Status.DONE:
                done = f"{spec.title}: done by {step.by} at {_time(step.at)}"
                yield Para((done + (f": {step.note}." if step.note else "."),))
            else:
                yield Para(
                    (
                        f"{spec.title}: {step.status.value}"
                        + (f" ({step.reason})." if step.reason else "."),
                    )
                )
    if not found:
        yield Para(("The runbook has no post-mortem step.",))
    yield Heading(3, "Action items")
    if not state.action_items:
        yield Para(("None recorded.",))
        return
    yield Table(
        ("Action item", "Owner", "Due", "Agreed"),
        [
            Row(
                (
                    (item.text,),
                    (item.owner,),
                    (item.due or "–",),
                    (_event_link(item.seq, f"{_time(item.at)} by {item.by}"),),
                )
            )
            for item in state.action_items
        ],
    )


def _timeline(events: list[Event]) -> Iterator[Block]:
    yield Heading(2, "Timeline (UTC)", "timeline")
    yield Table(
        ("#", "Occurred", "Recorded", "Actor", "Step", "Host", "What", "Evidence"),
        [
            Row(
                (
                    (str(e.seq),),
                    (_time(e.occurred_at),),
                    ("" if e.recorded_at == e.occurred_at else _time(e.recorded_at),),
                    (e.actor,),
                    (e.step or "",),
                    (e.host or "",),
                    (describe(e),),
                    _evidence_links(e),
                ),
                f"event-{e.seq}",
            )
            for e in events
        ],
        "timeline",
    )


def _journal(recorded: Recorded) -> Iterator[Block]:
    v = recorded.verification
    yield Heading(2, "The journal", "journal")
    yield Para(("Head hash: ", Code(v.head), f" after {v.count} event(s)."))
    if recorded.intact:
        yield Para(
            (
                f"Verified: the hash chain is intact and all {recorded.evidence_files} evidence "
                "file(s) match their SHA-256.",
            )
        )
    else:
        yield Bullets([(Strong(line),) for line in recorded.broken()])
