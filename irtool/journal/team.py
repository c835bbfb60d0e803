"""An incident in the team's database, worked through this machine's copy of it.

Every responder's machine keeps the incident's chain in its own SQLite journal, at the place
an incident of this machine alone would have it (journal.incidents): the events the database
holds, copied exactly (hashes and signatures), each checked to carry the chain on. What the
engine reads, it reads from the copy, brought up to date first; what it writes goes to the
database under the incident's lock, and comes back into the copy once committed. Evidence,
checkpoints and the spool stay in the incident's directory beside it, as ever.

When the database cannot be reached, or a write loses it, the copy goes on alone: the
responder keeps working, each event chained on this machine's copy. Those events stay here
(and writes keep coming here) until `irtool sync` gives them to the database
(engine.syncing), each keeping where it was first written. The copy notes, in the same
commit as the events it takes, the last event of the database it holds (`server_head`): past
it, the copy holds this machine's own events; a database that no longer holds it was cut or
rewritten. A `team` file in the incident's directory says the incident is the team's.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING

from irtool.journal.anchors import Anchor
from irtool.journal.database import Database
from irtool.journal.events import Event, EventDraft, Signer
from irtool.journal.incidents import EVIDENCE_DIR, journal_path
from irtool.journal.protocol import Connection, Heard
from irtool.journal.store import Journal, JournalError, Transaction

if TYPE_CHECKING:
    from irtool.journal.listening import Listener
    from irtool.journal.postgres import PgJournal, PgTransaction

TEAM_MARK = "team"  # in the incident's directory: the incident is the team's


class TeamJournal:
    """The journal protocol (store.Journal's) over the team's database and this machine's
    copy: the engine cannot tell it from a journal of one machine."""

    def __init__(
        self,
        database: Database | None,
        incident: str,
        *,
        create: bool = False,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.incident, self.database = incident, database
        self.path = journal_path(incident)
        self._signer: Signer | None = None
        self.server: PgJournal | None = None
        self.offline_reason: str | None = None  # why the database is not in use, when it isn't
        if database is None:  # no URL given here: this machine's copy, as it stands
            self.offline_reason = (
                "no team database given (--database URL or IRTOOL_DATABASE): this machine's "
                "copy as it stands"
            )
        else:
            self._connect(create=create)
        if self.server is None and create:
            raise JournalError(self.offline_reason or "cannot reach the team's database")
        if self.server is None and not self.path.exists():
            raise JournalError(
                f"{self.offline_reason}; and this machine holds no copy of {incident}"
            )
        fresh = not self.path.exists()
        self.path.parent.joinpath(EVIDENCE_DIR).mkdir(parents=True, exist_ok=True)
        if fresh:
            # Marked the team's before the copy is begun: a first copy cut short (an
            # interrupt, the database lost) is still a team incident's, taken up next time.
            (self.path.parent / TEAM_MARK).touch()
        self.local = Journal(self.path, incident, create=fresh, clock=clock)
        try:
            self._pull()
        except BaseException:
            self.close()
            raise

    # -- the database, when it can be had --------------------------------------------------

    def _connect(self, *, create: bool = False) -> bool:
        """Connect, or note why not. An incident the database does not hold is an error, not
        a reason to work offline."""
        from irtool.journal.postgres import PgJournal

        if self.database is None:
            return False
        try:
            connection = self.database.connect()
        except JournalError as why:
            self.server, self.offline_reason = None, str(why)
            return False
        self.server = PgJournal(connection, self.incident, create=create)
        self.server.signer = self._signer
        self.offline_reason = None
        return True

    def _lost(self, error: BaseException) -> None:
        """The database went away mid-read or mid-write: work on the copy from here on."""
        server, self.server = self.server, None
        where = self.database.where() if self.database else ""
        self.offline_reason = f"lost the team's database {where}: {error}"
        if server is not None:
            with contextlib.suppress(Exception):
                server.close()

    def reconnect(self) -> bool:
        """Try the database again (the UI does, now and then); True once it is in use."""
        if self.server is None and self._connect():
            try:
                self._pull()
            except JournalError as why:
                self._lost(why)
        return self.online

    @property
    def online(self) -> bool:
        """Writes go to the database: it is reachable, and this copy holds no events of its
        own waiting for `irtool sync`."""
        return self.server is not None and not self.unsynced()

    @property
    def connection(self) -> str:
        """Where writes go, in the header's few words."""
        if self.online and self.database is not None:
            return f"TEAM {self.database.where()}"
        waiting = self.unsynced()
        if waiting:
            return f"OFFLINE: {waiting} to sync (irtool sync {self.incident})"
        return "OFFLINE: reconnecting"

    def watch(self, heard: Heard, linked: Connection) -> Listener | None:
        """Others' events as they are committed, on a connection of its own (LISTEN/NOTIFY,
        journal.listening), with a catch-up after every reconnection."""
        from irtool.journal.listening import Listener

        if self.database is None:
            return None
        listener = Listener(self.database.connect, self.incident, heard, linked)
        listener.start()
        return listener

    # -- the copy ---------------------------------------------------------------------------

    def server_head(self) -> Anchor | None:
        """The last event of the database this copy holds (noted in the copy, in the same
        commit as the events it took: store.Journal.copy_in)."""
        found = self.local.copied()
        return Anchor(self.incident, found[0], found[1]) if found else None

    def unsynced(self) -> int:
        """How many events this copy holds that the database does not: written here while it
        could not be reached."""
        known = self.server_head()
        return max(0, self.local.head()[0] - (known.seq or 0 if known else 0))

    def _hold_to_copied(self, known: Anchor | None) -> None:
        """Refuse a database that no longer holds, as it was, the last event this copy took
        from it (one lookup): nothing is read from it, or written on it, past a cut."""
        if known is None or self.server is None:
            return
        if self.server.hash_at(known.seq or 0) != known.hash:
            raise JournalError(
                f"the team's database no longer holds event {known.seq} of {self.incident} "
                "as this machine copied it: it was cut short or rewritten "
                f"(irtool verify {self.incident} says more)"
            )

    def _pull(self) -> None:
        """Copy what the database holds past what this copy has of it; refuse a database
        that no longer holds the events this copy took from it."""
        if self.server is None:
            return
        known = self.server_head()
        try:
            self._hold_to_copied(known)
            if self.unsynced():
                return  # the copy's own events, written offline, come first: `irtool sync`
            new = self.server.events(after=known.seq or 0 if known else 0)  # page by page
            first = next(new, None)
            if first is None:
                return  # nothing new: this machine's copy is not even locked
            self.local.copy_in(itertools.chain([first], new))  # marked copied as it commits
        except Exception as error:
            if self.server is not None and self.server.broken:
                self._lost(error)  # psycopg's OperationalError, or ours wrapping it
                return
            raise

    # -- evidence -------------------------------------------------------------------------------

    def share_evidence(self) -> list[str]:
        """Every evidence file of this machine the database lacks, given to it (streamed in
        chunks: journal.pgevidence); the hashes given."""
        from irtool.journal import pgevidence

        if self.server is None:
            return []
        with self.server.connection() as db:
            return pgevidence.share(db, self.path.parent / EVIDENCE_DIR)

    def gather_evidence(self, wanted: Collection[str]) -> list[str]:
        """Each of `wanted` this machine lacks (one it holds costs no query), fetched from the
        database and checked against its hash; the hashes fetched."""
        from irtool.journal import pgevidence

        if self.server is None:
            return []
        directory = self.path.parent / EVIDENCE_DIR
        with self.server.connection() as db:
            # What no one has given the database yet stays missing here: verify names it.
            held = [w for w in wanted if (directory / w).exists() or pgevidence.has(db, w)]
            return pgevidence.gather(db, held, directory)

    # -- the journal protocol ------------------------------------------------------------------

    @property
    def signer(self) -> Signer | None:
        return self._signer

    @signer.setter
    def signer(self, signer: Signer | None) -> None:
        self._signer = self.local.signer = signer
        if self.server is not None:
            self.server.signer = signer

    @property
    def read_only(self) -> bool:
        return self.local.read_only

    def now(self) -> datetime:
        if self.online and self.server is not None:
            try:
                return self.server.now()
            except JournalError as why:
                self._lost(why)
        return self.local.now()

    def close(self) -> None:
        """Evidence this session collected goes to the database first, so that the team can
        open it (best effort: `irtool verify` and `sync` give what this left)."""
        if self.server is not None:
            with contextlib.suppress(Exception):
                self.share_evidence()
            with contextlib.suppress(Exception):
                self.server.close()
        if hasattr(self, "local"):
            self.local.close()

    def __enter__(self) -> TeamJournal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(
        self, busy_timeout: float | None = None
    ) -> Iterator[TeamTransaction | Transaction]:
        """The database's transaction; the copy's own when the database cannot be had. A
        database lost mid-write is said once, as a JournalError: whether that event was taken
        is then unknown, so it is not written again here.

        Under the incident's lock only the database is read and written: what others wrote
        comes from it, and this copy takes it all in after the commit, its own durable write
        out of the lock, so that several writers' copies do not each hold up the others."""
        if not self.online:
            with self.local.transaction(busy_timeout) as local:
                yield local
            return
        assert self.server is not None
        try:
            with self.server.transaction() as tx:
                self._hold_to_copied(self.server_head())
                yield TeamTransaction(self, tx)
        except JournalError as why:
            if self.server is not None and self.server.broken:
                self._lost(why)
                raise JournalError(
                    f"{self.offline_reason}; the event may not have been taken: look at the "
                    "timeline once it is back, and write it again here if it is missing"
                ) from None
            raise
        with contextlib.suppress(JournalError):
            self._pull()  # what was just committed, into the copy

    def append(self, draft: EventDraft) -> Event:
        with self.transaction() as tx:
            return tx.append(draft)

    def events(
        self, after: int = 0, *, upto: int | None = None, kinds: Collection[str] | None = None
    ) -> Iterator[Event]:
        self._pull()
        return self.local.events(after, upto=upto, kinds=kinds)

    def hash_at(self, seq: int) -> str | None:
        return self.local.hash_at(seq)

    def first(self) -> Event | None:
        return self.local.first()

    def head(self) -> tuple[int, str]:
        self._pull()
        return self.local.head()


class TeamTransaction:
    """The write side of `TeamJournal.transaction()` while the database is in use: what
    others wrote, and each event written, are the database's, under its lock."""

    def __init__(self, journal: TeamJournal, tx: PgTransaction) -> None:
        self._journal, self._tx = journal, tx
        self.last: Event | None = None

    def events(self, after: int = 0) -> Iterator[Event]:
        return self._tx.events(after)

    def append(self, draft: EventDraft) -> Event:
        self.last = self._tx.append(draft)
        return self.last
