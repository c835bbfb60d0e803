"""A responder's process in team mode: notes written through an incident session, one after
another, each said on stdout once it is acknowledged, until told to stop; then `sync`.

    python -m tests.support.team_writer INCIDENT STOP_FILE [--complete STEP] [--offline N]

Who writes, and where, is the environment's: IRTOOL_RESPONDER (the actor), IRTOOL_HOME (the
"machine"), IRTOOL_DATABASE, SSH_AUTH_SOCK (the ssh-agent holding the actor's key). One line
per outcome, flushed at once:

    READY                       the session is open
    ACK <seq> <hash> <text>     note() (or complete()) returned: the event is acknowledged
    LOST <text> <why>           the write lost the database (a JournalError): not acknowledged
    OFFLINE <why>               the session works on this machine's copy from here on (said
                                once: after a LOST, or after an ACK whose event was committed
                                but the database was lost as it was copied back)
    DONE <given> <refused>      sync gave the database what this machine wrote offline

Notes go on until STOP_FILE exists (polled between writes); offline, N of them at most (then
it only waits for STOP_FILE: a chain that keeps growing while a server starts proves no
more, and costs every verify). With `--complete STEP`, the step is completed once, as the
first write after the database was lost (offline, then)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from irtool.engine.session import IncidentSession
from irtool.engine.syncing import sync
from irtool.journal import JournalError
from irtool.journal.team import TeamJournal

SYNC_TRIES_S = 60.0  # the server may still be starting when told to stop


def say(line: str) -> None:
    sys.stdout.write(line.replace("\n", " ") + "\n")
    sys.stdout.flush()


def offline(session: IncidentSession) -> bool:
    journal = session.journal
    return isinstance(journal, TeamJournal) and not journal.online


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("incident")
    parser.add_argument("stop", type=Path)
    parser.add_argument("--complete")
    parser.add_argument("--offline", type=int, default=20)
    args = parser.parse_args()
    actor = os.environ["IRTOOL_RESPONDER"]
    session = IncidentSession.open(args.incident, records=False)
    say("READY")
    step: str | None = args.complete
    n, alone = 0, 0  # notes written; offline, how many
    while not args.stop.exists():
        if not alone and offline(session):
            assert isinstance(session.journal, TeamJournal)
            say(f"OFFLINE {session.journal.offline_reason}")
        if offline(session):
            alone += 1
            if alone > args.offline:
                time.sleep(0.05)  # polling STOP_FILE: written as much as asked
                continue
        if step is not None and offline(session):
            event = session.complete(step, actor, note="done offline")
            say(f"ACK {event.seq} {event.hash} complete {step}")
            step = None
            continue
        text = f"{actor} note {n}"
        n += 1
        try:
            event = session.note(text, actor)
        except JournalError as why:
            say(f"LOST {text} {why}")
            continue
        say(f"ACK {event.seq} {event.hash} {text}")
    session.close_journal()  # sync moves this copy aside: no one may hold it open
    give_up = time.monotonic() + SYNC_TRIES_S
    while True:
        try:
            synced = sync(args.incident, actor)
            break
        except JournalError as why:  # the database is not back yet: try again
            if time.monotonic() > give_up:
                say(f"FAILED {why}")
                raise SystemExit(1) from None
            time.sleep(0.1)
    say(f"DONE {len(synced.given)} {len(synced.refused)}")


if __name__ == "__main__":
    main()
