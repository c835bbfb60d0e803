"""The incident's indicators, from the incident screen: listed by kind, added (checked as the
engine checks them) and removed, each with a reason the timeline keeps."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, Input

from irtool.journal import Journal
from irtool.tui.app import IrtoolApp
from irtool.tui.commands.indicators import IndicatorPrompt, IndicatorsScreen
from irtool.tui.screens.prompts import TextPrompt
from tests.support.live import live_incident
from tests.support.tui import opened, screen_text, wait_for

SHELL_SHA = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08"


pytestmark = pytest.mark.usefixtures("live_home")


async def test_indicators_are_added_by_kind_and_removed_with_a_reason(tmp_path: Path) -> None:
    incident = live_incident(tmp_path)
    app = IrtoolApp(actor="ann", incident=incident)
    async with app.run_test(size=(110, 34)) as pilot:
        await opened(pilot)
        await pilot.press("I")
        panel = app.screen
        assert isinstance(panel, IndicatorsScreen)
        assert "none yet: a adds one" in screen_text(app)
        # An address, mistyped first: the form says why and keeps what was typed.
        await pilot.press("a")
        assert isinstance(app.screen, IndicatorPrompt)
        await pilot.press("enter", *"203.0.113.700", "enter", *"W3C log, 02:10", "enter")
        assert "'203.0.113.700' is not an IP address" in screen_text(app)
        app.screen.query_one("#value", Input).value = "203.0.113.7"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen is panel, what="the panel")
        # The web shell's hash: the kind chosen from the list.
        await pilot.press("a", "down", "down", "down", "down", "enter")
        app.screen.query_one("#value", Input).value = SHELL_SHA
        await pilot.press("enter", *"hash of shell.aspx", "enter")
        await wait_for(pilot, lambda: app.screen is panel, what="the panel")
        text = screen_text(app)
        assert "203.0.113.7" in text and SHELL_SHA.lower() in text and "2 indicator(s)" in text
        # Removed: the address turned out to be the company's proxy.
        await pilot.press("d")
        assert isinstance(app.screen, TextPrompt)
        assert "Remove the ip 203.0.113.7" in screen_text(app)
        await pilot.press(*"our own proxy", "enter")
        await wait_for(pilot, lambda: "1 indicator(s)" in screen_text(app), what="the removal")
        table = panel.query_one("#iocs", DataTable)
        assert [str(table.get_row_at(0)[1])] == [SHELL_SHA.lower()]
    path = tmp_path / "home" / "incidents" / incident / "journal.sqlite"
    with Journal(path, incident) as j:
        changes = [(e.kind, e.data["kind"], e.data["value"], e.data["reason"])
                   for e in j.events() if e.kind.startswith("ioc.")]  # fmt: skip
    assert changes == [
        ("ioc.added", "ip", "203.0.113.7", "W3C log, 02:10"),
        ("ioc.added", "sha256", SHELL_SHA.lower(), "hash of shell.aspx"),
        ("ioc.removed", "ip", "203.0.113.7", "our own proxy"),
    ]
