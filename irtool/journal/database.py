"""The team's database: where `--database URL` / IRTOOL_DATABASE points, and how safely.

A responder gives a libpq URL with no password in it (argv and the environment are readable
by others on the machine; `ps` shows the one, /proc the other). The password comes from the
OS keyring, by the name `where()` gives, and reaches libpq as a connection parameter only.

The connection is TLS with `sslmode=verify-full` unless the URL says otherwise: the server's
certificate must chain to a trusted root and name the host. A URL asking for less (`disable`,
`prefer`, `require`, `verify-ca`) is refused unless every host it names is this machine or
the responder says `--insecure` (IRTOOL_DATABASE_INSECURE=1): an incident's record is not
sent in clear over a network by default.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from irtool.journal.store import JournalError

DATABASE_ENV = "IRTOOL_DATABASE"
INSECURE_ENV = "IRTOOL_DATABASE_INSECURE"
CONNECT_TIMEOUT_S = 5  # an unreachable server is said within this, and the copy used instead
# A network that goes silent (a cable, a VPN, a firewall dropping packets) closes nothing: an
# idle connection (a screen's LISTEN) would look alive for the kernel's default of two hours.
# Probed after IDLE seconds of quiet, every INTERVAL, it is dead after COUNT unanswered probes.
KEEPALIVE_IDLE_S, KEEPALIVE_INTERVAL_S, KEEPALIVE_COUNT = 10, 5, 3
_SAFE = "verify-full"
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}
_SECRET_PARAMS = ("password", "sslpassword")  # never in argv or the environment
_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'")

# The name of a secret -> the secret, or None (the engine hands the keyring's lookup).
SecretLookup = Callable[[str], "str | None"]


_secrets: SecretLookup | None = None  # the command line hands the keyring's lookup


def use_secrets(lookup: SecretLookup | None) -> None:
    """Where passwords come from: the command line hands the OS keyring's lookup here, so
    neither the engine nor an exercise (which may read no secret) ever reaches the keyring."""
    global _secrets
    _secrets = lookup


def first_line(error: BaseException) -> str:
    """An error's first line, as a responder reads it (the server's own words)."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def unquoted_line(error: BaseException) -> str:
    """A connection error's first line with what it quotes blanked: libpq quotes what it
    could not use of a connection string ("invalid percent-encoded token", the host of a URL
    with an unescaped '@' in its password), which may be a piece of a password."""
    return _QUOTED.sub('"…"', first_line(error))


class DatabaseRefused(JournalError):
    """The URL cannot be used as given: the message says why and what to do."""


def team_url() -> str | None:
    """The team's database for incidents, if this machine works in team mode."""
    return os.environ.get(DATABASE_ENV) or None


@dataclass(frozen=True)
class Database:
    """A checked URL: its libpq parameters, never a password."""

    params: dict[str, str]

    def where(self) -> str:
        """`user@host:port/db`: what a responder reads, and the keyring's name for it."""
        p = self.params
        user = p.get("user") or os.environ.get("PGUSER") or ""
        port = p.get("port") or "5432"
        return f"{user}@{p.get('host', 'localhost')}:{port}/{p.get('dbname', user)}"

    @property
    def credential(self) -> str:
        """The keyring entry holding the password (`irtool creds set database:...`)."""
        return f"database:{self.where()}"

    def connect(self) -> Any:
        """A new autocommit connection (psycopg), the password from the keyring if it holds
        one. psycopg is imported here: SQLite-only work never loads it."""
        import psycopg

        params: dict[str, Any] = dict(self.params)
        password = _secrets(self.credential) if _secrets else None
        if password:
            params["password"] = password
        try:
            return psycopg.connect(autocommit=True, **params)
        except psycopg.Error as error:
            said = unquoted_line(error)
            raise JournalError(f"cannot reach the team's database {self.where()}: {said}") from None


def checked(url: str, *, insecure: bool | None = None) -> Database:
    """`url` as parameters to connect with, or DatabaseRefused saying why in one line."""
    from psycopg import conninfo

    try:
        params = {k: str(v) for k, v in conninfo.conninfo_to_dict(url).items()}
    except Exception as error:  # psycopg's ProgrammingError, with libpq's own words
        said = unquoted_line(error)
        raise DatabaseRefused(f"{DATABASE_ENV}: not a PostgreSQL URL: {said}") from None
    secrets = [name for name in _SECRET_PARAMS if name in params]
    if secrets:
        # Not even the user and host are echoed: a password holding '@' spills into them.
        raise DatabaseRefused(
            f"{DATABASE_ENV}: the URL holds a {secrets[0]}, which others on this machine can "
            "read; give it without one, and keep the password in the keyring as "
            "`irtool creds set database:USER@HOST:PORT/DB` (the URL's own)"
        )
    if "service" in params and not _insecure(insecure):
        raise DatabaseRefused(
            f"{DATABASE_ENV}: service={params['service']} names a connection irtool cannot "
            "check (its host and TLS are in a service file): give host and port in the URL, "
            "or say --insecure"
        )
    params.setdefault("sslmode", _SAFE)
    params.setdefault("connect_timeout", str(CONNECT_TIMEOUT_S))
    params.setdefault("application_name", "irtool")
    keepalives = {
        "keepalives": 1,
        "keepalives_idle": KEEPALIVE_IDLE_S,
        "keepalives_interval": KEEPALIVE_INTERVAL_S,
        "keepalives_count": KEEPALIVE_COUNT,
    }
    for name, value in keepalives.items():
        params.setdefault(name, str(value))
    if params["sslmode"] != _SAFE and not _insecure(insecure) and not _loopback(params):
        raise DatabaseRefused(
            f"{DATABASE_ENV}: sslmode={params['sslmode']} to {params.get('host', '?')} would not "
            "check the server's certificate and name: use sslmode=verify-full (the default), "
            "or say --insecure to accept it"
        )
    return Database(params)


def _insecure(said: bool | None) -> bool:
    if said is None:
        return os.environ.get(INSECURE_ENV, "") not in ("", "0")
    return said


def _loopback(params: dict[str, str]) -> bool:
    """Every host the URL names, and every address it connects to, is this machine (a Unix
    socket directory included). Where the URL names none, libpq takes PGHOST and PGHOSTADDR:
    those are looked at too."""
    named = params.get("host") or os.environ.get("PGHOST", "")
    addresses = params.get("hostaddr") or os.environ.get("PGHOSTADDR", "")
    hosts = [h for h in named.split(",") if h] or ["localhost"]
    numeric = [a for a in addresses.split(",") if a]
    return all(h in _LOOPBACK or h.startswith("/") for h in hosts) and all(
        a in _LOOPBACK for a in numeric
    )
