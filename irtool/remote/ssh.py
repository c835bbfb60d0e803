"""SSH with paramiko: host keys checked, never trusted on sight; both streams drained together.

Every blocking call gets a timeout clamped to the host's deadline, and the
socket registers with the run's cancel switch, so neither a host that never
sends its banner nor a command that never ends can hold a run past its limit.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import select
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import paramiko

from irtool.model.inventory import Auth, OsFamily, ResolvedHost
from irtool.model.quoting import sh_literal
from irtool.model.steps import Shell
from irtool.remote import powershell
from irtool.remote.base import (
    CHUNK,
    LIST_CAP,
    PSEUDO_FILE,
    WATCHDOG,
    Alarm,
    Connection,
    Deadline,
    Failure,
    Fetched,
    FetchLimits,
    HostFailure,
    ListedFile,
    Listing,
    OnData,
    OnOutput,
    Secrets,
    glob_regex,
    glob_walk,
    has_wildcard,
    host_sha256,
    make_listing,
    not_a_regular_file,
    refuse_unless_regular,
)
from irtool.remote.cmdline import cmd_line

KEEPALIVE_S = 15
# sh -c takes the script as one argument; Linux caps one argument at 128 KiB.
SH_ARG_LIMIT = 100_000
DEFAULT_IDENTITIES = ("id_ed25519", "id_ecdsa", "id_rsa")


def fingerprint(key: paramiko.PKey) -> str:
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def known_hosts_name(address: str, port: int) -> str:
    return address if port == 22 else f"[{address}]:{port}"


@dataclass(frozen=True)
class Endpoint:
    """Where to connect, after ~/.ssh/config had its say."""

    label: str  # the inventory name, for messages
    hostname: str
    port: int
    user: str
    identity_files: tuple[str, ...]
    proxy_jump: str | None
    known_hosts_files: tuple[str, ...]
    pinnable: bool = True  # an inventory host, not a jump host from ~/.ssh/config


GLOBAL_KNOWN_HOSTS = "/etc/ssh/ssh_known_hosts"
_RSA_ALGORITHMS = ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa")


@dataclass
class KnownHosts:
    """What known_hosts files say of hosts: their keys, and keys revoked everywhere."""

    keys: paramiko.HostKeys
    revoked: set[str]  # fingerprints

    @classmethod
    def load(cls, files: tuple[str, ...]) -> KnownHosts:
        """Line by line, as OpenSSH reads it: a line paramiko cannot parse (a CA or a hashed
        pattern it does not know) is skipped rather than breaking every host."""
        keys, revoked = paramiko.HostKeys(), set()
        for path in files:
            try:
                lines = Path(path).read_text(errors="replace").splitlines()
            except OSError:
                continue
            for line in lines:
                line = line.strip()
                if not line or line.startswith("#") or line.startswith("@cert-authority"):
                    continue
                marker = line.startswith("@revoked")
                try:
                    entry = paramiko.hostkeys.HostKeyEntry.from_line(
                        line.split(None, 1)[1] if marker else line
                    )
                except Exception:  # noqa: S112 - an unreadable line is skipped, as ssh does
                    continue
                if entry is None or entry.key is None:
                    continue
                if marker:
                    revoked.add(fingerprint(entry.key))
                    continue
                for name in entry.hostnames:
                    keys.add(name, entry.key.get_name(), entry.key)
        return cls(keys, revoked)

    def types_for(self, name: str) -> list[str]:
        held = self.keys.lookup(name)
        return list(held.keys()) if held else []


def preferred_key_types(
    pin: str | None, known: KnownHosts, name: str, offered: list[str]
) -> list[str]:
    """Ask for the key type we hold first: a host with an ECDSA key in known_hosts must not be
    asked for its ed25519 key and then refused as changed."""
    held = [pin.split()[0]] if pin and not pin.startswith("SHA256:") else known.types_for(name)
    wanted: list[str] = []
    for kind in held:
        wanted += list(_RSA_ALGORITHMS) if kind == "ssh-rsa" else [kind]
    first = [k for k in wanted if k in offered]
    return first + [k for k in offered if k not in first]


def verify_host_key(
    endpoint: Endpoint, key: paramiko.PKey, pin: str | None, known: KnownHosts
) -> str:
    """The identity seen (type and fingerprint), or HostFailure if it is not the one expected."""
    seen = f"{key.get_name()} {fingerprint(key)}"
    where = f"{endpoint.label} ({endpoint.hostname}:{endpoint.port})"
    if fingerprint(key) in known.revoked:
        raise HostFailure(
            Failure.HOST_KEY, f"host key of {where} is REVOKED in known_hosts: {seen}"
        )
    if pin:
        expected = (
            pin.rstrip("=") if pin.startswith("SHA256:") else f"{key.get_name()} {key.get_base64()}"
        )
        actual = fingerprint(key) if pin.startswith("SHA256:") else pin
        if expected != actual:
            raise HostFailure(
                Failure.HOST_KEY,
                f"host key CHANGED for {where}: the inventory pins {_describe(pin)} but the host "
                f"presented {seen}. This may be an attack or a rebuilt host: confirm the new key "
                f"out of band before updating host_key in the inventory",
            )
        return seen
    name = known_hosts_name(endpoint.hostname, endpoint.port)
    entries = known.keys.lookup(name)
    if entries is None:
        pin_hint = (
            f'in the inventory: host_key: "{fingerprint(key)}"'
            if endpoint.pinnable
            else f"in {endpoint.known_hosts_files[0]} (a jump host cannot be pinned in the "
            f"inventory)"
        )
        raise HostFailure(
            Failure.HOST_KEY,
            f"unknown host key for {where}: the host presented {seen}. Confirm it out of band "
            f"(on the host: ssh-keygen -lf /etc/ssh/ssh_host_{_short(key)}_key.pub), then pin it "
            f"{pin_hint}",
        )
    known_key = entries.get(key.get_name())
    if known_key is None or known_key != key:
        held = ", ".join(f"{k.get_name()} {fingerprint(k)}" for k in entries.values())
        raise HostFailure(
            Failure.HOST_KEY,
            f"host key CHANGED for {where}: known_hosts holds {held} but the host presented "
            f"{seen}. This may be an attack or a rebuilt host: confirm the new key out of band "
            f"before replacing the known_hosts entry",
        )
    return seen


def _describe(pin: str) -> str:
    if pin.startswith("SHA256:"):
        return pin
    kind, blob = pin.split()[:2]
    digest = hashlib.sha256(base64.b64decode(blob)).digest()
    return f"{kind} SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def _short(key: paramiko.PKey) -> str:
    name = key.get_name()
    return "ed25519" if "ed25519" in name else "ecdsa" if "ecdsa" in name else "rsa"


def remote_command(command: str, shell: Shell, os_family: OsFamily) -> tuple[str, bytes | None]:
    """What to exec and what to feed on stdin, so the script runs in the shell it was written in."""
    if shell is Shell.POWERSHELL:
        # Windows OpenSSH starts commands under cmd.exe: PowerShell must be asked for.
        return powershell.command_line(command)
    if shell is Shell.CMD:
        # cmd.exe /c runs the first line only: one command per line, joined.
        try:
            return cmd_line(command), None
        except ValueError as refused:
            raise HostFailure(Failure.PROTOCOL, f"cannot send this cmd script: {refused}") from None
    if os_family is OsFamily.WINDOWS:
        return command, None
    # The login shell may be bash, fish or anything: run the script with sh as written.
    if len(command.encode("utf-8")) <= SH_ARG_LIMIT:
        return "sh -c " + sh_literal(command), None
    return "sh -s", command.encode("utf-8")


class SshTransport:
    # Descriptors a host in flight holds (irtool.remote.limits): the TCP socket, and the pipe
    # paramiko makes for the channel we poll; while connecting, a known_hosts or key file, an
    # agent socket or a name lookup's, one or two at a time and before the pipe exists.
    descriptors_per_host = 4

    def __init__(
        self,
        secrets: Secrets,
        *,
        config_file: Path | None = None,
        known_hosts_file: Path | None = None,
        keepalive: int = KEEPALIVE_S,
    ) -> None:
        self.secrets = secrets
        home = Path.home() / ".ssh"
        self.config_file = config_file or home / "config"
        self.known_hosts_file = known_hosts_file or home / "known_hosts"
        self.keepalive = keepalive
        # Unencrypted identity files as read (each host connects twice a run, the probe and
        # the step, and parsing a key is a tenth of a millisecond): the same file unchanged.
        self._keys: dict[tuple[str, int, int, int, int], paramiko.PKey] = {}
        self._config = paramiko.SSHConfig()
        if self.config_file.is_file():
            self._config = paramiko.SSHConfig.from_path(str(self.config_file))

    # -- resolving where to go ----------------------------------------------------

    def endpoint(self, host: ResolvedHost) -> Endpoint:
        """Inventory values win; ~/.ssh/config fills in what the inventory leaves unset."""
        cfg = self._config.lookup(host.address)
        port = host.port if host.port not in (None, 22) else int(cfg.get("port", 22))
        identities = [host.identity_file] if host.identity_file else cfg.get("identityfile", [])
        known = [str(self.known_hosts_file), GLOBAL_KNOWN_HOSTS]
        known += [f for f in cfg.get("userknownhostsfile", "").split() if f]
        return Endpoint(
            label=host.name,
            hostname=cfg.get("hostname", host.address),
            port=port or 22,
            user=host.user or cfg.get("user") or _local_user(),
            identity_files=tuple(os.path.expanduser(i) for i in identities),
            proxy_jump=cfg.get("proxyjump") if cfg.get("proxyjump") != "none" else None,
            known_hosts_files=tuple(dict.fromkeys(os.path.expanduser(f) for f in known)),
        )

    def _jump_endpoint(self, spec: str) -> Endpoint:
        user, _, rest = spec.rpartition("@")
        name, _, port = rest.partition(":")
        if name.startswith("[") and "]" in name:
            name = name[1 : name.index("]")]
        cfg = self._config.lookup(name)
        known = [str(self.known_hosts_file), GLOBAL_KNOWN_HOSTS]
        known += [f for f in cfg.get("userknownhostsfile", "").split() if f]
        return Endpoint(
            label=f"jump host {name}",
            pinnable=False,
            hostname=cfg.get("hostname", name),
            port=int(port or cfg.get("port", "22")),
            user=user or cfg.get("user") or _local_user(),
            identity_files=tuple(os.path.expanduser(i) for i in cfg.get("identityfile", [])),
            proxy_jump=cfg.get("proxyjump") if cfg.get("proxyjump") != "none" else None,
            known_hosts_files=tuple(dict.fromkeys(os.path.expanduser(f) for f in known)),
        )

    # -- connecting -----------------------------------------------------------------

    def connect(self, host: ResolvedHost, deadline: Deadline) -> SshConnection:
        endpoint = self.endpoint(host)
        chain: list[paramiko.Transport] = []
        try:
            transport, identity = self._open(endpoint, host, deadline, chain)
        except BaseException:
            for hop in reversed(chain):
                hop.close()
            raise
        connection = SshConnection(host=host, identity=identity)
        connection.attach(transport, chain, self.keepalive)
        return connection

    def _open(
        self,
        endpoint: Endpoint,
        host: ResolvedHost | None,
        deadline: Deadline,
        chain: list[paramiko.Transport],
    ) -> tuple[paramiko.Transport, str]:
        sock: socket.socket | paramiko.Channel
        if endpoint.proxy_jump:
            hops = endpoint.proxy_jump.split(",")
            jump, jump_chain = self._jump_endpoint(hops[-1]), hops[:-1]
            if jump_chain:
                jump = Endpoint(**{**jump.__dict__, "proxy_jump": ",".join(jump_chain)})
            via, _ = self._open(jump, None, deadline, chain)
            try:
                sock = via.open_channel(
                    "direct-tcpip",
                    (endpoint.hostname, endpoint.port),
                    ("127.0.0.1", 0),
                    timeout=deadline.sub(30),
                )
            except (paramiko.SSHException, OSError) as failed:
                raise HostFailure(
                    Failure.UNREACHABLE,
                    f"{jump.label} could not reach {endpoint.hostname}:{endpoint.port}: {failed}",
                ) from None
        else:
            sock = self._dial(endpoint, host, deadline)
        transport = paramiko.Transport(sock)
        chain.append(transport)
        pin = host.host_key if host else None
        known = KnownHosts.load(endpoint.known_hosts_files)
        options = transport.get_security_options()
        options.key_types = preferred_key_types(
            pin, known, known_hosts_name(endpoint.hostname, endpoint.port), list(options.key_types)
        )
        forget = deadline.cancel.on_cancel(transport.close)
        try:
            limit = deadline.sub(host.connect_timeout if host else 15)
            transport.banner_timeout = limit
            transport.handshake_timeout = limit
            transport.auth_timeout = deadline.sub(30)
            try:
                transport.start_client(timeout=limit)
                if not transport.initial_kex_done:
                    # start_client returns quietly when its timeout passes mid-handshake.
                    raise HostFailure(
                        Failure.TIMEOUT,
                        f"{endpoint.label}: no SSH handshake from {endpoint.hostname}:"
                        f"{endpoint.port} within {limit:g} s (hung, or not an SSH server)",
                    )
                key = transport.get_remote_server_key()
            except (paramiko.SSHException, OSError, EOFError) as failed:
                deadline.check()
                cause = transport.get_exception() or failed
                why = str(cause) or type(cause).__name__
                if "banner" in why:
                    why = f"no SSH banner within {limit:g} s (not an SSH server, or hung)"
                raise HostFailure(
                    Failure.UNREACHABLE,
                    f"{endpoint.label}: SSH handshake with {endpoint.hostname}:{endpoint.port} "
                    f"failed: {why}",
                ) from None
            identity = verify_host_key(endpoint, key, pin, known)
            self._authenticate(transport, endpoint, host, deadline)
            deadline.check()
        finally:
            forget()
        return transport, identity

    def _dial(
        self, endpoint: Endpoint, host: ResolvedHost | None, deadline: Deadline
    ) -> socket.socket:
        timeout = deadline.sub(host.connect_timeout if host else 15)
        try:
            sock = socket.create_connection((endpoint.hostname, endpoint.port), timeout=timeout)
        except TimeoutError:
            deadline.check()
            raise HostFailure(
                Failure.UNREACHABLE,
                f"{endpoint.label}: no answer from {endpoint.hostname}:{endpoint.port} "
                f"within {timeout:g} s",
            ) from None
        except OSError as failed:
            deadline.check()
            raise HostFailure(
                Failure.UNREACHABLE,
                f"{endpoint.label}: cannot connect to {endpoint.hostname}:{endpoint.port}: "
                f"{failed.strerror or failed}",
            ) from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def _authenticate(
        self,
        transport: paramiko.Transport,
        endpoint: Endpoint,
        host: ResolvedHost | None,
        deadline: Deadline,
    ) -> None:
        auth = host.auth if host else None
        tried: list[str] = []
        if auth in (None, Auth.AGENT):
            for agent_key in paramiko.Agent().get_keys():
                tried.append(f"agent key {fingerprint(agent_key)}")
                if self._try(transport.auth_publickey, endpoint.user, agent_key):
                    return
        if auth in (None, Auth.KEY):
            for path in self._identity_files(endpoint, explicit=auth is Auth.KEY):
                key = self._load_key(path, host)
                tried.append(f"key {path}")
                if self._try(transport.auth_publickey, endpoint.user, key):
                    return
        if auth is Auth.PASSWORD and host is not None:
            if not host.credential:
                raise HostFailure(
                    Failure.CREDENTIAL, f"{host.name}: password auth needs a credential"
                )
            tried.append(f"password from credential '{host.credential}'")
            password = self.secrets.secret(host.credential)
            if self._try(transport.auth_password, endpoint.user, password):
                return
        deadline.check()
        raise HostFailure(
            Failure.AUTH,
            f"{endpoint.label}: {endpoint.user}@{endpoint.hostname} refused "
            f"{', '.join(tried) or 'every method (no key, agent or password to offer)'}",
        )

    @staticmethod
    def _try(method: object, *args: object) -> bool:
        try:
            method(*args)  # type: ignore[operator]
        except paramiko.AuthenticationException:
            return False
        except (paramiko.SSHException, OSError, EOFError) as failed:
            raise HostFailure(Failure.AUTH, f"authentication broke off: {failed}") from None
        return True

    @staticmethod
    def _identity_files(endpoint: Endpoint, explicit: bool) -> list[str]:
        if endpoint.identity_files:
            files = list(endpoint.identity_files)
            missing = [f for f in files if not os.path.isfile(f)]
            if explicit and missing and len(missing) == len(files):
                raise HostFailure(Failure.CREDENTIAL, f"no identity file at {missing[0]}")
            return [f for f in files if os.path.isfile(f)]
        home = Path.home() / ".ssh"
        return [str(home / n) for n in DEFAULT_IDENTITIES if (home / n).is_file()]

    def _load_key(self, path: str, host: ResolvedHost | None) -> paramiko.PKey:
        try:
            seen = os.stat(path)
            kept = (path, seen.st_dev, seen.st_ino, seen.st_size, seen.st_mtime_ns)
        except OSError:
            kept = None
        if kept is not None and kept in self._keys:
            return self._keys[kept]
        try:
            key = paramiko.PKey.from_path(path)
            if kept is not None:
                self._keys[kept] = key
            return key
        except (paramiko.PasswordRequiredException, TypeError) as locked:
            # OpenSSH-format keys report a missing passphrase as TypeError (from cryptography).
            if isinstance(locked, TypeError) and "password" not in str(locked):
                raise HostFailure(Failure.CREDENTIAL, f"cannot read identity file {path}") from None
        except (OSError, paramiko.SSHException, ValueError) as bad:
            raise HostFailure(
                Failure.CREDENTIAL, f"cannot read identity file {path}: {bad}"
            ) from None
        if host is None or not host.credential:
            raise HostFailure(
                Failure.CREDENTIAL,
                f"identity file {path} is encrypted: store its passphrase with "
                f"`irtool creds set NAME` and give NAME as the host's credential",
            )
        passphrase = self.secrets.secret(host.credential)
        try:
            # paramiko 5 passes it to cryptography, which wants bytes (the stubs say str).
            return paramiko.PKey.from_path(path, passphrase.encode("utf-8"))  # type: ignore[arg-type]
        except (paramiko.SSHException, ValueError, TypeError):
            raise HostFailure(
                Failure.CREDENTIAL,
                f"the passphrase in credential '{host.credential}' does not open {path}",
            ) from None


def _wait_s(deadline: Deadline) -> float:
    """How long one wait for a host may block: a deadline or a cancel is seen within it."""
    return min(0.5, max(deadline.remaining(), 0.01))


def _close_quietly(channel: paramiko.Channel) -> None:
    """The watchdog's close: it can fire just as the run ends and the transport goes away, and
    an exception in its thread would print a traceback on the responder's terminal."""
    with contextlib.suppress(Exception):
        channel.close()


