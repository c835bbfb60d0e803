"""The markdown post-mortem: what a team circulates after an incident (or an exercise).

Everything comes from the journal; nothing is summarised away. A broken chain is said first.
Evidence links are relative to the incident's directory (`evidence/<sha256>`), where the
files are, so the report can travel with the directory.
"""

from __future__ import annotations

from collections.abc import Iterator

from irtool.engine import kinds
from irtool.engine.state import IncidentState, Status
from irtool.engine.timeline import describe
from irtool.exercise.review import markdown as review_markdown
from irtool.exercise.review import review
from irtool.export.recorded import Recorded
from irtool.journal import Event
from irtool.model.steps import AgendaStep, PostmortemStep, RotateStep


def cell(text: object) -> str:
    """One table cell: pipes escaped, lines joined."""
    return " ".join(str(text if text is not None else "").replace("|", "\\|").split())


def _time(at: str | None) -> str:
    return (at or "").replace("T", " ").replace("Z", "")[:19] + (" UTC" if at else "")


def _evidence_links(event: Event) -> str:
    links = []
    for stream in ("stdout", "stderr", "file"):
        item = event.data.get(stream)
        if isinstance(item, dict) and item.get("sha256"):
            links.append(f"[{stream}](evidence/{item['sha256']})")
    return " ".join(links)


def _of(events: list[Event], *wanted: str) -> list[Event]:
    return [e for e in events if e.kind in wanted]


def sections(recorded: Recorded) -> Iterator[str]:
    state, events = recorded.state, recorded.events
    yield f"# Post-mortem: {state.title}\n"
    if state.mode == "exercise":
        yield "> **EXERCISE.** A tabletop exercise on simulated hosts: nothing here happened.\n"
    for line in recorded.broken():
        yield f"> **{line}.** What follows is as the journal reads now; it cannot be trusted.\n"
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
        yield review_markdown(review(state))
    yield from _timeline(events)
    yield from _journal(recorded)


def _incident(state: IncidentState) -> Iterator[str]:
    yield "## The incident\n"
    rows = [
        ("Incident", f"`{state.id}`"),
        ("Mode", state.mode.upper()),
        ("Runbook", f"{state.runbook.id} v{state.runbook.version} ({state.runbook.title})"),
        ("Runbook SHA-256", f"`{state.runbook_sha256}`"),
        ("Opened", f"{_time(state.opened_at)} by {state.opened_by}"),
        ("Closed", _time(state.closed_at) if state.closed_at else "still open"),
        ("Incident commander", state.commander),
    ]
    rows += [(f"Parameter `{k}`", str(v)) for k, v in state.parameters.items() if v]
    yield "| | |\n|---|---|\n" + "".join(f"| {a} | {cell(b)} |\n" for a, b in rows)


def _summary(state: IncidentState, events: list[Event]) -> Iterator[str]:
    yield "## Summary and impact\n"
    closing = _of(events, kinds.INCIDENT_CLOSED)
    summary = closing[-1].data.get("summary", "") if closing else ""
    yield (summary or "No summary was written when the incident was closed.") + "\n"
    skipped = [s for s in state.steps.values() if s.status is Status.SKIPPED]
    done = sum(s.status is Status.DONE for s in state.steps.values())
    yield (
        f"{done} step(s) done, {len(skipped)} skipped, "
        f"{len(state.steps) - done - len(skipped)} not reached or still open.\n"
    )


def _people(state: IncidentState, events: list[Event]) -> Iterator[str]:
    yield "## Responders, roles and command\n"
    actors = sorted({e.actor for e in events})
    yield f"Responders who wrote to the timeline: {', '.join(actors)}.\n"
    yield "| Role | Reached | Attempts |\n|---|---|---|\n" + "".join(
        f"| {role} | {tree.reached or '**not reached**'} | "
        + cell(
            "; ".join(
                f"{_time(a.at)} {a.person}: {a.outcome.value}"
                + (f" ({a.method})" if a.method else "")
                for a in tree.attempts
            )
            or "none"
        )
        + " |\n"
        for role, tree in state.calls.items()
    )
    handovers = _of(events, kinds.COMMAND_HANDED_OVER)
    yield (
        "Command: "
        + (
            "; ".join(
                f"{_time(e.occurred_at)} {e.data.get('from')} handed over to {e.data.get('to')}"
                for e in handovers
            )
            or f"{state.opened_by} kept incident command throughout."
        )
        + "\n"
    )


def _agenda(state: IncidentState, events: list[Event]) -> Iterator[str]:
    yield "## The standing agenda\n"
    meetings = _of(events, kinds.MEETING_CLOSED)
    reconvenes = _of(events, kinds.RECONVENE_SET)
    if not meetings and not reconvenes:
        yield "No meeting was recorded.\n"
        return
    for meeting in meetings:
        spec = state.runbook.step(meeting.step or "")
        titles = {t.id: t.title for t in spec.topics} if isinstance(spec, AgendaStep) else {}
        yield f"### {_time(meeting.occurred_at)}, {cell(spec.title if spec else meeting.step)}\n"
        outcomes = meeting.data.get("outcomes", {})
        order = [t for t in titles if t in outcomes] + [t for t in outcomes if t not in titles]
        yield (
            "".join(f"- **{titles.get(t, t)}**: {cell(outcomes[t])}\n" for t in order)
            or "No outcome was written down.\n"
        )
        if meeting.data.get("reconvene_at"):
            yield f"Reconvene at {_time(meeting.data['reconvene_at'])}.\n"
    for event in reconvenes:
        yield f"- Reconvene set for {_time(event.data.get('at'))} by {event.actor}.\n"


