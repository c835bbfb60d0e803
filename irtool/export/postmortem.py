"""The post-mortem: what a team circulates after an incident (or an exercise), as a document.

Everything comes from the journal; nothing is summarised away. A broken chain is said first.
Evidence links are relative to the incident's directory (`evidence/<sha256>`), where the
files are, so the report can travel with the directory.

Sections that list events (the timeline, the evidence, meetings, decisions) read them from the
journal as their rows are written, so the report takes the same memory at any size.
"""

from __future__ import annotations

import copy
import heapq
from collections.abc import Iterable, Iterator

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
from irtool.export.unfolded import Unfolded
from irtool.journal import Event
from irtool.model.params import value_text
from irtool.model.steps import AgendaStep, PostmortemStep

AFTER_CLOSE = "written after closing"


def postmortem(recorded: Recorded) -> Iterator[Block]:
    state, found = recorded.state, recorded.found
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
    yield from _incident(state, recorded.opening, found)
    yield from _summary(state, found)
    yield from _people(recorded)
    yield from _hosts(recorded)
    yield from _findings(state)
    yield from _agenda(recorded)
    yield from _decisions(recorded)
    yield from unfolding(found)
    yield from _containment(recorded)
    yield from rotation(state, found)
    yield from evidence(recorded)
    yield from _postmortem(recorded)
    if state.exercise is not None:
        yield from after_action(review(_with_containment(recorded)))
    yield from _timeline(recorded)
    yield from _journal(recorded)


def _with_containment(recorded: Recorded) -> IncidentState:
    """The state as the after-action review reads it: its records only what the review looks
    at (the calls made, the first collection, what contained or was rolled back), not every
    command."""
    view = copy.copy(recorded.state)  # shares the standing state; has no records of its own
    first = [recorded.first_collected] if recorded.first_collected else []
    wanted = sorted(first + recorded.containment)

    def read(after: int, upto: int) -> Iterable[Event]:
        calls = recorded.events(kinds.CONTACT_ATTEMPTED)
        custody = recorded.at(s for s in wanted if after < s <= upto)
        merged = heapq.merge(calls, custody, key=lambda e: e.seq)
        return (e for e in merged if after < e.seq <= upto)

    view.bind_records(read)
    return view


def _incident(state: IncidentState, opening: Event, found: Unfolded) -> Iterator[Block]:
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
    parameters = dict(opening.data.get("parameters") or {})
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


def _people(recorded: Recorded) -> Iterator[Block]:
    state, attempts = recorded.state, recorded.attempts()
    yield Heading(2, "Responders, roles and command", "people")
    actors = sorted(recorded.actors)
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
                            for a in attempts.get(role, [])
                        )
                        or "none",
                    ),
                )
            )
            for role, tree in state.calls.items()
        ],
    )
    handovers = recorded.events(kinds.COMMAND_HANDED_OVER)
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


def _hosts(recorded: Recorded) -> Iterator[Block]:
    """What each host said it is (the form of every command it got follows from it)."""
    if not recorded.any(kinds.HOST_FACTS):
        return
    yield Heading(2, "Hosts as they said they are", "hosts")

    def rows() -> Iterator[Row]:
        for e in recorded.events(kinds.HOST_FACTS):
            how = str(e.data.get("source", "probe"))
            if e.data.get("inventory_said"):
                how += "; the inventory said otherwise"
            yield Row(
                (
                    (Code(e.host or ""),),
                    (str(e.data.get("summary", "")),),
                    (how,),
                    (moment(e.occurred_at),),
                )
            )

    yield Table(("Host", "What it is", "How it is known", "When"), rows())


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


def _agenda(recorded: Recorded) -> Iterator[Block]:
    state = recorded.state
    yield Heading(2, "The standing agenda", "agenda")
    if not recorded.any(kinds.MEETING_CLOSED, kinds.RECONVENE_SET):
        yield Para(("No meeting was recorded.",))
        return
    for meeting in recorded.events(kinds.MEETING_CLOSED):
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
    if recorded.any(kinds.RECONVENE_SET):
        yield Bullets(
            (f"Reconvene set for {moment(e.data.get('at'))} by {e.actor}.",)
            for e in recorded.events(kinds.RECONVENE_SET)
        )


