"""Opening from a checkpoint: the same state as folding every event, and a checkpoint that
disagrees with the journal is rebuilt, never trusted."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from irtool.engine import checkpoint, kinds
from irtool.engine.session import IncidentSession
from irtool.engine.state import RECORD_KINDS, IncidentState, Records
from irtool.engine.unfolding import check_new_host
from irtool.journal import EventDraft, Journal, anchors
from irtool.journal.incidents import journal_path
from irtool.model.loader import load_contacts, load_inventory, load_runbook
from tests.conftest import ROOT


def standing(state: IncidentState) -> dict[str, Any]:
    """Everything a check reads: every field but the records and the machinery."""
    return {f.name: getattr(state, f.name) for f in fields(state) if not f.name.startswith("_")}


def records(state: IncidentState) -> tuple[Any, ...]:
    return state.evidence, state.notes, state.runs


@pytest.fixture
def home(recorded: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the recorded incidents (every live and every exercise event kind)."""
    copy = tmp_path / "home"
    shutil.copytree(recorded["home"], copy)
    monkeypatch.setenv("IRTOOL_HOME", str(copy))
    return copy


def grow(incident: str, notes: int, text: str = "note") -> None:
    """`notes` more notes, a transaction per 500: past the point a checkpoint is written."""
    session = IncidentSession.open(incident, records=False)
    with session.journal as journal:
        for start in range(0, notes, 500):
            with journal.transaction() as tx:
                for i in range(start, min(notes, start + 500)):
                    tx.append(EventDraft(kinds.NOTE_ADDED, "scribe", {"text": f"{text} {i}"}))


def loaded(incident: str) -> IncidentState | None:
    """The checkpoint, if `load` takes it as sound."""
    with Journal(journal_path(incident), incident) as journal:
        return checkpoint.load(journal)


def lean(incident: str) -> IncidentState:
    session = IncidentSession.open(incident, records=False)
    session.close_journal()
    return session.state


def full(incident: str) -> IncidentState:
    session = IncidentSession.open(incident)
    session.close_journal()
    return session.state


@pytest.mark.parametrize("which", ["live", "exercise"])
def test_the_standing_state_and_the_records_read_later_are_those_of_the_whole_fold(
    home: Path, recorded: dict[str, Any], which: str
) -> None:
    incident = recorded[which]
    grow(incident, checkpoint.EVERY + 10)
    first = lean(incident)  # folded anew, and checkpointed
    assert checkpoint.path_of(incident).is_file()
    again = IncidentSession.open(incident, records=False)  # from the checkpoint
    whole = full(incident)
    assert standing(first) == standing(whole) == standing(again.state)
    assert not again.state.records_read
    assert records(again.state) == records(whole)  # read from the journal when asked for
    # and kept up to date from then on, as the whole fold is
    again.note("after the records were read", "ann")
    whole_after = full(incident)
    assert records(again.state) == records(whole_after)
    assert standing(again.state) == standing(whole_after)
    again.close_journal()


def test_open_runs_are_those_close_would_list(home: Path, recorded: dict[str, Any]) -> None:
    """The fold keeps only runs still open; close lists the same as it did from every run."""
    incident = recorded["live"]
    state = full(incident)
    still_open = sorted(
        seq
        for seq, run in state.runs.items()
        if not run.finished
        or (
            run.interrupted
            and not (
                run.step
                and any(
                    later.seq > seq
                    and (later.step, later.purpose) == (run.step, run.purpose)
                    and later.finished
                    and not later.interrupted
                    for later in state.runs.values()
                )
            )
        )
    )
    assert sorted(state.open_runs) == still_open
    assert sorted(lean(incident).open_runs) == still_open


