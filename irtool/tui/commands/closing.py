"""Closing the incident: what is still open is listed (containment applied, open action items,
unanswered post-mortem questions, runs pending or interrupted), and closing over any of it
needs a reason the timeline keeps. Notes, action items and answers can still follow."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.widgets import Input, Label, Static

from irtool.engine.closing import open_items
from irtool.model.untrusted import visible
from irtool.tui.commands.hub import Hub
from irtool.tui.screens.prompts import Prompt


@dataclass(frozen=True)
class Closing:
    summary: str
    over: str  # why it closes over what is still open; "" when nothing is


class ClosePrompt(Prompt[Closing]):
    """The summary, and, when something is still open, the reason to close over it."""

    DEFAULT_CSS = "ClosePrompt #open { color: $warning; height: auto; margin: 0 0 1 0; }"

    def __init__(self, still_open: list[str]) -> None:
        count = len(still_open)
        title = f"Close the incident: {count} thing(s) still open" if count else "Close"
        super().__init__(title, "Close incident")
        self.still_open = still_open

    def fields(self) -> ComposeResult:
        if self.still_open:
            lines = "\n".join(f"• {item}" for item in self.still_open)
            yield Static(visible(lines, lines=True), id="open", markup=False)
        yield Label("Summary:")
        yield Input(placeholder="what happened, and how it ended", id="summary")
        if self.still_open:
            yield Label("Close over what is still open, because:")
            yield Input(placeholder="who follows them up, and where", id="over")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == ("over" if self.still_open else "summary"):
            self.action_submit()
        else:
            self.focus_next()

    def submit(self) -> Closing | str:
        summary = self.query_one("#summary", Input).value.strip()
        if not summary:
            return "a summary is needed"
        over = self.query_one("#over", Input).value.strip() if self.still_open else ""
        if self.still_open and not over:
            return "say why the incident closes with these still open"
        return Closing(summary, over)


def close(hub: Hub) -> None:
    """X: close the incident, over what is still open if the team says why."""

    def closed(result: Closing | None) -> None:
        if result:
            hub.write(lambda s: s.close(hub.actor, result.summary, over=result.over))

    # As the engine counts them: custody records still in the spool are open too.
    still_open = open_items(hub.state, len(hub.session.spool.pending()))
    hub.app.push_screen(ClosePrompt(still_open), closed)
