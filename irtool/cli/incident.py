"""`irtool incident ...` and `irtool verify`: the headless face of a live incident.

For scripts, for a scribe at a second terminal, and for tests. Every command
takes --json. The actor is --as NAME, else IRTOOL_RESPONDER, else the OS user.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from irtool.cli.common import (
    actor_option,
    fail,
    incident_argument,
    json_option,
    parse_param_values,
    parse_params,
    who,
)
from irtool.cli.exits import Exit
from irtool.cli.lazy import LazyGroup
from irtool.engine.recovery import recover as recover_incident
from irtool.engine.session import IncidentSession, Refused
from irtool.journal import Event, JournalBusy, JournalError, JournalFull
from irtool.model.untrusted import visible

# A write (a scribe's note) imports only what it needs: what only `new`, `show`, `list` or
# `verify` use is imported in them, and the commands other modules add load when named.
if TYPE_CHECKING:
    from irtool.engine.custody import EvidenceProblem
    from irtool.engine.signatures import SignatureCheck
    from irtool.engine.state import IncidentState, RunState
    from irtool.journal.anchors import Check
    from irtool.journal.store import Verification
    from irtool.model.params import Value
    from irtool.model.runbook import Runbook


def parse_time(text: str, ahead: bool = False) -> datetime:
    """A typed time: `30m` (ago, or ahead for a time to come), `19:30` today in the
    responder's zone, or ISO 8601 (without an offset: UTC, as IIS logs write it)."""
    from irtool.model.when import parse_when

    try:
        return parse_when(text, datetime.now(UTC), ahead=ahead)
    except ValueError as bad:
        raise click.BadParameter(str(bad)) from None


def session(
    incident: str, recover_as: str | None = None, *, records: bool = True
) -> IncidentSession:
    """Open an incident, first making part of the record whatever a dead or blocked writer
    left (spooled custody records, interrupted runs); what that did is said on stderr.

    `records=False` for a command that only writes an event: the lists of evidence, notes and
    runs, which grow with the journal, are then read only if something asks for them."""
    try:
        current = IncidentSession.open(incident, records=records)
    except JournalFull as full:
        journal_failed(full)
        raise AssertionError from full  # unreachable
    except (Refused, ValueError, JournalError) as exc:
        fail(str(exc))
        raise AssertionError from exc  # unreachable
    connection = current.journal.connection
    if connection and connection.startswith("OFFLINE"):
        click.echo(
            visible(
                f"irtool: the team's database is out of reach ({connection}): what this "
                f"command writes stays in this machine's copy until `irtool sync {incident}` "
                "gives it to the team"
            ),
            err=True,
        )
    found = recover_incident(current, recover_as or who(None))
    for line in found.lines():
        click.echo(visible(f"irtool: {line}"), err=True)  # names a host's spooled records
    return current


def journal_failed(exc: JournalError) -> None:
    """The journal would not take a write: one line; busy or full is a status scripts can
    retry on, anything else (read-only media) is not."""
    retry = isinstance(exc, JournalBusy | JournalFull)
    fail(str(exc), Exit.JOURNAL_UNAVAILABLE if retry else Exit.FAILED)


def report(event: Event, as_json: bool, message: str) -> None:
    if as_json:
        click.echo(json.dumps(event.as_dict(), sort_keys=True))
    else:
        click.echo(message)


def play_scenario(current: IncidentSession, actor: str) -> None:
    """An exercise's clock moves on with every command: fire the injects now due, and tell the
    responder on stderr (stdout stays the command's own answer)."""
    if current.state.exercise is None:
        return
    from irtool.exercise import director

    for event in director.tick(current, actor, datetime.now(UTC)):
        # A scenario file's words: the facilitator's, not the responder's.
        click.echo(visible(f"INJECT for {event.data['to']}: {event.data['title']}"), err=True)


