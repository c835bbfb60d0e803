"""The post-mortem: what a team circulates after an incident (or an exercise), as a document.

Everything comes from the journal; nothing is summarised away. A broken chain is said first.
Evidence links are relative to the incident's directory (`evidence/<sha256>`), where the
files are, so the report can travel with the directory.
"""

from __future__ import annotations

from collections.abc import Iterator

from irtool.engine import kinds
from irtool.engine.state import IncidentState, Status
from irtool.engine.timeline import describe
from irtool.exercise.review import review
from irtool.export.after_action import after_action
from irtool.export.changes import closing, unfolding
from irtool.export.links import event_link, evidence_links, moment, or_empty
from irtool.export.manifest import evidence, rotation
from irtool.export.recorded import Recorded
from irtool.export.report import (
    Block,
    Bullets,
    Callout,
    Code,
    Heading,
    Inline,
    Para,
    Row,
    Span,
    Strong,
    Table,
    inline,
)
from irtool.export.unfolded import Unfolded, in_time_order, unfold
from irtool.journal import Event
from irtool.model.params import value_text
from irtool.model.steps import AgendaStep, PostmortemStep

AFTER_CLOSE = "written after closing"


def _of(events: list[Event], *wanted: str) -> list[Event]:
    return [e for e in events if e.kind in wanted]


def postmortem(recorded: Recorded) -> Iterator[Block]:
    state, events = recorded.state, recorded.events
    found = unfold(events)
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
    yield from _incident(state, events, found)
    yield from _summary(state, found)
    yield from _people(state, events)
    yield from _hosts(events)
    yield from _findings(state)
    yield from _agenda(state, events)
    yield from _decisions(state, events)
    yield from unfolding(found)
    yield from _containment(events, found)
    yield from rotation(state, found)
    yield from evidence(state, found)
    yield from _postmortem(state, events, found)
    if state.exercise is not None:
        yield from after_action(review(state))
    yield from _timeline(events, found)
    yield from _journal(recorded)


def _incident(state: IncidentState, events: list[Event], found: Unfolded) -> Iterator[Block]:
    yield Heading(2, "The incident", "incident")
    rows: list[tuple[Inline, Inline]] = [
        (("Incident",), (Code(state.id),)),
        (("Mode",), (state.mode.upper(),)),
        (
            ("Runbook",),
            (f"{state.runbook.id} v{state.runbook.version} ({state.runbook.title})",),
        ),
        (("Runbook SHA-256",), (Code(state.runbook_sha256),)),
        (("Opened",), (f"{moment(state.opened_at)} by {state.opened_by}",)),
        (("Closed",), (_closed(state, found),)),
        (("Incident commander",), (state.commander,)),
    ]
    # The values at the end, from the opening and every amendment since (`parameter.set`).
    parameters = dict(events[0].data.get("parameters") or {}) if events else {}
    parameters |= {str(c.get("name")): c.get("value") for c in found.parameters}
    rows += [(("Parameter ", Code(k)), (value_text(v),)) for k, v in parameters.items() if v]
    yield Table(("", ""), [Row(r) for r in rows], "facts")


def _closed(state: IncidentState, found: Unfolded) -> str:
    if not state.closed_at or found.closed is None:
        return "still open"
    over = ", over open items (see the summary)" if found.closed.get("open_items") else ""
    return f"{moment(state.closed_at)} by {found.closed.by}{over}"


def _summary(state: IncidentState, found: Unfolded) -> Iterator[Block]:
    yield Heading(2, "Summary and impact", "summary")
    summary = found.closed.get("summary") if found.closed else ""
    yield Para((summary or "No summary was written when the incident was closed.",))
    yield from closing(found)
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
                            f"{moment(a.at)} {a.person}: {a.outcome.value}"
                            + (f" ({a.method})" if a.method else "")
                            for a in state.attempts(role)
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
                    f"{moment(e.occurred_at)} {e.data.get('from')} handed over to "
                    f"{e.data.get('to')}"
                    for e in handovers
                )
                or f"{state.opened_by} kept incident command throughout."
            ),
        )
    )


