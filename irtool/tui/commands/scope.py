"""Scope as it changes: a host added to a group (`affected`, say) or taken out, with a reason.

A host the inventory does not know yet is added with how to reach it (transport, address,
port, credential reference, pinned host key or certificate), checked by the same model that
checks inventory.yaml, so the scope can never hold a host the inventory file would refuse."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.suggester import SuggestFromList
from textual.widgets import Input, Label, RadioButton, RadioSet

from irtool.model.inventory import Inventory, Transport, group_problem, new_host_problems
from irtool.tui.commands.hub import Hub
from irtool.tui.screens.prompts import Prompt

ADD, REMOVE = "add", "remove"
# What a new host's form asks, in order: the inventory key, and the label.
NEW_HOST_FIELDS = [
    ("address", "Address (name or IP):"),
    ("port", "Port (blank: the transport's usual one):"),
    ("user", "User:"),
    ("credential", "Credential reference (a keyring entry, never the password):"),
    ("host_key", "SSH host key or its SHA256: fingerprint:"),
    ("thumbprint", "WinRM certificate thumbprint (SHA-256 hex):"),
]


@dataclass(frozen=True)
class ScopeChange:
    host: str
    group: str
    add: bool
    reason: str
    new_host: dict[str, Any] | None  # the inventory entry of a host not yet in the inventory


def check_new_host(name: str, group: str, entry: dict[str, Any]) -> str | None:
    """What inventory.yaml would say of this host in this group, a line per problem named
    by its key; None when it is fine."""
    found = new_host_problems(name, group, entry)
    return "\n".join(f"{key or 'host'}: {said}" for key, said in found) or None


def check_group(group: str) -> str | None:
    """What inventory.yaml would say of this group's name; None when it is fine."""
    problem = group_problem(group)
    return f"group: {problem}" if problem else None


class ScopePrompt(Prompt[ScopeChange]):
    """Add a host to a group or remove it; a host not yet known comes with how to reach it."""

    DEFAULT_CSS = """
    ScopePrompt RadioSet { margin: 0 0 1 0; }
    ScopePrompt #new-host { height: auto; border-top: solid $panel-lighten-2; }
    ScopePrompt > Vertical { max-height: 100%; }
    """

    def __init__(self, inventory: Inventory | None, group: str = "", add: bool = True) -> None:
        title = (
            f"Scope: add a host to {group}" if group else "Scope: a host joins or leaves a group"
        )
        super().__init__(title, "Change scope")
        self.inventory, self.group, self.add = inventory, group, add
        self.known = list(inventory.hosts) if inventory else []
        self.groups = sorted(inventory.all_groups()) if inventory else []

    def fields(self) -> ComposeResult:
        yield RadioSet(
            RadioButton("add to the group", value=self.add, id=ADD),
            RadioButton("remove from the group", value=not self.add, id=REMOVE),
            id="change",
        )
        yield Label("Host:")
        yield Input(
            placeholder="web03",
            id="host",
            suggester=SuggestFromList(self.known, case_sensitive=False),
        )
        yield Label("Group:")
        yield Input(
            self.group,
            placeholder="a group, such as affected",
            id="group",
            suggester=SuggestFromList(self.groups),
        )
        with Vertical(id="new-host"):
            yield Label("Not in the inventory yet: how to reach it. Transport:")
            yield RadioSet(*(RadioButton(t.value, id=t.value) for t in Transport), id="transport")
            for key, label in NEW_HOST_FIELDS:
                yield Label(label)
                yield Input(id=key, type="integer" if key == "port" else "text")
        yield Label("Reason (for the timeline):")
        yield Input(placeholder="what put it in scope, or took it out", id="reason")

    def on_mount(self) -> None:
        self.show_new_host()
        self.query_one("#host", Input).focus()

    @property
    def adding(self) -> bool:
        return self.query_one("#change", RadioSet).pressed_button is not self.query_one(
            f"#{REMOVE}", RadioButton
        )

    @property
    def host(self) -> str:
        return self.query_one("#host", Input).value.strip()

    @property
    def new(self) -> bool:
        """A host the inventory does not know, being added: its entry is asked for."""
        return self.adding and bool(self.host) and self.host not in self.known

    def show_new_host(self) -> None:
        self.query_one("#new-host").display = self.new

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "host":
            self.show_new_host()

    def on_radio_set_changed(self, event: RadioSet.Changed) -> None:
        self.show_new_host()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        # Enter moves on, through the new host's fields only when they are shown.
        event.stop()
        if event.input.id == "reason":
            self.action_submit()
        else:
            self.focus_next()

    def entry(self) -> dict[str, Any]:
        """The new host as inventory.yaml would hold it: only what was typed."""
        pressed = self.query_one("#transport", RadioSet).pressed_button
        entry: dict[str, Any] = {}
        if pressed is not None:
            entry["transport"] = str(pressed.id)
        for key, _ in NEW_HOST_FIELDS:
            value = self.query_one(f"#{key}", Input).value.strip()
            if not value:
                continue
            if key == "port":
                entry[key] = int(value) if value.isdecimal() else value
            elif key == "thumbprint":
                entry["tls"] = {"thumbprint": value}
            else:
                entry[key] = value
        return entry

    def submit(self) -> ScopeChange | str:
        host, group = self.host, self.query_one("#group", Input).value.strip()
        if not host:
            return "name the host"
        if not group:
            return "name the group"
        new_host = None
        if self.new:
            new_host = self.entry()
            if "transport" not in new_host:
                return "choose how to reach the new host: ssh, winrm or local"
            wrong = check_new_host(host, group, new_host)
            if wrong:
                return wrong
        elif not self.adding and host not in self.known:
            return f"{host} is not in the inventory"
        else:
            wrong = check_group(group)
            if wrong:
                return wrong
        reason = self.query_one("#reason", Input).value.strip()
        if not reason:
            return "a reason is needed"
        return ScopeChange(host, group, self.adding, reason, new_host)


def change_scope(hub: Hub, group: str = "") -> None:
    """S: a host joins or leaves a group (the facilitator's inject passes `affected`)."""

    def changed(result: ScopeChange | None) -> None:
        if result:
            hub.write(
                lambda s: s.change_scope(
                    result.host,
                    result.group,
                    result.add,
                    hub.actor,
                    result.reason,
                    new_host=result.new_host,
                )
            )

    hub.app.push_screen(ScopePrompt(hub.state.inventory, group), changed)
