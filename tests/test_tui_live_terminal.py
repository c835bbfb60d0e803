"""A live incident as it unfolds, in a real terminal (tmux): a parameter set once triage finds
it, a step started early and run, its evidence read and searched, and the incident closed
over what is still open. The pilot tests cover each form; this one is the keys as a person
presses them, in one sitting, against the real program."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from irtool.journal import Journal
from tests.support.live import live_incident
from tests.support.tmux import Tmux

FOCUSED = "\x1b[48;5;23m"  # the default theme's background of the field that has the keys


def wait_focused(term: Tmux, shown: str) -> None:
    """Wait until the field showing `shown` (its text or placeholder) is drawn focused, as a
    person waits to see where the cursor went before typing on."""
    deadline = time.monotonic() + 30
    while True:
        lines = term.command("capture-pane", "-p", "-e", "-t", "ui").splitlines()
        if any(shown in line and FOCUSED in line.split(shown)[0][-40:] for line in lines):
            return
        assert time.monotonic() < deadline, f"'{shown}' never had the focus:\n{term.text()}"
        time.sleep(0.1)  # polling the screen: the condition above is the synchronisation


def test_a_live_incident_unfolds_at_a_real_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IRTOOL_HOME", str(tmp_path / "home"))
    incident = live_incident(tmp_path)
    env = {
        "IRTOOL_HOME": str(tmp_path / "home"),
        "IRTOOL_KEYMAP": str(tmp_path / "no-keymap.yaml"),
        "IRTOOL_TZ": "UTC",
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        **({"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {}),
    }
    irtool = str(Path(sys.executable).parent / "irtool")
    # A prefix of the id is enough.
    with Tmux([irtool, "open", incident[:-2], "--as", "ann"], env, tmp_path, 100, 32) as term:
        term.wait_for("Record the trigger")
        # Triage found the address: P, the parameter, its value, why.
        term.send("P")
        term.wait_for("attacker_ip")
        term.send("Enter")
        term.wait_for("Reason")
        # Tab between fields and ctrl+s: the keys a person uses to move on and to submit.
        wait_focused(term, "203.0.113.7")  # the placeholder, in the field that has the keys
        term.send("203.0.113.7", "Tab")
        wait_focused(term, "how it was learned")
        term.send("in the IIS log")
        term.wait_for(" in the IIS log")
        term.send("C-s")
        term.wait_for("attacker_ip = 203.0.113.7")
        # The sweep is two steps ahead: r asks why it starts early, then it runs.
        term.send("Down", "Down", "r")
        term.wait_for("early")
        term.send("the address is known now")
        term.wait_for(" the address is known now")
        term.send("C-s")
        term.wait_for("collect ok on 2 of 2 host(s)")
        term.send("Escape")
        term.wait_for("x Ad hoc")
        # Its evidence, read and searched.
        term.send("e")
        term.wait_for("Evidence")
        term.send("Enter")
        screen = term.wait_for("sha256 checked")  # read whole, and its hash checked
        assert "$ echo looking-for '203.0.113.7' on 'web0" in screen  # the exact command
        term.send("/")
        term.wait_for("Search")
        term.send("203.0.113.7", "Enter")
        term.wait_for("1 looking-for 203.0.113.7 on web0")
        term.send("Escape")
        term.wait_for("lines 1-1 of 1")
        term.send("Escape")
        term.wait_for("Evidence")
        term.send("Escape")
        term.wait_for("x Ad hoc")  # the hub's key bar: the hub is in front again
        # An action item outlives the incident: closing lists it and asks why it closes over it.
        term.press_for("i", "Owner")
        term.send("patch the upload form", "Tab")
        term.wait_for(" patch the upload form")
        term.send("ben")
        term.wait_for(" ben ")
        term.send("C-s")
        term.wait_for("action item for ben")
        term.wait_for("x Ad hoc")
        term.send("X")
        term.wait_for("still open")
        screen = term.wait_for("Summary:")
        assert "action item" in screen and "patch the upload form" in screen, screen
        term.send("web shell removed", "Tab")
        wait_focused(term, "who follows them up")
        term.send("the web team tracks it")
        term.wait_for(" the web team tracks it")
        term.send("C-s")
        term.wait_for("incident closed")
        term.send("C-q")
        term.wait_for("IRTOOL-EXIT=0")
    path = tmp_path / "home" / "incidents" / incident / "journal.sqlite"
    with Journal(path, incident) as journal:
        events = list(journal.events())
    kinds = [e.kind for e in events]
    assert "parameter.set" in kinds and "step.started_early" in kinds
    assert kinds.index("parameter.set") < kinds.index("run.started")
    ran = [e for e in events if e.kind == "command.ran"]
    assert {e.data["command"] for e in ran} == {
        "echo looking-for '203.0.113.7' on 'web01'",
        "echo looking-for '203.0.113.7' on 'web02'",
    }
    closed = events[-1]
    assert closed.kind == "incident.closed" and closed.data["summary"] == "web shell removed"
    assert closed.data["over"] == "the web team tracks it"
    assert "patch the upload form" in closed.data["open_items"][0]
