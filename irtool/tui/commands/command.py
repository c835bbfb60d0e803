"""One key of the incident screen (the hub): what it is called, when it applies, what it does.

A command group is a module holding `COMMANDS: list[Command]` and the functions they run; the
hub lists the groups, and builds its keys, its footer and its availability checks from them.
A command's function takes the hub (`Incident`, below), never the incident screen's class, so
no module here imports the screen that imports it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from textual.binding import Binding

from irtool.tui.commands.hub import Hub

if TYPE_CHECKING:
    from textual.screen import Screen

    from irtool.journal import Event
    from irtool.model.plan import PlanRow
    from irtool.model.steps import ActionStep
    from irtool.tui.screens.run import Transports


class Incident(Hub, Protocol):
    """The hub as its own commands see it: the shared protocol, and what runs and views need."""

    transports: Transports
    plan: dict[str, dict[str, list[PlanRow]]]
    events: list[Event] | None  # every event, once the timeline has read them

    def poll(self) -> None: ...

    def sync_offline(self) -> None: ...

    def follow_on(self) -> None: ...

    def push(self, screen: Screen[Any], then: Callable[[Any], None] | None = None) -> None: ...

    def confirm(self, spec: ActionStep, rollback: bool, hosts: list[str] | None = None) -> None: ...


# When a command applies: True (on its key, in the footer); False (hidden, its key does
# nothing); or a sentence saying why not (hidden, and its key says the sentence).
Applies = Callable[[Incident], bool | str]


def always(hub: Incident) -> bool | str:
    return True


@dataclass(frozen=True)
class Command:
    key: str
    action: str  # the hub's `action_<action>` runs it
    label: str  # in the footer, or the key bar under the events
    run: Callable[[Incident], None]
    applies: Applies = always
    tooltip: str = ""  # the command palette's name for it
    footer: bool = True  # False: a rarer command, shown in the key bar instead
    after_close: bool = False  # still applies once the incident is closed
    id: str = ""  # the binding id a keymap names, `incident.<id>`; the action's name if blank

    def binding(self) -> Binding:
        return Binding(
            self.key,
            self.action,
            self.label,
            id=f"incident.{self.id or self.action}",
            show=self.footer,
            tooltip=self.tooltip or self.label,
        )
