"""A separate process that holds a journal's write lock, as a stuck second writer would.

    python -m tests.support.journal_holder JOURNAL GO LOCKED

Waits for the file GO to exist (the command under test makes it, so the lock is taken
while that command runs), takes `BEGIN EXCLUSIVE`, makes LOCKED, and holds the lock
until a line (or EOF) arrives on stdin.
"""

from __future__ import annotations

import sqlite3
import sys
import time
from pathlib import Path


def main() -> None:
    journal, go, locked = (Path(a) for a in sys.argv[1:4])
    give_up = time.monotonic() + 60
    while not go.exists():  # polled: the signal is a file a remote command makes
        if time.monotonic() > give_up:
            sys.exit("GO never came")
        time.sleep(0.02)
    db = sqlite3.connect(journal, timeout=30, isolation_level=None)
    db.execute("BEGIN EXCLUSIVE")
    locked.touch()
    sys.stdin.readline()
    db.execute("COMMIT")
    db.close()


if __name__ == "__main__":
    main()
