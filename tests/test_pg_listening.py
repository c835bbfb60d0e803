"""Hearing other responders' events live (irtool.journal.listening) on a real PostgreSQL: an
append on another machine is told within a second, other incidents' are not, a server restart
is told and what was committed meanwhile is caught up, and `stop()` is prompt whatever the
connection is doing."""

from __future__ import annotations

import itertools
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from irtool.engine import kinds
from irtool.journal import EventDraft, database
from irtool.journal.listening import (
    CATCH_UP,
    Listener,
)
from irtool.journal.postgres import CHANNEL, PgJournal
from tests.conftest import ROOT
from tests.support.postgres import Postgres

# The same ready server as the journal's tests (one per module): its restarts are this file's.
from tests.test_postgres_journal import RESPONDER, SECRET
from tests.test_postgres_journal import server as server
from tests.test_postgres_journal import url as url

SETTLE_S = 15.0  # generous, for what the tests do not time: connecting, a server's restart
Connection = psycopg.Connection[Any]


def opened(url: str, incident: str) -> None:
    with PgJournal(url, incident, create=True) as journal:
        journal.append(EventDraft(kinds.INCIDENT_OPENED, "ann", {"title": "t"}))


def noted(url: str, incident: str, count: int = 1) -> None:
    with PgJournal(url, incident) as journal:
        for n in range(count):
            journal.append(EventDraft(kinds.NOTE_ADDED, "bob", {"text": f"note {n}"}))


class Consumer:
    """What a responder's screen does: on each word from the listener, read by seq what it
    lacks (a fresh connection each time: a server restart breaks any it would keep)."""

    def __init__(self, url: str, incident: str) -> None:
        self.url, self.incident = url, incident
        self.seqs: list[int] = []
        self.told: queue.Queue[int] = queue.Queue()  # each on_events, once its reading is done
        self.states: queue.Queue[tuple[bool, str]] = queue.Queue()

    def on_events(self, seq: int) -> None:
        with PgJournal(self.url, self.incident) as journal:
            self.seqs += [e.seq for e in journal.events(self.seqs[-1] if self.seqs else 0)]
        self.told.put(seq)

    def on_state(self, connected: bool, why: str) -> None:
        self.states.put((connected, why))

    def listener(self, connect: Callable[[], Connection]) -> Listener:
        return Listener(connect, self.incident, self.on_events, self.on_state)

    def connected(self) -> None:
        assert self.states.get(timeout=SETTLE_S) == (True, "connected")
        assert self.told.get(timeout=SETTLE_S) == CATCH_UP


def connecting(url: str, made: list[Connection] | None = None) -> Callable[[], Connection]:
    def connect() -> Connection:
        db = psycopg.connect(url, autocommit=True, connect_timeout=5)
        if made is not None:
            made.append(db)
        return db

    return connect


def is_listening(listener: Listener) -> bool:
    # A call, read afresh each time: mypy would keep an asserted `listener.connected` as
    # narrowed, though the listener's thread changes it.
    return listener.connected


def listening_thread(incident: str) -> threading.Thread | None:
    return next((t for t in threading.enumerate() if t.name == f"irtool-listen {incident}"), None)


WRITER = """
import sys
from irtool.journal import EventDraft
from irtool.journal.postgres import PgJournal
with PgJournal(sys.argv[1], sys.argv[2]) as journal:
    journal.append(EventDraft("note.added", "carol", {"text": "from another machine"}))
"""


def test_an_append_on_another_machine_is_told_within_a_second(
    url: str, server: Postgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    incident = "ir-20261207-110000-0001"
    opened(url, incident)
    consumer, made = Consumer(url, incident), list[Connection]()
    # Connected as the team journal connects it (journal.database): its password from the
    # keyring, its keepalives set.
    monkeypatch.setattr(database, "_secrets", lambda name: SECRET)
    team = database.checked(f"{server.url(RESPONDER)}?sslmode=disable")

    def connect() -> Connection:
        made.append(team.connect())
        return made[-1]

    with consumer.listener(connect) as listener:
        consumer.connected()
        assert is_listening(listener) and consumer.seqs == [1]  # caught up on connecting
        subprocess.run([sys.executable, "-c", WRITER, url, incident], cwd=ROOT, check=True)
        assert consumer.told.get(timeout=1) == 2
        assert consumer.seqs == [1, 2]
        # The kernel probes the idle connection: a network gone silent is found out in
        # seconds, not in the two hours of the system's default.
        with socket.fromfd(made[0].fileno(), socket.AF_INET, socket.SOCK_STREAM) as sock:
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            idle = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE)
            assert idle == database.KEEPALIVE_IDLE_S
            every = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL)
            assert every == database.KEEPALIVE_INTERVAL_S
            count = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT)
            assert count == database.KEEPALIVE_COUNT
    assert not is_listening(listener) and made[0].closed


def test_other_incidents_and_malformed_payloads_are_not_told(url: str, server: Postgres) -> None:
    ours, theirs = "ir-20261207-110000-0002", "ir-20261207-110000-0003"
    opened(url, ours)
    opened(url, theirs)
    consumer = Consumer(url, ours)
    with consumer.listener(connecting(url)):
        consumer.connected()
        noted(url, theirs, count=4)  # theirs 2..5
        with psycopg.connect(server.url(), autocommit=True) as admin:
            for payload in (
                "garbage",
                "",
                ours,
                f"{ours} x",
                f"{ours} -3",
                f"{ours} +3",
                f"{ours} 0",
                f"{ours} ３",  # a digit, but not an ASCII one
                f"{ours}x 3",
                f" {ours} 3",
            ):
                admin.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
        noted(url, ours)  # ours 2, committed after all of the above: told after them
        assert consumer.told.get(timeout=5) == 2
        assert consumer.told.empty() and consumer.seqs == [1, 2]


