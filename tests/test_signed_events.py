"""Signed events: each event signed by its writer's SSH key through a real ssh-agent, and
`verify` holding every signature to the keys the contacts file lists for each person."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from irtool.engine import kinds
from irtool.engine.refusal import Refused
from irtool.engine.session import IncidentSession
from irtool.journal import EventDraft, JournalError, event_hash, sshsig
from tests.conftest import ROOT
from tests.support.cli import irtool
from tests.support.sshagent import Agent, ssh_agent

RUNBOOK = str(ROOT / "tests/corpus/valid/every-kind.yaml")
PARAMS = ["--param", "attacker_ip=203.0.113.7", "--param", "account=CORP\\mallory"]


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Agent]:
    with ssh_agent(tmp_path / "agent") as running:
        yield running


def contacts(tmp_path: Path, keys: dict[str, list[str]], policy: str) -> str:
    said = yaml.safe_load((ROOT / "tests/corpus/valid/contacts.yaml").read_text())
    for person, lines in keys.items():
        said["people"][person]["keys"] = lines
    said["signed_events"] = policy
    path = tmp_path / f"contacts-{policy}.yaml"
    path.write_text(yaml.safe_dump(said))
    return str(path)


def environment(tmp_path: Path, agent: Agent) -> dict[str, str]:
    return {**os.environ, "IRTOOL_HOME": str(tmp_path / "home"), **agent.env}


def opened(env: dict[str, str], contacts_file: str) -> str:
    made = irtool(env, "incident", "new", RUNBOOK, *PARAMS, "--contacts", contacts_file,
                  "--as", "ann")  # fmt: skip
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


def journal(env: dict[str, str], incident: str) -> sqlite3.Connection:
    return sqlite3.connect(Path(env["IRTOOL_HOME"]) / "incidents" / incident / "journal.sqlite")


def requested_by_ann(env: dict[str, str], incident: str) -> None:
    """Containment 'block' started and requested by ann: events 2 and 3."""
    for step in (
        ["start", incident, "block", "--reason", "ongoing"],
        ["request", incident, "block", "--reason", "active"],
    ):
        assert irtool(env, "incident", *step, "--as", "ann").returncode == 0  # fmt: skip


def approved_around_irtool(
    env: dict[str, str],
    incident: str,
    monkeypatch: pytest.MonkeyPatch,
    signer: Callable[[str, str], str | None] | None,
) -> None:
    """ben's approval of request 3, written straight into the journal, signed by `signer`."""
    monkeypatch.setenv("IRTOOL_HOME", env["IRTOOL_HOME"])
    session = IncidentSession.open(incident)
    session.journal.signer = signer
    session.journal.append(EventDraft(kinds.ACTION_APPROVED, "ben", {"request": 3}, step="block"))
    session.close_journal()


def test_each_event_is_signed_by_its_writer_and_verify_names_who_signed(
    tmp_path: Path, agent: Agent
) -> None:
    ann, ben = agent.make_key("ann"), agent.make_key("ben", "ecdsa")
    env = environment(tmp_path, agent)
    incident = opened(env, contacts(tmp_path, {"ann": [ann], "ben": [ben]}, "required"))
    assert irtool(env, "incident", "note", incident, "shell found", "--as", "ben").returncode == 0
    checked = irtool(env, "verify", incident)
    assert checked.returncode == 0, checked.stderr
    assert "signatures: 2 signed (ann 1, ben 1), 0 unsigned" in checked.stdout
    exported = irtool(env, "export", incident, "--format", "json")
    assert exported.returncode == 0, exported.stderr
    events = json.loads(exported.stdout)["events"]
    # The signatures are SSHSIG, as ssh-keygen -Y verify (and git) read them.
    with journal(env, incident) as db:
        digest, signature = db.execute(
            "SELECT hash, signature FROM events WHERE seq = 2"
        ).fetchone()
    (tmp_path / "note.sig").write_text(signature)
    (tmp_path / "allowed").write_text(f"ben {ben}\n")
    standard = subprocess.run(
        [
            "ssh-keygen",
            "-Y",
            "verify",
            "-f",
            str(tmp_path / "allowed"),
            "-I",
            "ben",
            "-n",
            sshsig.NAMESPACE,
            "-s",
            str(tmp_path / "note.sig"),
        ],
        input=digest.encode(),
        capture_output=True,
        check=False,
    )
    assert standard.returncode == 0, standard.stderr
    assert events[1]["signature"] == signature  # the JSON timeline carries it, to check alike


