"""The hosts of a run, from the incident screen: pick some, retry only those that failed last
time, and be told before an action is applied again where it already is."""

from __future__ import annotations

from pathlib import Path

import pytest

from irtool.engine.runner import Runner
from irtool.engine.session import IncidentSession
from irtool.evidence.store import EvidenceStore
from irtool.journal.incidents import EVIDENCE_DIR, incident_dir
from irtool.remote.local import LocalTransport
from irtool.tui.app import IrtoolApp
from irtool.tui.commands.hosts import HostPicker
from irtool.tui.screens.confirm import ConfirmAction
from irtool.tui.screens.run import RunScreen
from tests.support.live import live_incident
from tests.support.tui import opened, screen_text, select_step, wait_for

pytestmark = pytest.mark.usefixtures("live_home")


def reached(tmp_path: Path, *runs: tuple[str, list[str] | None]) -> str:
    """An incident past its decision, with `runs` (step, hosts) already made on this machine,
    each step started early if need be."""
    incident = live_incident(tmp_path)
    session = IncidentSession.open(incident)
    session.complete("assess", "ann")
    session.decide("is-compromise", "confirmed", "ann")
    session.set_parameter("attacker_ip", ["203.0.113.7"], "ann", "triage")
    for step, _ in runs:
        if step not in session.state.available():
            session.start_early(step, "ann", "the team is ahead of the runbook")
    store = EvidenceStore(incident_dir(incident) / EVIDENCE_DIR, create=True)
    runner = Runner(session, {"local": LocalTransport()}, store, "ann")
    for step, hosts in runs:
        runner.run(step, hosts, reason="first try")
    session.close_journal()
    return incident


async def test_retry_runs_again_only_on_the_hosts_that_failed(tmp_path: Path) -> None:
    incident = reached(tmp_path, ("listeners", None))  # web02 fails: its test exits 1
    app = IrtoolApp(actor="ann", incident=incident)
    async with app.run_test(size=(110, 34)) as pilot:
        await opened(pilot)
        await select_step(pilot, "listeners")
        await pilot.press("R")
        picker = app.screen
        assert isinstance(picker, HostPicker)
        assert "web02  (failed last time)" in screen_text(app)
        await pilot.press("f", "ctrl+s")  # tick exactly the failed ones, and run
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen), what="the run")
        run = app.screen
        assert isinstance(run, RunScreen)
        assert run.request.hosts == ["web02"]
        await wait_for(pilot, lambda: run.report is not None, what="the run's end")


async def test_a_run_goes_only_to_the_hosts_picked(tmp_path: Path) -> None:
    incident = reached(tmp_path)
    app = IrtoolApp(actor="ann", incident=incident)
    async with app.run_test(size=(110, 34)) as pilot:
        await opened(pilot)
        await select_step(pilot, "sweep")
        await pilot.press("R")
        assert isinstance(app.screen, HostPicker)
        await pilot.press("space", "ctrl+s")  # untick web01
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen), what="the run")
        run = app.screen
        assert isinstance(run, RunScreen)
        assert run.request.hosts == ["web02"]
        await wait_for(pilot, lambda: run.report is not None, what="the run's end")
        assert list(run.report.results) == ["web02"]  # type: ignore[union-attr]


async def test_reapplying_an_action_where_it_is_applied_is_said_first(tmp_path: Path) -> None:
    incident = reached(tmp_path, ("block", ["web01"]))
    app = IrtoolApp(actor="ann", incident=incident)
    async with app.run_test(size=(110, 34)) as pilot:
        await opened(pilot)
        await select_step(pilot, "block")
        await pilot.press("R")
        picker = app.screen
        assert isinstance(picker, HostPicker)
        assert "web01  (applied)" in screen_text(app)
        # Only where it is not applied yet is ticked to start with.
        assert picker.query_one("#hosts").selected == ["web02"]  # type: ignore[attr-defined]
        await pilot.press("a", "ctrl+s")
        assert "already applied on web01" in screen_text(app)
        assert app.screen is picker
        await pilot.press("ctrl+s")  # said once: again goes on
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmAction), what="confirmation")
        assert "on 2 host(s): web01, web02" in screen_text(app)
