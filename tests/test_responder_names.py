"""One person is one person however the name is typed: 'alice', 'alice ', 'ALICE' and a
fullwidth or otherwise NFKC-equal spelling cannot meet the two-person rule, nor take command
they already hold. A name that could repaint a terminal or reorder text is refused."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.support.cli import irtool

NEW = [
    "incident",
    "new",
    str(ROOT / "tests/corpus/valid/every-kind.yaml"),
    "--param",
    "attacker_ip=203.0.113.7",
    "--param",
    "account=CORP\\mallory",
]
# 'alice' as other keyboards, habits and copy-pastes spell it.
ALICE = [
    "alice",
    "alice ",
    "ALICE",
    "  Alice ",
    "\uff41\uff4c\uff49\uff43\uff45",  # fullwidth
    "alice\u00a0",  # a no-break space from a copied name
    "\u1d43lice",  # a modifier letter a: NFKC makes it 'a'
]
# An escape that recolours the terminal, and a right-to-left override that shows 'annexe.png'.
UNSHOWABLE = ["ann\x1b[31m", "ann\u202egnp.exe"]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "IRTOOL_HOME": str(tmp_path), "IRTOOL_RESPONDER": "judy"}


@pytest.fixture
def incident(env: dict[str, str]) -> str:
    opened = irtool(env, *NEW, "--as", "ann")
    assert opened.returncode == 0, opened.stderr
    return opened.stdout.strip()


def events(env: dict[str, str], incident: str) -> int:
    path = Path(env["IRTOOL_HOME"]) / "incidents" / incident / "journal.sqlite"
    db = sqlite3.connect(path)
    count = int(db.execute("SELECT count(*) FROM events").fetchone()[0])
    db.close()
    return count


def ok(env: dict[str, str], *args: str) -> None:
    done = irtool(env, *args)
    assert done.returncode == 0, done.stderr


def refused(env: dict[str, str], incident: str, message: str, *args: str) -> str:
    """Exit 2, one line on stderr, nothing written."""
    before = events(env, incident)
    done = irtool(env, *args)
    assert done.returncode == 2, (args, done.stderr)
    assert message in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert events(env, incident) == before
    return done.stderr


def test_one_person_however_spelt_cannot_meet_the_two_person_rule(
    env: dict[str, str], incident: str
) -> None:
    ok(env, "incident", "done", incident, "assemble")
    ok(env, "incident", "skip", incident, "meet", "--reason", "by phone")
    ok(env, "incident", "done", incident, "scope")
    ok(env, "incident", "decide", incident, "ongoing", "yes")
    ok(env, "incident", "request", incident, "block", "--reason", "active", "--as", "alice")
    for spelling in ALICE:
        refused(
            env, incident, "alice requested 'block': a second responder must approve it",
            "incident", "approve", incident, "block", "--as", spelling,
        )  # fmt: skip
    ok(env, "incident", "approve", incident, "block", "--as", "bob")
    for spelling in ("bob", " BOB", "\uff42\uff4f\uff42"):
        refused(
            env, incident, "already approved 'block'",
            "incident", "approve", incident, "block", "--as", spelling,
        )  # fmt: skip
    shown = json.loads(irtool(env, "incident", "show", incident, "--json").stdout)
    assert shown["next"] == ["block"]
    state = json.loads(irtool(env, "export", incident, "--format", "json").stdout)["state"]
    assert state["actions"]["block"]["approvals"] == ["bob"]


def test_command_cannot_be_handed_to_who_already_holds_it(
    env: dict[str, str], incident: str
) -> None:
    for spelling in ("ann", "ANN ", "\uff41\uff4e\uff4e"):
        refused(
            env, incident, "ann already has incident command",
            "incident", "handover", incident, "--to", spelling,
        )  # fmt: skip
    ok(env, "incident", "handover", incident, "--to", "Ben")
    refused(
        env, incident, "Ben already has incident command",
        "incident", "handover", incident, "--to", " ben",
    )  # fmt: skip


@pytest.mark.parametrize("name", UNSHOWABLE)
def test_a_name_with_a_control_or_format_character_is_refused(
    env: dict[str, str], incident: str, name: str
) -> None:
    said = refused(
        env, incident, "--as: a responder's name cannot hold a control or format character",
        "incident", "note", incident, "x", "--as", name,
    )  # fmt: skip
    assert "\x1b" not in said and "\u202e" not in said  # the refusal itself is safe to print
    with_env = {**env, "IRTOOL_RESPONDER": name}
    refused(
        with_env, incident, "IRTOOL_RESPONDER: a responder's name cannot hold a control",
        "incident", "note", incident, "x",
    )  # fmt: skip
    refused(
        env, incident, "a responder's name cannot hold a control or format character",
        "incident", "handover", incident, "--to", name,
    )  # fmt: skip


def test_no_incident_is_opened_by_a_name_that_cannot_be_recorded(env: dict[str, str]) -> None:
    done = irtool(env, *NEW, "--as", "ann\u202e")
    assert done.returncode == 2 and "control or format character" in done.stderr
    assert not (Path(env["IRTOOL_HOME"]) / "incidents").exists()


def test_the_engine_compares_and_refuses_names_for_the_terminal_ui_too(
    env: dict[str, str], incident: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The UI's confirmation takes an approver's name as typed, and its handover form a name:
    both reach these engine methods."""
    from irtool.engine.session import IncidentSession, Refused
    from irtool.model.names import responder_problem, same_responder

    assert same_responder("\uff21lice ", "alice") and not same_responder("alice", "alicia")
    for name in ("\u200bann", "ann\u2028ben", "ann\u2029", "ann\x07", "ann\u2066"):  # Cf Zl Zp Cc
        assert responder_problem(name), name
    assert responder_problem("  ") and responder_problem("Zoë O'Brien-Łukasz") is None
    monkeypatch.setenv("IRTOOL_HOME", env["IRTOOL_HOME"])
    session = IncidentSession.open(incident)
    try:
        with pytest.raises(Refused, match="control or format character"):
            session.handover("ben\u202e", "ann")
        with pytest.raises(Refused, match="control or format character"):
            session.note("x", "ann\x1b]0;pwned\x07")
        with pytest.raises(Refused, match="already has incident command"):
            session.handover("Ann", "judy")
    finally:
        session.close_journal()
    assert events(env, incident) == 1
