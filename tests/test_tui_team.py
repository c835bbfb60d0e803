"""The terminal UI on a team incident: another responder's note, written on another machine,
shows without waiting for the next poll (LISTEN/NOTIFY), and a lost database shows in the
header while the screen goes on working."""

from __future__ import annotations

from pathlib import Path

import pytest

from irtool.tui.app import IrtoolApp
from irtool.tui.screens import incident as incident_screen
from irtool.tui.screens.incident import IncidentScreen
from irtool.tui.widgets.header import IncidentHeader
from tests.support.cli import irtool
from tests.support.postgres import Postgres
from tests.support.tui import screen_text, wait_for
from tests.test_team_mode import machine, opened
from tests.test_team_mode import server as server


@pytest.fixture
def ann(server: Postgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = machine(tmp_path, "ann-laptop", server, "ann")
    for name in ("IRTOOL_HOME", "IRTOOL_DATABASE", "IRTOOL_RESPONDER"):
        monkeypatch.setenv(name, env[name])
    monkeypatch.setenv("IRTOOL_KEYMAP", str(tmp_path / "no-keymap.yaml"))
    # Only the listener can bring the note in time: the screen's own poll is an hour away.
    monkeypatch.setattr(incident_screen, "POLL_S", 3600.0)
    return env


def header(app: IrtoolApp) -> str:
    return str(app.screen.query_one(IncidentHeader).render())


async def test_another_machines_note_shows_at_once_and_a_lost_database_shows(
    server: Postgres,
    ann: dict[str, str],
    tmp_path: Path,
) -> None:
    # Opened on another machine: this one has no copy until the screen opens it.
    ben = machine(tmp_path, "ben-laptop", server, "ben")
    incident = opened(ben)
    app = IrtoolApp(actor="ann", incident=incident)
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, IncidentScreen), what="incident")
        await wait_for(pilot, lambda: "TEAM" in header(app), what="the team badge")
        note = irtool(ben, "incident", "note", incident, "ben saw the shell at 02:10")
        assert note.returncode == 0, note.stderr
        await wait_for(pilot, lambda: "ben saw the shell" in screen_text(app), timeout=10,
                       what="ben's note")  # fmt: skip
        server.stop()
        try:
            await wait_for(pilot, lambda: "OFFLINE" in header(app), timeout=20, what="offline")
            assert "ben saw the shell" in screen_text(app)  # what it had, it keeps showing
        finally:
            server.start()
        await wait_for(pilot, lambda: "TEAM" in header(app), timeout=30, what="back online")
        note = irtool(ben, "incident", "note", incident, "after the restart")
        assert note.returncode == 0, note.stderr
        await wait_for(pilot, lambda: "after the restart" in screen_text(app), timeout=10,
                       what="a note after the restart")  # fmt: skip


async def test_what_the_screen_wrote_offline_is_synced_from_the_screen(
    server: Postgres,
    ann: dict[str, str],
) -> None:
    from irtool.journal.postgres import PgJournal

    incident = opened(ann)
    app = IrtoolApp(actor="ann", incident=incident)
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, IncidentScreen), what="incident")
        screen = app.screen
        assert isinstance(screen, IncidentScreen)
        server.stop()
        try:
            await wait_for(pilot, lambda: "OFFLINE" in header(app), timeout=20, what="offline")
            screen.write(lambda s: s.note("written on the train", "ann"))
            assert "written on the train" in screen_text(app)
        finally:
            server.start()
        await wait_for(pilot, lambda: "1 to sync" in header(app), timeout=30, what="to sync")
        await pilot.press("Y")
        await wait_for(pilot, lambda: "TEAM" in header(app), timeout=30, what="synced")
        assert "written on the train" in screen_text(app)
    url = ann["IRTOOL_DATABASE"]
    with PgJournal(url, incident) as journal:
        given = [e for e in journal.events() if e.data.get("text") == "written on the train"]
    assert len(given) == 1 and given[0].data["origin"]["seq"] == 2