def test_a_name_typed_with_as_does_not_sign_for_its_owner(
    tmp_path: Path, agent: Agent, monkeypatch: pytest.MonkeyPatch
) -> None:
    ann = agent.make_key("ann")
    ben = agent.make_key("ben", add=False)  # ben's key is on ben's laptop, not in ann's agent
    env = environment(tmp_path, agent)
    incident = opened(env, contacts(tmp_path, {"ann": [ann], "ben": [ben]}, "required"))
    requested_by_ann(env, incident)
    # ann, at her keyboard, cannot approve as ben: his signature is not hers to make.
    approved = irtool(env, "incident", "approve", incident, "block", "--as", "ben")
    assert approved.returncode != 0
    assert "none of ben's keys in the contacts file is in the ssh-agent" in approved.stderr
    with journal(env, incident) as db:
        assert db.execute("SELECT count(*) FROM events").fetchone()[0] == 3  # nothing written
    # Written around irtool's refusal, with ann's key: verify names it.
    mine = next(k for k in sshsig.agent_keys(str(agent.socket)))
    approved_around_irtool(env, incident, monkeypatch, lambda actor, digest: sshsig.sign(
        digest.encode(), mine, socket_path=str(agent.socket)
    ))  # fmt: skip
    forged = irtool(env, "verify", incident)
    assert forged.returncode == 1
    assert "event 4 was written as ben but signed with ann's key" in forged.stderr


def test_an_event_inserted_without_a_key_fails_verify_where_signatures_are_required(
    tmp_path: Path, agent: Agent
) -> None:
    ann = agent.make_key("ann")
    env = environment(tmp_path, agent)
    incident = opened(env, contacts(tmp_path, {"ann": [ann]}, "required"))
    with journal(env, incident) as db:
        row = db.execute(
            "SELECT seq, incident, recorded_at, hash FROM events ORDER BY seq DESC"
        ).fetchone()
        content = {"seq": row[0] + 1, "incident": row[1], "occurred_at": row[2],
                   "recorded_at": row[2], "actor": "ann", "kind": kinds.NOTE_ADDED,
                   "step": None, "host": None, "data": {"text": "all clear"},
                   "prev_hash": row[3]}  # fmt: skip
        db.execute(
            "INSERT INTO events (seq, incident, occurred_at, recorded_at, actor, kind, step, "
            "host, data, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (*[content[k] for k in ("seq", "incident", "occurred_at", "recorded_at", "actor",
                                    "kind", "step", "host")],
             json.dumps(content["data"]), content["prev_hash"], event_hash(content)),
        )  # fmt: skip
    checked = irtool(env, "verify", incident, "--json")
    assert checked.returncode == 1
    said = json.loads(checked.stdout)
    assert not said["ok"] and said["problem"] is None  # the chain holds: the signature tells
    assert said["signatures"]["problems"] == [
        f"event 2 ({kinds.NOTE_ADDED} by ann) is unsigned, and this incident's events must be "
        "signed"
    ]


def test_where_unsigned_events_are_allowed_they_pass_and_are_counted(
    tmp_path: Path, agent: Agent
) -> None:
    ann = agent.make_key("ann")
    env = environment(tmp_path, agent)
    incident = opened(env, contacts(tmp_path, {"ann": [ann]}, "optional"))
    assert irtool(env, "incident", "note", incident, "by phone", "--as", "ben").returncode == 0
    checked = irtool(env, "verify", incident)
    assert checked.returncode == 0, checked.stderr
    assert "signatures: 1 signed (ann 1), 1 unsigned (allowed)" in checked.stdout
    # Marked wherever it is shown: the post-mortem's timeline and the timeline rows.
    report = irtool(env, "export", incident, "--format", "markdown").stdout
    noted = next(line for line in report.splitlines() if "by phone" in line)
    assert "unsigned" in noted
    assert not any("unsigned" in line for line in report.splitlines() if "opened" in line)
    rows = irtool(env, "export", incident, "--format", "csv").stdout.splitlines()
    assert [r for r in rows if "(unsigned)" in r] == [r for r in rows if "by phone" in r]
    # And where the incident is shown.
    assert "UNSIGNED 1 event(s)" in irtool(env, "incident", "show", incident).stdout
    shown = json.loads(irtool(env, "incident", "show", incident, "--json").stdout)
    assert shown["unsigned_events"] == 1


