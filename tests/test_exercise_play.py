"""A whole scenario played headless on a controlled clock: injects fire in order, the clock
pauses, simulated hosts answer (and hang), nothing is performed, and the after-action figures
come out exactly as the journal says they should."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from irtool.engine.runner import Runner
from irtool.engine.session import IncidentSession, Refused
from irtool.evidence.store import EvidenceStore
from irtool.exercise import director
from irtool.exercise.review import clock, review
from irtool.exercise.setup import load_exercise, open_exercise
from irtool.exercise.transports import transports_for
from irtool.export.markdown import review_markdown
from irtool.journal.incidents import EVIDENCE_DIR, incident_dir
from irtool.model.plan import resolve_parameters
from tests.support.clock import Clock
from tests.support.drill import CONTACTS, RUNBOOK, drill_scenario


@pytest.fixture
def played(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[IncidentSession, Clock, Path]:
    monkeypatch.setenv("IRTOOL_HOME", str(tmp_path / "home"))
    markers = tmp_path / "markers"
    markers.mkdir()
    (tmp_path / "drill.yaml").write_text(RUNBOOK)
    (tmp_path / "contacts.yaml").write_text(CONTACTS)
    (tmp_path / "scenario.yaml").write_text(drill_scenario(markers))
    exercise, warnings = load_exercise(
        tmp_path / "drill.yaml", tmp_path / "scenario.yaml", tmp_path / "contacts.yaml"
    )
    assert not warnings
    time = Clock(datetime(2026, 11, 21, 2, 0, tzinfo=UTC))
    values = resolve_parameters(exercise.context.runbook.model, exercise.parameters({}))
    session = open_exercise(exercise, values, "ann", clock=time)
    return session, time, markers


def runner(session: IncidentSession, actor: str, time: Clock) -> Runner:
    store = EvidenceStore(incident_dir(session.state.id) / EVIDENCE_DIR)
    # A live transport here would be a bug: the exercise must never ask for one.
    transports = transports_for(session.state, lambda: pytest.fail("live transports built"))
    return Runner(session, transports, store, actor, clock=time)


def tick(session: IncidentSession, time: Clock, seconds: float) -> list[str]:
    return [e.data["id"] for e in director.tick(session, "ann", time.at(seconds))]


def test_a_whole_scenario_plays_in_order_and_the_review_has_the_right_figures(
    played: tuple[IncidentSession, Clock, Path],
) -> None:
    session, time, markers = played
    assert session.state.mode == "exercise"

    # Activation: security's primary does not answer, the backup does.
    assert tick(session, time, 30) == []  # T+5:00, nothing due yet
    session.complete("assess", "ann")
    session.reach("security", "ann", "no-answer", "ann")
    session.reach("security", "ben", "reached", "ann")
    session.reach("server-management", "ben", "reached", "ann")
    time.at(48)
    session.complete("call-team", "ann")  # T+8:00 on the exercise clock (10x)

    assert tick(session, time, 59) == []  # T+9:50
    assert tick(session, time, 60) == ["defaced"]  # T+10:00 exactly
    assert tick(session, time, 61) == []  # fired once only

    # The facilitator pauses for a minute of discussion: nothing fires, the clock stands.
    time.at(70)
    session.pause_clock("fiona", "discussion")
    assert tick(session, time, 130) == []
    assert session.state.exercise is not None
    assert session.state.exercise.elapsed(time()) == timedelta(minutes=11, seconds=40)
    session.resume_clock("fiona")

    time.at(140)
    session.decide("is-compromise", "confirmed", "ann")

    # Triage on the simulated hosts: web02 hangs on one collector and fails alone.
    time.at(150)
    report = runner(session, "ann", time).run("collect-state")
    assert sorted(report.failed) == ["web02"]
    assert "timeout" in report.failed["web02"].why()
    root = next(e for e in session.state.evidence if e.host == "web01" and e.item == "root")
    kept = incident_dir(session.state.id) / EVIDENCE_DIR / root.files["stdout"]["sha256"]
    assert "203.0.113.9:51234 cmd.exe" in kept.read_text()
    assert root.identity == "simulated host (exercise: no connection was made)"

    time.at(160)
    session.handle_inject("defaced", "ben", "holding page up, help desk briefed")
    time.at(170)
    session.complete("collect-state", "ann", note="web02 by hand")  # T+18:20

    # 'second-server' is due 5 minutes (exercise) after collect-state: T+23:20 = wall 200 s.
    assert tick(session, time, 199) == []
    assert tick(session, time, 200) == ["second-server"]

    # Containment: two people, then the simulated hosts acknowledge without performing.
    time.at(205)
    session.request_action("block", "ann", "web shell confirmed")
    session.approve("block", "ben")
    time.at(210)
    applied = runner(session, "ann", time).run("block")
    assert applied.completed_step and not applied.failed
    assert list(markers.iterdir()) == []  # nothing was performed anywhere
    action = next(e for e in session.state.evidence if e.purpose == "action")
    said = incident_dir(session.state.id) / EVIDENCE_DIR / action.files["stdout"]["sha256"]
    assert said.read_text().startswith("EXERCISE: containment acknowledged, not performed on")
    assert tick(session, time, 210) == ["back"]  # right after the step it waits for

    time.at(220)
    session.skip("wrap-up", "ann", "out of time")
    time.at(225)
    session.observe("The IC never named a scribe.", "fiona")
    time.at(230)
    session.close("ann", "exercise over", over="the exercise ends with the block in place")

    exercise = session.state.exercise
    assert list(exercise.fired) == ["defaced", "second-server", "back"]
    assert [f.why for f in exercise.fired.values()] == ["scheduled"] * 3

    found = review(session.state)
    assert found.paused == timedelta(minutes=1)
    assert clock(found.length.exercise) == "0:28:20" and clock(found.length.wall) == "0:03:50"
    figures = {m.what: m for m in found.milestones}
    assert figures["Team activated"].span is not None
    assert clock(figures["Team activated"].span.exercise) == "0:08:00"
    assert clock(figures["Team activated"].span.wall) == "0:00:48"
    assert clock(figures["First evidence"].span.exercise) == "0:15:00"  # type: ignore[union-attr]
    assert clock(figures["First containment"].span.exercise) == "0:25:00"  # type: ignore[union-attr]
    assert clock(figures["First containment"].span.wall) == "0:03:30"  # type: ignore[union-attr]
    took = {i.id: (clock(i.fired.exercise), clock(i.took), i.how) for i in found.injects}
    assert took == {
        "defaced": ("0:10:00", "0:06:40", "holding page up, help desk briefed"),
        "second-server": ("0:23:20", "0:01:40", "step 'block' finished"),
        "back": ("0:25:00", "–", ""),
    }
    assert found.not_fired == [("never", "The regulator calls")]
    assert found.skipped == [("wrap-up", "Wrap up", "ann", "out of time")]
    assert [(u.role, u.person, u.outcome) for u in found.unanswered] == [
        ("security", "ann", "no-answer")
    ]
    assert found.unreached == []

    text = review_markdown(found)
    assert "| First containment | 0:25:00 | 0:03:30 | block on web0" in text
    assert (
        "| The attacker is back after containment (`back`, scheduled) | security | 0:25:00" in text
    )
    assert "**not handled**" in text
    assert "- `wrap-up` Wrap up: skipped by ann: out of time" in text
    assert "- security: ann, no answer at 0:05:00" in text
    assert "- 0:27:30 fiona: The IC never named a scribe." in text


def test_the_facilitator_fires_now_makes_up_injects_and_a_live_incident_refuses(
    played: tuple[IncidentSession, Clock, Path], tmp_path: Path
) -> None:
    session, time, _ = played
    time.at(5)
    session.fire_inject("never", "fiona")  # scheduled for 5h: the facilitator brings it forward
    assert tick(session, time, 20000) == ["defaced"]  # 'never' is not fired twice
    with pytest.raises(Refused, match="already fired"):
        session.fire_inject("never", "fiona")
    with pytest.raises(Refused, match="needs a title and a role"):
        session.fire_inject("press", "fiona")
    with pytest.raises(Refused, match="no role 'press-office'"):
        session.fire_inject("press", "fiona", title="The press calls", to="press-office")
    session.fire_inject("press", "fiona", title="The press calls", to="security")
    assert session.state.exercise is not None
    assert session.state.exercise.fired["press"].why == "facilitator"
    with pytest.raises(Refused, match="say how"):
        session.handle_inject("press", "ann", " ")
    session.handle_inject("press", "ann", "no comment, statement at noon")
    with pytest.raises(Refused, match="was handled"):
        session.handle_inject("press", "ann", "again")
    session.pause_clock("fiona")
    with pytest.raises(Refused, match="already paused"):
        session.pause_clock("fiona")

    # The same commands on a live incident are refused and write nothing.
    from irtool.model.loader import load_runbook

    live = IncidentSession.new(load_runbook(tmp_path / "drill.yaml"), {}, actor="ann")
    before = live.state.last_seq
    for command in (
        lambda: live.fire_inject("x", "ann", title="t", to="security"),
        lambda: live.pause_clock("ann"),
        lambda: live.observe("x", "ann"),
    ):
        with pytest.raises(Refused, match="is live"):
            command()
    assert live.state.last_seq == before
    with pytest.raises(Refused, match="played from a scenario"):
        IncidentSession.new(load_runbook(tmp_path / "drill.yaml"), {}, actor="a", mode="exercise")


def _through_triage(session: IncidentSession, time: Clock) -> None:
    time.at(10)
    session.complete("assess", "ann")
    session.reach("security", "ann", "reached", "ann")
    session.reach("server-management", "ben", "reached", "ann")
    session.complete("call-team", "ann")


def test_a_block_rolled_back_is_not_the_first_containment(
    played: tuple[IncidentSession, Clock, Path],
) -> None:
    """Issue 16: the review counted a block applied and rolled back a minute later as the
    team's first containment. The first that held is; the one undone is said, with when."""
    session, time, _ = played
    _through_triage(session, time)
    time.at(20)
    session.decide("is-compromise", "confirmed", "ann")
    session.skip("collect-state", "ann", "the shell is plain to see")
    session.request_action("block", "ann", "web shell confirmed")
    session.approve("block", "ben")
    time.at(30)  # T+5:00 at 10x
    runner(session, "ann", time).run("block")
    time.at(36)  # T+6:00
    runner(session, "ann", time).rollback("block", reason="blocked the help desk")

    figures = {m.what: m for m in review(session.state).milestones}
    undone = figures["First containment"]
    assert undone.span is None
    assert undone.detail.startswith("none held: block on web0")
    assert "applied at 0:05:00, rolled back at 0:06:00" in undone.detail

    time.at(42)  # T+7:00: applied again, and it holds
    session.request_action("block", "ann", "the real address this time")
    session.approve("block", "ben")
    runner(session, "ann", time).run("block", reason="the real address this time")
    held = {m.what: m for m in review(session.state).milestones}["First containment"]
    assert held.span is not None and clock(held.span.exercise) == "0:07:00"
    assert "rolled back at 0:06:00" in held.detail
    text = review_markdown(review(session.state))
    assert "| First containment | 0:07:00 | 0:00:42 | block on web0" in text


def test_steps_a_decision_route_went_past_are_listed_as_bypassed_not_skipped(
    played: tuple[IncidentSession, Clock, Path],
) -> None:
    """Issue 16: "steps skipped: none" when "false positive" jumped over the whole evidence
    phase. They were never reached: said apart from the steps the team chose to skip."""
    session, time, _ = played
    _through_triage(session, time)
    time.at(20)
    session.decide("is-compromise", "false-positive", "ann", "a pen test")
    found = review(session.state)
    assert found.skipped == []
    route = "'is-compromise' answered False positive, which goes to 'wrap-up'"
    assert found.bypassed == [
        ("collect-state", "Processes and listeners", route),
        ("block", "Block the attacker", route),
    ]
    text = review_markdown(found)
    assert "### Steps skipped\n\nNone." in text
    assert f"- `collect-state` Processes and listeners: never reached: {route}" in text
    # A step still ahead of the team is not bypassed: 'wrap-up' is where the route leads.
    assert "wrap-up" not in [step for step, _, _ in found.bypassed]