def test_a_consumer_that_fails_does_not_stop_the_listening(url: str) -> None:
    incident = "ir-20261207-110000-0004"
    opened(url, incident)
    told: queue.Queue[int | bool] = queue.Queue()

    def on_events(seq: int) -> None:
        told.put(seq)
        raise RuntimeError("the screen broke")

    def on_state(connected: bool, why: str) -> None:
        told.put(connected)
        raise RuntimeError("the status line broke")

    # An exception escaping the thread fails the test (pyproject's filterwarnings).
    with Listener(connecting(url), incident, on_events, on_state) as listener:
        assert [told.get(timeout=SETTLE_S) for _ in range(2)] == [True, CATCH_UP]
        noted(url, incident, count=2)
        assert [told.get(timeout=5) for _ in range(2)] == [2, 3]
        assert is_listening(listener)


def test_a_failure_to_connect_is_told_without_the_connection_string() -> None:
    incident = "ir-20261207-110000-0005"
    states: queue.Queue[tuple[bool, str]] = queue.Queue()
    # libpq quotes what it cannot parse: here, a piece of the password.
    broken = "postgresql://responder:s3cret%zz@127.0.0.1:1/irtool"
    with Listener(connecting(broken), incident, lambda seq: None, lambda *s: states.put(s)):
        connected, why = states.get(timeout=SETTLE_S)
    assert not connected
    assert why.startswith("cannot connect: ") and "\n" not in why
    assert "s3cret" not in why and "zz" not in why


def test_stop_does_not_wait_for_a_connection_attempt_that_hangs(url: str) -> None:
    incident = "ir-20261207-110000-0006"
    opened(url, incident)
    consumer, release, made = Consumer(url, incident), threading.Event(), list[Connection]()

    def silent_network() -> Connection:  # as a connection attempt with no connect_timeout
        release.wait(SETTLE_S)
        return connecting(url, made)()

    listener = consumer.listener(silent_network)
    listener.start()
    try:
        started = time.monotonic()
        listener.stop()
        assert time.monotonic() - started < 3
    finally:
        release.set()
    thread = listening_thread(incident)
    if thread is not None:
        thread.join(SETTLE_S)
    # What the attempt got once the network answered was closed, and told to no one.
    assert made and made[0].closed
    assert consumer.states.empty() and consumer.told.empty() and not is_listening(listener)


# The last two stop and start the module's server: a test after them would find it restarted.


def test_a_server_restart_is_told_and_what_was_missed_is_caught_up(
    url: str, server: Postgres
) -> None:
    incident = "ir-20261207-110000-0007"
    opened(url, incident)
    consumer = Consumer(url, incident)
    away = threading.Event()  # while set, the listener's attempts fail: it cannot hear a thing
    attempts: queue.Queue[float] = queue.Queue()

    def connect() -> Connection:
        if away.is_set():
            attempts.put(time.monotonic())
            raise psycopg.OperationalError("connection failed: held back by the test")
        return connecting(url)()

    with consumer.listener(connect) as listener:
        consumer.connected()
        away.set()
        server.stop()
        try:
            connected, why = consumer.states.get(timeout=SETTLE_S)
            assert not connected and why.startswith("connection lost: ") and "\n" not in why
            assert not is_listening(listener)
        finally:
            server.start()
        noted(url, incident, count=2)  # 2 and 3, committed while no one listened
        for _ in range(3):
            attempts.get(timeout=SETTLE_S)
        assert consumer.states.empty()  # a loss is told once, however many attempts fail
        away.clear()
        consumer.connected()  # told again, and caught up
        assert consumer.seqs == [1, 2, 3] and is_listening(listener)
        noted(url, incident)  # and listening again
        assert consumer.told.get(timeout=5) == 4
        assert consumer.seqs == [1, 2, 3, 4]


def test_stop_is_prompt_while_the_server_is_away_and_retries_back_off(
    url: str, server: Postgres
) -> None:
    incident = "ir-20261207-110000-0008"
    opened(url, incident)
    consumer, attempts = Consumer(url, incident), queue.Queue[float]()

    def connect() -> Connection:
        attempts.put(time.monotonic())
        return connecting(url)()

    listener = consumer.listener(connect)
    listener.start()
    try:
        consumer.connected()
        attempts.get(timeout=SETTLE_S)
        server.stop()
        try:
            assert consumer.states.get(timeout=SETTLE_S)[0] is False
            # The retries back off, 0.2 s doubling: after the fourth the listener waits 3.2 s.
            tried = [attempts.get(timeout=SETTLE_S) for _ in range(4)]
            gaps = [later - sooner for sooner, later in itertools.pairwise(tried)]
            assert gaps == pytest.approx([0.4, 0.8, 1.6], abs=0.3)
            started = time.monotonic()
            listener.stop()
            assert time.monotonic() - started < 2
            assert listening_thread(incident) is None
        finally:
            server.start()
    finally:
        listener.stop()
    assert consumer.states.empty()
