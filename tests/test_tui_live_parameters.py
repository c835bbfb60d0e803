"""Parameters learned as the incident unfolds, from the incident screen: set one mid-incident
and the step's commands are drawn again with it; run a step that needs one not yet set and
the form asks for it (typed and checked) before the run goes on."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input, TextArea

from irtool.engine.session import IncidentSession
from irtool.journal import Journal
from irtool.tui.app import IrtoolApp
from irtool.tui.commands.parameters import ParameterPrompt, PickParameter, split_values
from irtool.tui.screens.incident import IncidentScreen
from irtool.tui.screens.run import RunScreen
from irtool.tui.widgets.steps import StepList
from tests.support.live import live_incident
from tests.support.tui import opened, screen_text, wait_for

pytestmark = pytest.mark.usefixtures("live_home")


def events(tmp_path: Path, incident: str, kind: str) -> list[dict[str, object]]:
    with Journal(tmp_path / "home" / "incidents" / incident / "journal.sqlite", incident) as j:
        return [e.data for e in j.events() if e.kind == kind]


async def test_a_parameter_set_mid_incident_redraws_the_steps_commands(tmp_path: Path) -> None:
    incident = live_incident(tmp_path)
    app = IrtoolApp(actor="ann", incident=incident)
    async with app.run_test(size=(110, 34)) as pilot:
        await opened(pilot)
        await pilot.press("down", "down")  # the sweep: its command uses attacker_ip
        assert "looking-for 203.0.113.9" not in screen_text(app)
        await pilot.press("P")
        assert isinstance(app.screen, PickParameter)
        text = screen_text(app)
        assert "attacker_ip (ip) = unset" in text and "suspect_files (path list) = unset" in text
        await pilot.press("enter")  # the first: attacker_ip
        assert isinstance(app.screen, ParameterPrompt)
        assert "Where the attack comes from" in screen_text(app) and "now: unset" in screen_text(
            app
        )
        await pilot.press(*"203.0.113.900", "enter", *"seen in the W3C log", "enter")
        assert "'203.0.113.900' is not an IP address" in screen_text(app)  # checked, not sent
        app.screen.query_one("#value", Input).value = "203.0.113.9"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, IncidentScreen), what="the hub")
        await wait_for(
            pilot, lambda: "looking-for '203.0.113.9' on 'web01'" in screen_text(app), what="redraw"
        )
        # Amended later: the plan follows, and the timeline keeps both values and why.
        await pilot.press("P", "enter")
        app.screen.query_one("#value", Input).value = "198.51.100.4"
        app.screen.query_one("#reason", Input).value = "the first was a proxy"
        await pilot.press("ctrl+s")
        await wait_for(
            pilot, lambda: "looking-for '198.51.100.4' on 'web01'" in screen_text(app), what="amend"
        )
        # A list parameter takes several values, one per line.
        await pilot.press("P", "down", "enter")
        area = app.screen.query_one("#value", TextArea)
        area.text = "/inetpub/wwwroot/shell.aspx\n/inetpub/wwwroot/up.aspx"
        app.screen.query_one("#reason", Input).value = "two uploads in the log"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, IncidentScreen), what="the hub")
    sets = events(tmp_path, incident, "parameter.set")
    assert [(s["name"], s["value"], s["previous"], s["reason"]) for s in sets] == [
        ("attacker_ip", "203.0.113.9", None, "seen in the W3C log"),
        ("attacker_ip", "198.51.100.4", "203.0.113.9", "the first was a proxy"),
        (
            "suspect_files",
            ["/inetpub/wwwroot/shell.aspx", "/inetpub/wwwroot/up.aspx"],
            None,
            "two uploads in the log",
        ),
    ]


async def test_running_a_step_asks_first_for_the_parameter_it_needs(tmp_path: Path) -> None:
    incident = live_incident(tmp_path)
    session = IncidentSession.open(incident)
    session.complete("assess", "ann")
    session.decide("is-compromise", "confirmed", "ann")
    session.close_journal()
    app = IrtoolApp(actor="ann", incident=incident)
    async with app.run_test(size=(110, 34)) as pilot:
        await opened(pilot)
        await wait_for(pilot, lambda: app.screen.selected == "sweep", what="the sweep selected")
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ParameterPrompt), what="the ask")
        assert "sweep needs attacker_ip before it runs" in screen_text(app)
        assert app.screen.query_one("#reason", Input).value == "needed to run sweep"
        await pilot.press(*"203.0.113.7", "ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen), what="the run")
        run = app.screen
        await wait_for(pilot, lambda: run.report is not None, what="the run's end")
        await wait_for(
            pilot, lambda: "looking-for 203.0.113.7 on web01" in screen_text(app), what="output"
        )
    ran = events(tmp_path, incident, "command.ran")
    assert sorted(str(r["command"]) for r in ran) == [
        "echo looking-for '203.0.113.7' on 'web01'",
        "echo looking-for '203.0.113.7' on 'web02'",
    ]


def test_several_values_are_typed_one_per_line_or_separated_by_commas() -> None:
    assert split_values("a, b ,c") == ["a", "b", "c"]
    # A line of its own may hold commas: a user agent does.
    assert split_values("Mozilla/5.0 (X11, Linux)\ncurl/8.0\n") == [
        "Mozilla/5.0 (X11, Linux)",
        "curl/8.0",
    ]
    assert split_values("  ") == []


async def test_the_run_asked_for_stays_on_its_step_once_the_parameter_is_set(
    tmp_path: Path,
) -> None:
    incident = live_incident(tmp_path)
    session = IncidentSession.open(incident)
    session.complete("assess", "ann")
    session.decide("is-compromise", "confirmed", "ann")
    session.complete("sweep", "ann", "looked by hand on the console")  # no run, no address yet
    session.close_journal()
    app = IrtoolApp(actor="ann", incident=incident)
    async with app.run_test(size=(110, 34)) as pilot:
        await opened(pilot)
        screen = app.screen
        assert isinstance(screen, IncidentScreen)
        await wait_for(pilot, lambda: screen.selected == "listeners", what="the next step")
        steps = screen.query_one(StepList)
        steps.highlighted = steps.get_option_index("sweep")
        await pilot.press("r")  # run the sweep after all: it needs the address first
        await wait_for(pilot, lambda: isinstance(app.screen, ParameterPrompt), what="the ask")
        await pilot.press(*"203.0.113.7", "ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen), what="the run")
        run = app.screen
        assert isinstance(run, RunScreen)
        assert run.request.step == "sweep"
        await wait_for(pilot, lambda: run.report is not None, what="the run's end")
