"""The terminal UI opens an incident from the checkpoint of its standing state, and reads
its records in the background: the steps as the journal says, the evidence all there."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from irtool.engine import checkpoint
from irtool.engine.session import IncidentSession
from irtool.tui.app import IrtoolApp
from irtool.tui.screens.evidence import EvidenceScreen
from irtool.tui.screens.incident import IncidentScreen
from tests.support.tui import screen_text, wait_for
from tests.test_checkpoint import grow, lean


@pytest.fixture
def home(recorded: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    copy = tmp_path / "home"
    shutil.copytree(recorded["home"], copy)
    monkeypatch.setenv("IRTOOL_HOME", str(copy))
    monkeypatch.setenv("IRTOOL_KEYMAP", str(tmp_path / "no-keymap.yaml"))
    return copy


async def test_the_ui_opens_from_the_checkpoint_and_reads_the_records_behind(
    home: Path, recorded: dict[str, Any]
) -> None:
    incident = recorded["live"]
    grow(incident, checkpoint.EVERY + 10)
    lean(incident)  # the checkpoint, as a scribe's command would have left it
    assert checkpoint.path_of(incident).is_file()
    # After it: a note from another terminal, in the tail the UI folds itself.
    scribe = IncidentSession.open(incident, records=False)
    scribe.note("written after the checkpoint", "sam")
    scribe.close_journal()
    whole = IncidentSession.open(incident)
    whole.close_journal()

    app = IrtoolApp(actor="ann", incident=incident)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, IncidentScreen), what="incident")
        screen = app.screen
        assert isinstance(screen, IncidentScreen)
        state = screen.session.state
        assert (state.last_seq, state.head) == (whole.state.last_seq, whole.state.head)
        assert {s: st.status for s, st in state.steps.items()} == {
            s: st.status for s, st in whole.state.steps.items()
        }
        await wait_for(pilot, lambda: state.records_read, what="the records")
        assert state.notes[-1].text == "written after the checkpoint"
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, EvidenceScreen), what="evidence")
        shown = screen_text(app)
        for item in whole.state.evidence[:3]:
            assert str(item.seq) in shown, shown
