"""The real program in a real terminal (tmux), from `irtool start` to a completed step."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from irtool.journal import Journal
from tests.support.drill import CONTACTS, RUNBOOK
from tests.support.tmux import Tmux


def test_start_an_incident_and_complete_a_step_as_a_person_would(tmp_path: Path) -> None:
    (tmp_path / "drill.yaml").write_text(RUNBOOK)
    (tmp_path / "contacts.yaml").write_text(CONTACTS)
    env = {
        "IRTOOL_HOME": str(tmp_path / "home"),
        "IRTOOL_KEYMAP": str(tmp_path / "no-keymap.yaml"),
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
    }
    irtool = str(Path(sys.executable).parent / "irtool")
    command = [irtool, "start", "drill.yaml", "--contacts", "contacts.yaml", "--as", "ann"]
    with Tmux(command, env, tmp_path) as terminal:
        terminal.wait_for("Record the trigger")  # nothing to ask before it opens
        screen = terminal.wait_for("IC ann")  # the header, drawn with the first full frame
        assert " LIVE " in screen and "IC ann" in screen
        terminal.send("c")
        terminal.wait_for("Done: Record the trigger")
        terminal.send("logged by the help desk")
        terminal.wait_for("logged by the help desk")  # typed, as a person sees it
        terminal.send("C-s")
        terminal.wait_for("✓ Record the trigger")
        # A fast typist: the note's key and its text in one burst. The letters land in the
        # form as it opens (e would open the evidence, s skip, h hand over).
        terminal.send("nweb shell seen")
        terminal.wait_for("Note for the timeline")
        terminal.wait_for(" web shell seen")
        terminal.send("Enter")
        terminal.wait_for("note: web shell seen")
        terminal.send("C-q")
        terminal.wait_for("IRTOOL-EXIT=0")

    (incident,) = [p.name for p in (tmp_path / "home" / "incidents").iterdir()]
    path = tmp_path / "home" / "incidents" / incident / "journal.sqlite"
    with Journal(path, incident) as journal:
        events = list(journal.events())
    done = [e for e in events if e.kind == "step.completed"]
    assert [(e.step, e.actor, e.data["checklist"], e.data["note"]) for e in done] == [
        ("assess", "ann", [], "logged by the help desk")
    ]
    assert [e.data["text"] for e in events if e.kind == "note.added"] == ["web shell seen"]
    assert not [e for e in events if e.kind in ("step.skipped", "command.handed_over")]


def test_the_quick_start_exercise_opens_and_the_facilitator_fires_an_inject(
    tmp_path: Path,
) -> None:
    """README command 1 ends in `irtool exercise runbooks/iis-compromise.yaml`: run exactly that,
    from the top of the repository, in a terminal with nothing else set up."""
    root = Path(__file__).resolve().parent.parent
    env = {
        "IRTOOL_HOME": str(tmp_path / "home"),
        "IRTOOL_KEYMAP": str(tmp_path / "no-keymap.yaml"),
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
    }
    irtool = str(Path(sys.executable).parent / "irtool")
    command = [irtool, "exercise", "runbooks/iis-compromise.yaml", "--as", "fiona"]
    with Tmux(command, env, root) as terminal:
        terminal.wait_for("Nobody has touched the servers yet.")  # the briefing
        terminal.send("Escape")
        terminal.wait_for(" EXERCISE ")
        screen = terminal.wait_for("Record the trigger")
        assert "IIS host compromise" in screen and " LIVE " not in screen
        terminal.send("f")
        screen = terminal.wait_for("to come")
        assert "Facilitator" in screen
        terminal.send("f")  # fire the first inject to come, now
        terminal.wait_for("INJECT for")
        terminal.send("Escape")
        terminal.wait_for("Record the trigger")
        terminal.send("C-q")
        terminal.wait_for("IRTOOL-EXIT=0")

    (incident,) = [p.name for p in (tmp_path / "home" / "incidents").iterdir()]
    path = tmp_path / "home" / "incidents" / incident / "journal.sqlite"
    with Journal(path, incident) as journal:
        written = list(journal.events())
    assert written[0].data["mode"] == "exercise"
    assert written[0].data["scenario"]["path"].endswith("scenarios/iis-compromise.yaml")
    fired = [e for e in written if e.kind == "inject.fired"]
    assert len(fired) == 1 and fired[0].data["why"] == "facilitator" and fired[0].actor == "fiona"