def _decisions(state: IncidentState, events: list[Event]) -> Iterator[str]:
    yield "## Decisions\n"
    made = _of(events, kinds.DECISION_MADE)
    if not made:
        yield "None.\n"
        return
    yield "| When | Question | Answer | By | Why |\n|---|---|---|---|---|\n"
    for e in made:
        spec = state.runbook.step(e.step or "")
        question = getattr(spec, "question", e.step)
        yield (
            f"| {_time(e.occurred_at)} | {cell(question)} | {cell(e.data.get('label'))} "
            f"| {e.actor} | {cell(e.data.get('note'))} |\n"
        )


def _containment(state: IncidentState, events: list[Event]) -> Iterator[str]:
    yield "## Containment applied and rolled back\n"
    relevant = [
        e
        for e in events
        if e.kind in (kinds.ACTION_REQUESTED, kinds.ACTION_APPROVED, kinds.ACTION_ROLLED_BACK)
        or (e.kind == kinds.COMMAND_RAN and e.data.get("purpose") in ("action", "rollback"))
    ]
    if not relevant:
        yield "None.\n"
        return
    yield "| When | Action | Host | What | By |\n|---|---|---|---|---|\n"
    for e in relevant:
        yield (
            f"| [{_time(e.occurred_at)}](#event-{e.seq}) | {e.step} | {e.host or ''} "
            f"| {cell(describe(e))} | {e.actor} |\n"
        )


def _rotation(state: IncidentState) -> Iterator[str]:
    yield "## Credentials rotated\n"
    lines = []
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
            for item in spec.items:
                lines.append(
                    f"| {cell(item.title)} | {item.kind} | {item.method} | {cell(status)} |\n"
                )
    if not lines:
        yield "The runbook rotates no credential.\n"
        return
    yield "Which credentials, when and by whom; never a secret.\n"
    yield "| Credential | Kind | How | Done |\n|---|---|---|---|\n" + "".join(lines)


def _evidence(state: IncidentState) -> Iterator[str]:
    yield "## Evidence manifest\n"
    if not state.evidence:
        yield "No evidence was collected.\n"
        return
    yield (
        "Files are under the incident's `evidence/` directory, named by their SHA-256.\n\n"
        "| Event | Host | Step / item | Purpose | Exit | File | Bytes | SHA-256 | By |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
    )
    for e in state.evidence:
        for stream, item in e.files.items():
            what = f"{e.step or ''} / {e.item or e.command}" if e.step else e.command
            yield (
                f"| [{e.seq}](#event-{e.seq}) | {e.host} | {cell(what)} | {e.purpose} "
                f"| {e.exit_status if e.exit_status is not None else cell(e.failure or '–')} "
                f"| {stream} | {item.get('size', 0)} "
                f"| [`{item.get('sha256', '')}`](evidence/{item.get('sha256', '')}) | {e.by} |\n"
            )


def _postmortem(state: IncidentState) -> Iterator[str]:
    yield "## Lessons learned\n"
    found = False
    for _, spec in state.runbook.steps():
        if isinstance(spec, PostmortemStep):
            found = True
            step = state.steps[spec.id]
            yield "".join(f"- {cell(q)}\n" for q in spec.questions)
            answer = step.note if step.status is Status.DONE else ""
            yield f"\nThe team's answers: {cell(answer) or 'not yet written'}.\n"
    if not found:
        yield "The runbook has no post-mortem step.\n"
    notes = [n for n in state.notes if n.text.lower().startswith(("action:", "action item:"))]
    yield "### Action items\n"
    yield (
        "".join(f"- {cell(n.text.split(':', 1)[1])} ({n.by}, {_time(n.at)})\n" for n in notes)
        or "None recorded (a note starting with `action:` is one).\n"
    )


def _timeline(events: list[Event]) -> Iterator[str]:
    yield "## Timeline (UTC)\n"
    yield (
        "| # | Occurred | Recorded | Actor | Step | Host | What | Evidence |\n"
        "|---|---|---|---|---|---|---|---|\n"
    )
    for e in events:
        recorded = "" if e.recorded_at == e.occurred_at else _time(e.recorded_at)
        yield (
            f'| <a id="event-{e.seq}"></a>{e.seq} | {_time(e.occurred_at)} | {recorded} '
            f"| {e.actor} | {e.step or ''} | {e.host or ''} | {cell(describe(e))} "
            f"| {_evidence_links(e)} |\n"
        )


def _journal(recorded: Recorded) -> Iterator[str]:
    v = recorded.verification
    yield "## The journal\n"
    yield f"Head hash: `{v.head}` after {v.count} event(s).\n"
    if recorded.intact:
        yield (
            f"Verified: the hash chain is intact and all {recorded.evidence_files} evidence "
            "file(s) match their SHA-256.\n"
        )
    else:
        yield "".join(f"- **{line}**\n" for line in recorded.broken())


def _same_block(before: str, block: str) -> bool:
    """Rows of one table, or items of one list, follow each other without a blank line."""
    return any(before.startswith(mark) and block.startswith(mark) for mark in ("|", "- "))


def as_markdown(recorded: Recorded) -> str:
    out: list[str] = []
    for block in sections(recorded):
        if out and not _same_block(out[-1], block):
            out.append("\n")
        out.append(block)
    return "".join(out)
