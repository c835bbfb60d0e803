"""A real PostgreSQL for the tests: Debian's server, a cluster made with initdb in a temporary
directory, run as an unprivileged user on 127.0.0.1 on a free port, stopped at the end."""

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
from dataclasses import dataclass
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
class Postgres:
    host: str
    port: int

    def url(self, user: str = SUPERUSER, password: str | None = None, db: str = "irtool") -> str:
        secret = f":{password}" if password else ""
        return f"postgresql://{user}{secret}@{self.host}:{self.port}/{db}"


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
    subprocess.run(
        _as_owner(
            owner,
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(log),
                "-o",
                options,
                "-w",
                "-t",
                str(int(READY_S)),
                "start",
            ],
        ),
        check=True,
        capture_output=True,
    )  # -w: pg_ctl returns once the server accepts connections
    server = Postgres("127.0.0.1", port)
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
        subprocess.run(
            _as_owner(
                owner, [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]
            ),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(folder, ignore_errors=True)
