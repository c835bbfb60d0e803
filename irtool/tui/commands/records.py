"""What the incident records whichever step is selected: a note (n), the time to reconvene (g),
a handover of command (h), closing the incident (X, its form in `closing`)."""

from __future__ import annotations

from datetime import datetime, timedelta

from irtool.model.when import parse_when
from irtool.tui.commands import closing
from irtool.tui.commands.command import Command, Incident
from irtool.tui.screens.prompts import NoteEntry, NotePrompt, TextPrompt
from irtool.tui.screens.prompts import Text as Typed


def note(hub: Incident) -> None:
    def noted(result: NoteEntry | None) -> None:
        if result:
            hub.write(lambda s: s.note(result.text, hub.actor, result.at))

    hub.push(NotePrompt("Note for the timeline", ok="Add", clock=hub.clock), noted)


def handover(hub: Incident) -> None:
    def handed(result: Typed | None) -> None:
        if result:
            hub.write(lambda s: s.handover(result.text, hub.actor))

    title = f"Hand over incident command (now {hub.state.commander})"
    hub.push(TextPrompt(title, "To:", ok="Hand over"), handed)


def ahead(text: str, now: datetime) -> datetime:
    """A time to meet again as typed: 30m, 1h, 19:30 (today), or a bare number of minutes."""
    text = text.strip()
    if text.isascii() and text.isdecimal():
        return now + timedelta(minutes=int(text))
    at = parse_when(text, now, ahead=True)
    if at <= now:
        raise ValueError(f"'{text}' has passed: give a time still to come (30m, 1h, 19:30)")
    return at


def reconvene(hub: Incident) -> None:
    def chosen(result: Typed | None) -> None:
        if not result:
            return
        try:
            at = ahead(result.text, hub.clock())
        except ValueError as bad:
            hub.app.notify(str(bad), severity="error")
            return
        hub.write(lambda s: s.set_reconvene(at, hub.actor))

    label = "When (30m, 1h, 19:30 today, or a number of minutes):"
    hub.push(TextPrompt("Time to reconvene", label), chosen)


COMMANDS = [
    Command("n", "note", "Note", note, tooltip="Add a note to the timeline", after_close=True),
    # Rarer commands: in the key bar, the palette and on their keys, not the footer.
    Command(
        "g", "reconvene", "Reconvene", reconvene, tooltip="Set the time to reconvene", footer=False
    ),
    Command(
        "h", "handover", "Hand over", handover, tooltip="Hand over incident command", footer=False
    ),
    Command(
        "X",
        "close_incident",
        "Close",
        closing.close,  # what is still open is listed; closing over it needs a reason
        tooltip="Close the incident",
        footer=False,
        id="close",
    ),
]
