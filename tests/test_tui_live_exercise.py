"""In an exercise, the facilitator puts a host in `affected` as an inject demands ("a second
server shows the same module"), with the same scope form the responders use."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input, RadioButton

from irtool.exercise.setup import load_exercise
from irtool.journal import Journal
from irtool.journal.incidents import journal_path
from irtool.tui.app import IrtoolApp
from irtool.tui.commands.scope import ScopePrompt
from irtool.tui.screens.facilitator import FacilitatorScreen, ReviewScreen
from irtool.tui.screens.incident import IncidentScreen
from tests.support.clock import Clock
from tests.support.drill import CONTACTS, RUNBOOK, drill_scenario
from tests.support.tui import screen_text, wait_for

pytestmark = pytest.mark.usefixtures("live_home")


async def test_the_facilitator_adds_a_host_to_affected(tmp_path: Path) -> None:
    (tmp_path / "drill.yaml").write_text(RUNBOOK)
    (tmp_path / "contacts.yaml").write_text(CONTACTS)
    (tmp_path / "scenario.yaml").write_text(drill_scenario(tmp_path))
    exercise, _ = load_exercise(
        tmp_path / "drill.yaml", tmp_path / "scenario.yaml", tmp_path / "contacts.yaml"
    )
    app = IrtoolApp(actor="fiona", exercise=exercise, clock=Clock())
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ReviewScreen), what="briefing")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, IncidentScreen), what="incident")
        incident = app.screen
        assert isinstance(incident, IncidentScreen)
        await pilot.press("f")
        assert isinstance(app.screen, FacilitatorScreen)
        await pilot.press("a")
        form = app.screen
        assert isinstance(form, ScopePrompt)
        assert "Scope: add a host to affected" in screen_text(app)
        await pilot.press(*"web03", "enter")
        form.query_one("#ssh", RadioButton).value = True
        form.query_one("#address", Input).value = "192.0.2.13"
        form.query_one("#reason", Input).value = "inject: a second server shows the module"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, FacilitatorScreen), what="back")
        inventory = incident.state.inventory
        assert inventory is not None and "affected" in inventory.groups_of("web03")
        state_id = incident.state.id
    with Journal(journal_path(state_id), state_id) as journal:
        scoped = [e for e in journal.events() if e.kind == "scope.changed"]
    assert [(e.actor, e.data["host"], e.data["group"]) for e in scoped] == [
        ("fiona", "web03", "affected")
    ]
