"""Exit statuses every command shares, so scripts can tell bad input from a failed check."""

from enum import IntEnum


class Exit(IntEnum):
    OK = 0
    FAILED = 1  # the check ran and found something wrong (verify, a failed host)
    INVALID = 2  # bad input: a file, a parameter, a command line
    # The journal cannot take writes now (another writer holds it, the disk under it is
    # full): nothing it acknowledged is lost, custody records wait in the spool; try again
    # (`irtool incident recover`) once the cause is gone. EX_TEMPFAIL.
    JOURNAL_UNAVAILABLE = 75
    INTERNAL = 70  # a bug in irtool (EX_SOFTWARE)
