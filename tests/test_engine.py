"""Every engine command, every refusal, and reopening after the fact."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from irtool.engine import kinds
from irtool.engine.session import IncidentSession, Refused
from irtool.engine.state import Status
from irtool.model.loader import load_contacts, load_inventory, load_runbook
from irtool.model.problems import InvalidFile
from tests.conftest import ROOT
from tests.support.drill import WRAP_UP_RUNBOOK

VALID = ROOT / "tests" / "corpus" / "valid"
PARAMS = {"attacker_ip": "203.0.113.7", "account": "CORP\\mallory"}


@pytest.fixture
def incident(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> IncidentSession:
    monkeypatch.setenv("IRTOOL_HOME", str(tmp_path))
    return IncidentSession.new(
        load_runbook(VALID / "every-kind.yaml"),
        PARAMS,
        actor="ann",
        contacts=load_contacts(VALID / "contacts.yaml"),
        inventory=load_inventory(VALID / "inventory.yaml"),
    )


def reopen(session: IncidentSession) -> IncidentSession:
    return IncidentSession.open(session.state.id)


def count(session: IncidentSession) -> int:
    return sum(1 for _ in session.journal.events())


def refused(session: IncidentSession, message: str, command: object) -> None:
    """The command is refused with `message` and nothing is written."""
    before = count(session)
    with pytest.raises(Refused, match=message):
        command()  # type: ignore[operator]
    assert count(session) == before


def test_opening_records_the_exact_runbook_and_context(incident: IncidentSession) -> None:
    opening = next(incident.journal.events())
    assert opening.kind == kinds.INCIDENT_OPENED and opening.actor == "ann"
    runbook = opening.data["runbook"]
    raw = (VALID / "every-kind.yaml").read_bytes()
    assert runbook["text"] == raw.decode()
    import hashlib

    assert runbook["sha256"] == hashlib.sha256(raw).hexdigest()
    assert opening.data["parameters"] == PARAMS
    assert opening.data["mode"] == "live"
    assert opening.data["contacts"]["model"]["team"] == "Test team"
    assert opening.data["inventory"]["model"]["hosts"]["web01"]["address"] == "192.0.2.10"
    assert incident.state.commander == "ann"


def test_walk_with_complete_skip_decide(incident: IncidentSession) -> None:
    assert incident.state.available() == ["assemble"]
    incident.complete("assemble", "ann", note="team on the bridge")
    incident.skip("meet", "ben", reason="meeting held on the phone")
    incident.complete("scope", "ann", checklist=["Read the alert"])
    assert incident.state.available() == ["ongoing"]
    incident.decide("ongoing", "no", "ann")
    # The route is followed: 'block' is passed over, 'evidence' is next.
    assert incident.state.available() == ["evidence"]
    state = reopen(incident).state
    assert state.steps["meet"].status is Status.SKIPPED
    assert state.steps["meet"].reason == "meeting held on the phone"
    assert state.steps["scope"].checklist == ["Read the alert"]
    assert state.steps["ongoing"].option == "no"
    assert state.available() == ["evidence"]


def test_step_refusals_write_nothing(incident: IncidentSession) -> None:
    refused(incident, "no step 'nope'", lambda: incident.complete("nope", "ann"))
    refused(
        incident, "not reachable yet; next: assemble", lambda: incident.complete("scope", "ann")
    )
    incident.complete("assemble", "ann")
    refused(incident, "already done", lambda: incident.complete("assemble", "ben"))
    refused(incident, "needs a reason", lambda: incident.skip("meet", "ann", reason="  "))
    refused(
        incident, "not on the checklist", lambda: incident.complete("meet", "ann", checklist=["x"])
    )
    incident.complete("meet", "ann")
    incident.complete("scope", "ann")
    refused(incident, "is a decision", lambda: incident.complete("ongoing", "ann"))
    refused(incident, "cannot be skipped", lambda: incident.skip("ongoing", "ann", reason="x"))
    refused(
        incident, "'maybe' is not an option", lambda: incident.decide("ongoing", "maybe", "ann")
    )
    refused(incident, "is not a decision", lambda: incident.decide("assemble", "yes", "ann"))


def test_two_person_rule(incident: IncidentSession) -> None:
    for step in ("assemble", "meet", "scope"):
        incident.complete(step, "ann")
    incident.decide("ongoing", "yes", "ann")
    refused(incident, "needs a second responder", lambda: incident.complete("block", "ann"))
    refused(incident, "has not been requested", lambda: incident.approve("block", "ben"))
    refused(incident, "needs a reason", lambda: incident.request_action("block", "ann", reason=""))
    incident.request_action("block", "ann", reason="attacker still active")
    refused(incident, "already requested", lambda: incident.request_action("block", "ben", "x"))
    refused(incident, "a second responder must approve", lambda: incident.approve("block", "ann"))
    incident.approve("block", "ben")
    refused(incident, "already approved", lambda: incident.approve("block", "ben"))
    incident.complete("block", "ann")
    refused(incident, "not an action", lambda: incident.record_rollback("evidence", "ann"))
    incident.record_rollback("block", "ann", note="attacker gone")
    refused(incident, "already rolled back", lambda: incident.record_rollback("block", "ann"))
    state = reopen(incident).state
    assert state.actions["block"].approvals == ["ben"]
    assert state.actions["block"].rolled_back


def test_rollback_of_an_action_not_applied_is_refused(incident: IncidentSession) -> None:
    refused(incident, "was not applied", lambda: incident.record_rollback("block", "ann"))


def test_notes_back_dated_and_corrected(incident: IncidentSession) -> None:
    began = datetime(2026, 11, 21, 2, 10, tzinfo=UTC)
    note = incident.note("attacker's first POST to shell.aspx", "ann", at=began)
    assert note.occurred_at == "2026-11-21T02:10:00.000000Z"
    assert note.recorded_at != note.occurred_at
    refused(incident, "needs text", lambda: incident.note(" ", "ann"))
    refused(incident, "needs a reason", lambda: incident.correct(note.seq, "ben", reason=""))
    refused(incident, "no event 99", lambda: incident.correct(99, "ben", reason="x"))
    refused(incident, "no event 1", lambda: incident.correct(1, "ben", reason="x"))
    fix = incident.correct(
        note.seq, "ben", reason="it was 02:05", at=datetime(2026, 11, 21, 2, 5, tzinfo=UTC)
    )
    events = list(incident.journal.events())
    assert events[note.seq - 1].occurred_at == "2026-11-21T02:10:00.000000Z"  # original kept
    state = reopen(incident).state
    assert state.notes[0].at == "2026-11-21T02:05:00.000000Z"
    assert state.notes[0].corrected_by == fix.seq
    assert state.corrections == {note.seq: [fix.seq]}


def test_call_tree_moves_to_the_backup_on_no_answer(incident: IncidentSession) -> None:
    assert incident.state.calls["security"].next_person == "ann"
    incident.reach("security", "ann", "left-message", "judy", method="phone")
    assert incident.state.calls["security"].next_person == "ann"
    incident.reach("security", "ann", "no-answer", "judy")
    assert incident.state.calls["security"].next_person == "ben"
    incident.reach("security", "ben", "reached", "judy", method="email")
    state = reopen(incident).state
    tree = state.calls["security"]
    assert tree.reached == "ben" and tree.next_person is None and tree.tried == 3
    assert [(a.person, a.outcome.value) for a in state.attempts("security")] == [
        ("ann", "left-message"),
        ("ann", "no-answer"),
        ("ben", "reached"),
    ]
    refused(incident, "no role 'janitor'", lambda: incident.reach("janitor", "x", "reached", "ann"))
    refused(
        incident, "outcome must be one of", lambda: incident.reach("security", "x", "maybe", "ann")
    )


def test_escalation_goes_to_the_next_backup_and_no_further(incident: IncidentSession) -> None:
    incident.reach("security", "ann", "left-message", "judy", method="phone")
    escalated = incident.escalate("security", "judy", "no call back in 15 minutes")
    assert escalated.data == {
        "role": "security", "from": "ann", "to": "ben", "reason": "no call back in 15 minutes"
    }  # fmt: skip
    assert reopen(incident).state.calls["security"].next_person == "ben"
    refused(incident, "ben is the last backup", lambda: incident.escalate("security", "judy"))
    incident.reach("security", "ben", "reached", "judy")
    refused(incident, "already reached: ben", lambda: incident.escalate("security", "judy"))
    refused(incident, "no role 'janitor'", lambda: incident.escalate("janitor", "judy"))


def test_meetings_and_reconvene(incident: IncidentSession) -> None:
    refused(incident, "not an agenda step", lambda: incident.open_meeting("scope", "ann"))
    refused(incident, "no meeting is open", lambda: incident.close_meeting("ann"))
    incident.open_meeting("meet", "ann")
    refused(incident, "still open", lambda: incident.open_meeting("meet", "ann"))
    at = datetime(2026, 11, 21, 5, 0, tzinfo=UTC)
    incident.close_meeting("ann", {"threat": "web shell via upload form"}, reconvene_at=at)
    state = reopen(incident).state
    assert state.meeting is None and state.reconvene_at == "2026-11-21T05:00:00.000000Z"
    incident.set_reconvene(datetime(2026, 11, 21, 6, 0, tzinfo=UTC), "ann")
    assert reopen(incident).state.reconvene_at == "2026-11-21T06:00:00.000000Z"


def test_handover_and_close(incident: IncidentSession) -> None:
    refused(incident, "already has incident command", lambda: incident.handover("ann", "ann"))
    refused(incident, "to whom", lambda: incident.handover(" ", "ann"))
    incident.handover("ben", "ann")
    assert reopen(incident).state.commander == "ben"
    incident.close("ben", summary="contained", over="a test")
    assert reopen(incident).state.closed
    refused(incident, "is closed", lambda: incident.skip("assemble", "ann", "late"))
    refused(incident, "is closed", lambda: incident.complete("assemble", "ann"))


def test_a_second_session_sees_and_respects_the_first(incident: IncidentSession) -> None:
    other = reopen(incident)
    incident.complete("assemble", "ann")
    # The other session has not refreshed, yet it cannot complete the step twice.
    refused(other, "already done", lambda: other.complete("assemble", "ben"))
    other.note("from the scribe's terminal", "judy")
    assert [n.text for n in (incident.refresh() and incident.state.notes)] == [
        "from the scribe's terminal"
    ]


def test_reopen_unknown_incident() -> None:
    with pytest.raises(Refused, match="no incident"):
        IncidentSession.open("ir-20000101-000000-0000")
    with pytest.raises(ValueError, match="not an incident id"):
        IncidentSession.open("../../etc")


@pytest.fixture
def wrap_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> IncidentSession:
    monkeypatch.setenv("IRTOOL_HOME", str(tmp_path))
    (tmp_path / "lessons.yaml").write_text(WRAP_UP_RUNBOOK)
    return IncidentSession.new(load_runbook(tmp_path / "lessons.yaml"), {}, actor="ann")


def test_post_mortem_answers_by_number_or_text_in_the_runbooks_order(
    wrap_up: IncidentSession,
) -> None:
    refused(
        wrap_up,
        "no question '3' \\(1-2\\)",
        lambda: wrap_up.complete("lessons", "ann", answers={"3": "x"}),
    )
    refused(
        wrap_up,
        "no question 'Why\\?'",
        lambda: wrap_up.complete("lessons", "ann", answers={"Why?": "x"}),
    )
    refused(
        wrap_up, "no question '²'", lambda: wrap_up.complete("lessons", "ann", answers={"²": "x"})
    )
    refused(
        wrap_up,
        "question 1 is answered twice",
        lambda: wrap_up.complete("lessons", "ann", answers={"1": "x", "What happened?": "y"}),
    )
    wrap_up.complete(
        "lessons",
        "cy",
        "held Monday",
        answers={"What would we change?": "patch sooner", "1": "a web shell", "2 ": ""},
    )
    refused(
        wrap_up,
        "asks no questions",
        lambda: wrap_up.complete("debrief", "ann", answers={"1": "x"}),
    )
    step = reopen(wrap_up).state.steps["lessons"]
    assert list(step.answers.items()) == [
        ("What happened?", "a web shell"),
        ("What would we change?", "patch sooner"),
    ]
    assert step.note == "held Monday" and step.by == "cy"


def test_action_items_have_an_owner(wrap_up: IncidentSession) -> None:
    refused(wrap_up, "needs an owner", lambda: wrap_up.assign_action_item("patch", " ", "ann"))
    refused(wrap_up, "needs text", lambda: wrap_up.assign_action_item(" ", "ben", "ann"))
    wrap_up.assign_action_item(" patch the upload handler ", "ben", "ann", date(2026, 11, 28))
    wrap_up.assign_action_item("new WAF rule", "cy", "ann")
    items = reopen(wrap_up).state.action_items
    assert [(i.text, i.owner, i.due, i.by) for i in items] == [
        ("patch the upload handler", "ben", "2026-11-28", "ann"),
        ("new WAF rule", "cy", None, "ann"),
    ]


def test_a_meeting_records_outcomes_only_for_its_agenda(wrap_up: IncidentSession) -> None:
    wrap_up.open_meeting("debrief", "ann")
    refused(
        wrap_up,
        "no topic 'weather' \\(threat, strategy, reconvene, postmortem\\)",
        lambda: wrap_up.close_meeting("ann", {"weather": "fine"}),
    )
    closed = wrap_up.close_meeting("ann", {"threat": "web shell", "strategy": "contain"})
    assert closed.data["outcomes"] == {"threat": "web shell", "strategy": "contain"}
    assert reopen(wrap_up).state.meeting is None


def test_a_question_asked_twice_is_a_runbook_error(tmp_path: Path) -> None:
    twice = WRAP_UP_RUNBOOK.replace('"What would we change?"', '"What happened?"')
    (tmp_path / "twice.yaml").write_text(twice)
    with pytest.raises(InvalidFile) as caught:
        load_runbook(tmp_path / "twice.yaml")
    (problem,) = caught.value.problems
    assert "question asked twice: 'What happened?'" in str(problem)
    assert str(problem).startswith(f"{tmp_path / 'twice.yaml'}:")