def test_a_contacts_file_with_a_bad_or_shared_key_is_refused_at_its_line(
    tmp_path: Path, agent: Agent
) -> None:
    ann = agent.make_key("ann", add=False)
    env = environment(tmp_path, agent)
    garbled = Path(contacts(tmp_path, {"ann": ["ssh-ed25519 %%%not-base64"]}, "required"))
    checked = irtool(env, "validate", str(garbled))
    assert checked.returncode == 2
    line = next(n for n, text in enumerate(garbled.read_text().splitlines(), 1) if "ssh-" in text)
    assert f"{garbled}:{line}:" in checked.stderr and "not an SSH public key" in checked.stderr
    shared = contacts(tmp_path, {"ann": [ann], "ben": [ann]}, "optional")
    refused = irtool(env, "validate", shared)
    assert refused.returncode == 2
    assert "ann and ben list the same key: a key is one person's" in refused.stderr


def test_a_journal_written_before_signatures_is_upgraded_and_still_verifies(
    tmp_path: Path, agent: Agent
) -> None:
    ann = agent.make_key("ann")
    env = environment(tmp_path, agent)
    incident = opened(env, contacts(tmp_path, {"ann": [ann]}, "optional"))
    with journal(env, incident) as db:  # as irtool wrote it before events were signed
        db.execute("ALTER TABLE events DROP COLUMN signature")
        db.execute("PRAGMA user_version=1")
    shown = irtool(env, "incident", "show", incident)  # reads it as it is
    assert shown.returncode == 0, shown.stderr
    assert irtool(env, "incident", "note", incident, "upgraded", "--as", "ann").returncode == 0
    with journal(env, incident) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 2
        signed = db.execute("SELECT seq FROM events WHERE signature IS NOT NULL").fetchall()
    assert signed == [(2,)]  # the old event as it was; the new one signed
    checked = irtool(env, "verify", incident)
    assert checked.returncode == 0, checked.stderr
    assert "signatures: 1 signed (ann 1), 1 unsigned (allowed)" in checked.stdout


