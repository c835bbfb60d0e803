"""Real OpenSSH ``sshd`` instances on 127.0.0.1 for tests, plus hosts that fail on purpose.

``SshdFarm`` starts one or more ``sshd -D`` processes, each with its own ed25519 host key,
port and config file, all in a directory the caller owns (usually ``tmp_path``).  It works
both unprivileged (logins only as the user running the tests) and as root (CI).

Commands run in the user's login shell, as on a real host (no ForceCommand: sshd refuses
RFC 4254 signals to forced commands, and irtool kills a hung command with one).  SFTP is
served by the external ``sftp-server`` binary.

Failure helpers: ``closed_port()`` (connection refused), ``BlackHole`` (accepts, never sends
a banner) and ``rotate_host_key()`` (same host and port, new host key).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

ADDRESS = "127.0.0.1"
START_TIMEOUT = 15.0
"""Seconds one sshd may take to listen and send its banner."""
STOP_GRACE = 3.0
"""Seconds sshd and its children get to exit after SIGTERM before SIGKILL."""
PORT_ATTEMPTS = 8
"""How many fresh ports to try when another process takes ours first."""

_PRIVSEP_DIR = Path("/run/sshd")
_SFTP_SERVER_CANDIDATES = (
    "/usr/lib/openssh/sftp-server",  # Debian, Ubuntu
    "/usr/libexec/openssh/sftp-server",  # Fedora, RHEL
    "/usr/lib/ssh/sftp-server",  # Arch
    "/usr/libexec/sftp-server",  # macOS, BSDs
    "/usr/lib/misc/sftp-server",  # Gentoo
)


class SshdError(RuntimeError):
    """An sshd could not be started; the message carries the end of its log."""


@dataclass(kw_only=True, eq=False)
class SshHost:
    """One running sshd: where it listens and which host key it presents."""

    name: str
    """``h1``, ``h2``, ...: the ``Host`` name in ``SshdFarm.ssh_config``."""
    address: str = ADDRESS
    port: int
    host_key: str
    """The public host key line without comment: ``ssh-ed25519 AAAA...``."""
    fingerprint: str
    """``SHA256:...`` as ``ssh-keygen -lf`` prints it."""
    host_key_path: Path
    """The private host key file (the public one is beside it, with ``.pub``)."""
    process: subprocess.Popen[bytes]
    log_path: Path
    """sshd's log (``-E``), appended to across restarts."""
    config_path: Path

    @property
    def known_hosts_line(self) -> str:
        return f"[{self.address}]:{self.port} {self.host_key}"

    def log_text(self) -> str:
        """The whole sshd log, for assertion messages."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


class SshdFarm:
    """``count`` sshd instances on 127.0.0.1, each with its own host key, port and config.

    Attributes once started: ``hosts`` (``SshHost`` list), ``user``, ``client_key`` (an
    unencrypted ed25519 private key), ``encrypted_client_key`` and its ``passphrase``, and
    ``authorized_keys`` (holds both public keys).  Everything is written into ``directory``.

    ``user`` defaults to the user running the tests.  Another user only works as root, and
    that user must be able to read ``directory``'s ``authorized_keys`` (sshd opens it with
    the user's rights) and must have a login shell that runs ``-c``.
    """

    def __init__(
        self,
        directory: Path,
        count: int = 1,
        user: str | None = None,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        if count < 1:
            raise ValueError("count must be at least 1")
        self.directory = Path(directory).resolve()
        _check_config_path(self.directory)
        self.count = count
        self.environment = dict(environment or {})
        """Variables every session's command starts with (sshd's ``SetEnv``, which wins over
        its own defaults): a ``PATH`` can put a test's stand-in for a host tool first."""
        self._setenv = _setenv_line(self.environment)
        current = pwd.getpwuid(os.geteuid()).pw_name
        self.user = user if user is not None else current
        if self.user != current and os.geteuid() != 0:
            raise ValueError(f"an unprivileged sshd only lets {current!r} log in")
        self.passphrase = secrets.token_urlsafe(18)
        self.client_key = self.directory / "client_ed25519"
        self.encrypted_client_key = self.directory / "client_encrypted_ed25519"
        self.authorized_keys = self.directory / "authorized_keys"
        self.hosts: list[SshHost] = []
        self._sshd = ""
        self._sftp_server = ""
        self._version = (0, 0)

    # -- lifecycle ---------------------------------------------------------------------

    def __enter__(self) -> SshdFarm:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        if self.hosts:
            raise RuntimeError("this farm is already started")
        self._sshd = _sshd_path()
        self._sftp_server = _sftp_server_path()
        self._version = _openssh_version(self._sshd)
        self.directory.mkdir(parents=True, exist_ok=True)
        _keygen(self.client_key, "irtool-test-client")
        _keygen(self.encrypted_client_key, "irtool-test-client-encrypted", self.passphrase)
        self.authorized_keys.write_text(
            _public_line(self.client_key) + "\n" + _public_line(self.encrypted_client_key) + "\n"
        )
        try:
            offsets: dict[str, int] = {}  # where each sshd's latest run starts in its log
            for index in range(1, self.count + 1):
                name = f"h{index}"
                key = self.directory / f"{name}_host_ed25519"
                config = self.directory / f"{name}_sshd_config"
                log = self.directory / f"{name}_sshd.log"
                _keygen(key, f"irtool-test-{name}")
                port = _free_port()
                self._write_config(config, port, key)
                process, offsets[name] = _launch(self._sshd, config, log)
                self.hosts.append(
                    SshHost(
                        name=name,
                        port=port,
                        host_key=_public_line(key),
                        fingerprint=_fingerprint(key),
                        host_key_path=key,
                        process=process,
                        log_path=log,
                        config_path=config,
                    )
                )
            pending = list(self.hosts)
            for _attempt in range(PORT_ATTEMPTS):
                pending = [host for host in pending if not _await_ready(host, offsets[host.name])]
                if not pending:
                    return
                for host in pending:  # another process took the port first: move to a new one
                    host.port = _free_port()
                    self._write_config(host.config_path, host.port, host.host_key_path)
                    host.process, offsets[host.name] = _launch(
                        self._sshd, host.config_path, host.log_path
                    )
            raise SshdError(
                f"no free port after {PORT_ATTEMPTS} attempts; last log:\n"
                + _tail(pending[0].log_text())
            )
        except BaseException:
            self.close()
            raise

    def _write_config(self, path: Path, port: int, host_key: Path) -> None:
        lines = [
            f"ListenAddress {ADDRESS}:{port}",
            f'HostKey "{host_key}"',
            "PidFile none",
            f'AuthorizedKeysFile "{self.authorized_keys}"',
            "PubkeyAuthentication yes",
            "PermitRootLogin prohibit-password",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "HostbasedAuthentication no",
            "UsePAM no",
            "StrictModes no",
            "UseDNS no",
            "LogLevel VERBOSE",
            "MaxSessions 64",
            "MaxStartups 200",
            "MaxAuthTries 10",
            "LoginGraceTime 60",
            "PrintMotd no",
            "PrintLastLog no",
            "X11Forwarding no",
            f"AllowUsers {self.user}",
            f"Subsystem sftp {self._sftp_server}",
        ]
        if self._setenv:
            lines.append(self._setenv)
        if self._version >= (9, 8):
            # Failure-case tests make many bad logins from 127.0.0.1; don't lock them out.
            lines.append("PerSourcePenalties no")
        path.write_text("\n".join(lines) + "\n")

    def close(self) -> None:
        """Stop every sshd and everything it started (sessions, the commands they run)."""
        for host in self.hosts:
            _stop(host.process)

    # -- client-side files -------------------------------------------------------------

    def known_hosts(self, path: Path) -> Path:
        """Write ``[127.0.0.1]:PORT ssh-ed25519 ...`` for every host (their current keys)."""
        path.write_text("".join(host.known_hosts_line + "\n" for host in self.hosts))
        return path

    def ssh_config(self, path: Path, known_hosts: Path | None = None) -> Path:
        """Write an ssh_config with a ``Host hN`` block per host, using ``client_key``.

        With ``known_hosts``, each block also pins that file with strict checking.
        """
        lines: list[str] = []
        for host in self.hosts:
            lines += [
                f"Host {host.name}",
                f"    HostName {host.address}",
                f"    Port {host.port}",
                f"    User {self.user}",
                f'    IdentityFile "{self.client_key}"',
                "    IdentitiesOnly yes",
            ]
            if known_hosts is not None:
                lines += [
                    f'    UserKnownHostsFile "{known_hosts}"',
                    "    StrictHostKeyChecking yes",
                ]
            lines.append("")
        path.write_text("\n".join(lines))
        return path

    def __getitem__(self, index: int) -> SshHost:
        return self.hosts[index]

    def __len__(self) -> int:
        return len(self.hosts)


