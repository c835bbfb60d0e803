"""The secrets one run uses: looked up once, asked for when there is no keyring, then redacted.

Every credential a run may use is looked up before its first connection (`preload`), so the
redactor knows it before any host can print it: a banner or an error that echoes a password
is redacted even when it comes from a host that never uses that password.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping

from irtool.model.inventory import Auth, Inventory
from irtool.model.inventory import Transport as TransportName
from irtool.secrets import store
from irtool.secrets.redact import Redactor


class SecretUnavailable(LookupError):
    """A host needs a secret this run cannot get; the host fails, the others go on."""


class RunSecrets:
    """Implements the transports' `Secrets`: the keyring first, else a prompt if one is given."""

    def __init__(
        self,
        prompt: Callable[[str], str] | None = None,
        redactor: Redactor | None = None,
    ) -> None:
        self.prompt = prompt
        self.redactor = redactor or Redactor()
        self._cache: dict[str, str] = {}
        # What a preload could not get: each host that needs it fails with this, unasked again.
        self._missing: dict[str, str] = {}
        self._lock = threading.Lock()

    def secret(self, name: str) -> str:
        # One lock for all: with no keyring, fifty hosts sharing a credential ask once.
        with self._lock:
            if name in self._missing:
                raise SecretUnavailable(self._missing[name])
            if name not in self._cache:
                self._cache[name] = self._find(name)
                self.redactor.add(self._cache[name])
            return self._cache[name]

    def preload(self, names: Iterable[str]) -> None:
        """Look up every credential in `names` now, before any host is reached. One that
        cannot be had does not stop the run: each host that needs it fails, as it would have."""
        for name in dict.fromkeys(names):
            try:
                self.secret(name)
            except SecretUnavailable as missing:
                with self._lock:
                    self._missing[name] = str(missing.args[0] if missing.args else missing)
            except Exception as broken:  # a keyring backend's own failure, a closed stdin
                with self._lock:
                    self._missing[name] = f"credential '{name}': {type(broken).__name__}: {broken}"

    def _find(self, name: str) -> str:
        try:
            value = store.lookup(name)
        except store.NoKeyring as none:
            if self.prompt is None:
                raise SecretUnavailable(
                    f"credential '{name}': {none}, and no terminal to ask on"
                ) from None
            return self.prompt(f"{none}.\nSecret for credential '{name}' (this run only): ")
        if value is None:
            raise SecretUnavailable(
                f"no secret stored for credential '{name}': run `irtool creds set {name}`"
            )
        return value


def credentials(inventory: Inventory | None, hosts: Iterable[str] | None = None) -> list[str]:
    """The credentials reaching `hosts` (every host of the inventory if None) may use: a
    password (SSH, WinRM) or an encrypted SSH key's passphrase, by the name the inventory
    gives. Local hosts and SSH hosts that only use the agent need none."""
    if inventory is None:
        return []
    names: list[str] = []
    for name in inventory.hosts if hosts is None else hosts:
        if name not in inventory.hosts:
            continue
        host = inventory.resolve(name)
        if not host.credential or host.transport is TransportName.LOCAL:
            continue
        if host.transport is TransportName.SSH and host.auth is Auth.AGENT:
            continue
        names.append(host.credential)
    return list(dict.fromkeys(names))


def preload(
    transports: Mapping[str, object], inventory: Inventory | None, hosts: Iterable[str] | None
) -> None:
    """Before a run's first connection: load the credentials of `hosts` into the `RunSecrets`
    the live transports were built with (an exercise's simulated hosts have none)."""
    holders = {
        id(s): s
        for t in transports.values()
        if isinstance(s := getattr(t, "secrets", None), RunSecrets)
    }
    wanted = credentials(inventory, hosts)
    for secrets in holders.values():
        secrets.preload(wanted)
