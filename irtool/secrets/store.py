"""Credentials in the OS keyring, by the name the inventory's `credential:` gives.

keyring cannot list what it holds, so the names (never the values) are kept
in one more entry of their own, for `irtool creds list`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend

# keyring is imported where it is used: loading it (and its backends) costs ~0.1 s that the
# terminal UI's first frame and most commands do not need.

SERVICE = "irtool"
NAMES_ENTRY = "irtool:credential-names"


class NoKeyring(Exception):
    """No usable OS keyring on this machine (a headless Linux box, say)."""


def backend() -> KeyringBackend:
    """The keyring in use, or NoKeyring saying plainly why there is none."""
    import keyring
    from keyring.backends import fail

    chosen = keyring.get_keyring()
    backends = getattr(chosen, "backends", None)
    if isinstance(chosen, fail.Keyring) or backends == []:
        raise NoKeyring(
            "no OS keyring is available on this machine (keyring found no backend: on a headless "
            "Linux box, install and unlock one such as gnome-keyring or KWallet, or use "
            "keyrings.alt); irtool will ask for secrets at each run instead"
        )
    return chosen


def lookup(name: str) -> str | None:
    from keyring.errors import KeyringError

    try:
        return backend().get_password(SERVICE, name)
    except KeyringError as failed:
        raise NoKeyring(f"the OS keyring refused to read '{name}': {failed}") from None


def store(name: str, secret: str) -> None:
    from keyring.errors import KeyringError

    ring = backend()
    try:
        ring.set_password(SERVICE, name, secret)
        _remember(ring, add=name)
    except KeyringError as failed:
        raise NoKeyring(f"the OS keyring refused to store '{name}': {failed}") from None


def delete(name: str) -> bool:
    from keyring.errors import KeyringError, PasswordDeleteError

    ring = backend()
    try:
        ring.delete_password(SERVICE, name)
        found = True
    except PasswordDeleteError:
        found = False
    except KeyringError as failed:
        raise NoKeyring(f"the OS keyring refused to delete '{name}': {failed}") from None
    _remember(ring, remove=name)
    return found


def names() -> list[str]:
    from keyring.errors import KeyringError

    try:
        raw = backend().get_password(SERVICE, NAMES_ENTRY)
    except KeyringError as failed:
        raise NoKeyring(f"the OS keyring refused to list names: {failed}") from None
    return sorted(json.loads(raw)) if raw else []


def _remember(ring: KeyringBackend, add: str | None = None, remove: str | None = None) -> None:
    raw = ring.get_password(SERVICE, NAMES_ENTRY)
    known = set(json.loads(raw)) if raw else set()
    if add:
        known.add(add)
    if remove:
        known.discard(remove)
    ring.set_password(SERVICE, NAMES_ENTRY, json.dumps(sorted(known)))
