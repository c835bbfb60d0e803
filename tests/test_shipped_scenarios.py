"""Every shipped runbook has a shipped scenario that plays: each collect step gets the scenario's
own answers on every simulated host, hosts fail only where the scenario says so, every action
is acknowledged and not performed, and each inject reaches a role of the runbook."""

from __future__ import annotations

from pathlib import Path

import pytest

from irtool.engine.runner import Runner
from irtool.engine.session import IncidentSession
from irtool.engine.state import Status
from irtool.evidence.store import EvidenceStore
from irtool.exercise.replies import ScenarioHosts
from irtool.exercise.review import review
from irtool.exercise.setup import ExerciseContext, load_exercise, open_exercise
from irtool.exercise.transports import transports_for
from irtool.export.markdown import review_markdown
from irtool.journal.incidents import EVIDENCE_DIR, incident_dir
from irtool.model.loader import Loaded
from irtool.model.plan import resolve_parameters
from irtool.model.scenario import Scenario
from irtool.model.steps import ActionStep, CollectStep, Shell

ROOT = Path(__file__).resolve().parent.parent
RUNBOOKS = sorted((ROOT / "runbooks").glob("*.yaml"))
GENERIC = "EXERCISE: simulated answer from"


def fast(exercise: ExerciseContext) -> ExerciseContext:
    """The same scenario with its clock at the fastest, so the hosts' delays take seconds."""
    loaded = exercise.scenario
    assert isinstance(loaded, Loaded), "a shipped runbook must ship its own scenario"
    quick = loaded.model.model_copy(update={"speed": 120.0})
    return ExerciseContext(
        exercise.context, Loaded(loaded.kind, quick, loaded.doc), exercise.inventory
    )


def planned_failures(scenario: Scenario, session: IncidentSession) -> set[tuple[str, str]]:
    """(host, step) pairs a reply makes fail."""
    inventory = session.state.inventory
    assert inventory is not None
    return {
        (host, reply.step or "*")
        for reply in scenario.replies
        if reply.fail
        for host in inventory.select(reply.hosts)
    }


@pytest.mark.parametrize("runbook", RUNBOOKS, ids=[p.stem for p in RUNBOOKS])
def test_the_shipped_scenario_plays(
    runbook: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IRTOOL_HOME", str(tmp_path / "home"))
    exercise, warnings = load_exercise(runbook)
    assert not exercise.generic and not [w for w in warnings if w.is_error]
    assert exercise.context.contacts is not None, "the scenario names its cast"
    exercise = fast(exercise)
    scenario = exercise.model
    values = resolve_parameters(exercise.context.runbook.model, exercise.parameters({}))
    session = open_exercise(exercise, values, "fiona")
    store = EvidenceStore(incident_dir(session.state.id) / EVIDENCE_DIR)
    runner = Runner(
        session, transports_for(session.state, lambda: pytest.fail("live")), store, "fiona"
    )
    expected = planned_failures(scenario, session)
    for _, step in session.state.runbook.steps():
        if isinstance(step, CollectStep):
            report = runner.run(step.id)
            for host, result in report.failed.items():
                planned = (host, step.id) in expected or (host, "*") in expected
                assert planned, (step.id, host, result.why())
        elif isinstance(step, ActionStep):  # asked directly: the route to each is the team's
            hosts = ScenarioHosts(session.state)
            for host, rows in runner.commands(step.id).items():
                resolved = session.state.inventory.resolve(host)  # type: ignore[union-attr]
                for command in (rows[0].command, rows[0].rollback):
                    if not command:
                        continue
                    answer = hosts.answer(resolved, command, Shell(rows[0].shell or "sh"))
                    if answer.failure is None:
                        assert answer.stdout.decode().startswith(
                            f"EXERCISE: containment acknowledged, not performed on {host}."
                        ) or answer.stdout.decode().startswith("EXERCISE: rollback acknowledged")
                        assert command in answer.stdout.decode()
                    else:
                        assert (host, step.id) in expected, (step.id, host, answer.reason)

    said = {
        (e.host, e.step, e.item, e.purpose): store.path(e.files["stdout"]["sha256"]).read_text()
        for e in session.state.evidence
        if "stdout" in e.files
    }
    assert {e.identity for e in session.state.evidence} == {
        "simulated host (exercise: no connection was made)"
    }
    own = [
        text
        for (_, _, _, purpose), text in said.items()
        if purpose == "collect" and not text.startswith(GENERIC)
    ]
    collected = [k for k in said if k[3] == "collect"]
    # Clean hosts may well answer generically; the story is told by the rest.
    assert len(own) >= 3 and len(own) * 3 >= len(collected), "the scenario's own answers"

    roles = set(session.state.runbook.roles)
    assert scenario.injects and {i.to for i in scenario.injects} <= roles
    for inject in scenario.injects:
        session.fire_inject(inject.id, "fiona")
    text = review_markdown(review(session.state))
    for inject in scenario.injects:
        assert f"(`{inject.id}`, facilitator)" in text


def test_one_command_in_two_steps_is_answered_for_the_step_not_yet_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The patch runbook lists hotfixes with the very same command before and after the patch."""
    monkeypatch.setenv("IRTOOL_HOME", str(tmp_path / "home"))
    exercise, _ = load_exercise(ROOT / "runbooks" / "iis-emergency-patch.yaml")
    values = resolve_parameters(exercise.context.runbook.model, exercise.parameters({}))
    session = open_exercise(exercise, values, "fiona")
    store = EvidenceStore(incident_dir(session.state.id) / EVIDENCE_DIR)
    runner = Runner(session, {}, store, "fiona")
    before = runner.commands("hotfixes-before", ["web01"])["web01"]
    after = runner.commands("hotfixes-after", ["web01"])["web01"]
    command = next(r.command for r in before if r.item == "hotfixes")
    assert command == next(r.command for r in after if r.item == "hotfixes")
    web01 = session.state.inventory.resolve("web01")  # type: ignore[union-attr]
    hosts = ScenarioHosts(session.state)
    assert b"KB5079123" not in hosts.answer(web01, command or "", Shell.POWERSHELL).stdout
    session.state.steps["hotfixes-before"].status = Status.DONE  # as the fold would have it
    assert b"KB5079123" in hosts.answer(web01, command or "", Shell.POWERSHELL).stdout
