"""Driving the terminal UI in tests: what the screen shows, and waiting for it to show something."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from textual.app import App
from textual.pilot import Pilot

if TYPE_CHECKING:
    from irtool.tui.screens.incident import IncidentScreen as IncidentScreenType


def screen_text(app: App[object]) -> str:
    """The text of the top screen as the terminal would show it (no colours)."""
    # The compositor is private, but it is exactly what reaches the terminal; widget
    # renderables would miss layout, truncation and what is hidden behind a modal.
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


async def wait_for(
    pilot: Pilot[object], condition: Callable[[], object], timeout: float = 30, what: str = ""
) -> None:
    """Let the app run until `condition()` holds; fail with the screen if it never does."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out waiting for {what or condition}:\n{screen_text(pilot.app)}"
            )
        await pilot.pause(0.05)


def notifications(app: App[object]) -> list[str]:
    return [n.message for n in app._notifications]


async def opened(pilot: Pilot[object]) -> None:
    """Wait for `irtool open`'s incident screen: the journal is folded in a worker first."""
    from irtool.tui.screens.incident import IncidentScreen
    from irtool.tui.widgets.steps import StepList

    # Pushed is not drawn: under load its widgets mount a little later, and a test that
    # queries them at once would fail for no fault of the screen.
    await wait_for(
        pilot,
        lambda: (
            isinstance(pilot.app.screen, IncidentScreen) and bool(pilot.app.screen.query(StepList))
        ),
        what="incident",
    )


async def select_step(pilot: Pilot[object], step: str) -> IncidentScreenType:
    """Select `step` on the incident screen in front, once its steps are drawn."""
    from irtool.tui.screens.incident import IncidentScreen
    from irtool.tui.widgets.steps import StepList

    screen = pilot.app.screen
    assert isinstance(screen, IncidentScreen)
    await wait_for(pilot, lambda: screen.selected, what="the steps drawn")
    steps = screen.query_one(StepList)
    steps.highlighted = steps.get_option_index(step)
    await wait_for(pilot, lambda: screen.selected == step, what=step)
    return screen
