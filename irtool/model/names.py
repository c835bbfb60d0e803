"""Responders' names: when two spellings are one person, and which names cannot be recorded.

The two-person rule is only as good as the comparison behind it: `alice`, `alice `, `ALICE`
and `alice` typed in fullwidth letters (U+FF41...) are one person at the keyboard, so they
must be one person to the engine. Names are recorded as typed (the record keeps what was
said) and compared through `responder_key`.
"""

from __future__ import annotations

import unicodedata

# Control (Cc) and format (Cf: bidi overrides like U+202E, zero-width joiners) characters,
# and the line and paragraph separators (Zl, Zp): a name holding one can repaint a terminal,
# reorder what a reader sees, or look like someone else's name while comparing unequal.
_UNSHOWABLE = frozenset({"Cc", "Cf", "Zl", "Zp"})


def responder_key(name: str) -> str:
    """The form two names are compared in: NFKC (fullwidth and compatibility forms become
    plain letters), case-folded, whitespace trimmed and runs of it made one space. NFKC again
    after folding, as folding can undo it (Unicode's NFKC_Casefold does the same)."""
    folded = unicodedata.normalize("NFKC", name).casefold()
    return unicodedata.normalize("NFKC", " ".join(folded.split()))


def same_responder(one: str, other: str) -> bool:
    return responder_key(one) == responder_key(other)


def unshowable_in_name(name: str) -> str | None:
    """Why `name` cannot be recorded as a name at all (a control or format character), or
    None. The journal checks this much of every event's actor."""
    for char in name:
        if unicodedata.category(char) in _UNSHOWABLE:
            return (
                f"a responder's name cannot hold a control or format character "
                f"(U+{ord(char):04X} in {name!r})"
            )
    return None


def responder_problem(name: str) -> str | None:
    """Why `name` cannot stand for a responder, or None when it can."""
    if not name.strip():
        return "a responder's name cannot be empty"
    return unshowable_in_name(name)
