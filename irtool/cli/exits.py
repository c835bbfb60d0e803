"""Exit statuses every command shares, so scripts can tell bad input from a failed check."""

from enum import IntEnum


class Exit(IntEnum):
    OK = 0
    FAILED = 1  # the check ran and found something wrong (verify, a failed host)
    INVALID = 2  # bad input: a file, a parameter, a command line
    INTERNAL = 70  # a bug in irtool (EX_SOFTWARE)