def _hosts(events: list[Event]) -> Iterator[Block]:
    """What each host said it is (the form of every command it got follows from it)."""
    said = _of(events, kinds.HOST_FACTS)
    if not said:
        return
    yield Heading(2, "Hosts as they said they are", "hosts")
    rows = []
    for e in said:
        how = str(e.data.get("source", "probe"))
        if e.data.get("inventory_said"):
            how += "; the inventory said otherwise"
        rows.append(
            Row(
                (
                    (Code(e.host or ""),),
                    (str(e.data.get("summary", "")),),
                    (how,),
                    (moment(e.occurred_at),),
                )
            )
        )
    yield Table(("Host", "What it is", "How it is known", "When"), rows)


def _findings(state: IncidentState) -> Iterator[Block]:
    """The findings the team confirmed, each with the lines it stands on; how many were
    raised and dismissed (the json export carries every one)."""
    if not state.findings:
        return
    yield Heading(2, "Findings", "findings")
    confirmed = [f for f in state.findings.values() if f.status == "confirmed"]
    dismissed = sum(f.status == "dismissed" for f in state.findings.values())
    yield Para(
        (
            f"{len(state.findings)} finding(s) raised by the hunts and Sigma rules: "
            f"{len(confirmed)} confirmed, {dismissed} dismissed, "
            f"{len(state.findings) - len(confirmed) - dismissed} not judged.",
        )
    )
    if state.analyses:
        logs = {sha for a in state.analyses for sha in a.evidence}
        last = state.analyses[-1]
        yield Para(
            (
                f"{len(state.analyses)} analysis run(s) read {len(logs)} log(s); the last, "
                f"at {moment(last.at)} by {last.actor}, ran {len(last.hunts)} hunt(s) and "
                f"{len(last.rules)} Sigma rule(s) over {last.requests} request(s) and "
                f"{last.events} event(s).",
            )
        )
        kept = sorted({h for a in state.analyses if a.captured for h in a.baselines})
        if kept:
            yield Para((f"Baselines kept (known good, at admission): {', '.join(kept)}.",))
        compared = [a for a in state.analyses if a.records_from and not a.captured]
        if compared:
            latest = compared[-1]
            against = [
                "with each other" if len(latest.records_from) >= 3 else "",
                f"with {len(latest.baselines)} baseline(s)" if latest.baselines else "",
                "web roots with the known-good manifest" if latest.manifest else "",
            ]
            said = ", ".join(a for a in against if a) or "nothing to compare with"
            yield Para(
                (
                    f"The records of {len(latest.records_from)} host(s) were compared: {said}.",
                    *((" Manifest: ", Code(latest.manifest), ".") if latest.manifest else ()),
                )
            )
        for reason in last.unconvertible:
            yield Para((f"Not run (could not be converted): {reason}",))
    rows = [
        Row(
            (
                (f.severity,),
                (Code(f.hunt),),
                (f.summary,),
                (f"{f.count} hit(s), {f.first_seen or '?'} .. {f.last_seen or '?'}",),
                ("; ".join(f"{r.get('source')}:{r.get('line')}" for r in f.refs[:5]),),
                tuple(Code(sha) for sha in dict.fromkeys(str(r.get("sha256")) for r in f.refs)),
                (f"{f.judged_by}: {f.reason}",),
            )
        )
        for f in confirmed
    ]
    if rows:
        yield Table(
            ("Severity", "Hunt", "Finding", "Requests", "Lines", "Evidence", "Confirmed"), rows
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
        yield Heading(3, f"{moment(meeting.occurred_at)}, {spec.title if spec else meeting.step}")
        outcomes = meeting.data.get("outcomes", {})
        order = [t for t in titles if t in outcomes] + [t for t in outcomes if t not in titles]
        if order:
            yield Bullets(
                [(Strong(or_empty(titles.get(t, t))), ": ", or_empty(outcomes[t])) for t in order]
            )
        else:
            yield Para(("No outcome was written down.",))
        if meeting.data.get("reconvene_at"):
            yield Para((f"Reconvene at {moment(meeting.data['reconvene_at'])}.",))
    if reconvenes:
        yield Bullets(
            [(f"Reconvene set for {moment(e.data.get('at'))} by {e.actor}.",) for e in reconvenes]
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
                    (moment(e.occurred_at),),
                    (or_empty(question),),
                    (or_empty(e.data.get("label")),),
                    (e.actor,),
                    (or_empty(e.data.get("note")),),
                )
            )
        )
    yield Table(("When", "Question", "Answer", "By", "Why"), rows)


