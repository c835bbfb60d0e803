"""What goes wrong shows as a notification a responder can read, and the screen carries on:
an unreachable host, no keyring, a journal another writer holds; and every command is also
in the command palette, on keys the responder can remap."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keyring
import pytest
import yaml
from keyring.backends import fail

from irtool.engine.session import IncidentSession
from irtool.journal import Journal
from irtool.model.context import load_context
from irtool.tui.app import IrtoolApp
from irtool.tui.screens.incident import IncidentScreen
from irtool.tui.screens.prompts import NotePrompt, SecretPrompt
from irtool.tui.screens.run import RunScreen
from tests.support.drill import CONTACTS, RUNBOOK
from tests.support.sshd import SshdFarm, closed_port
from tests.support.tui import notifications, opened, screen_text, wait_for


def open_drill(tmp_path: Path, hosts: dict[str, Any]) -> str:
    (tmp_path / "drill.yaml").write_text(RUNBOOK)
    (tmp_path / "contacts.yaml").write_text(CONTACTS)
    for name, host in hosts.items():
        host.setdefault("vars", {"marker": str(tmp_path / f"{name}.block")})
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump({"hosts": hosts}))
    context, _ = load_context(
        tmp_path / "drill.yaml", tmp_path / "contacts.yaml", tmp_path / "inventory.yaml"
    )
    session = IncidentSession.new(
        context.runbook,
        {"attacker_ip": "203.0.113.7"},
        actor="ann",
        contacts=context.contacts,
        inventory=context.inventory,
    )
    for step in ("assess", "call-team"):
        session.complete(step, "ann")
    session.decide("is-compromise", "confirmed", "ann")
    session.close_journal()
    return session.state.id


def local(**settings: Any) -> dict[str, Any]:
    return {"address": "127.0.0.1", "transport": "local", "groups": ["fleet"], **settings}


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRTOOL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("IRTOOL_KEYMAP", str(tmp_path / "keymap.yaml"))


@pytest.fixture
def no_keyring() -> Iterator[None]:
    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield
    keyring.set_keyring(before)


async def test_an_unreachable_host_fails_alone_and_is_said_plainly(tmp_path: Path) -> None:
    port = closed_port()
    incident = open_drill(
        tmp_path,
        {
            "web01": local(),
            "web02": {
                "address": "127.0.0.1", "port": port, "transport": "ssh", "user": "nobody",
                "auth": "key", "host_key": "SHA256:" + "A" * 43, "groups": ["fleet"],
            },
        },
    )  # fmt: skip
    app = IrtoolApp(actor="ann", incident=incident)
    async with app.run_test(size=(100, 30)) as pilot:
        await opened(pilot)
        await pilot.press("r")
        run = app.screen
        assert isinstance(run, RunScreen)
        await wait_for(pilot, lambda: run.report is not None, what="the run")
        await pilot.pause()
        failed = [n for n in notifications(app) if "Failed: web02" in n]
        assert failed and "unreachable" in failed[0] and f"{port}" in failed[0]
        assert "Traceback" not in screen_text(app)
        await pilot.press("escape")
        assert isinstance(app.screen, IncidentScreen)
        assert app.screen.state.steps["collect-state"].status == "pending"


async def test_without_a_keyring_the_responder_is_asked_and_the_secret_is_kept_out(
    tmp_path: Path, no_keyring: None
) -> None:
    with SshdFarm(tmp_path / "sshd", count=1) as farm:
        incident = open_drill(
            tmp_path,
            {
                "web01": {
                    "address": "127.0.0.1", "port": farm[0].port, "transport": "ssh",
                    "user": farm.user, "auth": "password", "credential": "web-deploy",
                    "host_key": farm[0].fingerprint, "groups": ["fleet"], "connect_timeout": 5,
                }
            },
        )  # fmt: skip
        app = IrtoolApp(actor="ann", incident=incident)
        async with app.run_test(size=(100, 30)) as pilot:
            await opened(pilot)
            await pilot.press("r")
            await wait_for(pilot, lambda: isinstance(app.screen, SecretPrompt), what="the ask")
            assert "Secret for credential 'web-deploy'" in screen_text(app)
            await pilot.press(*"canary-7c1e9", "enter")
            run = app.screen_stack[-1]
            assert isinstance(run, RunScreen)
            await wait_for(pilot, lambda: run.report is not None, what="the run")
            await pilot.pause()
            assert any("refused password" in n for n in notifications(app))
    journal = Path(tmp_path / "home" / "incidents" / incident / "journal.sqlite")
    for path in journal.parent.glob("journal.sqlite*"):
        assert b"canary-7c1e9" not in path.read_bytes()


async def test_a_busy_journal_is_a_notification_and_nothing_is_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("irtool.journal.store.BUSY_TIMEOUT_S", 0.2)
    incident = open_drill(tmp_path, {"web01": local()})
    path = tmp_path / "home" / "incidents" / incident / "journal.sqlite"
    app = IrtoolApp(actor="ann", incident=incident)
    async with app.run_test(size=(100, 30)) as pilot:
        await opened(pilot)
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # a second writer holds the journal
        await pilot.press("n", *"first try", "enter")
        await pilot.pause()
        assert any("Try again" in n for n in notifications(app))
        assert isinstance(app.screen, IncidentScreen)
        other.execute("ROLLBACK")
        other.close()
        await pilot.press("n", *"second try", "enter")
        await pilot.pause()
    with Journal(path, incident) as journal:
        notes = [e.data["text"] for e in journal.events() if e.kind == "note.added"]
    assert notes == ["second try"]


async def test_every_key_is_a_palette_command_too(tmp_path: Path) -> None:
    incident = open_drill(tmp_path, {"web01": local()})
    app = IrtoolApp(actor="ann", incident=incident)
    async with app.run_test(size=(100, 30)) as pilot:
        await opened(pilot)
        await pilot.press("ctrl+p", *"add a note")
        await pilot.pause()
        assert "Add a note to the timeline" in screen_text(app)
        assert "incident.note" in screen_text(app)  # the binding id, for the keymap
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, NotePrompt), what="the note form")


async def test_keys_are_remapped_from_the_keymap_file(tmp_path: Path) -> None:
    (tmp_path / "keymap.yaml").write_text("incident.note: f2\nincident.nonsense: f3\n")
    incident = open_drill(tmp_path, {"web01": local()})
    app = IrtoolApp(actor="ann", incident=incident)
    async with app.run_test(size=(100, 30)) as pilot:
        await opened(pilot)
        await pilot.pause()
        assert any("'incident.nonsense' is not a binding id" in n for n in notifications(app))
        await pilot.press("n")
        assert isinstance(app.screen, IncidentScreen)
        await pilot.press("f2")
        assert isinstance(app.screen, NotePrompt)


async def test_a_bug_in_a_handler_is_a_notification_not_a_lost_screen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IRTOOL_DEBUG")

    def broken(self: IncidentScreen) -> None:
        raise RuntimeError("a bug in the note key")

    monkeypatch.setattr(IncidentScreen, "action_note", broken)
    incident = open_drill(tmp_path, {"web01": local()})
    app = IrtoolApp(actor="ann", incident=incident)
    async with app.run_test(size=(100, 30)) as pilot:
        await opened(pilot)
        await pilot.press("n")
        await pilot.pause()
        assert any("RuntimeError: a bug in the note key" in n for n in notifications(app))
        assert isinstance(app.screen, IncidentScreen)
        await pilot.press("c", "enter")  # the screen still works: the step is completed
        await pilot.pause()
        assert app.screen.state.steps["collect-state"].status == "done"
    log = (tmp_path / "home" / "errors.log").read_text()
    assert "RuntimeError: a bug in the note key" in log and "Traceback" in log
