"""Team mode under real concurrency: one incident in a real PostgreSQL, written at once by
responder processes on machines of their own (an IRTOOL_HOME each), each signing with their
own key through their own ssh-agent; one writer killed mid-write, the server stopped and
started again under the others, one responder working offline meanwhile; then every
acknowledged event is found in the server's chain, and every chain and signature verifies.

And what a database administrator could do behind the team's back (an event inserted by
hand, an event rewritten, the chain cut short) is caught by `irtool verify`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from irtool.engine import kinds
from irtool.engine.refusal import Refused
from irtool.engine.session import IncidentSession
from irtool.journal import EventDraft, Journal, sshsig
from irtool.journal.events import Event, parse_moment, sealed
from irtool.journal.postgres import PgJournal
from tests.conftest import ROOT
from tests.support.cli import irtool
from tests.support.poll import wait_until
from tests.support.postgres import Postgres, team_server
from tests.support.sshagent import Agent, ssh_agent

RUNBOOK = str(ROOT / "tests/corpus/valid/every-kind.yaml")
ROLE = "responder"
PEOPLE = ("ann", "ben", "cat", "dan", "eve", "fay")  # ann opens the incident, from "ic"
WRITERS = PEOPLE[1:]
KILLED = "ben"
SLOW_S = 60.0  # how long a step of another process may take on a loaded machine


@pytest.fixture(scope="module")
def server() -> Iterator[Postgres]:
    with team_server(ROLE) as running:  # trust: no password anywhere
        yield running


@dataclass
class Team:
    agents: dict[str, Agent]  # person -> their own ssh-agent, holding their key alone
    contacts: str  # the contacts file: six people, a key each, signed_events: required
    outsider: Agent  # mallory's agent: a key no one in the contacts file holds


def contacts_file(path: Path, keys: dict[str, list[str]]) -> str:
    """The test contacts file, each of `keys`'s people listed (added where it lacks them) with
    their keys, and every event required to be signed."""
    said = yaml.safe_load((ROOT / "tests/corpus/valid/contacts.yaml").read_text())
    for person, lines in keys.items():
        said["people"].setdefault(
            person, {"name": person.title(), "timezone": "UTC", "email": f"{person}@example.org"}
        )
        said["people"][person]["keys"] = lines
    said["signed_events"] = "required"
    path.write_text(yaml.safe_dump(said))
    return str(path)


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    folder = tmp_path_factory.mktemp("team")
    with ExitStack() as stack:
        agents = {p: stack.enter_context(ssh_agent(folder / f"agent-{p}")) for p in PEOPLE}
        keys = {person: [agent.make_key(person)] for person, agent in agents.items()}
        outsider = stack.enter_context(ssh_agent(folder / "agent-mallory"))
        outsider.make_key("mallory")
        yield Team(agents, contacts_file(folder / "contacts.yaml", keys), outsider)


def machine(folder: Path, server: Postgres, who: str, agent: Agent | None) -> dict[str, str]:
    """A responder's machine: an IRTOOL_HOME of its own, the team's database, their agent."""
    home = folder / f"home-{who}"
    home.mkdir(parents=True, exist_ok=True)
    url = f"postgresql://{ROLE}@{server.host}:{server.port}/irtool?sslmode=disable"
    env = {**os.environ, "IRTOOL_HOME": str(home), "IRTOOL_RESPONDER": who,
           "IRTOOL_DATABASE": url}  # fmt: skip
    env.pop("SSH_AUTH_SOCK", None)
    return {**env, **(agent.env if agent else {})}


def opened(env: dict[str, str], contacts: str) -> str:
    made = irtool(env, "incident", "new", RUNBOOK, "--param", "attacker_ip=203.0.113.7",
                  "--param", "account=x", "--contacts", contacts, "--as",
                  env["IRTOOL_RESPONDER"], "--json")  # fmt: skip
    assert made.returncode == 0, made.stderr
    return str(json.loads(made.stdout)["id"])


def verified(env: dict[str, str], incident: str) -> dict[str, Any]:
    result = irtool(env, "verify", incident, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def server_chain(server: Postgres, incident: str) -> list[Event]:
    with PgJournal(server.url(ROLE), incident) as journal:
        assert journal.verify().ok
        return list(journal.events())


def offline_copies(env: dict[str, str], incident: str) -> list[Path]:
    return sorted((Path(env["IRTOOL_HOME"]) / "incidents" / incident).glob("journal.offline-*"))


# -- the responders' processes -------------------------------------------------------------


@dataclass
class Writer:
    """A tests.support.team_writer process, its stdout read line by line as it comes."""

    who: str
    env: dict[str, str]
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, env: dict[str, str], incident: str, stop: Path, *extra: str) -> Writer:
        log = Path(env["IRTOOL_HOME"]) / "writer.stderr"
        with log.open("w") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-m", "tests.support.team_writer", incident, str(stop), *extra],
                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL,
                text=True,
            )  # fmt: skip
        writer = cls(env["IRTOOL_RESPONDER"], env, process)
        threading.Thread(target=writer._read, daemon=True).start()
        return writer

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def said(self, word: str) -> list[str]:
        return [line for line in list(self.lines) if line.split(" ", 1)[0] == word]

    def acked(self) -> list[tuple[int, str, str]]:
        """(seq, hash, text) of each event acknowledged."""
        return [(int(s), h, t) for _, s, h, t in (a.split(" ", 3) for a in self.said("ACK"))]

    def offline_acks(self) -> int:
        """Events acknowledged once the writer worked offline (on its machine's copy)."""
        lines = list(self.lines)
        alone = next((n for n, line in enumerate(lines) if line.startswith("OFFLINE")), None)
        return 0 if alone is None else sum(1 for x in lines[alone:] if x.startswith("ACK"))

    def wait(self, check: Callable[[Writer], object], what: str) -> None:
        def done() -> object:
            if self.process.poll() is not None and not check(self):
                raise AssertionError(f"{self.who}'s writer ended ({self.process.returncode}): "
                                     f"{self.stderr()}")  # fmt: skip
            return check(self)

        wait_until(done, f"{self.who}'s writer: {what}", timeout=SLOW_S)

    def stderr(self) -> str:
        return (Path(self.env["IRTOOL_HOME"]) / "writer.stderr").read_text()[-3000:]


def test_writers_killed_cut_off_and_offline_lose_no_acknowledged_event(
    server: Postgres, team: Team, tmp_path: Path
) -> None:
    ic = machine(tmp_path, server, "ann", team.agents["ann"])
    incident = opened(ic, team.contacts)
    stop = tmp_path / "stop"
    envs = {who: machine(tmp_path, server, who, team.agents[who]) for who in WRITERS}
    writers: dict[str, Writer] = {}
    running = True
    try:
        for who in WRITERS:
            writers[who] = Writer.start(envs[who], incident, stop)
        # ann, the sixth, works from her own machine: offline once the server goes, where she
        # completes a step too.
        writers["ann"] = Writer.start(ic, incident, stop, "--complete", "assemble")
        for writer in writers.values():
            writer.wait(lambda w: len(w.acked()) >= 3, "3 events acknowledged")
        # One is killed mid-write: whatever it acknowledged stays acknowledged.
        killed = writers[KILLED]
        killed.process.send_signal(signal.SIGKILL)
        assert killed.process.wait(timeout=SLOW_S) == -signal.SIGKILL
        others = [w for w in writers.values() if w is not killed]
        counts = {w.who: len(w.acked()) for w in others}
        for writer in others:
            writer.wait(lambda w: len(w.acked()) >= counts[w.who] + 3, "3 more events")
        # The server goes away under the others, and comes back.
        server.stop()
        running = False
        for writer in others:
            writer.wait(lambda w: w.offline_acks() >= 3, "3 events offline")
        writers["ann"].wait(
            lambda w: any(t == "complete assemble" for _, _, t in w.acked()), "assemble done"
        )
        server.start()
        running = True
        stop.touch()
        for writer in others:
            writer.wait(lambda w: w.said("DONE"), "synced")
            assert writer.process.wait(timeout=SLOW_S) == 0, writer.stderr()
    finally:
        for writer in writers.values():
            if writer.process.poll() is None:
                writer.process.kill()
                writer.process.wait()
        if not running:
            server.start()

    # Every acknowledged event is in the server's chain: as it was acknowledged (written
    # online), or given by sync with its offline hash as its origin.
    chain = server_chain(server, incident)
    online = {e.hash for e in chain}
    synced = {str(e.data["origin"]["hash"]): e for e in chain if "origin" in e.data}
    for writer in writers.values():
        for seq, digest, text in writer.acked():
            assert digest in online or digest in synced, f"{writer.who}'s event {seq}: {text}"
            found = next(
                e for e in chain if digest in (e.hash, e.data.get("origin", {}).get("hash"))
            )
            assert found.actor == writer.who
            assert text.startswith("complete") or found.data["text"] == text
    assert all(synced[d].data["origin"]["seq"] for d in synced)
    # Written once each: sync gives nothing twice, nothing is written again after a loss.
    texts = Counter(e.data["text"] for e in chain if e.kind == kinds.NOTE_ADDED)
    assert max(texts.values()) == 1
    done = [e for e in chain if e.kind == kinds.STEP_COMPLETED and e.step == "assemble"]
    assert [(e.actor, "origin" in e.data) for e in done] == [("ann", True)]  # no conflict
    assert writers["ann"].said("DONE") == [f"DONE {writers['ann'].offline_acks()} 0"]

    # Every machine verifies the whole chain, every signature by one of the six people: a
    # machine new to the incident (its copy made from the server), and each writer's.
    fresh = machine(tmp_path, server, "auditor", None)
    heads = set()
    every = [fresh, ic, *envs.values()]
    with ThreadPoolExecutor(len(every)) as pool:  # at once, as a team would
        reports = list(pool.map(lambda env: verified(env, incident), every))
    for env, said in zip(every, reports, strict=True):
        # (A writer killed just as it copied events in must not leave its copy stale: the
        # last test of this file kills one there every time.)
        assert said["events"] == len(chain), f"{env['IRTOOL_HOME']}: a stale copy"
        assert said["signatures"]["problems"] == [] and said["signatures"]["unsigned"] == 0
        assert set(said["signatures"]["signed"]) == set(PEOPLE)
        heads.add(said["head"])
    assert heads == {chain[-1].hash}
    # Each offline chain, kept beside the copy, verifies on its own.
    for who, env in {"ann": ic, **envs}.items():
        kept = offline_copies(env, incident)
        assert len(kept) == (0 if who == KILLED else 1), who
        for path in kept:
            with Journal(path, incident) as journal:
                assert journal.verify().ok, path


# -- what an administrator could do behind the team's back ----------------------------------


def team_incident(
    tmp_path: Path, server: Postgres, team: Team, notes: int
) -> tuple[str, dict[str, str]]:
    """An incident opened by ann with `notes` notes by ben, and a machine (cat's) that has
    verified it, and so copied its chain."""
    ann = machine(tmp_path, server, "ann", team.agents["ann"])
    ben = machine(tmp_path, server, "ben", team.agents["ben"])
    incident = opened(ann, team.contacts)
    for n in range(notes):
        assert irtool(ben, "incident", "note", incident, f"seen {n}").returncode == 0
    cat = machine(tmp_path, server, "cat", team.agents["cat"])
    assert verified(cat, incident)["events"] == 1 + notes
    return incident, cat


def behind_the_triggers(server: Postgres, statement: str, *args: object) -> None:
    """`statement` run by the table's owner with its append-only triggers off."""
    with psycopg.connect(server.url(), autocommit=True) as owner, owner.transaction():
        owner.execute("ALTER TABLE irtool_events DISABLE TRIGGER USER")
        owner.execute(statement.encode(), args)
        owner.execute("ALTER TABLE irtool_events ENABLE TRIGGER USER")


def test_an_event_inserted_by_hand_is_named_by_verify(
    server: Postgres, team: Team, tmp_path: Path
) -> None:
    incident, cat = team_incident(tmp_path, server, team, notes=1)
    mallory = sshsig.agent_keys(str(team.outsider.socket))[0]
    with psycopg.connect(server.url(ROLE), autocommit=True) as db:
        for who, signer in (
            ("ben", None),  # no signature at all
            ("ben", lambda actor, digest: sshsig.sign(  # a key no one in the team holds
                digest.encode(), mallory, socket_path=str(team.outsider.socket))),
        ):  # fmt: skip
            with db.transaction():
                seq, prev = db.execute(
                    "SELECT seq, hash FROM irtool_events WHERE incident = %s ORDER BY seq DESC "
                    "LIMIT 1", (incident,)
                ).fetchone() or (0, "")  # fmt: skip
                now = db.execute("SELECT clock_timestamp()").fetchone()
                assert now is not None
                draft = EventDraft(kinds.NOTE_ADDED, who, {"text": "all clear, stand down"})
                event, data = sealed(draft, incident, seq + 1, prev, now[0], signer)
                db.execute(
                    "INSERT INTO irtool_events (incident, seq, occurred_at, recorded_at, actor, "
                    "kind, step, host, data, prev_hash, hash, signature) "
                    "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                    (incident, event.seq, event.occurred_at, event.recorded_at, event.actor,
                     event.kind, event.step, event.host, data, event.prev_hash, event.hash,
                     event.signature),
                )  # fmt: skip
    mine = f"({mallory.fingerprint()})"
    for env in (machine(tmp_path, server, "auditor", None), cat):
        result = irtool(env, "verify", incident, "--json")
        assert result.returncode == 1, result.stdout + result.stderr
        said = json.loads(result.stdout)
        assert said["problem"] is None  # the chain holds: the signatures tell
        assert said["signatures"]["problems"] == [
            f"event 3 ({kinds.NOTE_ADDED} by ben) is unsigned, and this incident's events must "
            "be signed",
            f"event 4 is signed with a key no one in the contacts file holds {mine}",
        ]