def test_a_checkpoint_of_another_journal_is_not_trusted(
    home: Path, recorded: dict[str, Any]
) -> None:
    """The journal replaced by one that went another way after a common start: the
    checkpoint's last event is not the journal's, so every event is folded again."""
    incident = recorded["live"]
    path = journal_path(incident)
    before = path.read_bytes()
    grow(incident, checkpoint.EVERY + 5)
    first = lean(incident)
    assert checkpoint.path_of(incident).is_file()
    path.write_bytes(before)  # the same incident, another history from here
    # Restored on purpose: as the refusal to write on it says, this machine forgets its head.
    anchors.seen_path(incident).unlink()
    session = IncidentSession.open(incident)
    session.assign_action_item("taken on the other branch", "bob", "ann")
    session.close_journal()
    grow(incident, checkpoint.EVERY + 4, text="other")
    assert lean(incident).last_seq == first.last_seq  # same length: only the hashes tell
    assert lean(incident).action_items[-1].text == "taken on the other branch"
    assert standing(lean(incident)) == standing(full(incident))


def test_a_checkpoint_that_fails_its_seal_is_not_read(
    home: Path, recorded: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    incident = recorded["live"]
    grow(incident, checkpoint.EVERY + 5)
    lean(incident)
    path = checkpoint.path_of(incident)
    # A step marked done in the checkpoint by someone without the key.
    forged = lean(incident)
    forged.commander = "mallory"
    with monkeypatch.context() as patched:
        patched.setattr(checkpoint, "_key", lambda: b"someone else's key")
        checkpoint.save(forged)
    assert loaded(incident) is None
    assert lean(incident).commander != "mallory"
    # A torn or flipped file: the same.
    sealed = path.read_bytes()
    path.write_bytes(sealed[:-40] + bytes(40))
    assert loaded(incident) is None
    assert standing(lean(incident)) == standing(full(incident))


def test_a_checkpoint_made_by_other_code_is_rebuilt(
    home: Path, recorded: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    incident = recorded["live"]
    grow(incident, checkpoint.EVERY + 5)
    lean(incident)
    assert loaded(incident) is not None
    monkeypatch.setattr(checkpoint, "_fingerprint", b"a fold of another version")
    assert loaded(incident) is None


def tamper(path: Path, sql: str) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("DROP TRIGGER events_are_never_updated")
    db.execute(sql)
    db.close()


def test_a_tail_that_does_not_follow_the_checkpoint_is_folded_again(
    home: Path, recorded: dict[str, Any]
) -> None:
    incident = recorded["live"]
    grow(incident, checkpoint.EVERY + 5)
    checkpointed = lean(incident).last_seq
    grow(incident, 20, text="tail")
    tamper(
        journal_path(incident),
        f'UPDATE events SET data = \'{{"text":"rewritten"}}\' WHERE seq = {checkpointed + 3}',
    )
    # The open does not trust the tail's edited event to follow the checkpoint; it reads
    # the journal as it now stands, which verify calls broken at that event.
    assert standing(lean(incident)) == standing(full(incident))
    shown = irtool(home, "verify", incident)
    assert shown.returncode != 0 and f"event {checkpointed + 3}" in shown.stdout + shown.stderr


def irtool(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "irtool", *args],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "IRTOOL_HOME": str(home)},
        check=False,
    )


@pytest.mark.parametrize("form", ["markdown", "json", "csv"])
def test_a_journal_tampered_before_the_checkpoint_is_caught_by_verify_and_export(
    home: Path, recorded: dict[str, Any], form: str, tmp_path: Path
) -> None:
    incident = recorded["live"]
    grow(incident, checkpoint.EVERY + 5)
    lean(incident)
    tamper(journal_path(incident), "UPDATE events SET actor = 'mallory' WHERE seq = 5")
    assert loaded(incident) is not None  # the checkpoint still matches its key
    shown = irtool(home, "verify", incident)
    assert shown.returncode != 0 and "event 5" in shown.stdout + shown.stderr
    exported = irtool(home, "export", incident, "--format", form, "-o", str(tmp_path / "out"))
    assert exported.returncode == 1
    assert "BROKEN at event 5" in exported.stderr


def test_the_key_is_the_users_alone(home: Path, recorded: dict[str, Any]) -> None:
    grow(recorded["live"], checkpoint.EVERY + 5)
    lean(recorded["live"])
    key = checkpoint.path_of(recorded["live"]).parent / "checkpoint.key"
    assert key.stat().st_mode & 0o077 == 0 and len(key.read_bytes()) == 32