def _local_user() -> str:
    import getpass

    return getpass.getuser()


def _copy(sftp: paramiko.SFTPClient, path: str, deadline: Deadline, on_data: OnData) -> int:
    """The file's first `size` bytes (its size once open) to `on_data`; returns `size`.

    What is not a regular file is refused before it is opened: opening a FIFO would hang
    sftp-server (it serves one request at a time), and opening a device can act on it."""
    refuse_unless_regular(path, sftp.stat(path).st_mode)
    with sftp.open(path, "rb") as remote:
        attributes = remote.stat()
        refuse_unless_regular(path, attributes.st_mode)  # replaced between the two looks?
        size = attributes.st_size or 0
        if size == 0:
            # Empty, or a /proc file that says so and has content: a byte tells them apart
            # (and a second look, in case it was only just written to).
            if remote.read(1) and not remote.stat().st_size:
                raise not_a_regular_file(path, PSEUDO_FILE)
            return 0
        remote.prefetch(size)
        left = size
        while left > 0:
            deadline.check()
            data = remote.read(min(CHUNK * 4, left))
            if not data:
                break
            on_data(data)
            left -= len(data)
    return size


@dataclass
class _Guarded:
    """A session channel, and whether we cut it (its deadline passed, or a cancel)."""

    channel: paramiko.Channel
    alarm: Alarm
    deadline: Deadline

    @property
    def cut(self) -> bool:
        """Closed by us: an exit status that arrives now is the host's answer to our close
        (sshd's 141 for a command killed by SIGPIPE), never the command's own result."""
        return self.alarm.fired or self.deadline.cancel.is_set()