def run_command(incident: str, as_json: bool, action: Any, message: str) -> None:
    """A command that writes one event: `action` makes it from the session."""
    current = session(incident, records=False)
    try:
        event = action(current)
        play_scenario(current, event.actor)
    except Refused as refused:
        fail(str(refused))
    except JournalError as exc:
        journal_failed(exc)
    finally:
        current.close_journal()
    report(event, as_json, message.format(seq=event.seq))


# The incident commands other modules add, by the module that adds them: run and rollback;
# the facilitator's; meetings and action items; what is learned as it unfolds; ad-hoc commands.
EXTENSIONS = {
    **dict.fromkeys(["facts", "fetch", "rollback", "run"], "irtool.cli.remote"),
    **dict.fromkeys(
        ["handled", "inject", "injects", "observe", "pause", "resume", "review"],
        "irtool.cli.facilitate",
    ),
    **dict.fromkeys(["action-item", "adjourn", "meet"], "irtool.cli.minutes"),
    **dict.fromkeys(["answer", "ioc", "scope", "set", "start"], "irtool.cli.unfolding"),
    "collect": "irtool.cli.adhoc",
}


@click.group(cls=LazyGroup, extensions=EXTENSIONS)
def incident() -> None:
    """Open and work an incident without the terminal UI."""


SHIPPED = "shipped"


@incident.command()
@click.argument("runbook", type=click.Path(path_type=Path))
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE")
@click.option("--inventory", type=click.Path(path_type=Path))
@click.option("--contacts", type=click.Path(path_type=Path))
@click.option(
    "--exercise",
    "scenario",
    is_flag=False,
    flag_value=SHIPPED,
    default=None,
    metavar="[SCENARIO]",
    help="A tabletop exercise: simulated hosts, from SCENARIO or the runbook's own scenario.",
)
@actor_option
@json_option
def new(
    runbook: Path,
    params: tuple[str, ...],
    inventory: Path | None,
    contacts: Path | None,
    scenario: str | None,
    actor: str | None,
    as_json: bool,
) -> None:
    """Open a new live incident (or, with --exercise, an exercise) from RUNBOOK; print its id."""
    if scenario is not None:
        opened = _new_exercise(runbook, params, inventory, contacts, scenario, who(actor))
    else:
        from irtool.cli.context import load_checked

        context = load_checked(runbook, contacts, inventory)
        values = _parameters(context.runbook.model, parse_param_values(params))
        try:
            opened = IncidentSession.new(
                context.runbook,
                values,
                actor=who(actor),
                contacts=context.contacts,
                inventory=context.inventory,
            )
        except (Refused, JournalError) as exc:
            fail(str(exc), Exit.FAILED)
            return
    opened.close_journal()
    click.echo(json.dumps({"id": opened.state.id}) if as_json else opened.state.id)


def _parameters(runbook: Runbook, given: Mapping[str, str | list[str]]) -> dict[str, Value]:
    from irtool.model.plan import PlanError, resolve_parameters

    try:
        return resolve_parameters(runbook, given)
    except PlanError as bad:
        fail("\n".join(bad.messages))
        raise AssertionError from bad  # unreachable


def _new_exercise(
    runbook: Path,
    params: tuple[str, ...],
    inventory: Path | None,
    contacts: Path | None,
    scenario: str,
    actor: str,
) -> IncidentSession:
    from irtool.cli.context import load_exercise_checked
    from irtool.exercise.setup import open_exercise

    exercise = load_exercise_checked(
        runbook, None if scenario == SHIPPED else Path(scenario), contacts, inventory
    )
    values = _parameters(exercise.context.runbook.model, exercise.parameters(parse_params(params)))
    return open_exercise(exercise, values, actor)


@incident.command(name="list")
@json_option
def list_all(as_json: bool) -> None:
    """Incidents under the data directory, newest last."""
    from irtool.engine.listing import list_incidents

    rows = list_incidents()
    if as_json:
        click.echo(json.dumps([row.as_dict() for row in rows], indent=2))
        return
    for row in rows:
        if row.problem:
            click.echo(f"{row.id}  (unreadable: {row.problem})")
        else:
            status = "closed" if row.closed else "open"
            click.echo(f"{row.id}  {row.mode.upper():8} {status:6}  {row.title}")