def test_where_the_team_signs_an_approval_needs_the_approvers_own_key(
    tmp_path: Path, agent: Agent, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Unsigned notes are allowed here; an approval is not a note: the two-person rule is met
    # by two people's keys, not by a second name typed.
    ann, ben = agent.make_key("ann"), agent.make_key("ben", add=False)
    env = environment(tmp_path, agent)
    incident = opened(env, contacts(tmp_path, {"ann": [ann], "ben": [ben]}, "optional"))
    requested_by_ann(env, incident)
    approved = irtool(env, "incident", "approve", incident, "block", "--as", "ben")
    assert approved.returncode != 0
    assert "the two-person rule needs two people's keys: none of ben's keys" in approved.stderr
    # Written around that refusal, unsigned: verify says so.
    approved_around_irtool(env, incident, monkeypatch, None)
    checked = irtool(env, "verify", incident)
    assert checked.returncode == 1
    assert (
        "event 4: the approval of 'block' and the request it approves are not both signed"
        in checked.stderr
    )


def test_what_cannot_be_signed_waits_in_the_spool_and_holds_no_one_up(
    tmp_path: Path, agent: Agent, monkeypatch: pytest.MonkeyPatch
) -> None:
    ann, ben = agent.make_key("ann"), agent.make_key("ben")
    env = environment(tmp_path, agent)
    incident = opened(env, contacts(tmp_path, {"ann": [ann], "ben": [ben]}, "required"))
    monkeypatch.setenv("IRTOOL_HOME", env["IRTOOL_HOME"])
    monkeypatch.setenv("SSH_AUTH_SOCK", str(agent.socket))
    session = IncidentSession.open(incident)
    subprocess.run(["ssh-add", "-q", "-d", str(agent.keys["ben"])], env={**os.environ, **agent.env},
                   check=True, capture_output=True)  # fmt: skip
    # A custody record ben's run could not sign: a journal error, so the run spools it.
    ran = EventDraft(kinds.COMMAND_RAN, "ben", {"purpose": "collect"}, host="web01")
    with pytest.raises(JournalError, match="none of ben's keys"):
        session.record_custody(ran)
    session.spool.put(ran, "cannot sign", session.state.last_seq)
    session.close_journal()
    # ann's note is written (signed by her), ben's record waits for ben, said once, in a line.
    noted = irtool(env, "incident", "note", incident, "still here", "--as", "ann")
    assert noted.returncode == 0, noted.stderr
    assert "1 custody record(s) pending" in noted.stderr and "none of ben's keys" in noted.stderr
    subprocess.run(["ssh-add", "-q", str(agent.keys["ben"])], env={**os.environ, **agent.env},
                   check=True, capture_output=True)  # fmt: skip
    assert irtool(env, "incident", "note", incident, "back", "--as", "ben").returncode == 0
    checked = irtool(env, "verify", incident, "--json")
    assert json.loads(checked.stdout)["signatures"]["signed"] == {"ann": 2, "ben": 2}


def test_nothing_is_left_behind_by_an_opening_its_commander_cannot_sign(
    tmp_path: Path, agent: Agent
) -> None:
    ann = agent.make_key("ann", add=False)
    env = environment(tmp_path, agent)
    made = irtool(env, "incident", "new", RUNBOOK, *PARAMS, "--contacts",
                  contacts(tmp_path, {"ann": [ann]}, "required"), "--as", "ann")  # fmt: skip
    assert made.returncode == 1
    assert "none of ann's keys in the contacts file is in the ssh-agent" in made.stderr
    assert not (tmp_path / "home" / "incidents").exists() or not list(
        (tmp_path / "home" / "incidents").iterdir()
    )


def test_a_request_is_signed_where_the_team_signs_and_a_key_added_later_is_found(
    tmp_path: Path, agent: Agent, monkeypatch: pytest.MonkeyPatch
) -> None:
    ann, ben = agent.make_key("ann", add=False), agent.make_key("ben")
    env = environment(tmp_path, agent)
    incident = opened(env, contacts(tmp_path, {"ann": [ann], "ben": [ben]}, "optional"))
    monkeypatch.setenv("IRTOOL_HOME", env["IRTOOL_HOME"])
    monkeypatch.setenv("SSH_AUTH_SOCK", str(agent.socket))
    session = IncidentSession.open(incident)  # one long-lived session, as the UI is
    session.start_early("block", "ann", "ongoing")
    with pytest.raises(Refused, match="two-person rule needs two people's keys: none of ann"):
        session.request_action("block", "ann", "active")
    subprocess.run(["ssh-add", "-q", str(agent.keys["ann"])], env={**os.environ, **agent.env},
                   check=True, capture_output=True)  # fmt: skip
    assert session.request_action("block", "ann", "active").signature is not None
    session.close_journal()


@pytest.mark.parametrize("tampered", ["keys", "contacts"])
def test_a_tampered_list_of_keys_is_a_broken_chain_not_a_crash(
    tmp_path: Path, agent: Agent, tampered: str
) -> None:
    ann = agent.make_key("ann")
    env = environment(tmp_path, agent)
    incident = opened(env, contacts(tmp_path, {"ann": [ann]}, "required"))
    with journal(env, incident) as db:
        db.execute("DROP TRIGGER events_are_never_updated")
        data = json.loads(db.execute("SELECT data FROM events WHERE seq = 1").fetchone()[0])
        if tampered == "keys":
            data["contacts"]["model"]["people"]["ann"]["keys"] = [7]
        else:
            data["contacts"] = "not a contacts file"
        db.execute("UPDATE events SET data = ? WHERE seq = 1", (json.dumps(data),))
    checked = irtool(env, "verify", incident)
    assert checked.returncode == 1
    assert "BROKEN at event 1" in checked.stderr and "internal error" not in checked.stderr


def test_the_ui_says_an_event_is_unsigned_where_the_team_signs(
    tmp_path: Path, agent: Agent, monkeypatch: pytest.MonkeyPatch
) -> None:
    from irtool.tui.screens.timeline import TimelineScreen, detail_text

    ann = agent.make_key("ann")
    env = environment(tmp_path, agent)
    incident = opened(env, contacts(tmp_path, {"ann": [ann]}, "optional"))
    assert irtool(env, "incident", "note", incident, "by phone", "--as", "ben").returncode == 0
    monkeypatch.setenv("IRTOOL_HOME", env["IRTOOL_HOME"])
    session = IncidentSession.open(incident)
    events = list(session.journal.events())
    session.close_journal()
    screen = TimelineScreen(events)
    assert screen.signing
    signed, unsigned = (detail_text(e, signing=screen.signing).plain for e in events)
    assert "this event is unsigned" in unsigned and "this event is unsigned" not in signed
    assert "-----BEGIN SSH SIGNATURE-----" in signed
    assert "unsigned" not in detail_text(events[1]).plain  # a team that does not sign
