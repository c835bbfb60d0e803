"""A real PostgreSQL for the tests: Debian's server, a cluster made with initdb in a temporary
directory, run as an unprivileged user on 127.0.0.1 on a free port, stopped at the end.

The server can be stopped and started again mid-test (`Postgres.stop`, `Postgres.start`): the
same cluster, port and options, so clients see a server restart, not a new server."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

SUPERUSER = "postgres"
READY_S = 60.0  # a loaded CI machine can take its time starting a cluster


def binaries() -> Path:
    """Debian's server binaries (postgresql-NN): initdb, pg_ctl, postgres."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("no PostgreSQL server: scripts/test-all installs Debian's postgresql")
    return Path(found[-1]).parent


@dataclass(frozen=True)
class _Cluster:
    """What pg_ctl needs to start the same server again: its data, log, options and owner."""

    bin_dir: Path
    data: Path
    log: Path
    options: str
    owner: str

    def pg_ctl(self, *argv: str, check: bool = True) -> None:
        done = subprocess.run(
            _as_owner(self.owner, [str(self.bin_dir / "pg_ctl"), "-D", str(self.data), *argv]),
            check=False,
            capture_output=True,
            text=True,
        )
        if check and done.returncode:
            # pg_ctl says why on its own output, the server in its log: show both.
            told = (done.stdout + done.stderr).strip()
            logged = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"pg_ctl {' '.join(argv)}: {told}\n--- server log ---\n{logged}")

    def start(self) -> None:
        # -w: pg_ctl returns once the server accepts connections.
        self.pg_ctl("-l", str(self.log), "-o", self.options, "-w", "-t", str(int(READY_S)), "start")

    def stop(self, mode: str = "fast", *, check: bool = True) -> None:
        # -w: pg_ctl returns once the server has exited (and closed its port).
        self.pg_ctl("-m", mode, "-w", "-t", str(int(READY_S)), "stop", check=check)


@dataclass(frozen=True)
class Postgres:
    host: str
    port: int
    _cluster: _Cluster | None = field(default=None, repr=False, compare=False)

    def url(self, user: str = SUPERUSER, password: str | None = None, db: str = "irtool") -> str:
        secret = f":{password}" if password else ""
        return f"postgresql://{user}{secret}@{self.host}:{self.port}/{db}"

    def stop(self) -> None:
        """Stop the server as an administrator would (`pg_ctl stop -m fast`): every session is
        told `terminating connection due to administrator command` and closed."""
        self._own_cluster().stop("fast")

    def start(self) -> None:
        """Start the stopped server again: same data directory, port and options."""
        self._own_cluster().start()

    def _own_cluster(self) -> _Cluster:
        if self._cluster is None:
            raise RuntimeError(f"the server at {self.host}:{self.port} was not started here")
        return self._cluster


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _as_owner(owner: str, argv: list[str]) -> list[str]:
    # The server refuses to run as root; CI runs the tests as root.
    return ["runuser", "-u", owner, "--", *argv] if os.geteuid() == 0 else argv


@contextmanager
def postgres_server() -> Iterator[Postgres]:
    """A running server, its cluster in a directory of its own (the unprivileged user it runs
    as cannot enter pytest's temporary directories, which only root may), removed after."""
    owner = "nobody" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    folder = Path(tempfile.mkdtemp(prefix="irtool-postgres-"))
    folder.chmod(0o755)
    data, sockets = folder / "data", folder / "sockets"
    for made in (folder, data, sockets):
        made.mkdir(parents=True, exist_ok=True)
        shutil.chown(made, owner)
    bin_dir, port = binaries(), _free_port()
    subprocess.run(
        _as_owner(
            owner,
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ],
        ),
        check=True,
        capture_output=True,
    )
    log = folder / "server.log"
    log.touch()
    shutil.chown(log, owner)
    options = f"-h 127.0.0.1 -p {port} -k {sockets} -c fsync=on"
    cluster = _Cluster(bin_dir, data, log, options, owner)
    cluster.start()
    server = Postgres("127.0.0.1", port, cluster)
    try:
        subprocess.run(
            [
                str(bin_dir / "createdb"),
                "-h",
                server.host,
                "-p",
                str(port),
                "-U",
                SUPERUSER,
                "irtool",
            ],
            check=True,
            capture_output=True,
        )
        yield server
    finally:
        # A test may have left it stopped: pg_ctl then says so, and nothing is lost.
        cluster.stop("immediate", check=False)
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def team_server(role: str, password: str | None = None) -> Iterator[Postgres]:
    """A running server made ready for irtool (journal.postgres.install): its tables, and
    `role` a LOGIN role (with `password`, else trust-authenticated) that may only INSERT and
    SELECT them."""
    import psycopg
    from psycopg import sql

    from irtool.journal.postgres import install

    with postgres_server() as running:
        with psycopg.connect(running.url(), autocommit=True) as admin:
            made = sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role))
            if password is not None:
                made += sql.SQL(" PASSWORD {}").format(sql.Literal(password))
            admin.execute(made)
        install(running.url(), writers=[role])
        yield running