def summary(state: IncidentState) -> dict[str, Any]:
    """`show --json`: the export's facts and steps (one shape for both), plus what is next."""
    from irtool.engine.closing import open_items
    from irtool.exercise import director
    from irtool.export.document import incident_facts, steps_document

    return {
        **incident_facts(state),
        "reconvene_at": state.reconvene_at,
        "meeting_open": state.meeting,
        "next": state.available(),
        "steps": steps_document(state),
        "contacts": {
            role: {
                "reached": tree.reached,
                "next_to_call": tree.next_person,
                "attempts": [
                    {"person": a.person, "outcome": a.outcome.value, "at": a.at, "by": a.by}
                    for a in state.attempts(role)
                ],
            }
            for role, tree in state.calls.items()
        },
        "notes": [{"seq": n.seq, "at": n.at, "by": n.by, "text": n.text} for n in state.notes],
        "iocs": state.iocs,
        "scope": {
            group: members
            for group in sorted(state.inventory.all_groups() if state.inventory else ())
            if (members := state.inventory.select([f"group:{group}"]) if state.inventory else [])
        },
        "open_items": open_items(state),
        "exercise": director.status(state, datetime.now(UTC)) if state.exercise else None,
        "head": state.head,
        "events": state.last_seq,
    }


def _say(text: str, err: bool = False) -> None:
    """A line of show's or verify's text: it quotes hosts' words (a failure, a warning) and
    evidence files' names, so every control is written out, never acted on by the terminal."""
    click.echo(visible(text), err=err)


def _run_row(run: RunState, how: str) -> dict[str, Any]:
    """A run that did not end normally, as `show` lists it."""
    return {
        "run": run.seq,
        "step": run.step,
        "purpose": run.purpose,
        "by": run.by,
        "at": run.at,
        "pid": run.pid,
        "machine": run.machine,
        "state": how,
    }


