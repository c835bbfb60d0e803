"""WinRM with pywinrm: HTTPS and a verified certificate unless a host is explicitly insecure.

pywinrm's receive loop retries operation timeouts forever and its own
timeouts are per request; here every request's operation and read timeouts
are clamped to what is left of the host's deadline, so a silent host or a
command that never ends fails on time.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import importlib.util
import socket
import ssl
from collections.abc import Sequence
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from winrm.exceptions import (
    InvalidCredentialsError,
    WinRMError,
    WinRMOperationTimeoutError,
    WinRMTransportError,
    WSManFaultError,
)
from winrm.protocol import Protocol

from irtool.model.inventory import Auth, ResolvedHost, Scheme
from irtool.model.steps import Shell
from irtool.remote import powershell
from irtool.remote.base import (
    LIST_CAP,
    PSEUDO_FILE,
    Connection,
    Deadline,
    Failure,
    Fetched,
    FetchLimits,
    HostFailure,
    Listing,
    OnData,
    OnOutput,
    Secrets,
    host_sha256,
    not_a_regular_file,
)
from irtool.remote.cmdline import cmd_line

UTF8_CODEPAGE = 65001
# Short long-polls: an idle Receive comes back this often, so a cancel is seen within it.
OPERATION_TIMEOUT_S = 5
FETCH_CHUNK = 4 * 1024 * 1024
CLEANUP_S = 3


class _PinnedAdapter(HTTPAdapter):
    """Checks the server certificate against a pinned fingerprint, or for another name."""

    def __init__(self, **pool: Any) -> None:
        self._pool = pool
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **{**kwargs, **self._pool})


def _insecure_warnings(host: ResolvedHost) -> list[str]:
    warnings = []
    if host.scheme is Scheme.HTTP:
        warnings.append(
            f"{host.name}: WinRM over plain HTTP (host marked insecure): the server is not "
            f"authenticated and anyone on the path sees which commands ran"
            + ("" if host.auth in (Auth.NTLM, Auth.KERBEROS, Auth.CREDSSP) else " and the password")
        )
    if host.auth is Auth.BASIC:
        warnings.append(
            f"{host.name}: WinRM Basic auth (host marked insecure): the password crosses the wire "
            f"base64-encoded, protected by nothing but TLS"
            + (" - and there is no TLS" if host.scheme is Scheme.HTTP else "")
        )
    return warnings


def _certificate_identity(host: ResolvedHost, deadline: Deadline) -> str:
    """Handshake once ourselves: the thumbprint for the record, and a clear error if untrusted."""
    tls = host.tls
    pin = tls.thumbprint if tls else None
    if pin:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    else:
        context = ssl.create_default_context(cafile=tls.ca_file if tls else None)
    name = (tls.server_name if tls else None) or host.address
    try:
        with socket.create_connection(
            (host.address, host.port or 5986), timeout=deadline.sub(host.connect_timeout)
        ) as raw:
            forget = deadline.cancel.on_cancel(raw.close)
            try:
                with context.wrap_socket(raw, server_hostname=name) as tls_sock:
                    der = tls_sock.getpeercert(binary_form=True) or b""
            finally:
                forget()
    except ssl.SSLCertVerificationError as bad:
        raise HostFailure(
            Failure.TLS,
            f"{host.name}: the certificate of {host.address}:{host.port} is not trusted "
            f"({bad.verify_message}); give the issuing CA as tls.ca_file or pin tls.thumbprint",
        ) from None
    except FileNotFoundError:
        raise HostFailure(
            Failure.TLS, f"{host.name}: no CA bundle at {tls and tls.ca_file}"
        ) from None
    except (ssl.SSLError, OSError) as failed:
        deadline.check()
        raise HostFailure(
            Failure.UNREACHABLE, f"{host.name}: cannot reach {host.address}:{host.port}: {failed}"
        ) from None
    sha256 = hashlib.sha256(der).hexdigest()
    if pin and pin not in (sha256, hashlib.sha1(der).hexdigest()):  # noqa: S324 - a pin, not security
        raise HostFailure(
            Failure.TLS,
            f"{host.name}: certificate CHANGED: the inventory pins {pin} but the host presented "
            f"sha256 {sha256}. Confirm the new certificate out of band before updating the pin",
        )
    return f"tls sha256:{sha256}"


class WinrmTransport:
    # Descriptors a host in flight holds (irtool.remote.limits): the HTTP connection, and
    # while connecting, the certificate check's socket and the CA file, one after the other.
    descriptors_per_host = 3

    def __init__(self, secrets: Secrets, operation_timeout: int = OPERATION_TIMEOUT_S) -> None:
        self.secrets = secrets
        self.operation_timeout = operation_timeout

    def connect(self, host: ResolvedHost, deadline: Deadline) -> WinrmConnection:
        if not host.insecure and (host.scheme is Scheme.HTTP or host.auth is Auth.BASIC):
            what = "plain HTTP" if host.scheme is Scheme.HTTP else "Basic auth"
            raise HostFailure(
                Failure.INSECURE,
                f"{host.name}: refusing WinRM {what}: it exposes credentials or commands; use "
                f"HTTPS with ntlm, kerberos or credssp, or mark the host insecure: true",
            )
        if host.auth is Auth.KERBEROS and importlib.util.find_spec("requests_kerberos") is None:
            raise HostFailure(
                Failure.ERROR,
                f"{host.name}: Kerberos needs pywinrm's kerberos extra and the system's krb5 "
                f"libraries: pip install 'pywinrm[kerberos]' (then kinit as {host.user})",
            )
        warnings = _insecure_warnings(host) if host.insecure else []
        identity = _certificate_identity(host, deadline) if host.scheme is Scheme.HTTPS else None
        password: str | None = None
        if host.credential:
            password = self.secrets.secret(host.credential)
        elif host.auth is not Auth.KERBEROS:
            raise HostFailure(Failure.CREDENTIAL, f"{host.name}: no credential for {host.auth}")
        tls = host.tls
        pin = tls.thumbprint if tls else None
        protocol = Protocol(
            endpoint=f"{host.scheme}://{host.address}:{host.port}/wsman",
            transport=str(host.auth or Auth.NTLM),  # type: ignore[arg-type]
            username=host.user,
            password=password,
            server_cert_validation="ignore" if pin else "validate",
            ca_trust_path=(tls.ca_file if tls and tls.ca_file else None) if not pin else None,  # type: ignore[arg-type]
            read_timeout_sec=self.operation_timeout + 10,
            operation_timeout_sec=self.operation_timeout,
            message_encryption="auto",
            proxy=None,
        )
        if host.scheme is Scheme.HTTPS and (pin or (tls and tls.server_name)):
            pool: dict[str, Any] = (
                {"assert_fingerprint": pin}
                if pin
                else {"server_hostname": tls.server_name if tls else None}
            )
            protocol.transport.build_session().mount("https://", _PinnedAdapter(**pool))
        connection = WinrmConnection(host=host, identity=identity, warnings=warnings)
        connection.attach(protocol, self.operation_timeout, deadline)
        return connection


class WinrmConnection(Connection):
    protocol: Protocol
    shell_id: str
    operation_timeout: int

    def attach(self, protocol: Protocol, operation_timeout: int, deadline: Deadline) -> None:
        self.protocol, self.operation_timeout = protocol, operation_timeout
        self.shell_id = self._call(deadline, protocol.open_shell, codepage=UTF8_CODEPAGE)

    def _call(self, deadline: Deadline, method: Any, *args: Any, **kwargs: Any) -> Any:
        """One WS-Man request, its timeouts clamped to the deadline, its failures named."""
        deadline.check()
        left = deadline.remaining()
        operation = max(1, min(self.operation_timeout, int(left) - 2))
        self.protocol.operation_timeout_sec = operation
        self.protocol.transport.read_timeout_sec = max(0.1, min(operation + 5, left))  # type: ignore[assignment]
        try:
            return method(*args, **kwargs)
        except WinRMOperationTimeoutError:
            raise
        except InvalidCredentialsError as refused:
            raise HostFailure(Failure.AUTH, f"{self.host.name}: {refused}") from None
        except WinRMTransportError as failed:
            if failed.code == 401:
                raise HostFailure(
                    Failure.AUTH,
                    f"{self.host.name}: {self.host.user} was refused ({self.host.auth})",
                ) from None
            raise HostFailure(Failure.PROTOCOL, f"{self.host.name}: {failed.message}") from None
        except WSManFaultError as fault:
            raise HostFailure(Failure.PROTOCOL, f"{self.host.name}: {fault.reason}") from None
        except requests.exceptions.SSLError as bad:
            raise HostFailure(Failure.TLS, f"{self.host.name}: {bad}") from None
        except (requests.exceptions.Timeout, requests.exceptions.ConnectionError) as failed:
            deadline.check()
            if isinstance(failed, requests.exceptions.Timeout):
                raise HostFailure(
                    Failure.TIMEOUT, f"{self.host.name}: no answer within the deadline"
                ) from None
            raise HostFailure(Failure.UNREACHABLE, f"{self.host.name}: {failed}") from None
        except WinRMError as failed:
            raise HostFailure(Failure.PROTOCOL, f"{self.host.name}: {failed}") from None

    def run(self, command: str, shell: Shell, deadline: Deadline, on_output: OnOutput) -> int:
        if shell is Shell.POWERSHELL:
            line, stdin = powershell.command_line(command)
        elif shell is Shell.CMD:
            # The cmd shell runs the first line of what it is given: one line, joined.
            try:
                line, stdin = cmd_line(command), None
            except ValueError as refused:
                raise HostFailure(
                    Failure.PROTOCOL, f"cannot send this cmd script: {refused}"
                ) from None
        else:
            line, stdin = command, None
        command_id = self._call(deadline, self.protocol.run_command, self.shell_id, line)
        decoder = powershell.ClixmlDecoder() if shell is Shell.POWERSHELL else None
        flushed = False
        try:
            if stdin:
                self._call(
                    deadline,
                    self.protocol.send_command_input,
                    self.shell_id,
                    command_id,
                    stdin,
                    end=True,
                )
            while True:
                try:
                    stdout, stderr, code, done = self._call(
                        deadline, self.protocol.get_command_output_raw, self.shell_id, command_id
                    )
                except WinRMOperationTimeoutError:
                    continue  # nothing new yet; the deadline check in _call bounds this loop
                if stdout:
                    on_output("stdout", stdout)
                if stderr:
                    text = decoder.feed(stderr) if decoder else stderr
                    if text:
                        on_output("stderr", text)
                if done:
                    flushed = True
                    if decoder and (tail := decoder.feed(b"", final=True)):
                        on_output("stderr", tail)
                    return int(code)
        finally:
            # What stderr held back is evidence too, above all when the command timed out.
            if decoder and not flushed and (tail := decoder.feed(b"", final=True)):
                on_output("stderr", tail)
            self._terminate(command_id)

    def _terminate(self, command_id: str) -> None:
        """Signal terminate: releases a finished command, and stops one we gave up on."""
        with contextlib.suppress(Exception):  # best effort: closing must not raise
            # Briefly: a host that stopped answering must not hold the run for long.
            self._call(
                Deadline(CLEANUP_S), self.protocol.cleanup_command, self.shell_id, command_id
            )

    def fetch(
        self, path: str, deadline: Deadline, on_data: OnData, chunk: int = FETCH_CHUNK
    ) -> Fetched:
        size = self._size(path, deadline)
        # Empty, or a pseudo-file that says so and has content: a byte tells them apart (and a
        # second look, in case it was only just written to).
        if size == 0 and self._chunk(path, 0, 1, deadline) and self._size(path, deadline) == 0:
            raise not_a_regular_file(path, PSEUDO_FILE)
        offset = 0
        while offset < size:
            data = self._chunk(path, offset, min(chunk, size - offset), deadline)
            if not data:
                raise HostFailure(Failure.PROTOCOL, f"{path} shrank to {offset} bytes while read")
            on_data(data)
            offset += len(data)
        digest = self._script(powershell.fetch_script("hash", path, 0, size), deadline, path)
        return Fetched(size=size, sha256=host_sha256(digest, path))

    def list_files(self, paths: Sequence[str], spec: FetchLimits, deadline: Deadline) -> Listing:
        patterns = list(paths)
        out: list[bytes] = []
        err: list[bytes] = []
        status = self.run(
            powershell.list_script(patterns, LIST_CAP),
            Shell.POWERSHELL,
            deadline,
            lambda stream, data: (out if stream == "stdout" else err).append(data),
        )
        return powershell.windows_listing(patterns, spec, status, b"".join(out), b"".join(err))

    def _size(self, path: str, deadline: Deadline) -> int:
        text = self._script(powershell.fetch_script("stat", path), deadline, path)
        if not (text.isascii() and text.isdigit()):
            raise HostFailure(
                Failure.PROTOCOL, f"the host's size of {path} is not a number: {text[:80]!r}"
            )
        return int(text)

    def _chunk(self, path: str, offset: int, count: int, deadline: Deadline) -> bytes:
        text = self._script(powershell.fetch_script("chunk", path, offset, count), deadline, path)
        try:
            return base64.b64decode(text, validate=True)
        except binascii.Error:
            raise HostFailure(Failure.PROTOCOL, f"a chunk of {path} came back garbled") from None

    def _script(self, script: str, deadline: Deadline, path: str) -> str:
        out: list[bytes] = []
        err: list[bytes] = []
        status = self.run(
            script,
            Shell.POWERSHELL,
            deadline,
            lambda stream, data: (out if stream == "stdout" else err).append(data),
        )
        if status != 0:
            reason = b"".join(err).decode("utf-8", "replace").strip().splitlines()
            for line in reason:
                if line.startswith(powershell.NOT_A_FILE):
                    kind = line.removeprefix(powershell.NOT_A_FILE).strip()[:80]
                    raise not_a_regular_file(path, "".join(c for c in kind if c.isprintable()))
            raise HostFailure(
                Failure.ERROR,
                f"cannot fetch {path}: {reason[0] if reason else f'exit {status}'}",
            )
        return b"".join(out).decode("ascii", "replace").strip()

    def close(self) -> None:
        with contextlib.suppress(Exception):  # best effort: closing must not raise
            self._call(Deadline(CLEANUP_S), self.protocol.close_shell, self.shell_id)
