"""The incident at a glance: LIVE or EXERCISE, id, runbook, elapsed, commander, reconvene."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from rich.text import Text
from textual.widgets import Static

from irtool.journal.events import parse_moment
from irtool.model.untrusted import visible

if TYPE_CHECKING:
    from irtool.engine.state import IncidentState


def clock_text(seconds: float) -> str:
    seconds = int(abs(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"


def badge(mode: str) -> Text:
    if mode == "exercise":
        return Text(" EXERCISE ", style="bold black on yellow")
    return Text(" LIVE ", style="bold white on red")


class IncidentHeader(Static):
    """Two lines; the mode badge is the first thing on screen and cannot be missed."""

    DEFAULT_CSS = """
    IncidentHeader { height: 2; background: $panel; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def show(self, state: IncidentState, now: datetime, connection: str | None = None) -> None:
        """`connection`: where a team incident's writes go (the journal's words); None for an
        incident of this machine alone."""
        line1 = Text.assemble(badge(state.mode), " ")
        if connection:  # before the title, which is what gets cut: offline must be seen
            offline = connection.startswith("OFFLINE")
            line1.append(
                f" {visible(connection)} ", "bold black on dark_orange" if offline else "dim"
            )
            line1.append(" ")
        line1.append(visible(state.title), "bold")
        if state.closed:
            line1.append("  CLOSED", style="bold reverse")
        # Most important first: at 80 columns the runbook is what gets cut.
        line2 = Text.assemble((visible(state.id), "bold"), no_wrap=True)
        if state.closed_at:  # a closed incident's clocks stop where it was closed
            now = min(now, parse_moment(state.closed_at))
        if state.exercise:  # the exercise clock: what the scenario's times mean
            played = state.exercise
            line2.append(f"  T+{clock_text(played.elapsed(now).total_seconds())}")
            if played.speed != 1:
                line2.append(f" {played.speed:g}x", style="bold")
            if played.paused_at:
                line2.append(" PAUSED", style="bold reverse")
        else:
            line2.append(f"  T+{clock_text((now - parse_moment(state.opened_at)).total_seconds())}")
        line2.append("  IC ")
        line2.append(visible(state.commander), style="bold")
        if state.reconvene_at and not state.closed:
            left = (parse_moment(state.reconvene_at) - now).total_seconds()
            if left >= 0:
                line2.append(f"  reconvene in {clock_text(left)}")
            else:
                line2.append(f"  reconvene OVERDUE {clock_text(left)}", style="bold red")
        line2.append(f"  {state.runbook.id} v{state.runbook.version}", style="dim")
        line1.no_wrap = True
        line1.overflow = line2.overflow = "ellipsis"
        line1.justify = line2.justify = "left"
        self.update(Text("\n", no_wrap=True, justify="left").join([line1, line2]))
