"""The headless incident CLI, run as real processes, as a scribe at a second terminal would."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.support.cli import irtool

RUNBOOK = str(ROOT / "tests/corpus/valid/every-kind.yaml")
CONTACTS = str(ROOT / "tests/corpus/valid/contacts.yaml")
NEW = ["incident", "new", RUNBOOK, "--param", "attacker_ip=203.0.113.7"]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "IRTOOL_HOME": str(tmp_path), "IRTOOL_RESPONDER": "scribe-judy"}


def new(env: dict[str, str]) -> str:
    result = irtool(
        env,
        *NEW,
        "--param",
        "account=CORP\\mallory",
        "--contacts",
        CONTACTS,
        "--as",
        "ann",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    return str(json.loads(result.stdout)["id"])


def test_a_whole_walk_from_the_command_line(env: dict[str, str]) -> None:
    incident = new(env)
    assert (
        irtool(env, "incident", "done", incident, "assemble", "--note", "bridge open").returncode
        == 0
    )
    assert irtool(env, "incident", "skip", incident, "meet", "--reason", "by phone").returncode == 0
    assert (
        irtool(env, "incident", "done", incident, "scope", "--check", "Read the alert").returncode
        == 0
    )
    assert irtool(env, "incident", "decide", incident, "ongoing", "yes").returncode == 0
    assert (
        irtool(
            env, "incident", "request", incident, "block", "--reason", "active", "--as", "ann"
        ).returncode
        == 0
    )
    assert irtool(env, "incident", "approve", incident, "block", "--as", "ben").returncode == 0
    assert (
        irtool(
            env,
            "incident",
            "reach",
            incident,
            "security",
            "--person",
            "ann",
            "--outcome",
            "no-answer",
        ).returncode
        == 0
    )
    assert (
        irtool(
            env, "incident", "note", incident, "began earlier", "--at", "2026-11-21T02:10"
        ).returncode
        == 0
    )
    assert irtool(env, "incident", "handover", incident, "--to", "ben").returncode == 0
    shown = json.loads(irtool(env, "incident", "show", incident, "--json").stdout)
    assert shown["commander"] == "ben"
    assert shown["next"] == ["block"]
    assert [s["status"] for s in shown["steps"][:4]] == ["done", "skipped", "done", "done"]
    assert shown["steps"][1]["by"] == "scribe-judy"  # IRTOOL_RESPONDER
    assert shown["contacts"]["security"]["next_to_call"] == "ben"
    assert shown["notes"][0]["at"] == "2026-11-21T02:10:00.000000Z"
    text = irtool(env, "incident", "show", incident).stdout
    assert "[>] block" in text and "commander ben" in text
    listed = json.loads(irtool(env, "incident", "list", "--json").stdout)
    assert [row["id"] for row in listed] == [incident]
    refused = irtool(env, "incident", "close", incident)
    assert refused.returncode == 2 and "post-mortem question(s) of 'lessons' unanswered" in (
        refused.stderr
    )
    assert irtool(env, "incident", "close", incident, "--over", "review on Monday").returncode == 0
    late = irtool(env, "incident", "skip", incident, "block", "--reason", "too late")
    assert late.returncode == 2 and "is closed" in late.stderr


def test_refusals_exit_2_with_a_message(env: dict[str, str]) -> None:
    incident = new(env)
    result = irtool(env, "incident", "done", incident, "lessons")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"irtool: step 'lessons' is not reachable yet; next: assemble (or start it early: "
        f"irtool incident start {incident} lessons --reason)"
    )
    result = irtool(env, "incident", "show", "ir-20000101-000000-0000")
    assert result.returncode == 2 and "no incident" in result.stderr
    result = irtool(env, "incident", "note", incident, "x", "--at", "yesterday")
    assert result.returncode == 2 and "is not a time" in result.stderr


def test_new_refuses_bad_parameters(env: dict[str, str]) -> None:
    result = irtool(
        env,
        "incident",
        "new",
        RUNBOOK,
        "--param",
        "attacker_ip=1.2.3.4;calc",
        "--param",
        "account=x",
    )
    assert result.returncode == 2
    assert "is not an IP address" in result.stderr
    assert not list(Path(env["IRTOOL_HOME"]).glob("incidents/*"))


def test_a_scribe_and_the_ui_writing_at_once(env: dict[str, str]) -> None:
    incident = new(env)
    notes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "irtool",
                "incident",
                "note",
                incident,
                f"note {i}",
                "--as",
                f"r{i % 2}",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(8)
    ]
    assert all(p.wait(timeout=60) == 0 for p in notes)
    shown = json.loads(irtool(env, "incident", "show", incident, "--json").stdout)
    assert sorted(n["text"] for n in shown["notes"]) == sorted(f"note {i}" for i in range(8))
    assert irtool(env, "verify", incident).returncode == 0


def test_verify_names_the_tampered_event(env: dict[str, str]) -> None:
    incident = new(env)
    for i in range(4):
        irtool(env, "incident", "note", incident, f"n{i}")
    ok = irtool(env, "verify", incident, "--json")
    assert ok.returncode == 0
    head = json.loads(ok.stdout)["head"]
    assert irtool(env, "verify", incident).stdout.startswith("journal intact: 5 events, head ")
    db = sqlite3.connect(Path(env["IRTOOL_HOME"]) / "incidents" / incident / "journal.sqlite")
    db.execute("DROP TRIGGER events_are_never_deleted")
    db.execute("DELETE FROM events WHERE seq = 5")
    db.commit()
    # This machine wrote event 5: it knows a cut tail when it sees one, as --head does.
    for cut in (irtool(env, "verify", incident), irtool(env, "verify", incident, "--head", head)):
        assert cut.returncode == 1
        assert "BROKEN at event 5" in cut.stderr
    db.execute("DROP TRIGGER events_are_never_updated")
    db.execute("UPDATE events SET actor = 'mallory' WHERE seq = 3")
    db.commit()
    edited = irtool(env, "verify", incident, "--json")
    assert edited.returncode == 1
    assert json.loads(edited.stdout)["first_bad_seq"] == 3


def test_a_scribe_corrects_a_note_and_sets_the_reconvene_time(env: dict[str, str]) -> None:
    incident = new(env)
    note = json.loads(
        irtool(env, "incident", "note", incident, "shell found 02:10", "--json").stdout
    )
    fixed = irtool(
        env,
        "incident",
        "correct",
        incident,
        str(note["seq"]),
        "--reason",
        "typo",
        "--text",
        "shell found 02:01",
        "--at",
        "2026-11-21T02:01",
    )
    assert fixed.returncode == 0, fixed.stderr
    assert irtool(env, "incident", "reconvene", incident, "2026-11-21T05:00+01:00").returncode == 0
    shown = json.loads(irtool(env, "incident", "show", incident, "--json").stdout)
    assert shown["notes"][0]["text"] == "shell found 02:01"
    assert shown["notes"][0]["at"] == "2026-11-21T02:01:00.000000Z"
    assert shown["reconvene_at"] == "2026-11-21T04:00:00.000000Z"
    bad = irtool(env, "incident", "correct", incident, "99", "--reason", "x")
    assert bad.returncode == 2 and "no event 99" in bad.stderr


def test_new_refuses_an_inventory_plan_would_refuse(env: dict[str, str], tmp_path: Path) -> None:
    inventory = tmp_path / "basic.yaml"
    inventory.write_text(
        "hosts:\n  web01:\n    address: 192.0.2.1\n    auth: basic\n"
        "    credential: web01\n    groups: [affected]\n"
    )
    result = irtool(
        env,
        *NEW,
        "--param",
        "account=x",
        "--inventory",
        str(inventory),
    )
    assert result.returncode == 2
    assert f"{inventory}:4:11: web01: Basic auth sends the password in the clear" in result.stderr
    assert not list(Path(env["IRTOOL_HOME"]).glob("incidents/*"))


def test_new_checks_the_contacts_file_itself(env: dict[str, str]) -> None:
    broken = str(ROOT / "tests/corpus/broken/contacts-unknown-person.yaml")
    result = irtool(
        env,
        *NEW,
        "--param",
        "account=x",
        "--contacts",
        broken,
    )
    assert result.returncode == 2
    assert "no person 'zed' under 'people'" in result.stderr


def test_escalate_and_list_from_the_command_line(env: dict[str, str]) -> None:
    incident = new(env)
    result = irtool(env, "incident", "escalate", incident, "security", "--reason", "voicemail")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("security: escalated (event ")
    shown = json.loads(irtool(env, "incident", "show", incident, "--json").stdout)
    assert shown["contacts"]["security"]["next_to_call"] == "ben"
    again = irtool(env, "incident", "escalate", incident, "security")
    assert again.returncode == 2 and "ben is the last backup for security" in again.stderr
    listed = json.loads(irtool(env, "incident", "list", "--json").stdout)
    assert listed == [
        {
            "id": incident, "mode": "live", "title": shown["title"], "runbook": "every-kind",
            "opened_at": shown["opened_at"], "commander": "ann", "closed": False,
        }
    ]  # fmt: skip
