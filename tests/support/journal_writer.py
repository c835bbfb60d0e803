"""A separate process that appends events and prints each seq once it is acknowledged."""

from __future__ import annotations

import sys
from pathlib import Path

from irtool.journal import EventDraft, Journal


def main() -> None:
    path, incident, actor, count = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    journal = Journal(path, incident, create=not path.exists())
    n = 0
    while count < 0 or n < count:
        event = journal.append(EventDraft("note.added", actor, {"text": f"{actor} note {n}"}))
        # The seq is printed only after append returned: it is acknowledged.
        sys.stdout.write(f"{event.seq}\n")
        sys.stdout.flush()
        n += 1


if __name__ == "__main__":
    main()
