"""Scope as it changes, from the incident screen: a host the inventory did not know is added
to the fleet (checked as inventory.yaml is, each problem on its own line), the next run
reaches it, and a one-off command collects from it with the same custody, marked ad hoc."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input, RadioButton, TextArea

from irtool.engine.session import IncidentSession
from irtool.tui.app import IrtoolApp
from irtool.tui.commands.adhoc import AdHocPrompt
from irtool.tui.commands.scope import ScopePrompt
from irtool.tui.screens.confirm import ConfirmAction
from irtool.tui.screens.incident import IncidentScreen
from irtool.tui.screens.run import RunScreen
from tests.support.live import live_incident, live_journal
from tests.support.tui import opened, screen_text, wait_for

pytestmark = pytest.mark.usefixtures("live_home")


async def test_a_new_host_joins_the_fleet_and_the_next_run_reaches_it(tmp_path: Path) -> None:
    incident = live_incident(tmp_path)
    session = IncidentSession.open(incident)
    session.complete("assess", "ann")
    session.decide("is-compromise", "confirmed", "ann")
    session.set_parameter("attacker_ip", ["203.0.113.7"], "ann", "triage")
    session.close_journal()
    app = IrtoolApp(actor="ann", incident=incident)
    async with app.run_test(size=(110, 40)) as pilot:
        await opened(pilot)
        await pilot.press("S")
        form = app.screen
        assert isinstance(form, ScopePrompt)
        assert not form.query_one("#new-host").display  # nothing to ask for a known host
        await pilot.press(*"web03", "enter", *"fleet", "enter")
        assert form.query_one("#new-host").display  # not in the inventory: how to reach it
        form.query_one("#local", RadioButton).value = True
        form.query_one("#address", Input).value = "127.0.0.1"
        form.query_one("#port", Input).value = "70000"
        form.query_one("#host_key", Input).value = "not a key"
        form.query_one("#reason", Input).value = "same app pool as web01"
        await pilot.press("ctrl+s")
        text = screen_text(app)
        assert "port: Input should be less than or equal to 65535" in text
        assert "host_key: host_key must be a public key" in text  # each on its own line
        assert app.screen is form  # nothing written
        form.query_one("#port", Input).value = ""
        form.query_one("#host_key", Input).value = ""
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, IncidentScreen), what="the hub")
        # The sweep, run now, reaches web03 too.
        await wait_for(pilot, lambda: app.screen.selected == "sweep", what="the sweep selected")
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen), what="the run")
        run = app.screen
        assert isinstance(run, RunScreen)
        await wait_for(pilot, lambda: run.report is not None, what="the run's end")
        assert sorted(run.report.results) == ["web01", "web02", "web03"]  # type: ignore[union-attr]
    with live_journal(tmp_path, incident) as j:
        scoped = [e.data for e in j.events() if e.kind == "scope.changed"]
    assert len(scoped) == 1
    change = scoped[0]
    assert (change["host"], change["group"], change["change"]) == ("web03", "fleet", "add")
    assert change["new_host"]["address"] == "127.0.0.1"
    assert change["new_host"]["transport"] == "local"


async def test_a_one_off_command_collects_from_the_chosen_host(tmp_path: Path) -> None:
    incident = live_incident(tmp_path)
    app = IrtoolApp(actor="ann", incident=incident)
    async with app.run_test(size=(110, 40)) as pilot:
        await opened(pilot)
        await pilot.press("x")
        form = app.screen
        assert isinstance(form, AdHocPrompt)
        await pilot.press("down", "space")  # web02 only
        form.query_one("#command", TextArea).text = "echo ad-hoc-on-$(hostname)\necho second"
        form.query_one("#reason", Input).value = "is the module on web02 too?"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen), what="the run")
        run = app.screen
        assert isinstance(run, RunScreen)
        await wait_for(pilot, lambda: run.report is not None, what="the run's end")
        assert list(run.report.results) == ["web02"]  # type: ignore[union-attr]
        await wait_for(pilot, lambda: "second" in screen_text(app), what="its output")
    with live_journal(tmp_path, incident) as j:
        ran = [e for e in j.events() if e.kind == "command.ran"]
    assert len(ran) == 1 and ran[0].host == "web02" and ran[0].step is None
    assert ran[0].data["ad_hoc"] is True
    assert ran[0].data["command"] == "echo ad-hoc-on-$(hostname)\necho second"


async def test_a_one_off_change_goes_through_containments_confirmation(tmp_path: Path) -> None:
    incident = live_incident(tmp_path)
    marker = tmp_path / "ad-hoc-blocked"
    app = IrtoolApp(actor="ann", incident=incident)
    async with app.run_test(size=(110, 40)) as pilot:
        await opened(pilot)
        await pilot.press("x")
        form = app.screen
        assert isinstance(form, AdHocPrompt)
        await pilot.press("space")  # web01
        form.query_one("#command", TextArea).text = f"touch {marker}"
        await pilot.click("#changes")
        await pilot.press("ctrl+s")
        assert "a change needs its rollback command" in screen_text(app)
        form.query_one("#rollback", Input).value = f"rm {marker}"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmAction), what="confirmation")
        assert f"touch {marker}" in screen_text(app)
        await pilot.press(*"web01", "tab", *"block the drop folder", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen), what="the run")
        run = app.screen
        assert isinstance(run, RunScreen)
        await wait_for(pilot, lambda: run.report is not None, what="the run's end")
    assert marker.exists()
    with live_journal(tmp_path, incident) as j:
        started = [e.data for e in j.events() if e.kind == "run.started"]
    assert started[0]["ad_hoc"] is True and started[0]["purpose"] == "action"
    assert started[0]["rollback"] == f"rm {marker}"