def inventory_entry(farm: SshdFarm, index: int = 0, **settings: Any) -> dict[str, Any]:
    """An inventory host entry for the farm's sshd `index`: key auth, its host key pinned;
    `settings` add to it or override it (a shorter connect_timeout, vars)."""
    return {
        "address": "127.0.0.1",
        "port": farm[index].port,
        "transport": "ssh",
        "os": "linux",
        "user": farm.user,
        "auth": "key",
        "identity_file": str(farm.client_key),
        "host_key": farm[index].fingerprint,
        "connect_timeout": 5,
        **settings,
    }


def rotate_host_key(host: SshHost) -> None:
    """Give ``host`` a new host key and restart its sshd on the same port.

    Known_hosts files written before now hold the old key, so clients must refuse the host.
    """
    _stop(host.process)
    for path in (
        host.host_key_path,
        host.host_key_path.with_name(host.host_key_path.name + ".pub"),
    ):
        path.unlink(missing_ok=True)
    _keygen(host.host_key_path, f"irtool-test-{host.name}-rotated")
    host.host_key = _public_line(host.host_key_path)
    host.fingerprint = _fingerprint(host.host_key_path)
    sshd = _sshd_path()
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        # The port was ours a moment ago; only a process that grabbed it since can hold it.
        host.process, offset = _launch(sshd, host.config_path, host.log_path)
        if _await_ready(host, offset):
            return
        if time.monotonic() > deadline:
            raise SshdError(f"port {host.port} stayed taken:\n{_tail(host.log_text())}")
        time.sleep(0.05)