@incident.command()
@incident_argument
@json_option
def show(incident_id: str, as_json: bool) -> None:
    """Where an incident stands: steps, what is next, contacts, reconvene time, commander."""
    from irtool.engine.recovery import unfinished
    from irtool.engine.state import Status
    from irtool.model.params import value_text
    from irtool.model.sshkeys import team_signs
    from irtool.model.when import shown

    current = session(incident_id)
    state = current.state
    spooled = [p.describe() for p in current.spool.pending()]
    # Where the team signs its events, those not signed are counted (verify names them).
    unsigned = (
        sum(1 for e in current.journal.events() if e.signature is None)
        if team_signs(state.contacts_data)
        else None
    )
    connection = current.journal.connection
    runs = [
        _run_row(run, "running" if live else "interrupted (not yet recovered)")
        for run, live in unfinished(current)
    ]
    runs += [_run_row(run, "interrupted") for run in state.runs.values() if run.interrupted]
    current.close_journal()
    data = {
        **summary(state),
        "pending_records": spooled,
        "unfinished_runs": runs,
        "unsigned_events": unsigned,
        "team_database": connection,
    }
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    _say(f"{state.id}  {state.mode.upper()}  {state.title}")
    _say(f"runbook {state.runbook.id} {state.runbook.version}  sha256 {state.runbook_sha256}")
    _say(f"opened {shown(state.opened_at)} by {state.opened_by}; commander {state.commander}")
    if data["exercise"]:
        played = data["exercise"]
        paused = ", PAUSED" if played["paused"] else ""
        waiting = sum(1 for f in played["fired"] if not f["handled"])
        _say(
            f"exercise {played['scenario']}: clock T+{played['clock']} ({played['speed']:g}x"
            f"{paused}); {len(played['fired'])} inject(s) fired, {waiting} waiting for an answer"
        )
    if state.closed_at:
        over = f" over open items: {state.close_over}" if state.close_over else ""
        _say(f"closed {shown(state.closed_at)}{over}")
    if state.reconvene_at:
        _say(f"reconvene at {shown(state.reconvene_at)}")
    for name, value in state.parameters.items():
        _say(f"  {name} = {value_text(value)}")
    for kind, values in state.iocs.items():
        _say(f"  indicator {kind}: {', '.join(values)}")
    available = set(data["next"])
    marks = {Status.DONE: "x", Status.SKIPPED: "-", Status.ROLLED_BACK: "<"}
    phase = None
    for step in state.steps.values():
        if step.phase != phase:
            phase = step.phase
            _say(f"== {phase}")
        mark = marks.get(step.status, ">" if step.id in available else " ")
        extra = (
            f" -> {step.option}" if step.option else (f" ({step.reason})" if step.reason else "")
        )
        extra += " (rolled back)" if step.status is Status.ROLLED_BACK else ""
        extra += f" (started early: {step.early})" if step.early else ""
        _say(f"  [{mark}] {step.id}: {step.title}{extra}")
    _say(f"next: {', '.join(data['next']) or 'nothing: every reachable step is done'}")
    for role, tree in state.calls.items():
        status = (
            f"reached {tree.reached}"
            if tree.reached
            else f"call {tree.next_person or 'nobody left'}"
        )
        _say(f"  {role}: {status} ({tree.tried} attempt(s))")
    for run in runs:
        _say(
            f"RUN {run['run']} ({run['purpose']} of {run['step']}, by {run['by']} at "
            f"{shown(run['at'])}, "
            f"pid {run['pid']} on {run['machine']}): {run['state']}"
        )
    if spooled:
        _say(
            f"PENDING {len(spooled)} custody record(s) not yet in the journal "
            f"(irtool incident recover {state.id} appends them):"
        )
        for line in spooled:
            _say(f"  {line}")
    if unsigned:
        _say(f"UNSIGNED {unsigned} event(s): no responder's key signed them (verify names each)")
    if connection:
        _say(connection)
    _say(f"head {state.head} ({state.last_seq} events)")


@incident.command()
@incident_argument
@click.argument("text")
@click.option(
    "--at",
    "at",
    help="When it happened (ISO 8601; UTC unless an offset is given): from a year before the "
    "incident opened to 5 minutes from now.",
)
@actor_option
@json_option
def note(incident_id: str, text: str, at: str | None, actor: str | None, as_json: bool) -> None:
    """Add a note to the timeline, back-dated with --at if need be."""
    when = parse_time(at) if at else None
    run_command(
        incident_id, as_json, lambda s: s.note(text, who(actor), when), "noted as event {seq}"
    )


@incident.command()
@incident_argument
@click.argument("step")
@click.option("--note", default="", help="What was done or found.")
@click.option("--check", "checklist", multiple=True, help="A checklist item ticked (repeatable).")
@click.option(
    "--answer",
    "answers",
    multiple=True,
    metavar="N=TEXT",
    help="A post-mortem step: the team's answer to question N (repeatable).",
)
@actor_option
@json_option
def done(
    incident_id: str,
    step: str,
    note: str,
    checklist: tuple[str, ...],
    answers: tuple[str, ...],
    actor: str | None,
    as_json: bool,
) -> None:
    """Mark a step complete."""
    given = parse_params(answers, "--answer", "N=TEXT")
    run_command(
        incident_id,
        as_json,
        lambda s: s.complete(step, who(actor), note, list(checklist), given),
        f"{step} done (event {{seq}})",
    )


@incident.command()
@incident_argument
@click.argument("step")
@click.option("--reason", required=True, help="Why the step is skipped.")
@actor_option
@json_option
def skip(incident_id: str, step: str, reason: str, actor: str | None, as_json: bool) -> None:
    """Skip a step, with the reason."""
    run_command(
        incident_id,
        as_json,
        lambda s: s.skip(step, who(actor), reason),
        f"{step} skipped (event {{seq}})",
    )


