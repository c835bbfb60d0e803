"""Credentials in the OS keyring, by the name the inventory's `credential:` gives.

keyring cannot list what it holds, so the names (never the values) are kept
in one more entry of their own, for `irtool creds list`.
"""

from __future__ import annotations

import json

import keyring
import keyring.backend
import keyring.errors
from keyring.backends import fail

SERVICE = "irtool"
NAMES_ENTRY = "irtool:credential-names"


class NoKeyring(Exception):
    """No usable OS keyring on this machine (a headless Linux box, say)."""


def backend() -> keyring.backend.KeyringBackend:
    """The keyring in use, or NoKeyring saying plainly why there is none."""
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
    try:
        return backend().get_password(SERVICE, name)
    except keyring.errors.KeyringError as failed:
        raise NoKeyring(f"the OS keyring refused to read '{name}': {failed}") from None


def store(name: str, secret: str) -> None:
    ring = backend()
    try:
        ring.set_password(SERVICE, name, secret)
        _remember(ring, add=name)
    except keyring.errors.KeyringError as failed:
        raise NoKeyring(f"the OS keyring refused to store '{name}': {failed}") from None


def delete(name: str) -> bool:
    ring = backend()
    try:
        ring.delete_password(SERVICE, name)
        found = True
    except keyring.errors.PasswordDeleteError:
        found = False
    except keyring.errors.KeyringError as failed:
        raise NoKeyring(f"the OS keyring refused to delete '{name}': {failed}") from None
    _remember(ring, remove=name)
    return found


def names() -> list[str]:
    try:
        raw = backend().get_password(SERVICE, NAMES_ENTRY)
    except keyring.errors.KeyringError as failed:
        raise NoKeyring(f"the OS keyring refused to list names: {failed}") from None
    return sorted(json.loads(raw)) if raw else []


def _remember(
    ring: keyring.backend.KeyringBackend, add: str | None = None, remove: str | None = None
) -> None:
    raw = ring.get_password(SERVICE, NAMES_ENTRY)
    known = set(json.loads(raw)) if raw else set()
    if add:
        known.add(add)
    if remove:
        known.discard(remove)
    ring.set_password(SERVICE, NAMES_ENTRY, json.dumps(sorted(known)))
