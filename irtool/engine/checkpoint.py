"""A checkpoint of an incident's standing state, so that opening costs the same at event 10
and at event 1,000,000.

It is derived, never part of the record: kept outside the incident's directory (an archive of
the incident carries none), keyed by the seq and hash of the last event it covers, and
thrown away whenever it does not match the journal:

- the journal's event at that seq must have that hash (an edited or rewritten journal gives
  another), and the events after it must follow it, hash by hash (`fold_tail`);
- it must have been written by this irtool, from this code: a fingerprint of the fold's
  source goes into it, so a changed fold rebuilds rather than trusting an older one's
  result;
- it is sealed with an HMAC under a key only this user's irtool holds (`checkpoint.key`,
  mode 0600, beside the incidents): the state is a pickle, and a pickle from anyone else
  would run their code. A checkpoint that fails the seal is not read, only replaced.

`verify` and every export still read the whole journal from event 1: a journal tampered
before the checkpoint is caught there, whatever a checkpoint says.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import pickle
from collections.abc import Iterable, Iterator
from pathlib import Path

from irtool import __version__
from irtool.engine import kinds
from irtool.engine.refusal import Refused
from irtool.engine.state import IncidentState
from irtool.journal import GENESIS, Event
from irtool.journal.incidents import home
from irtool.journal.protocol import IncidentJournal
from irtool.journal.store import chain_problem

FORMAT = b"irtool-checkpoint-1\n"
EVERY = 256  # events folded past the checkpoint before a new one is written
_MAC = hashlib.sha256().digest_size
# The code whose result a checkpoint holds: the fold, the models it builds, the journal.
_FOLD_CODE = ("engine", "model", "journal")


def _root() -> Path:
    return home().parent / "checkpoints"


def path_of(incident: str) -> Path:
    return _root() / f"{incident}.state"


def _key() -> bytes:
    """This user's checkpoint key, made on first use: 32 random bytes no one else can read or
    replace. OSError when the key or its directory could be written by someone else (a
    shared, group-writable home): then no checkpoint is read or written at all, since a key
    another user could have made would let that user's pickle run as this one."""
    root = _root()
    path = root / "checkpoint.key"
    if not path.exists():
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        _make_key(path)
    for found in (root, path):
        seen = found.stat()
        if seen.st_uid != os.geteuid() or seen.st_mode & 0o022:
            raise PermissionError(f"{found} could be written by another user: not trusted")
    found_key = path.read_bytes()
    if path.stat().st_mode & 0o077 or len(found_key) != 32:
        raise PermissionError(f"{path} is not a key only this user can read: not trusted")
    return found_key


def _make_key(path: Path) -> None:
    import secrets
    import tempfile

    key = secrets.token_bytes(32)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".key.")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(key)
            out.flush()
            os.fsync(out.fileno())
        # Two processes making it at once: the first link wins, both read the winner's key.
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    except OSError:
        # No hard links here (a FAT or SMB mount): the first to create it exclusively wins.
        with contextlib.suppress(FileExistsError):
            made = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(made, "wb") as out:
                out.write(key)
                out.flush()
                os.fsync(out.fileno())
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temporary)


_fingerprint: bytes | None = None


def fingerprint() -> bytes:
    """This irtool's version and its fold's source files (name, size, mtime): a checkpoint
    made by other code is rebuilt, never trusted to mean what this code would fold."""
    global _fingerprint
    if _fingerprint is None:
        package = Path(__file__).resolve().parents[1]
        digest = hashlib.sha256(__version__.encode())
        for part in _FOLD_CODE:
            for source in sorted((package / part).glob("*.py")):
                found = source.stat()
                digest.update(f"{part}/{source.name}:{found.st_size}:{found.st_mtime_ns};".encode())
        _fingerprint = digest.digest()
    return _fingerprint


def save(state: IncidentState) -> None:
    """Write the checkpoint of `state` (its standing part), all or nothing. Best effort: a
    checkpoint that cannot be written (a read-only or full disk) only costs the next open."""
    import tempfile  # only here: a command that writes no checkpoint starts without it

    payload = pickle.dumps(
        (fingerprint(), state.id, state.last_seq, state.head, state),
        protocol=pickle.HIGHEST_PROTOCOL,
    )
    path = path_of(state.id)
    try:
        key = _key()
        seal = hmac.new(key, payload, hashlib.sha256).digest()
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "wb") as out:
            out.write(FORMAT + seal + payload)
        os.replace(temporary, path)  # derived: no fsync; a torn file fails its seal
    except OSError:
        with contextlib.suppress(OSError, UnboundLocalError):
            os.unlink(temporary)


def load(journal: IncidentJournal) -> IncidentState | None:
    """The checkpoint of `journal`'s incident, if there is one that this irtool sealed, from
    this code, whose last event the journal holds with the same hash; else None."""
    try:
        found = path_of(journal.incident).read_bytes()
        key = _key()
    except OSError:
        return None
    seal, payload = found[len(FORMAT) : len(FORMAT) + _MAC], found[len(FORMAT) + _MAC :]
    if not found.startswith(FORMAT) or not hmac.compare_digest(
        seal, hmac.new(key, payload, hashlib.sha256).digest()
    ):
        return None
    try:
        made_by, incident, seq, head, state = pickle.loads(payload)  # noqa: S301 - sealed above
    except Exception:  # sealed but unreadable (a class since renamed): rebuild
        return None
    if made_by != fingerprint() or incident != journal.incident:
        return None
    if not isinstance(state, IncidentState) or (state.last_seq, state.head) != (seq, head):
        return None
    if journal.hash_at(seq) != head:
        return None  # the journal was rewritten or cut short: the checkpoint is of another
    return state


class TailBroken(Exception):
    """The events after the checkpoint do not follow it: the journal was altered there."""


def opening(journal: IncidentJournal) -> tuple[Event, Iterator[Event]]:
    """The journal's opening event, and an iterator of the events after it; Refused (as the
    engine says it) when there is none: without it nothing can be folded."""
    events = journal.events()
    first = next(events, None)
    if first is None or first.kind != kinds.INCIDENT_OPENED:
        raise Refused(f"incident {journal.incident} has no opening event")
    return first, events


def fold_checked(journal: IncidentJournal) -> IncidentState:
    """The standing state folded from event 1, every event checked against the chain as it
    is folded (TailBroken at the first that does not hold); what a checkpoint may be made of."""
    first, events = opening(journal)
    problem = chain_problem(first, 1, GENESIS, journal.incident)
    if problem:
        raise TailBroken(problem)
    state = IncidentState.opened(first, records=False)
    fold_tail(state, events)
    return state


def fold_tail(state: IncidentState, events: Iterable[Event]) -> int:
    """Fold the events after the checkpoint into `state`, checking each links to the one
    before and matches its own hash (TailBroken if not); how many were folded."""
    count = 0
    for event in events:
        problem = chain_problem(event, state.last_seq + 1, state.head, state.id)
        if problem:
            raise TailBroken(problem)
        state.apply(event)
        count += 1
    return count