@incident.command()
@incident_argument
@click.argument("step")
@click.argument("option")
@click.option("--note", default="")
@actor_option
@json_option
def decide(
    incident_id: str, step: str, option: str, note: str, actor: str | None, as_json: bool
) -> None:
    """Answer a decision step; its route is followed."""
    run_command(
        incident_id,
        as_json,
        lambda s: s.decide(step, option, who(actor), note),
        f"{step}: {option} (event {{seq}})",
    )


@incident.command()
@incident_argument
@click.argument("role")
@click.option("--person", required=True)
@click.option(
    "--outcome", required=True, type=click.Choice(["reached", "no-answer", "left-message"])
)
@click.option("--method", help="phone, sms, email, chat, pager")
@actor_option
@json_option
def reach(
    incident_id: str,
    role: str,
    person: str,
    outcome: str,
    method: str | None,
    actor: str | None,
    as_json: bool,
) -> None:
    """Record a contact attempt; a no-answer moves the role's call tree to the next backup."""
    run_command(
        incident_id,
        as_json,
        lambda s: s.reach(role, person, outcome, who(actor), method),
        f"{role}: {person} {outcome} (event {{seq}})",
    )


@incident.command()
@incident_argument
@click.argument("role")
@click.option("--reason", default="", help="Why (a message left an hour ago, say).")
@actor_option
@json_option
def escalate(incident_id: str, role: str, reason: str, actor: str | None, as_json: bool) -> None:
    """Stop waiting on the person a role is on and go to the next backup."""
    run_command(
        incident_id,
        as_json,
        lambda s: s.escalate(role, who(actor), reason),
        f"{role}: escalated (event {{seq}})",
    )


@incident.command()
@incident_argument
@click.argument("step")
@click.option("--reason", required=True)
@actor_option
@json_option
def request(incident_id: str, step: str, reason: str, actor: str | None, as_json: bool) -> None:
    """Request an action (containment); two-person steps then need another's approval."""
    run_command(
        incident_id,
        as_json,
        lambda s: s.request_action(step, who(actor), reason),
        f"{step} requested (event {{seq}})",
    )


@incident.command()
@incident_argument
@click.argument("step")
@actor_option
@json_option
def approve(incident_id: str, step: str, actor: str | None, as_json: bool) -> None:
    """Approve an action someone else requested."""
    run_command(
        incident_id,
        as_json,
        lambda s: s.approve(step, who(actor)),
        f"{step} approved (event {{seq}})",
    )


@incident.command()
@incident_argument
@click.option("--to", "to", required=True, help="Who takes incident command.")
@actor_option
@json_option
def handover(incident_id: str, to: str, actor: str | None, as_json: bool) -> None:
    """Hand incident command to another responder."""
    run_command(
        incident_id,
        as_json,
        lambda s: s.handover(to, who(actor)),
        f"{to} has command (event {{seq}})",
    )


@incident.command()
@incident_argument
@click.option("--summary", default="")
@click.option(
    "--over",
    default="",
    metavar="REASON",
    help="Close although items are still open (containment applied, open action items, "
    "unanswered questions, unfinished runs): why.",
)
@actor_option
@json_option
def close(incident_id: str, summary: str, over: str, actor: str | None, as_json: bool) -> None:
    """Close the incident. What is still open is listed and needs --over REASON; afterwards
    only notes, action items and post-mortem answers can be added."""
    run_command(
        incident_id,
        as_json,
        lambda s: s.close(who(actor), summary, over),
        "incident closed (event {seq})",
    )


@dataclass
class Verified:
    """All `verify` found: the chain, the evidence files, the runs, anchors and signatures."""

    chain: Verification
    files: int  # evidence files checked
    problems: list[EvidenceProblem]
    gaps: list[str]  # custody gaps
    anchors: list[Check]
    signatures: SignatureCheck

    @property
    def ok(self) -> bool:
        chain = self.chain
        return (
            chain.ok
            and not self.problems
            and not self.gaps
            and not chain.backwards
            and (not self.signatures.problems)
        )