class SshConnection(Connection):
    transport: paramiko.Transport
    chain: list[paramiko.Transport]

    def attach(
        self, transport: paramiko.Transport, chain: list[paramiko.Transport], keepalive: int
    ) -> None:
        self.transport, self.chain = transport, chain
        transport.set_keepalive(keepalive)

    def run(self, command: str, shell: Shell, deadline: Deadline, on_output: OnOutput) -> int:
        line, stdin = remote_command(command, shell, self.host.os)
        with self._session(deadline) as guarded:
            channel = guarded.channel
            try:
                channel.exec_command(line)
                if stdin:
                    channel.sendall(stdin)
                # EOF on stdin: a command that reads it must not wait for us forever.
                channel.shutdown_write()
                return self._drain(guarded, on_output)
            except HostFailure:
                self._stop(channel)
                raise
            except (paramiko.SSHException, OSError, EOFError) as broken:
                self._stop(channel)
                if guarded.cut:
                    raise deadline.cut_short() from None
                deadline.check()
                raise HostFailure(Failure.ERROR, f"the SSH channel broke: {broken}") from None

    @contextlib.contextmanager
    def _session(self, deadline: Deadline) -> Iterator[_Guarded]:
        """A channel that is closed at the deadline, on a cancel, and when the block ends.

        paramiko waits for an exec reply or an SFTP version handshake without a timeout: a host
        that never answers would hold this thread past the deadline, so the shared watchdog
        closes it then."""
        try:
            channel = self.transport.open_session(timeout=deadline.sub(30))
        except (paramiko.SSHException, OSError, EOFError) as failed:
            deadline.check()
            raise HostFailure(Failure.ERROR, f"cannot open an SSH session: {failed}") from None
        channel.settimeout(deadline.sub(30))
        forget = deadline.cancel.on_cancel(channel.close)
        alarm = WATCHDOG.arm(deadline.at, lambda: _close_quietly(channel))
        try:
            yield _Guarded(channel, alarm, deadline)
        finally:
            alarm.cancel()
            forget()
            channel.close()

    @staticmethod
    def _drain(guarded: _Guarded, on_output: OnOutput) -> int:
        """stdout and stderr together: reading one to its end first deadlocks past the window."""
        channel, deadline = guarded.channel, guarded.deadline
        # poll, not select: past 1024 descriptors (irtool raises its limit) select() refuses.
        # The channel's fileno is a pipe paramiko makes readable when either stream has data.
        waiting = select.poll()
        waiting.register(channel.fileno(), select.POLLIN)
        while True:
            deadline.check()
            waiting.poll(1000 * _wait_s(deadline))
            while channel.recv_ready():
                on_output("stdout", channel.recv(CHUNK))
            while channel.recv_stderr_ready():
                on_output("stderr", channel.recv_stderr(CHUNK))
            drained = not channel.recv_ready() and not channel.recv_stderr_ready()
            # sshd may send the exit status before the last output: only EOF ends the output.
            if drained and (channel.eof_received or channel.closed):
                break
        # Past EOF the pipe stays readable: polling it would spin (a hundred turns a command)
        # until sshd has reaped the command. Its exit status, or a close (the host's, or ours
        # at the deadline or on a cancel), sets this event instead.
        while not channel.exit_status_ready():
            deadline.check()
            channel.status_event.wait(_wait_s(deadline))
        if guarded.cut:
            raise deadline.cut_short()
        status = int(channel.recv_exit_status())
        if status == -1:
            # No exit-status came, and not because we closed it: a signal killed it.
            deadline.check()
            raise HostFailure(Failure.ERROR, "the command ended without an exit status (killed?)")
        return status

    def _stop(self, channel: paramiko.Channel) -> None:
        """Ask sshd to kill the command (RFC 4254 'signal'), then close: a hung command must not
        outlive the deadline on the host any more than here."""
        try:
            message = paramiko.Message()
            message.add_byte(bytes([98]))  # SSH_MSG_CHANNEL_REQUEST
            message.add_int(channel.remote_chanid)
            message.add_string("signal")
            message.add_boolean(False)
            message.add_string("KILL")
            self.transport._send_user_message(message)  # type: ignore[attr-defined]
        except Exception:  # noqa: S110 - best effort; closing follows
            pass
        channel.close()

    def fetch(self, path: str, deadline: Deadline, on_data: OnData) -> Fetched:
        """SFTP, in chunks; the host hashes the same bytes so a short or bent read is caught."""
        with self._session(deadline) as guarded:
            try:
                try:
                    guarded.channel.invoke_subsystem("sftp")
                    sftp = paramiko.SFTPClient(guarded.channel)
                except (paramiko.SSHException, EOFError, OSError):
                    if guarded.cut:
                        raise deadline.cut_short() from None
                    deadline.check()
                    raise HostFailure(
                        Failure.PROTOCOL, f"{self.host.name} offers no SFTP to fetch {path} with"
                    ) from None
                try:
                    size = _copy(sftp, path, deadline, on_data)
                finally:
                    sftp.close()
            except (OSError, paramiko.SSHException, EOFError) as failed:
                if guarded.cut:
                    raise deadline.cut_short() from None
                deadline.check()
                raise HostFailure(Failure.ERROR, f"cannot fetch {path}: {failed}") from None
        digest = self._remote_sha256(path, size, deadline)
        return Fetched(size=size, sha256=digest)

    def _remote_sha256(self, path: str, size: int, deadline: Deadline) -> str:
        if self.host.os is OsFamily.WINDOWS:
            script = powershell.fetch_script("hash", path, 0, size)
            shell = Shell.POWERSHELL
        else:
            script = f"head -c {size} -- {sh_literal(path)} | sha256sum"
            shell = Shell.SH
        out: list[bytes] = []
        status = self.run(
            script,
            shell,
            deadline,
            lambda stream, data: out.append(data) if stream == "stdout" else None,
        )
        text = b"".join(out).decode("ascii", "replace").strip()
        if status != 0 or not text:
            raise HostFailure(Failure.PROTOCOL, f"the host could not hash {path} (exit {status})")
        # sha256sum says "HASH  -"; the PowerShell script says the hash alone.
        return host_sha256(text.split()[0] if shell is Shell.SH else text, path)

    def list_files(self, paths: Sequence[str], spec: FetchLimits, deadline: Deadline) -> Listing:
        """What the globs match: PowerShell on Windows (as WinRM sends it), find on Linux."""
        patterns = list(paths)
        out: list[bytes] = []
        err: list[bytes] = []

        def keep(stream: str, data: bytes) -> None:
            (out if stream == "stdout" else err).append(data)

        if self.host.os is OsFamily.WINDOWS:
            script = powershell.list_script(patterns, LIST_CAP)
            status = self.run(script, Shell.POWERSHELL, deadline, keep)
            return powershell.windows_listing(patterns, spec, status, b"".join(out), b"".join(err))
        asked = [p for p in patterns if p.startswith("/")]
        status = self.run(find_script(asked), Shell.SH, deadline, keep)
        stderr = b"".join(err)
        if status != 0:
            lines = stderr.decode("utf-8", "replace").strip().splitlines()
            raise HostFailure(
                Failure.ERROR,
                f"the host could not list files: {lines[0] if lines else f'exit {status}'}",
            )
        listing = read_find_output(b"".join(out), asked)
        files = [
            ListedFile(f.path, f.size, f.modified, patterns.index(asked[f.pattern]), f.skipped)
            for f in listing.files
        ]
        errors = [
            f"{p}: not an absolute path (a Linux glob starts at /)"
            for p in patterns
            if p not in asked
        ]
        errors += [line for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
        return make_listing(
            patterns,
            patterns,
            files,
            spec,
            now=datetime.now(UTC),
            host_time=listing.host_time,
            errors=errors,
            truncated=listing.truncated,
            stderr=stderr,
        )

    def close(self) -> None:
        for hop in reversed(self.chain):
            with contextlib.suppress(Exception):  # best effort: closing must not raise
                hop.close()


# -- listing files on a Linux host: sh and find ------------------------------------------

# GNU find's -printf says a file's type, size and modification time with its name, each
# record ending in NUL: no name can bend it. Busybox's find has no -printf: such a host is
# told so rather than listed wrong.
NO_PRINTF = "irtool-list: this host's find has no -printf (GNU findutils is needed to list files)"
_FIND_TYPES = {
    "f": None,
    "l": "a symbolic link, not a regular file (fetch its target by its own path)",
    "d": "a directory, not a regular file",
    "p": "a named pipe (FIFO), not a regular file",
    "s": "a socket, not a regular file",
    "c": "a character device, not a regular file",
    "b": "a block device, not a regular file",
}


def _fnmatch_escape(text: str) -> str:
    """`text` as itself in a find -path pattern."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def find_script(patterns: list[str]) -> str:
    """A POSIX sh script listing what the (absolute) globs match: one NUL-ended record per
    match, `INDEX<TAB>TYPE<TAB>SIZE<TAB>MTIME<TAB>PATH`, then `now` and `end` records.

    find narrows the walk (the folders before the first wildcard, the depth, a -path
    pattern in which `*` also matches `/`); the exact match is made here, on the names."""
    lines = [
        "export LC_ALL=C",
        f"find / -maxdepth 0 -printf '' >/dev/null 2>&1 || {{ echo {sh_literal(NO_PRINTF)} >&2; "
        "exit 3; }",
        "printf 'now\\t%s\\0' \"$(date +%s)\"",
    ]
    for index, pattern in enumerate(patterns):
        pattern = "/" + "/".join(p for p in pattern.split("/") if p)
        walk = glob_walk(pattern)
        show = f"-printf '{index}\\t%y\\t%s\\t%T@\\t%p\\0'"
        root = sh_literal(walk.root)
        if walk.literal:
            lines.append(
                f"if [ -e {root} ] || [ -L {root} ]; then find {root} -maxdepth 0 {show}; fi"
            )
            continue
        rest = pattern[len(walk.root.rstrip("/")) + 1 :].replace("**/", "*").replace("**", "*")
        coarse = _fnmatch_escape(walk.root.rstrip("/")) + "/"
        coarse += "".join(c if c in "*?" else _fnmatch_escape(c) for c in rest)
        depth = f"-mindepth {walk.min_depth}" + (
            f" -maxdepth {walk.depth}" if walk.depth is not None else ""
        )
        # Capped on the host: a glob over a huge tree must not fill our memory with names
        # (the listing is read whole); past the cap the listing says it was truncated.
        lines.append(
            f"if [ -d {root} ]; then find -H {root} {depth} ! -type d "
            f"-path {sh_literal(coarse)} {show} | head -z -n {LIST_CAP + 1}; fi"
        )
    lines.append("printf 'end\\0'")
    return "\n".join(lines) + "\n"


@dataclass
class _FindListing:
    files: list[ListedFile]
    host_time: datetime | None
    truncated: bool


def read_find_output(stdout: bytes, patterns: list[str]) -> _FindListing:
    """The records of `find_script`'s output, each name checked against its glob exactly."""
    exact = [glob_regex("/" + "/".join(p for p in pattern.split("/") if p)) for pattern in patterns]
    records = stdout.split(b"\0")
    if len(records) < 2 or records[-2] != b"end" or records[-1]:
        raise HostFailure(Failure.PROTOCOL, "the host's listing ended before its last record")
    files: list[ListedFile] = []
    host_time = None
    truncated = False
    for number, record in enumerate(records[:-2], 1):
        try:
            if record.startswith(b"now\t"):
                host_time = datetime.fromtimestamp(int(record[4:]), UTC)
                continue
            index, kind, size, mtime, raw = record.split(b"\t", 4)
            pattern = int(index)
            try:
                path = raw.decode("utf-8")
                skipped = _FIND_TYPES.get(kind.decode("ascii"), "not a regular file")
            except UnicodeDecodeError:
                path = raw.decode("utf-8", "backslashreplace")
                skipped = "its name is not UTF-8: it cannot be asked for by name"
            listed = ListedFile(
                path, int(size), datetime.fromtimestamp(float(mtime), UTC), pattern, skipped
            )
        except (ValueError, IndexError) as bad:
            raise HostFailure(
                Failure.PROTOCOL, f"the host's listing is garbled at record {number}: {bad}"
            ) from None
        if not 0 <= pattern < len(patterns):
            raise HostFailure(Failure.PROTOCOL, "the host's listing names a glob not asked for")
        literal = not has_wildcard(patterns[pattern])
        if literal or exact[pattern].fullmatch(listed.path):
            if len(files) >= LIST_CAP:
                truncated = True
                break
            files.append(listed)
    return _FindListing(files, host_time, truncated)