def test_no_write_reads_the_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every command a scribe or the commander writes is checked against the standing state
    alone: none reads the evidence, notes, runs or calls made (at a million events that read
    is what made a note cost seconds)."""
    monkeypatch.setenv("IRTOOL_HOME", str(tmp_path))
    valid = ROOT / "tests" / "corpus" / "valid"
    opened = IncidentSession.new(
        load_runbook(valid / "every-kind.yaml"),
        {"attacker_ip": "203.0.113.7", "account": "CORP\\mallory"},
        actor="ann",
        contacts=load_contacts(valid / "contacts.yaml"),
        inventory=load_inventory(valid / "inventory.yaml"),
    )
    incident = opened.state.id
    opened.close_journal()
    now = datetime.now(UTC)
    writes: list[Callable[[IncidentSession], object]] = [
        lambda s: s.note("the scribe's first note", "sam"),
        lambda s: s.correct(s.state.last_seq, "sam", "typo", text="the scribe's note"),
        lambda s: s.reach("security", "ann", "left-message", "judy"),
        lambda s: s.escalate("security", "judy", "no answer"),
        lambda s: s.reach("security", "ben", "reached", "judy", method="phone"),
        lambda s: s.complete("assemble", "ann"),
        lambda s: s.open_meeting("meet", "ann"),
        lambda s: s.close_meeting("ann", reconvene_at=now + timedelta(hours=1)),
        lambda s: s.set_reconvene(now + timedelta(hours=2), "ann"),
        lambda s: s.assign_action_item("patch the shop", "bob", "ann"),
        lambda s: s.set_parameter("attacker_ip", ["198.51.100.9"], "ann", "a second address"),
        lambda s: s.change_ioc("add", "ip", "198.51.100.9", "ann", "seen in the logs"),
        lambda s: s.start_early("evidence", "ann", "logs roll over at midnight"),
        lambda s: s.complete("meet", "ann"),
        lambda s: s.complete("scope", "ann"),
        lambda s: s.decide("ongoing", "yes", "ann"),
        lambda s: s.request_action("block", "ann", "the attacker is still active"),
        lambda s: s.approve("block", "ben"),
        lambda s: s.handover("ben", "ann"),
        lambda s: s.answer("lessons", {"1": "the web shell, found in the logs"}, "ben"),
        lambda s: s.skip("evidence", "ben", "collected by the host team"),
        lambda s: s.close("ben", "contained", over="left for the post-mortem"),
        lambda s: s.note("after closing", "sam"),
    ]
    for write in writes:
        session = IncidentSession.open(incident, records=False)
        try:
            write(session)
            assert not session.state.records_read, write
        finally:
            session.close_journal()
    assert full(incident).closed


def test_records_read_while_others_write_never_stall_a_write(
    home: Path, recorded: dict[str, Any]
) -> None:
    """The records are read (the UI's background read) while this session writes and another
    terminal appends: each write, which folds what it caught up, goes through at once, and
    the records end with every event the state has."""
    incident = recorded["live"]
    session = IncidentSession.open(incident, records=False)
    reads: list[tuple[int, int]] = []
    stalled: list[int] = []

    def read(after: int, upto: int) -> Any:
        reads.append((after, upto))
        if len(reads) <= 2:
            with Journal(journal_path(incident), incident) as other:
                other.append(EventDraft(kinds.NOTE_ADDED, "sam", {"text": "from elsewhere"}))
            writer = threading.Thread(target=session.note, args=("meanwhile", "ann"))
            writer.start()
            writer.join(10)
            if writer.is_alive():
                stalled.append(len(reads))
        return session.journal.events(after, upto=upto, kinds=RECORD_KINDS)

    session.state.bind_records(read)
    read_all: list[Records] = []
    # In a thread of its own, as the UI reads them: a deadlock fails the test, not hangs it.
    reader = threading.Thread(target=lambda: read_all.append(session.state.records()), daemon=True)
    reader.start()
    reader.join(30)
    assert not reader.is_alive() and stalled == []
    (found,) = read_all
    texts = [note.text for note in found.notes]
    assert texts[-4:] == ["from elsewhere", "meanwhile", "from elsewhere", "meanwhile"]
    assert found.notes[-1].seq == session.state.last_seq
    session.close_journal()


def test_a_journal_found_altered_is_never_checkpointed(
    home: Path, recorded: dict[str, Any]
) -> None:
    """A checkpoint is made only of a fold whose every event held: one altered event, before
    or after the last checkpoint, and none is written until the journal holds again."""
    incident = recorded["live"]
    grow(incident, checkpoint.EVERY + 5)
    tamper(journal_path(incident), "UPDATE events SET actor = 'mallory' WHERE seq = 2")
    lean(incident)
    assert not checkpoint.path_of(incident).exists()
    db = sqlite3.connect(journal_path(incident), isolation_level=None)
    db.execute("UPDATE events SET actor = 'ann' WHERE seq = 2")  # `tamper` dropped the trigger
    db.close()
    lean(incident)
    assert checkpoint.path_of(incident).is_file()
    grow(incident, checkpoint.EVERY + 5)
    last = lean(incident).last_seq
    grow(incident, checkpoint.EVERY + 5)
    db = sqlite3.connect(journal_path(incident), isolation_level=None)
    db.execute(f"UPDATE events SET actor = 'mallory' WHERE seq = {last + 3}")
    db.close()
    assert lean(incident).last_seq > last
    assert loaded(incident) is not None and loaded(incident).last_seq == last  # not replaced


def test_a_key_others_could_have_written_is_not_trusted(
    home: Path, recorded: dict[str, Any]
) -> None:
    """A home shared with others (the checkpoints directory writable by them): no checkpoint
    is read there, since whoever wrote the key could have sealed a pickle of their own."""
    incident = recorded["live"]
    grow(incident, checkpoint.EVERY + 5)
    lean(incident)
    assert loaded(incident) is not None
    checkpoint.path_of(incident).parent.chmod(0o777)
    assert loaded(incident) is None
    assert standing(lean(incident)) == standing(full(incident))


def models(state: IncidentState) -> tuple[Any, ...]:
    scenario = state.exercise.scenario if state.exercise else None
    return state.runbook, state.contacts, state.inventory, state.host_facts(), scenario


def test_the_models_made_from_the_journals_data_are_those_its_events_say(
    home: Path, recorded: dict[str, Any]
) -> None:
    # The state keeps the runbook, contacts, inventory and host facts as the journal's data
    # and makes the models when first read: read early (then kept up to date), read late,
    # or read from a checkpoint, they are the same, scope changes and facts included.
    incident = recorded["live"]
    session = IncidentSession.open(incident)
    early = IncidentSession.open(incident)
    assert early.state.inventory is not None  # made now, before the changes below
    entry = check_new_host("web09", "affected", {"address": "127.0.0.1", "transport": "local"})
    said = {"os": "windows", "windows": "10.0", "build": 17763, "iis": "10.0"}
    with session.journal.transaction() as tx:  # as the commands write them (it is closed)
        for host, change, new_host in (("web09", "add", entry), ("web01", "remove", None)):
            scope = {"host": host, "group": "affected", "change": change, "reason": "seen"}
            tx.append(EventDraft(kinds.SCOPE_CHANGED, "ann", {**scope, "new_host": new_host}))
            if new_host:
                tx.append(EventDraft(kinds.HOST_FACTS, "ann", {"facts": said}, host=host))
    session.close_journal()
    early.refresh()
    early.close_journal()
    grow(incident, checkpoint.EVERY + 10)
    late = lean(incident)  # folded anew and checkpointed, no model read on the way
    again = IncidentSession.open(incident, records=False)  # from the checkpoint
    again.close_journal()
    inventory = late.inventory
    assert inventory is not None and "web09" in inventory.groups["affected"]
    assert "web01" not in inventory.groups.get("affected", [])
    assert late.host_facts()["web09"].build == 17763
    assert models(early.state) == models(late) == models(again.state) == models(full(incident))
    # The checkpoint holds the data alone: no model (nor pydantic) is needed to load it.
    pickled = checkpoint.path_of(incident).read_bytes()
    assert b"pydantic" not in pickled and b"irtool.model" not in pickled