def resealed(server: Postgres, incident: str, seq: int, text: str) -> None:
    """Event `seq`'s note made to say `text`, and the chain sealed anew from there on (each
    hash recomputed, each prev_hash following): a chain that holds, but not the one written.
    The signatures are left as they were: no one's key signed the new hashes."""
    with psycopg.connect(server.url(), autocommit=True) as owner:
        rows = owner.execute(
            "SELECT seq, occurred_at, recorded_at, actor, kind, step, host, data, prev_hash "
            "FROM irtool_events WHERE incident = %s AND seq >= %s ORDER BY seq",
            (incident, seq),
        ).fetchall()
    prev = rows[0][8]
    for number, occurred, recorded, actor, kind, step, host, data, _ in rows:
        said = json.loads(data)
        if number == seq:
            said["text"] = text
        draft = EventDraft(kind, actor, said, step, host, occurred_at=parse_moment(occurred))
        event, stored = sealed(draft, incident, number, prev, parse_moment(recorded))
        behind_the_triggers(
            server,
            "UPDATE irtool_events SET data = %s, prev_hash = %s, hash = %s "
            "WHERE incident = %s AND seq = %s",
            stored, prev, event.hash, incident, number,
        )  # fmt: skip
        prev = event.hash


@pytest.mark.parametrize("how", ["data", "resealed"])
def test_an_event_rewritten_in_the_database_is_caught_where_the_chain_was_copied(
    server: Postgres, team: Team, tmp_path: Path, how: str
) -> None:
    incident, cat = team_incident(tmp_path, server, team, notes=2)
    if how == "data":  # the row's data alone: its hash no longer matches it
        behind_the_triggers(
            server,
            "UPDATE irtool_events SET data = replace(data, 'seen 0', 'nothing seen') "
            "WHERE incident = %s AND seq = 2",
            incident,
        )
        said = "event 2 was altered: its content does not match its hash"
    else:  # hashes and all: the server's chain holds, but the head cat copied is gone
        resealed(server, incident, 2, "nothing seen")
        with PgJournal(server.url(ROLE), incident) as journal:
            assert journal.verify().ok
        said = "no longer holds event 3"
    result = irtool(cat, "verify", incident)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "BROKEN in the team's database" in result.stderr and said in result.stderr
    # A machine new to the incident cannot copy a chain whose hashes do not hold; one that
    # does hold is still not signed by the team.
    fresh = irtool(machine(tmp_path, server, "auditor", None), "verify", incident, "--json")
    assert fresh.returncode == 1, fresh.stdout + fresh.stderr
    if how == "data":
        assert "event 2 was altered" in fresh.stderr
    else:
        problems = json.loads(fresh.stdout)["signatures"]["problems"]
        assert [p.split(":")[0] for p in problems] == ["event 2", "event 3"], problems


