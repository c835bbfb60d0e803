"""Anchors: a journal cut short or rewritten, hash by hash, is caught behind the head this
machine saw and behind an anchor kept elsewhere (`irtool anchor`, `verify --head`)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from irtool.journal import event_hash
from tests.conftest import ROOT
from tests.support.cli import irtool

RUNBOOK = str(ROOT / "runbooks" / "iis-compromise.yaml")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "IRTOOL_HOME": str(tmp_path / "here"), "IRTOOL_RESPONDER": "judy"}


def opened(env: dict[str, str], notes: int) -> str:
    made = irtool(env, "incident", "new", RUNBOOK)
    assert made.returncode == 0, made.stderr
    incident = made.stdout.strip()
    for n in range(notes):
        assert irtool(env, "incident", "note", incident, f"note {n}").returncode == 0
    return incident


def database(env: dict[str, str], incident: str) -> sqlite3.Connection:
    db = sqlite3.connect(Path(env["IRTOOL_HOME"]) / "incidents" / incident / "journal.sqlite")
    db.execute("DROP TRIGGER IF EXISTS events_are_never_deleted")
    db.execute("DROP TRIGGER IF EXISTS events_are_never_updated")
    return db


def cut(env: dict[str, str], incident: str, after: int) -> None:
    with database(env, incident) as db:
        db.execute("DELETE FROM events WHERE seq > ?", (after,))


def forge(env: dict[str, str], incident: str, seq: int) -> None:
    """Rewrite event `seq` (its actor) and every hash from it on, as someone who can write
    the file would: the chain holds again, from the first event to the last."""
    with database(env, incident) as db:
        rows = db.execute(
            "SELECT seq, incident, occurred_at, recorded_at, actor, kind, step, host, data, "
            "prev_hash FROM events WHERE seq >= ? ORDER BY seq",
            (seq,),
        ).fetchall()
        prev = db.execute("SELECT hash FROM events WHERE seq = ?", (seq - 1,)).fetchone()[0]
        for row in rows:
            keys = ("seq", "incident", "occurred_at", "recorded_at", "actor", "kind", "step")
            content = dict(zip((*keys, "host"), row[:8], strict=True))
            content.update(data=json.loads(row[8]), prev_hash=prev)
            if row[0] == seq:
                content["actor"] = "mallory"
            digest = event_hash(content)
            db.execute(
                "UPDATE events SET actor = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                (content["actor"], prev, digest, row[0]),
            )
            prev = digest


def events(env: dict[str, str], incident: str) -> int:
    with database(env, incident) as db:
        return int(db.execute("SELECT count(*) FROM events").fetchone()[0])


def test_a_journal_cut_short_behind_the_head_this_machine_saw_fails_and_takes_no_write(
    env: dict[str, str],
) -> None:
    incident = opened(env, notes=3)  # events 1-4, written here
    assert irtool(env, "verify", incident).returncode == 0
    cut(env, incident, after=3)
    checked = irtool(env, "verify", incident)
    assert checked.returncode == 1
    assert "the journal ends at event 3, but the head this machine saw is event 4" in (
        checked.stderr
    )
    # Writing on would carry the cut chain on, and in time hide it: refused, nothing written.
    refused = irtool(env, "incident", "note", incident, "on top")
    assert refused.returncode != 0
    assert "no longer holds event 4 as this machine saw it" in refused.stderr
    assert events(env, incident) == 3


def test_a_rewrite_the_chain_alone_cannot_show_is_caught_by_the_head_this_machine_saw(
    env: dict[str, str], tmp_path: Path
) -> None:
    incident = opened(env, notes=3)
    forge(env, incident, seq=2)
    heads = Path(env["IRTOOL_HOME"]) / "heads"
    aside = tmp_path / "heads-aside"
    heads.rename(aside)
    assert irtool(env, "verify", incident).returncode == 0  # a perfect forgery, on its own
    shutil.rmtree(heads, ignore_errors=True)  # what that verify kept: the forged head
    aside.rename(heads)
    checked = irtool(env, "verify", incident, "--json")
    assert checked.returncode == 1
    said = json.loads(checked.stdout)
    assert said["ok"] is False and said["first_bad_seq"] == 4
    assert said["anchors"][0]["of"] == "the head this machine saw"
    assert "event 4 is not the one the head this machine saw pins" in said["problem"]


def test_an_anchor_kept_elsewhere_holds_a_copy_of_the_journal_to_it(
    env: dict[str, str], tmp_path: Path
) -> None:
    incident = opened(env, notes=2)
    printed = irtool(env, "anchor", incident)
    assert printed.returncode == 0, printed.stderr
    anchor = printed.stdout.strip()
    shown = json.loads(irtool(env, "anchor", incident, "--json").stdout)
    assert anchor == f"{incident} event 3 sha256:{shown['hash']}" == shown["anchor"]
    # Another machine, with a copy of the incident and none of this one's heads.
    there = {**env, "IRTOOL_HOME": str(tmp_path / "there")}
    shutil.copytree(Path(env["IRTOOL_HOME"]) / "incidents", tmp_path / "there" / "incidents")
    assert irtool(there, "verify", incident, "--head", anchor).returncode == 0
    assert irtool(there, "incident", "note", incident, "later").returncode == 0
    assert irtool(there, "verify", incident, "--head", anchor).returncode == 0  # grew: fine
    forge(there, incident, seq=3)
    shutil.rmtree(tmp_path / "there" / "heads")  # the copy's machine saw only the forgery
    assert irtool(there, "verify", incident).returncode == 0
    shutil.rmtree(tmp_path / "there" / "heads")
    rewritten = irtool(there, "verify", incident, "--head", anchor)
    assert rewritten.returncode == 1
    assert "event 3 is not the one the anchor given (--head) pins" in rewritten.stderr
    cut(there, incident, after=2)
    shutil.rmtree(tmp_path / "there" / "heads", ignore_errors=True)
    short = irtool(there, "verify", incident, "--head", anchor, "--head", shown["hash"])
    assert short.returncode == 1
    assert "the journal ends at event 2, but the anchor given (--head) is event 3" in short.stderr
    assert f"the head {shown['hash']} is not in the journal" in short.stderr


def test_an_anchor_of_another_incident_or_no_anchor_at_all_is_bad_input(
    env: dict[str, str],
) -> None:
    incident, other = opened(env, notes=0), opened(env, notes=0)
    anchor = irtool(env, "anchor", other).stdout.strip()
    wrong = irtool(env, "verify", incident, "--head", anchor)
    assert wrong.returncode == 2
    assert f"that anchor is of incident {other}, not {incident}" in wrong.stderr
    garbled = irtool(env, "verify", incident, "--head", "yesterday's head")
    assert garbled.returncode == 2 and "not an anchor" in garbled.stderr


def test_a_writer_that_stays_open_is_not_written_past_a_cut(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The UI or a run keeps the journal open: a cut made meanwhile stops its next write too,
    # and the head this machine saw never moves onto the cut chain.
    from irtool.engine.session import IncidentSession
    from irtool.journal import JournalError

    incident = opened(env, notes=3)
    monkeypatch.setenv("IRTOOL_HOME", env["IRTOOL_HOME"])
    session = IncidentSession.open(incident)
    session.note("first", "judy")  # event 5
    cut(env, incident, after=3)
    for _ in range(3):
        with pytest.raises(JournalError, match="no longer holds event 5"):
            session.note("on the cut chain", "judy")
    session.close_journal()
    assert events(env, incident) == 3
    assert irtool(env, "verify", incident).returncode == 1


def test_an_incident_made_anew_under_an_id_once_used_starts_its_own_chain(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from irtool.journal import Journal
    from irtool.journal.incidents import journal_path

    incident = opened(env, notes=2)
    monkeypatch.setenv("IRTOOL_HOME", env["IRTOOL_HOME"])
    path = journal_path(incident)
    for leftover in path.parent.glob("journal.sqlite*"):
        leftover.unlink()
    with Journal(path, incident, create=True) as journal:
        from irtool.journal import EventDraft

        journal.append(EventDraft("incident.opened", "judy", {"title": "again"}))
    assert "the head this machine saw" not in irtool(env, "verify", incident).stderr


def test_an_anchor_names_an_event(env: dict[str, str]) -> None:
    incident = opened(env, notes=0)
    zero = irtool(env, "verify", incident, "--head", f"{incident} event 0 sha256:{'0' * 64}")
    assert zero.returncode == 2 and "its seq is 1 or more" in zero.stderr