def _verified(incident_id: str, heads: Sequence[str] = ()) -> Verified:
    from irtool.engine.custody import EvidenceCheck, OpenRuns, gaps
    from irtool.engine.signatures import SignatureCheck
    from irtool.evidence.store import EvidenceStore
    from irtool.journal.anchors import verified_chain
    from irtool.journal.incidents import EVIDENCE_DIR, incident_dir

    directory = incident_dir(incident_id)
    store = EvidenceStore(directory / EVIDENCE_DIR, create=False)
    evidence, runs, signatures = EvidenceCheck(store), OpenRuns(), SignatureCheck()

    def see(event: Event) -> None:
        evidence.see(event)
        runs.see(event)
        signatures.see(event)

    result, checks = verified_chain(incident_id, heads, see)
    return Verified(result, evidence.checked, evidence.problems, gaps(directory, runs, store),
                    checks, signatures)  # fmt: skip


@click.command()
@incident_argument
@click.option(
    "--head",
    "heads",
    multiple=True,
    metavar="ANCHOR",
    help="An anchor `irtool anchor` printed, or a head hash noted earlier: the journal must "
    "still hold that event unchanged, and every event before it (repeatable).",
)
@json_option
def verify(incident_id: str, heads: tuple[str, ...], as_json: bool) -> None:
    """Recompute the hash chain and every evidence file's hash.

    Exit 0 and the head when all is intact; 1 naming the first bad event,
    every event recorded earlier than the event before it (a writer's clock
    was behind, in a journal written before irtool recorded clock skews as
    clock.skewed events), and every missing or altered evidence file. The
    journal must also hold the head this machine last wrote or verified, and
    each --head anchor: a journal cut short or rewritten behind one fails.
    Each event's signature is checked against its writer's keys in the
    contacts file, and each signer named.
    """
    from irtool.cli.team import caught_up

    caught_up(incident_id, "verifying", verify=True)
    try:
        found = _verified(incident_id, heads)
    except (ValueError, JournalError) as exc:
        fail(str(exc))
        return
    result, signatures = found.chain, found.signatures
    if as_json:
        click.echo(
            json.dumps(
                {
                    "ok": found.ok,
                    "events": result.count,
                    "head": result.head,
                    "first_bad_seq": result.first_bad_seq,
                    "problem": result.problem,
                    "recorded_backwards": [
                        {"seq": b.seq, "recorded_at": b.recorded_at, "previous_at": b.previous_at}
                        for b in result.backwards
                    ],
                    "evidence_files": found.files,
                    "evidence_problems": [str(p) for p in found.problems],
                    "custody_gaps": found.gaps,
                    "anchors": [
                        {"anchor": str(c.anchor), "of": c.where, "problem": c.problem}
                        for c in found.anchors
                    ],
                    "signatures": {
                        "required": signatures.required,
                        "signed": dict(sorted(signatures.signed.items())),
                        "unsigned": signatures.unsigned,
                        "problems": signatures.problems,
                    },
                }
            )
        )
    else:
        if result.ok and result.backwards:
            # The chain holds, but its times cannot be read as the order things were written.
            _say(
                f"journal chain intact but its times go backwards: {result.count} events, "
                f"head {result.head}"
            )
        elif result.ok:
            _say(f"journal intact: {result.count} events, head {result.head}")
        else:
            _say(f"BROKEN at event {result.first_bad_seq}: {result.problem}", err=True)
        for step in result.backwards:
            _say(f"BACKWARDS {step}", err=True)
        for problem in found.problems:
            _say(f"EVIDENCE {problem}", err=True)
        for gap in found.gaps:
            _say(gap, err=True)
        for wrong in signatures.problems:
            _say(f"SIGNATURE {wrong}", err=True)
        if not found.problems:
            _say(f"evidence intact: {found.files} file(s) match their hashes")
        _say(signatures.summary())
    if not found.ok:
        raise SystemExit(Exit.FAILED)