def test_a_chain_cut_short_in_the_database_is_caught_where_it_was_copied(
    server: Postgres, team: Team, tmp_path: Path
) -> None:
    incident, cat = team_incident(tmp_path, server, team, notes=2)
    behind_the_triggers(
        server, "DELETE FROM irtool_events WHERE incident = %s AND seq > 1", incident
    )
    result = irtool(cat, "verify", incident)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "BROKEN in the team's database" in result.stderr
    assert "no longer holds event 3" in result.stderr


def test_one_persons_two_keys_do_not_make_two_people(
    server: Postgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # tests/test_signed_events.py shows an approval signed with another person's key; here
    # the requester approves with a second key of their own, listed as theirs.
    with ssh_agent(tmp_path / "agent") as agent:
        ann = [agent.make_key("ann"), agent.make_key("ann-laptop")]
        contacts = contacts_file(tmp_path / "contacts.yaml", {"ann": ann})
        env = machine(tmp_path, server, "ann", agent)
        incident = opened(env, contacts)
        for step in (["start", incident, "block", "--reason", "ongoing"],
                     ["request", incident, "block", "--reason", "active"]):  # fmt: skip
            assert irtool(env, "incident", *step).returncode == 0
        for name in ("IRTOOL_HOME", "IRTOOL_DATABASE", "SSH_AUTH_SOCK"):
            monkeypatch.setenv(name, env[name])
        session = IncidentSession.open(incident)
        try:
            request = session.state.actions["block"].request_seq
            with pytest.raises(Refused, match="a second responder must approve"):
                session.approve("block", "ann")
            asked = next(e for e in session.journal.events() if e.seq == request)
            assert asked.signature is not None
            used = sshsig.verify(asked.hash.encode(), asked.signature)
            other = next(k for k in sshsig.agent_keys() if k.blob != used.blob)
            # Written around the engine's refusal, with ann's other key.
            session.journal.signer = lambda actor, digest: sshsig.sign(digest.encode(), other)
            session.journal.append(
                EventDraft(kinds.ACTION_APPROVED, "ann", {"request": request}, step="block")
            )
        finally:
            session.close_journal()
        result = irtool(env, "verify", incident)
    assert result.returncode == 1, result.stdout + result.stderr
    assert (
        "'block' was approved with the key of ann, who requested it: the two-person rule needs "
        "two people's keys" in result.stderr
    )


# The process dies (SIGKILL, power cut) once events of the database are written into the
# copy, before that write commits with its note of where the copy stands: the window a
# writer killed mid-write can fall in.
CUT_OFF = """
import os, sys
from irtool.journal.backends import open_journal
from irtool.journal.store import Transaction
Transaction._mark = lambda self, seq, digest: os._exit(9)  # the events written, not committed
open_journal(sys.argv[1])
"""


def test_a_copy_cut_off_as_it_took_events_does_not_take_them_for_its_own(
    server: Postgres, team: Team, tmp_path: Path
) -> None:
    ann = machine(tmp_path, server, "ann", team.agents["ann"])
    ben = machine(tmp_path, server, "ben", team.agents["ben"])
    incident = opened(ann, team.contacts)
    assert irtool(ben, "incident", "note", incident, "ben joins").returncode == 0
    assert irtool(ann, "incident", "note", incident, "ann's third event").returncode == 0
    died = subprocess.run([sys.executable, "-c", CUT_OFF, incident], env=ben, cwd=ROOT, check=False)
    assert died.returncode == 9
    assert irtool(ann, "incident", "note", incident, "ann's fourth event").returncode == 0
    assert verified(ben, incident)["events"] == 4  # ben's copy caught up, not read stale
    synced = irtool(ben, "sync", incident, "--json")
    assert synced.returncode == 0, synced.stderr
    assert json.loads(synced.stdout)["given"] == []  # ben wrote nothing offline
    texts = [e.data.get("text") for e in server_chain(server, incident)]
    assert texts.count("ann's third event") == 1
