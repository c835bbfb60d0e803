"""The secrets one run uses: looked up once, asked for when there is no keyring, then redacted."""

from __future__ import annotations

import threading
from collections.abc import Callable

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
        self._lock = threading.Lock()

    def secret(self, name: str) -> str:
        # One lock for all: with no keyring, fifty hosts sharing a credential ask once.
        with self._lock:
            if name not in self._cache:
                self._cache[name] = self._find(name)
                self.redactor.add(self._cache[name])
            return self._cache[name]

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