@click.command()
@incident_argument
@json_option
def anchor(incident_id: str, as_json: bool) -> None:
    """Print the incident's head as one line to keep elsewhere: verify --head checks it.

    Paste it into the ticket or the team's chat: whoever holds it can tell
    later that the journal still holds that event and every one before it,
    unchanged. Printed only once the chain is verified.
    """
    from irtool.cli.team import caught_up
    from irtool.journal.anchors import Anchor, verified_chain

    behind = caught_up(incident_id, "anchoring", verify=True)  # a team's: the database's head
    if behind and behind.unsynced:  # a head the team's chain will never hold
        fail(f"no anchor: {behind.why}", Exit.FAILED)
    try:
        result, _checks = verified_chain(incident_id, ())
    except (ValueError, JournalError) as exc:
        fail(str(exc))
        return
    if not result.ok:
        fail(f"no anchor: the journal does not verify: {result.problem}", Exit.FAILED)
    held = Anchor(incident_id, result.count, result.head)
    if as_json:
        click.echo(json.dumps({"incident": incident_id, "seq": held.seq, "hash": held.hash,
                               "anchor": str(held)}))  # fmt: skip
    else:
        click.echo(str(held))


@incident.command()
@incident_argument
@click.argument("seq", type=int)
@click.option("--reason", required=True, help="Why the event was wrong.")
@click.option("--text", help="The corrected note text.")
@click.option(
    "--at",
    "at",
    help="The corrected time it happened (ISO 8601): from a year before the incident opened "
    "to 5 minutes from now.",
)
@actor_option
@json_option
def correct(
    incident_id: str,
    seq: int,
    reason: str,
    text: str | None,
    at: str | None,
    actor: str | None,
    as_json: bool,
) -> None:
    """Correct event SEQ: the original stays; a correction event points at it."""
    when = parse_time(at) if at else None
    run_command(
        incident_id,
        as_json,
        lambda s: s.correct(seq, who(actor), reason, text, when),
        f"event {seq} corrected (event {{seq}})",
    )


@incident.command()
@incident_argument
@click.argument("at", metavar="TIME")
@actor_option
@json_option
def reconvene(incident_id: str, at: str, actor: str | None, as_json: bool) -> None:
    """Set when the team meets next (ISO 8601; UTC unless an offset is given), at most 30
    days from now."""
    when = parse_time(at, ahead=True)
    run_command(
        incident_id,
        as_json,
        lambda s: s.set_reconvene(when, who(actor)),
        f"reconvene at {when.isoformat()} (event {{seq}})",
    )


@incident.command()
@incident_argument
@actor_option
@json_option
def recover(incident_id: str, actor: str | None, as_json: bool) -> None:
    """Append what a dead or blocked irtool left: spooled custody records, the output of
    interrupted commands, and interrupted runs. Every command does this when it opens an
    incident; this one waits for a busy journal and says what is still pending."""
    try:
        current = IncidentSession.open(incident_id)
    except JournalFull as full:
        journal_failed(full)
        return
    except (Refused, ValueError, JournalError) as exc:
        fail(str(exc))
        return
    try:
        found = recover_incident(current, who(actor), busy_timeout=None)
    finally:
        current.close_journal()
    if as_json:
        click.echo(
            json.dumps(
                {
                    "appended": found.appended,
                    "interrupted_commands": found.commands,
                    "interrupted_runs": found.runs,
                    "pending": [p.describe() for p in found.pending],
                    "problem": found.problem,
                }
            )
        )
    else:
        for line in found.lines() or ["nothing to recover: the journal has every record"]:
            click.echo(line)
    if found.pending:
        raise SystemExit(Exit.JOURNAL_UNAVAILABLE)
