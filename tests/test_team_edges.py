"""Team mode where it is easy to get wrong: references across a sync, a first copy cut short,
two processes of one machine pulling at once, no database given, an altered local file, an
incident closed while someone was offline, a server lost mid-verify, and URLs that would
send a record in clear or show a password. Each test failed before its fix."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import psycopg
import pytest

from irtool.journal.database import DatabaseRefused, checked
from tests.support.cli import irtool
from tests.support.postgres import Postgres
from tests.test_team_mode import _dead_port, collected, machine, opened
from tests.test_team_mode import server as server


def offline(env: dict[str, str], port: int) -> dict[str, str]:
    url = env["IRTOOL_DATABASE"].replace(f":{port}/", f":{_dead_port()}/")
    return {**env, "IRTOOL_DATABASE": url}


def timeline(env: dict[str, str], incident: str) -> list[dict[str, Any]]:
    out = irtool(env, "export", incident, "--format", "json")
    assert out.returncode == 0, out.stderr
    events: list[dict[str, Any]] = json.loads(out.stdout)["events"]
    return events


def on(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    """This process works as the machine `env` describes."""
    for name in ("IRTOOL_HOME", "IRTOOL_DATABASE"):
        monkeypatch.setenv(name, env[name])


def test_an_offline_correction_still_corrects_its_own_note_after_sync(
    server: Postgres, tmp_path: Path
) -> None:
    ann, ben = (machine(tmp_path, who, server, who) for who in ("ann", "ben"))
    incident = opened(ann)
    assert irtool(ben, "incident", "note", incident, "ben joins").returncode == 0
    away = offline(ben, server.port)
    assert irtool(away, "incident", "note", incident, "host web01 is clean").returncode == 0
    fixed = irtool(away, "incident", "correct", incident, "3", "--reason", "typo",
                   "--text", "host web02 is clean")  # fmt: skip
    assert fixed.returncode == 0, fixed.stderr
    # Meanwhile Ann's note takes seq 3 in the database.
    assert irtool(ann, "incident", "note", incident, "ann: isolating web01 NOW").returncode == 0
    assert irtool(ben, "sync", incident).returncode == 0
    events = timeline(ann, incident)
    bens = next(e for e in events if e["data"].get("text") == "host web01 is clean")
    correction = next(e for e in events if e["kind"] == "event.corrected")
    assert correction["data"]["corrects"] == bens["seq"] != 3


def test_a_first_copy_cut_short_is_still_the_teams_and_is_taken_up_again(
    server: Postgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from irtool.journal import backends
    from irtool.journal.postgres import PgJournal
    from irtool.journal.team import TeamJournal

    ann, ben = (machine(tmp_path, who, server, who) for who in ("ann", "ben"))
    incident = opened(ann)
    on(monkeypatch, ben)

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # the responder presses Ctrl-C during the first copy

    with monkeypatch.context() as patched:
        patched.setattr(PgJournal, "events", interrupted)
        with pytest.raises(KeyboardInterrupt):
            TeamJournal(checked(ben["IRTOOL_DATABASE"]), incident)
    assert backends.is_team(incident)
    shown = irtool(ben, "incident", "show", incident, "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["team_database"].startswith("TEAM")


def test_two_processes_pulling_at_once_never_set_the_copys_mark_back(
    server: Postgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from irtool.journal.team import TeamJournal

    ann, ben = (machine(tmp_path, who, server, who) for who in ("ann", "ben"))
    incident = opened(ann)
    on(monkeypatch, ben)
    database = checked(ben["IRTOOL_DATABASE"])
    screen = TeamJournal(database, incident)  # Ben's screen: its copy at event 1
    assert irtool(ann, "incident", "note", incident, "two").returncode == 0
    copy_in = screen.local.copy_in

    def slowly(events: Any) -> int:
        read = list(events)  # the screen has read event 2; before it copies it in...
        assert irtool(ann, "incident", "note", incident, "three").returncode == 0
        TeamJournal(database, incident).close()  # ...a command of Ben's copies 2 and 3
        return copy_in(read)

    screen.local.copy_in = slowly  # type: ignore[method-assign]
    screen.head()
    screen.local.copy_in = copy_in  # type: ignore[method-assign]
    assert screen.unsynced() == 0 and screen.online, screen.connection
    screen.close()
    assert irtool(ben, "sync", incident).returncode == 0
    threes = [e for e in timeline(ann, incident) if e["data"].get("text") == "three"]
    assert len(threes) == 1


def test_without_a_database_given_the_copy_is_read_and_verified_as_it_stands(
    server: Postgres, tmp_path: Path
) -> None:
    ann = machine(tmp_path, "ann", server, "ann")
    incident = opened(ann)
    bare = {k: v for k, v in ann.items() if k != "IRTOOL_DATABASE"}
    checked_here = irtool(bare, "verify", incident)
    assert checked_here.returncode == 0, checked_here.stderr
    assert "BROKEN" not in checked_here.stdout + checked_here.stderr
    assert "no team database given" in checked_here.stderr
    assert irtool(bare, "incident", "show", incident).returncode == 0


def test_one_altered_local_file_does_not_keep_the_others_from_the_team(
    server: Postgres, tmp_path: Path
) -> None:
    from irtool.journal import pgevidence

    ann = machine(tmp_path, "ann", server, "ann")
    directory = tmp_path / "evidence"
    directory.mkdir()
    altered = hashlib.sha256(b"original bytes").hexdigest()
    (directory / altered).write_bytes(b"altered bytes")
    # An intact file whose name sorts after the altered one's (share goes in name order).
    intact = next(
        data
        for n in range(1000)
        if hashlib.sha256(data := b"clean evidence %d" % n).hexdigest() > altered
    )
    name = hashlib.sha256(intact).hexdigest()
    (directory / name).write_bytes(intact)
    with psycopg.connect(ann["IRTOOL_DATABASE"], autocommit=True) as db:
        assert pgevidence.share(db, directory) == [name]
        assert pgevidence.has(db, name) and not pgevidence.has(db, altered)


def test_a_local_file_altered_is_named_by_verify_not_blamed_on_the_database(
    server: Postgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from irtool.journal.incidents import EVIDENCE_DIR, incident_dir
    from irtool.journal.team import TeamJournal

    ann = machine(tmp_path, "ann", server, "ann")
    session, item = collected(tmp_path, monkeypatch, ann, "echo w3wp.exe")
    incident = session.state.id

    def blip(self: TeamJournal) -> list[str]:
        raise OSError("a network blip")  # the file stays on this machine alone

    with monkeypatch.context() as patched:
        patched.setattr(TeamJournal, "share_evidence", blip)
        session.close_journal()
    kept = incident_dir(incident) / EVIDENCE_DIR / item.files["stdout"]["sha256"]
    kept.chmod(0o644)
    kept.write_text("tampered\n")
    result = irtool({**ann, "IRTOOL_HOME": os.environ["IRTOOL_HOME"]}, "verify", incident,
                    "--json")  # fmt: skip
    assert result.returncode == 1
    assert "in the team's database" not in result.stderr, result.stderr
    assert any("altered" in p for p in json.loads(result.stdout)["evidence_problems"])


def test_no_anchor_is_given_of_a_copy_holding_offline_events(
    server: Postgres, tmp_path: Path
) -> None:
    ann, ben = (machine(tmp_path, who, server, who) for who in ("ann", "ben"))
    incident = opened(ann)
    assert irtool(ben, "incident", "note", incident, "ben joins").returncode == 0
    assert irtool(offline(ben, server.port), "incident", "note", incident, "train").returncode == 0
    # Back online, before `irtool sync`: that head is not one the team's chain will hold.
    anchor = irtool(ben, "anchor", incident)
    assert anchor.returncode == 1 and f"irtool sync {incident}" in anchor.stderr
    assert irtool(ben, "sync", incident).returncode == 0
    anchor = irtool(ben, "anchor", incident)
    assert anchor.returncode == 0, anchor.stderr
    assert irtool(ann, "verify", incident, "--head", anchor.stdout.strip()).returncode == 0


def test_a_step_done_offline_after_the_team_closed_the_incident_becomes_a_note(
    server: Postgres, tmp_path: Path
) -> None:
    ann, ben = (machine(tmp_path, who, server, who) for who in ("ann", "ben"))
    incident = opened(ann)
    assert irtool(ben, "incident", "note", incident, "ben joins").returncode == 0
    away = offline(ben, server.port)
    assert irtool(away, "incident", "done", incident, "assemble").returncode == 0
    closed = irtool(ann, "incident", "close", incident, "--summary", "over", "--over", "test")
    assert closed.returncode == 0, closed.stderr
    synced = irtool(ben, "sync", incident, "--json")
    assert synced.returncode == 0, synced.stderr
    assert len(json.loads(synced.stdout)["refused"]) == 1
    events = timeline(ann, incident)
    after = [e for e in events if e["seq"] > next(e["seq"] for e in events
                                                 if e["kind"] == "incident.closed")]  # fmt: skip
    assert "step.completed" not in [e["kind"] for e in after]
    assert "closed meanwhile" in after[-1]["data"]["text"]


def test_a_server_lost_while_its_chain_is_verified_is_said_in_one_line(
    server: Postgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from irtool.engine.shared import catch_up
    from irtool.journal import JournalError, store

    ann = machine(tmp_path, "ann", server, "ann")
    incident = opened(ann)
    on(monkeypatch, ann)
    follow = store._Chain.follow

    def then_stop(chain: store._Chain, row: tuple[Any, ...]) -> Any:
        found = follow(chain, row)
        server.stop()
        return found

    monkeypatch.setattr(store._Chain, "follow", then_stop)
    try:
        with pytest.raises(JournalError):
            catch_up(incident, verify=True)
    finally:
        server.start()


def test_offline_copies_are_given_oldest_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from irtool.engine.syncing import offline_copies
    from irtool.journal.incidents import journal_path

    monkeypatch.setenv("IRTOOL_HOME", str(tmp_path))
    incident = "ir-20260101-000000-abcd"
    directory = journal_path(incident).parent
    directory.mkdir(parents=True)
    (directory / "journal.offline-100-20260102T000000000000.sqlite").touch()  # a day later
    (directory / "journal.offline-99-20260101T000000000000.sqlite").touch()
    assert [p.name.split("-")[1] for p in offline_copies(incident)] == ["99", "100"]


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://responder@localhost/irtool?hostaddr=203.0.113.5&sslmode=disable",
        "postgresql:///?service=prod&sslmode=disable",
    ],
)
def test_clear_text_only_ever_to_this_machine(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "services.conf").write_text("[prod]\nhost=db.example.org\ndbname=irtool\n")
    monkeypatch.setenv("PGSERVICEFILE", str(tmp_path / "services.conf"))
    with pytest.raises(DatabaseRefused):
        checked(url, insecure=False)
    monkeypatch.setenv("PGHOST", "db.example.org")
    with pytest.raises(DatabaseRefused):
        checked("postgresql:///irtool?sslmode=disable", insecure=False)
    assert checked("postgresql://127.0.0.1/irtool?sslmode=disable", insecure=False)


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("postgresql://responder:s3cr@t0p@db.example.org/irtool", "t0p"),
        ("postgresql://responder:hunter%zz2@db.example.org/irtool", "hunter"),
        ("postgresql://responder@db.example.org/irtool?sslpassword=keypass&sslkey=/k", "keypass"),
    ],
)
def test_a_url_holding_a_secret_is_refused_without_showing_it(url: str, secret: str) -> None:
    with pytest.raises(DatabaseRefused) as refused:
        checked(url)
    said = str(refused.value)
    assert secret not in said and "\n" not in said and "\\x0a" not in said
