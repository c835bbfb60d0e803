"""Other responders' events as they are committed: LISTEN on the journal's channel, and after
every (re)connection a catch-up by seq, since what was committed while no one listened was told
to no one.

A `Listener` owns one connection on a daemon thread of its own and tells its consumer two
things, from that thread:

- `on_events(seq)`: the incident has an event `seq` (or, with 0: read everything after what you
  have; said once connected and after every reconnection);
- `on_state(connected, why)`: the connection was made, or lost (told once per loss, however many
  attempts it then takes to come back).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

import psycopg

from irtool.journal.database import unquoted_line
from irtool.journal.postgres import CHANNEL

CATCH_UP = 0  # on_events(CATCH_UP): read everything after the last seq you have
FIRST_RETRY_S = 0.2
LAST_RETRY_S = 5.0
POLL_S = 0.4  # a wait for notifications lasts this long before `stop()` is looked at again
STOP_WAIT_S = 2.0  # see `stop`


class Listener:
    """Tell `on_events` of the events of `incident` others commit, across server restarts."""

    def __init__(
        self,
        connect: Callable[[], psycopg.Connection[Any]],
        incident: str,
        on_events: Callable[[int], None],
        on_state: Callable[[bool, str], None],
    ) -> None:
        self.incident = incident
        # The caller's: it holds the URL, which we never see, and sets the connection's TCP
        # keepalives (journal.database), so a network gone silent fails the wait here.
        self._connect = connect
        self._on_events = on_events
        self._on_state = on_state
        self._stopping = threading.Event()
        self._connected = False
        self._thread: threading.Thread | None = None

    @property
    def connected(self) -> bool:
        """Listening now: an event committed now will be told."""
        return self._connected

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("a listener is started once")
        self._thread = threading.Thread(
            target=self._run, name=f"irtool-listen {self.incident}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop listening: within POLL_S when connected or retrying. A connection attempt that
        hangs (a silent network, no connect_timeout) is not waited for past STOP_WAIT_S: the
        daemon thread closes what it gets once `connect` returns, and tells no one."""
        self._stopping.set()
        # From a callback, on the listener's own thread: it ends once the callback returns.
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(STOP_WAIT_S)

    def __enter__(self) -> Listener:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the listener's thread --------------------------------------------------

    def _run(self) -> None:
        delay, told_down = FIRST_RETRY_S, False
        while not self._stopping.is_set():
            try:
                db = self._open()
            except Exception as error:  # whatever `connect` raises, a later try may succeed
                why = f"cannot connect: {unquoted_line(error)}"
            else:
                if db is None:
                    return
                delay, told_down = FIRST_RETRY_S, False
                lost = self._listen(db)
                if lost is None:
                    return
                why = f"connection lost: {lost}"
            if not told_down:
                told_down = True
                self._tell(self._on_state, False, why)
            self._stopping.wait(delay)
            delay = min(delay * 2, LAST_RETRY_S)

    def _open(self) -> psycopg.Connection[Any] | None:
        """Connect and LISTEN, then say so and ask for a catch-up; None if stopped meanwhile."""
        db = self._connect()
        try:
            if self._stopping.is_set():
                db.close()
                return None
            # Inside a transaction LISTEN would take effect only at its commit, and nothing is
            # delivered to a session in one: a connection not in autocommit would hear nothing.
            db.autocommit = True
            # LISTEN before the catch-up: an event committed between the two is then both read
            # and told (the consumer reads by seq, so twice is harmless), never neither.
            db.execute(f"LISTEN {CHANNEL}")
        except BaseException:
            db.close()
            raise
        self._connected = True
        self._tell(self._on_state, True, "connected")
        self._tell(self._on_events, CATCH_UP)
        return db

    def _listen(self, db: psycopg.Connection[Any]) -> str | None:
        """Tell this incident's notifications until stopped (None) or the connection is lost
        (why)."""
        try:
            while not self._stopping.is_set():
                for note in db.notifies(timeout=POLL_S):
                    seq = self._seq(note)
                    if seq is not None:
                        self._tell(self._on_events, seq)
                    if self._stopping.is_set():
                        break
            return None
        except Exception as error:  # a lost connection, as psycopg tells it
            return unquoted_line(error)
        finally:
            self._connected = False
            with contextlib.suppress(Exception):
                db.close()

    def _seq(self, note: psycopg.Notify) -> int | None:
        """The seq of a notification of our incident ("INCIDENT SEQ"), else None."""
        incident, _, seq = note.payload.rpartition(" ")
        if note.channel != CHANNEL or incident != self.incident:
            return None
        # ASCII digits only: int() would also take "+3", " 3" and other scripts' digits.
        if not (seq.isascii() and seq.isdigit()) or int(seq) == 0:
            return None
        return int(seq)

    @staticmethod
    def _tell(callback: Callable[..., None], *args: object) -> None:
        # The consumer's failure is its own: the listener goes on listening.
        with contextlib.suppress(Exception):
            callback(*args)