# -- failure helpers ---------------------------------------------------------------------


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (connecting is refused)."""
    return _free_port()


class BlackHole:
    """A TCP listener on 127.0.0.1 that accepts connections and never sends a byte (or only
    its `greeting`).

    Looks like a hung host: the TCP handshake succeeds, the SSH banner never comes.
    """

    def __init__(self, greeting: bytes = b"") -> None:
        """`greeting`: bytes sent on each connection as it is accepted (none: a hung host)."""
        self.greeting = greeting
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind((ADDRESS, 0))
        self._listener.listen(128)
        self.port: int = self._listener.getsockname()[1]
        self.address = ADDRESS
        self._accepted: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._accept_loop, name="BlackHole", daemon=True)

    def __enter__(self) -> BlackHole:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def connections(self) -> int:
        """How many connections were accepted so far."""
        with self._lock:
            return len(self._accepted)

    def _accept_loop(self) -> None:
        while True:
            try:
                conn, _peer = self._listener.accept()
            except OSError:
                return  # the listener was closed
            with self._lock:
                if self._closed:
                    conn.close()
                    return
                self._accepted.append(conn)
            if self.greeting:
                with contextlib.suppress(OSError):  # the client may already have gone
                    conn.sendall(self.greeting)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            accepted, self._accepted = self._accepted, []
        # shutdown() wakes the thread blocked in accept(); close() alone may not on Linux.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for conn in accepted:
            conn.close()
        if self._thread.is_alive():
            self._thread.join(timeout=5)


# -- internals ---------------------------------------------------------------------------


def _sshd_path() -> str:
    # sshd re-executes itself and so must be started by absolute path.
    for candidate in ("/usr/sbin/sshd", shutil.which("sshd")):
        if candidate and os.access(candidate, os.X_OK):
            return str(Path(candidate).resolve())
    raise SshdError("no sshd found (install openssh-server)")


def _sftp_server_path() -> str:
    for candidate in _SFTP_SERVER_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    raise SshdError(f"no sftp-server found in {', '.join(_SFTP_SERVER_CANDIDATES)}")


_VERSION_CACHE: dict[str, tuple[int, int]] = {}


def _openssh_version(sshd: str) -> tuple[int, int]:
    if sshd not in _VERSION_CACHE:
        # -V prints "OpenSSH_9.2p1 ..."; versions without -V print it in their usage text.
        result = subprocess.run([sshd, "-V"], capture_output=True, text=True, check=False)
        found = re.search(r"OpenSSH_(\d+)\.(\d+)", result.stderr + result.stdout)
        _VERSION_CACHE[sshd] = (int(found[1]), int(found[2])) if found else (0, 0)
    return _VERSION_CACHE[sshd]


def _keygen(path: Path, comment: str, passphrase: str = "") -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
    )


def _public_line(private_key: Path) -> str:
    """``type base64`` from the ``.pub`` beside the key, comment dropped."""
    fields = private_key.with_name(private_key.name + ".pub").read_text().split()
    return f"{fields[0]} {fields[1]}"


def _fingerprint(private_key: Path) -> str:
    public = private_key.with_name(private_key.name + ".pub")
    out = subprocess.run(
        ["ssh-keygen", "-l", "-E", "sha256", "-f", str(public)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return out.split()[1]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((ADDRESS, 0))
        port: int = sock.getsockname()[1]
    return port


def _check_config_path(path: Path) -> None:
    if any(char in str(path) for char in '"%\n\r'):
        raise ValueError(f"sshd config cannot name paths with quotes, % or newlines: {path}")


def _setenv_line(environment: Mapping[str, str]) -> str:
    """``SetEnv "NAME=value" ...`` for sshd_config, or "" for none."""
    for name, value in environment.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or any(c in value for c in '"\n\r'):
            raise ValueError(f"sshd SetEnv cannot carry {name}={value!r}")
    return (
        " ".join(["SetEnv", *(f'"{n}={v}"' for n, v in environment.items())]) if environment else ""
    )


def _launch(sshd: str, config: Path, log_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Start an sshd; return it and the log offset its lines start at."""
    if os.geteuid() == 0:
        # As root sshd chroots its pre-auth child into this directory and refuses to start
        # without it; it lives on a tmpfs, so a fresh container lacks it.
        _PRIVSEP_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        offset = log.tell()
        process = subprocess.Popen(
            [sshd, "-D", "-e", "-E", str(log_path), "-f", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    return process, offset


def _new_log(host: SshHost, offset: int) -> str:
    with host.log_path.open("rb") as log:
        log.seek(offset)
        return log.read().decode(errors="replace")


def _await_ready(host: SshHost, offset: int) -> bool:
    """Wait for ``host``'s sshd to listen and send its banner.

    False when another process took the port first (sshd exited; retry with a new port).
    Raises ``SshdError`` for any other failure.
    """
    listening = f"Server listening on {host.address} port {host.port}."
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        exited = host.process.poll() is not None
        log = _new_log(host, offset)
        if exited:
            if "Address already in use" in log:
                return False
            missing = re.search(r"Missing privilege separation directory: (\S+)", log)
            if missing:
                Path(missing[1]).mkdir(mode=0o755, parents=True, exist_ok=True)
                return False
            raise SshdError(
                f"sshd for {host.name} exited with {host.process.returncode}:\n{_tail(log)}"
            )
        # Our own process said it bound the port, so whatever answers there is this sshd,
        # not an sshd of another test worker that happened to pick the same port.
        if listening in log and _banner(host.address, host.port):
            return True
        if time.monotonic() > deadline:
            _stop(host.process)
            raise SshdError(f"sshd for {host.name} not ready in {START_TIMEOUT}s:\n{_tail(log)}")
        with contextlib.suppress(subprocess.TimeoutExpired):
            host.process.wait(timeout=0.01)


def _banner(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=2) as sock:
            received = b""
            while b"\n" not in received and len(received) < 256:
                chunk = sock.recv(256)
                if not chunk:
                    return False
                received += chunk
            return received.startswith(b"SSH-2.0-")
    except OSError:
        return False


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


# -- stopping a process tree ---------------------------------------------------------------
# sshd -D forks one child per connection, which calls setsid(), and the session's commands
# run under further setsid() children: no single process group holds them all.  So the tree
# is frozen with SIGSTOP (no more forks), then terminated, then killed if it lingers.


@dataclass(frozen=True)
class _Proc:
    ppid: int
    state: str
    start: str
    """Start time (Linux) to tell a process from a later one reusing its pid."""


def _process_table() -> dict[int, _Proc]:
    table: dict[int, _Proc] = {}
    proc = Path("/proc")
    if (proc / "self" / "stat").exists():
        for entry in proc.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            rest = stat[stat.rindex(")") + 2 :].split()
            table[int(entry.name)] = _Proc(ppid=int(rest[1]), state=rest[0], start=rest[19])
        return table
    out = subprocess.run(
        ["ps", "-A", "-o", "pid=", "-o", "ppid=", "-o", "stat="],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3:
            table[int(parts[0])] = _Proc(ppid=int(parts[1]), state=parts[2][:1], start="")
    return table


def _descendants(root: int, table: dict[int, _Proc]) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, info in table.items():
        children.setdefault(info.ppid, []).append(pid)
    found: list[int] = []
    queue = [root]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signum)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.pid <= 0 or process.poll() is not None:
        return
    _signal(process.pid, signal.SIGSTOP)
    tree: dict[int, str] = {}
    while True:  # freeze until no new descendant shows up
        table = _process_table()
        new = [pid for pid in _descendants(process.pid, table) if pid not in tree]
        if not new:
            break
        for pid in new:
            tree[pid] = table[pid].start
            _signal(pid, signal.SIGSTOP)
    for pid in [process.pid, *tree]:
        _signal(pid, signal.SIGTERM)
        _signal(pid, signal.SIGCONT)

    def alive() -> list[int]:
        table = _process_table()
        return [
            pid
            for pid, start in tree.items()
            if pid in table and table[pid].start == start and table[pid].state != "Z"
        ]

    deadline = time.monotonic() + STOP_GRACE
    while True:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=0.02)
        lingering = alive()
        if (process.returncode is not None and not lingering) or time.monotonic() > deadline:
            break
    for pid in lingering:
        _signal(pid, signal.SIGKILL)
    if process.returncode is None:
        process.kill()
        process.wait()


__all__ = [
    "ADDRESS",
    "BlackHole",
    "SshHost",
    "SshdError",
    "SshdFarm",
    "closed_port",
    "rotate_host_key",
]