def _containment(events: list[Event], found: Unfolded) -> Iterator[Block]:
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
                    (event_link(e.seq, moment(e.occurred_at)),),
                    (e.step or ("ad hoc" if e.seq in found.ad_hoc else ""),),
                    (e.host or "",),
                    (describe(e),),
                    (e.actor,),
                )
            )
            for e in relevant
        ],
    )


def _answers(events: list[Event], step: str, found: Unfolded) -> dict[str, Inline]:
    """Each question's latest answer, from the step's completion and any answer given later
    (the review is often held after closing, and says so)."""
    answers: dict[str, Inline] = {}
    for e in events:
        if e.step == step and e.kind in (kinds.STEP_COMPLETED, kinds.POSTMORTEM_ANSWERED):
            late: Inline = (f" ({AFTER_CLOSE})",) if e.seq in found.after_close else ()
            for question, answer in (e.data.get("answers") or {}).items():
                answers[str(question)] = (str(answer), *late)
    return answers


def _postmortem(state: IncidentState, events: list[Event], found: Unfolded) -> Iterator[Block]:
    yield Heading(2, "Lessons learned", "lessons")
    asked = False
    for _, spec in state.runbook.steps():
        if isinstance(spec, PostmortemStep):
            asked = True
            step = state.steps[spec.id]
            answers = _answers(events, spec.id, found)
            yield Table(
                ("#", "Question", "The team's answer"),
                [
                    Row(((str(n),), (q,), answers.get(q, ("–",))))
                    for n, q in enumerate(spec.questions, start=1)
                ],
                "lessons",
            )
            if step.status is Status.DONE:
                done = f"{spec.title}: done by {step.by} at {moment(step.at)}"
                yield Para((done + (f": {step.note}." if step.note else "."),))
            else:
                yield Para(
                    (
                        f"{spec.title}: {step.status.value}"
                        + (f" ({step.reason})." if step.reason else "."),
                    )
                )
    if not asked:
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
                    (
                        event_link(item.seq, f"{moment(item.at)} by {item.by}"),
                        f" ({AFTER_CLOSE})" if item.seq in found.after_close else "",
                    ),
                )
            )
            for item in state.action_items
        ],
    )


def _what(e: Event, found: Unfolded) -> Inline:
    """What happened, and what a reader must know of the row itself: a later event corrects
    it, or it was written after the incident closed."""
    spans: list[Span] = [describe(e)]
    if e.seq in found.ad_hoc:
        spans.append(" (ad hoc)")
    for seq in found.corrections(e.seq):
        spans += [" (", Strong("corrected by"), " ", event_link(seq, f"event {seq}"), ")"]
    if e.seq in found.after_close:
        spans += [" (", Strong(AFTER_CLOSE), ")"]
    return tuple(spans)


def _timeline(events: list[Event], found: Unfolded) -> Iterator[Block]:
    yield Heading(2, "Timeline", "timeline")
    yield Para(
        (
            "In the order things happened; # is the order they were written in. A back-dated "
            "event shows when it was recorded too.",
        )
    )
    yield Table(
        ("#", "Occurred", "Recorded", "Actor", "Step", "Host", "What", "Evidence"),
        [
            Row(
                (
                    (str(e.seq),),
                    (moment(e.occurred_at),),
                    ("" if e.recorded_at == e.occurred_at else moment(e.recorded_at),),
                    (e.actor,),
                    (e.step or "",),
                    (e.host or "",),
                    _what(e, found),
                    evidence_links(e),
                ),
                f"event-{e.seq}",
            )
            for e in in_time_order(events)
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