def _decisions(recorded: Recorded) -> Iterator[Block]:
    yield Heading(2, "Decisions", "decisions")
    if not recorded.any(kinds.DECISION_MADE):
        yield Para(("None.",))
        return

    def rows() -> Iterator[Row]:
        for e in recorded.events(kinds.DECISION_MADE):
            spec = recorded.state.runbook.step(e.step or "")
            question = getattr(spec, "question", e.step)
            yield Row(
                (
                    (moment(e.occurred_at),),
                    (or_empty(question),),
                    (or_empty(e.data.get("label")),),
                    (e.actor,),
                    (or_empty(e.data.get("note")),),
                )
            )

    yield Table(("When", "Question", "Answer", "By", "Why"), rows())


_ACTIONS = (kinds.ACTION_REQUESTED, kinds.ACTION_APPROVED, kinds.ACTION_ROLLED_BACK)


def _containment_events(recorded: Recorded) -> Iterator[Event]:
    """The actions' own events and the commands that applied or undid them, in the journal's
    order: the commands looked up by the seqs the fold noted, not searched for again."""
    return heapq.merge(
        recorded.events(*_ACTIONS), recorded.at(recorded.containment), key=lambda e: e.seq
    )


def _containment(recorded: Recorded) -> Iterator[Block]:
    found = recorded.found
    yield Heading(2, "Containment applied and rolled back", "containment")
    if not recorded.any(*_ACTIONS) and not recorded.containment:
        yield Para(("None.",))
        return
    yield Table(
        ("When", "Action", "Host", "What", "By"),
        (
            Row(
                (
                    (event_link(e.seq, moment(e.occurred_at)),),
                    (e.step or ("ad hoc" if e.seq in found.ad_hoc else ""),),
                    (e.host or "",),
                    (describe(e),),
                    (e.actor,),
                )
            )
            for e in _containment_events(recorded)
        ),
    )


def _answers(recorded: Recorded, steps: set[str]) -> dict[str, dict[str, Inline]]:
    """Each post-mortem step's questions with their latest answer, from the step's completion
    and any answer given later (the review is often held after closing, and says so)."""
    answers: dict[str, dict[str, Inline]] = {step: {} for step in steps}
    for e in recorded.events(kinds.STEP_COMPLETED, kinds.POSTMORTEM_ANSWERED):
        if e.step in answers:
            late: Inline = (f" ({AFTER_CLOSE})",) if e.seq in recorded.found.after_close else ()
            for question, answer in (e.data.get("answers") or {}).items():
                answers[e.step][str(question)] = (str(answer), *late)
    return answers


def _postmortem(recorded: Recorded) -> Iterator[Block]:
    state, found = recorded.state, recorded.found
    yield Heading(2, "Lessons learned", "lessons")
    asked = {spec.id for _, spec in state.runbook.steps() if isinstance(spec, PostmortemStep)}
    answered = _answers(recorded, asked) if asked else {}
    for _, spec in state.runbook.steps():
        if isinstance(spec, PostmortemStep):
            step = state.steps[spec.id]
            answers = answered[spec.id]
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
    if found.unsigned(e):
        spans += [" (", Strong("unsigned"), ")"]
    return tuple(spans)


def _timeline(recorded: Recorded) -> Iterator[Block]:
    found = recorded.found
    yield Heading(2, "Timeline", "timeline")
    yield Para(
        (
            "In the order things happened; # is the order they were written in. A back-dated "
            "event shows when it was recorded too.",
        )
    )
    yield Table(
        ("#", "Occurred", "Recorded", "Actor", "Step", "Host", "What", "Evidence"),
        (
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
            for e in recorded.events(order="time")
        ),
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
