"""A WS-Management (WinRM) endpoint on 127.0.0.1 that runs commands with the local shell.

The suite has no Windows host, so this speaks just enough of MS-WSMV for pywinrm
(`winrm.protocol.Protocol`): the cmd shell's Create, Command, Send, Receive,
Signal and Delete, with real authentication in front of it:

* TLS with a certificate from a throw-away CA (`ca_file`), or from a second CA
  nobody trusts (`untrusted_cert=True`);
* Basic, checked per request;
* NTLM through pyspnego's acceptor, per connection as IIS/HTTP.sys does it: the
  negotiate and authenticate legs arrive on one keep-alive connection, and later
  requests on that connection carry no Authorization header at all. Channel
  binding tokens (pywinrm sends them over HTTPS) are checked as WinRM's
  CbtHardeningLevel does it (`cbt=`): "relaxed", Windows' default, refuses a
  binding to another certificate (a TLS interceptor) but accepts a client that
  sends none; "strict" refuses that client too; "none" ignores bindings. Checking
  means handing pyspnego's acceptor the `tls-server-end-point` binding of our
  certificate. Over plain HTTP, pywinrm seals every message
  (`multipart/encrypted`) with the NTLM session key; that is supported too.

Commands run as `/bin/sh -c LINE` in their own process group. Two Windows
behaviours irtool depends on are emulated: cmd.exe refuses lines over 8191
characters, and `powershell.exe -EncodedCommand` lines built by
`irtool.remote.powershell` are decoded (PRELUDE, the stdin bootstrap, the fetch
and listing scripts run in Python, anything else run by sh with stderr serialised as
CLIXML). With `cmd_exe=True`, any other line is read as cmd.exe reads `cmd /c LINE`: only
its first line runs, and `a & b` runs a, then b.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import os
import queue
import re
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal, cast
from xml.sax.saxutils import escape

import spnego
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from spnego.channel_bindings import GssChannelBindings
from spnego.exceptions import SpnegoError

from irtool.model.facts import WINDOWS_PROBE
from irtool.remote.cmdline import cmd_line
from irtool.remote.powershell import (
    POWERSHELL,
    PRELUDE,
    STDIN_BOOTSTRAP,
    clixml_error_record,
    decode_command_line,
    parse_fetch_script,
    parse_list_script,
)

DEFAULT_USER = "irtool"
DEFAULT_PASSWORD = "Correct-Horse-9"

# cmd.exe's limit, written out here rather than imported from irtool: the double
# must hold the client to Windows' number, not to the client's own idea of it.
CMD_LINE_LIMIT = 8191

SHELL_URI = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
SIGNAL_TERMINATE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/terminate"
SIGNAL_CTRL_C = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/ctrl_c"
SIGNAL_CTRL_BREAK = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/ctrl_break"

# The WSManFault codes pywinrm and irtool look at.
FAULT_OPERATION_TIMEOUT = 2150858793  # pywinrm turns this into WinRMOperationTimeoutError
FAULT_SHELL_NOT_FOUND = 2150858843

_NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "x": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
    "f": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
}
_ANONYMOUS = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
_STATE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/"

# What powershell.exe writes first on a redirected stderr: the header, then the progress
# record of its module loading ("Preparing modules for first use."), commonly seen even
# when the script silences $ProgressPreference, since loading starts before the script
# runs. irtool's decoder has to skip it.
CLIXML_HEADER = (
    '#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
)
CLIXML_PROGRESS = (
    '<Obj S="progress" RefId="0"><TN RefId="0"><T>System.Management.Automation.PSCustomObject</T>'
    '<T>System.Object</T></TN><MS><I64 N="SourceId">1</I64><PR N="Record"><AV>Preparing modules '
    "for first use.</AV><AI>0</AI><Nil /><PI>-1</PI><PC>-1</PC><T>Completed</T><SR>-1</SR>"
    "<SD> </SD></PR></MS></Obj>"
)
CLIXML_FOOTER = "</Objs>"

_BOUNDARY = b"--Encrypted Boundary"
_SEALED_PROTOCOL = "application/HTTP-SPNEGO-session-encrypted"


SERVER_2019_SAYS = (
    "\r\nMicrosoft Windows [Version 10.0.17763.5458]\r\n\r\n"
    "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\r\n"
    "    ProductName    REG_SZ    Windows Server 2019 Datacenter\r\n\r\n"
    "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\r\n"
    "    CurrentBuildNumber    REG_SZ    17763\r\n\r\n"
    "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\PowerShell\\1\\PowerShellEngine\r\n"
    "    PowerShellVersion    REG_SZ    2.0\r\n\r\n"
    "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\PowerShell\\3\\PowerShellEngine\r\n"
    "    PowerShellVersion    REG_SZ    5.1.17763.1\r\n\r\n"
    "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\InetStp\r\n"
    "    VersionString    REG_SZ    Version 10.0\r\n"
)


def clixml_stderr(text: str) -> bytes:
    """`text` as powershell.exe writes its error stream to a redirected stderr."""
    # Split on "\n" only: str.splitlines would also break at \x0b, \x1c, U+2028 and so on,
    # which PowerShell keeps inside a record.
    records = "".join(
        clixml_error_record(line.removesuffix("\n").removesuffix("\r") + "\r\n")
        if line.endswith("\n")
        else clixml_error_record(line)
        for line in re.findall(r"[^\n]*\n|[^\n]+$", text)
    )
    return (CLIXML_HEADER + CLIXML_PROGRESS + records + CLIXML_FOOTER).encode("utf-8")


# -- certificates -------------------------------------------------------------------


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _make_ca(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _make_server_cert(
    ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    # Every extension OpenSSL's strict mode wants, so newer Pythons accept it as well.
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


# -- NTLM -----------------------------------------------------------------------------

# pyspnego's acceptor finds passwords only through the NTLM_USER_FILE environment variable,
# read when the context is created and again when the authenticate message is checked.
# Several servers in one process (threads, fixtures) each own a file, so the variable is
# pointed at the right one only while holding this lock.
_NTLM_ENV_LOCK = threading.Lock()


@contextmanager
def _ntlm_user_file(path: Path) -> Iterator[None]:
    with _NTLM_ENV_LOCK:
        before = os.environ.get("NTLM_USER_FILE")
        os.environ["NTLM_USER_FILE"] = str(path)
        try:
            yield
        finally:
            if before is None:
                del os.environ["NTLM_USER_FILE"]
            else:
                os.environ["NTLM_USER_FILE"] = before


def _ntlm_message_type(token: bytes) -> int | None:
    if len(token) < 12 or not token.startswith(b"NTLMSSP\0"):
        return None
    return int.from_bytes(token[8:12], "little")


def _ntlm_field(token: bytes, at: int) -> bytes:
    """A (length, max length, offset) payload field of an NTLM message."""
    length, _max, offset = struct.unpack_from("<HHI", token, at)
    return token[offset : offset + length]


def _ntlm_has_bindings(token: bytes) -> bool:
    """Whether an AUTHENTICATE message carries a channel binding (MsvAvChannelBindings).

    pyspnego's acceptor, given bindings, refuses a client that sent none; WinRM's default
    (Relaxed) accepts it, so the double has to look for itself.
    """
    try:
        response = _ntlm_field(token, 20)  # NtChallengeResponse
        at = 16 + 28  # NTProofStr, then the NTLMv2 client challenge up to its AV pairs
        while at + 4 <= len(response):
            av_id, av_len = cast(tuple[int, int], struct.unpack_from("<HH", response, at))
            if av_id == 0:  # MsvAvEOL
                return False
            if av_id == 0x000A:
                return response[at + 4 : at + 4 + av_len] != b"\0" * av_len
            at += 4 + av_len
    except struct.error:
        pass
    return False


def _ntlm_user(token: bytes) -> str:
    """DOMAIN\\user of an AUTHENTICATE message, for the log of a refused attempt."""

    try:
        unicode = struct.unpack_from("<I", token, 60)[0] & 1
        encoding = "utf-16-le" if unicode else "latin-1"
        domain = _ntlm_field(token, 28).decode(encoding)
        user = _ntlm_field(token, 36).decode(encoding)
    except (struct.error, UnicodeDecodeError):
        return "?"
    return f"{domain}\\{user}" if domain else user


# -- commands -------------------------------------------------------------------------


class _Command:
    """One rsp:Command: a process (or an emulation of one) and its undelivered output.

    Output is buffered without bound and handed out by Receive; `exit_code` is set
    only once the process has exited *and* its pipes reached EOF, so Done is
    reported after the last byte.
    """

    def __init__(
        self,
        owner: WsmanServer,
        command_id: str,
        line: str,
        env: Mapping[str, str],
        cwd: str | None,
    ) -> None:
        self.id = command_id
        self.line = line
        self._owner = owner
        self._env = dict(env)
        self._cwd = cwd
        self._cv = threading.Condition()
        self._out = {"stdout": bytearray(), "stderr": bytearray()}
        self._exit: int | None = None
        self._stdin: queue.Queue[bytes | None] = queue.Queue()
        self._proc: subprocess.Popen[bytes] | None = None
        self._killed = False
        self.thread = threading.Thread(
            target=self._run, name=f"wsman-cmd-{command_id}", daemon=True
        )

    # -- what the WS-Man side calls

    def start(self) -> None:
        self.thread.start()

    def send(self, data: bytes, end: bool) -> None:
        if data:
            self._stdin.put(data)
        if end:
            self._stdin.put(None)

    def receive(
        self, limit: int, deadline: float, stopping: threading.Event
    ) -> tuple[bytes, bytes, int | None] | None:
        """(stdout, stderr, exit code once everything is delivered), or None on timeout."""
        with self._cv:
            while not (self._out["stdout"] or self._out["stderr"] or self._exit is not None):
                left = deadline - time.monotonic()
                if left <= 0 or stopping.is_set():
                    return None
                self._cv.wait(min(left, 0.5))
            out, err = self._out["stdout"], self._out["stderr"]
            # Share the budget so that a flood on one stream cannot starve the other.
            n_err = min(len(err), max(limit // 2, limit - len(out)))
            n_out = min(len(out), limit - n_err)
            chunk_out, chunk_err = bytes(out[:n_out]), bytes(err[:n_err])
            del out[:n_out], err[:n_err]
            done = self._exit is not None and not out and not err
            return chunk_out, chunk_err, self._exit if done else None

    def interrupt(self) -> None:
        with self._cv:
            proc = self._proc
        if proc is not None:
            _signal_group(proc, signal.SIGINT)

    def kill(self) -> None:
        with self._cv:
            self._killed = True
            proc = self._proc
        if proc is not None:
            _signal_group(proc, signal.SIGKILL)
        self._stdin.put(None)  # releases a bootstrap still waiting for its script

    # -- the runner thread

    def _emit(self, stream: str, data: bytes) -> None:
        with self._cv:
            self._out[stream] += data
            self._cv.notify_all()

    def _finish(self, code: int, stdout: bytes = b"", stderr: bytes = b"") -> None:
        with self._cv:
            self._out["stdout"] += stdout
            self._out["stderr"] += stderr
            self._exit = code
            self._cv.notify_all()

    def _run(self) -> None:
        try:
            self._dispatch()
        except Exception as error:  # the double must never leave a Receive hanging
            self._owner._note_error(f"command {self.line[:80]!r}: {error!r}")
            self._finish(1, stderr=f"wsman test endpoint: {error!r}\r\n".encode())

    def _dispatch(self) -> None:
        if len(self.line) > CMD_LINE_LIMIT:
            self._finish(1, stderr=b"The command line is too long.\r\n")
            return
        if self.line == cmd_line(WINDOWS_PROBE):
            # What `ver` and `reg query` print on the Windows this endpoint plays.
            self._finish(0, stdout=self._owner.windows_said.encode())
            return
        if not self.line.startswith(POWERSHELL):
            line = self.line
            if self._owner.cmd_exe:
                # cmd /c LINE: a line break ends the command; `&` runs the next one after.
                line = "\n".join(line.split("\n", 1)[0].rstrip("\r").split(" & "))
            self._spawn(line, clixml=False, stdin=True)
            return
        try:
            script = decode_command_line(self.line)
        except ValueError:
            self._powershell_error(
                "Cannot process the command because the value specified with -EncodedCommand "
                "is not properly encoded. The value must be Base64 encoded.\n"
            )
            return
        assert script is not None
        self._powershell(script)

    def _powershell_error(self, message: str) -> None:
        self._finish(1, stderr=clixml_stderr(message))

    def _powershell(self, script: str) -> None:
        if not script.startswith(PRELUDE):
            self._powershell_error("wsman test endpoint: the script does not start with PRELUDE\n")
            return
        from_stdin = script == STDIN_BOOTSTRAP
        if from_stdin:
            data = self._read_stdin()
            if data is None:
                self._finish(-signal.SIGKILL)
                return
            try:
                script = base64.b64decode(data.strip(), validate=True).decode("utf-8")
            except ValueError as error:
                self._powershell_error(f"Exception calling FromBase64String: {error}\n")
                return
            if not script.startswith(PRELUDE):
                self._powershell_error("wsman test endpoint: the stdin script lacks PRELUDE\n")
                return
        body = script[len(PRELUDE) :]
        fetch = parse_fetch_script(body)
        if fetch is not None:
            self._fetch(*fetch)
            return
        listing = parse_list_script(body)
        if listing is not None:
            self._finish(0, stdout=_list_files(*listing, env=self._env).encode("ascii"))
            return
        # The bootstrap's ReadToEnd consumed stdin; the script itself sees none.
        self._spawn(body, clixml=True, stdin=not from_stdin)

    def _read_stdin(self) -> bytes | None:
        data = bytearray()
        while (chunk := self._stdin.get()) is not None:
            data += chunk
        with self._cv:
            return None if self._killed else bytes(data)

    def _fetch(self, op: str, path: str, offset: int, count: int) -> None:
        if self._owner.fetch_hook is not None:
            self._owner.fetch_hook(op, path)
        try:
            with open(path, "rb") as f:
                if op == "stat":
                    out = str(os.fstat(f.fileno()).st_size)
                elif op == "chunk":
                    f.seek(offset)
                    out = base64.b64encode(f.read(count)).decode("ascii")
                elif op == "hash":
                    out = hashlib.sha256(f.read(count)).hexdigest()
                else:
                    self._powershell_error(f"wsman test endpoint: unknown fetch op {op!r}\n")
                    return
        except FileNotFoundError:
            self._powershell_error(
                'Exception calling "Open" with "4" argument(s): '
                f"\"Could not find file '{path}'.\"\n"
            )
            return
        except OSError as error:
            self._powershell_error(
                f'Exception calling "Open" with "4" argument(s): "{error.strerror}: \'{path}\'"\n'
            )
            return
        self._finish(0, stdout=(out + "\r\n").encode("ascii"))

    def _spawn(self, script: str, *, clixml: bool, stdin: bool) -> None:
        proc = subprocess.Popen(
            ["/bin/sh", "-c", script],
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self._env,
            cwd=self._cwd,
            # Its own process group, so Signal and Delete take its children down too.
            start_new_session=True,
        )
        with self._cv:
            self._proc = proc
            killed = self._killed
        self._owner._note_process(proc.pid)
        if killed:
            _signal_group(proc, signal.SIGKILL)

        held_stderr = bytearray()
        assert proc.stdout is not None and proc.stderr is not None
        stderr_sink: Callable[[bytes], None] = (
            held_stderr.extend if clixml else lambda data: self._emit("stderr", data)
        )
        drains = [
            threading.Thread(
                target=_drain, args=(proc.stdout, lambda d: self._emit("stdout", d)), daemon=True
            ),
            threading.Thread(target=_drain, args=(proc.stderr, stderr_sink), daemon=True),
        ]
        for thread in drains:
            thread.start()
        if stdin:
            assert proc.stdin is not None
            threading.Thread(target=self._pump_stdin, args=(proc.stdin,), daemon=True).start()
        code = proc.wait()
        self._stdin.put(None)  # the pump may still be waiting for input nobody will send
        for thread in drains:
            thread.join()
        stderr = b""
        if clixml and held_stderr:
            stderr = clixml_stderr(held_stderr.decode("utf-8", "replace"))
        self._finish(code, stderr=stderr)

    def _pump_stdin(self, pipe: IO[bytes]) -> None:
        try:
            while (chunk := self._stdin.get()) is not None:
                pipe.write(chunk)
                pipe.flush()
        except OSError:
            pass  # the process closed its stdin or died; further input is dropped
        finally:
            with suppress(OSError):
                pipe.close()


# -- the listing script, as powershell.exe runs it -------------------------------------------

# DateTime.Ticks of the Unix epoch.
_EPOCH_TICKS = 621355968000000000
_DOTNET_ESCAPES = {" ": "\\ ", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\f": "\\f", "\v": "\\v"}


def _dotnet_escape(text: str) -> str:
    """[regex]::Escape: these characters get a backslash, white space its escape."""
    return "".join(_DOTNET_ESCAPES.get(c, "\\" + c if c in "\\*+?|{[()^$.#" else c) for c in text)


def _expand(text: str, env: Mapping[str, str]) -> str:
    """[Environment]::ExpandEnvironmentVariables: %NAME% (any case) if set, else as it is."""
    names = {name.lower(): value for name, value in env.items()}
    return re.sub(r"%([^%]+)%", lambda m: names.get(m.group(1).lower(), m.group(0)), text)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _list_files(patterns: list[str], cap: int, env: Mapping[str, str]) -> str:
    """What `irtool.remote.powershell.list_script` writes, step by step as the script does it
    (the .NET calls done with their POSIX equivalents)."""
    out = [f"now {_EPOCH_TICKS + time.time_ns() // 100}"]

    def found(index: int, path: str) -> None:
        info = os.stat(path)
        ticks = _EPOCH_TICKS + info.st_mtime_ns // 100
        out.append(f"file {index} {info.st_size} {ticks} {_b64(path)}")

    count = 0
    for i, raw in enumerate(patterns):
        pattern = _expand(raw, env)
        out.append(f"pattern {i} {_b64(pattern)}")
        sep = "\\" if "\\" in pattern else "/"
        parts = re.split(r"[\\/]", pattern)
        first = next((j for j, part in enumerate(parts) if "*" in part or "?" in part), -1)
        if first < 0:
            if os.path.isfile(pattern):
                found(i, pattern)
            elif os.path.isdir(pattern):
                out.append(f"other {i} {_b64('a directory')} {_b64(pattern)}")
            continue
        if first == 0:
            out.append(f"error {i} {_b64(pattern + ': not a full path (give the drive)')}")
            continue
        root = sep.join(parts[:first]) + sep
        rest = parts[first:]
        recursive = "**" in rest
        depth = len(rest)
        rx = _dotnet_escape("/".join(rest))
        rx = rx.replace("\\*\\*/", "\x01").replace("\\*\\*", "\x02")
        rx = rx.replace("\\*", "\x03").replace("\\?", "\x04").replace("/", "\x05")
        rx = rx.replace("\x01", "(?:[^\\\\/]+[\\\\/])*").replace("\x02", ".*")
        rx = rx.replace("\x03", "[^\\\\/]*").replace("\x04", "[^\\\\/]")
        rx = "^" + rx.replace("\x05", "[\\\\/]") + "$"
        if not os.path.isdir(root):
            continue
        stack = [root]
        while stack:
            folder = stack.pop()
            try:
                entries = [os.path.join(folder, name) for name in os.listdir(folder)]
            except OSError as error:
                out.append(f"error {i} {_b64(folder + ': ' + str(error.strerror))}")
                continue
            for entry in entries:
                rel = entry[len(root) :]
                if os.path.isdir(entry):
                    if os.path.islink(entry):
                        continue  # a reparse point: not followed
                    if recursive or len(re.split(r"[\\/]", rel)) < depth:
                        stack.append(entry)
                    continue
                if not re.match(rx, rel, re.IGNORECASE):
                    continue
                found(i, entry)
                count += 1
                if count >= cap:
                    return "\r\n".join([*out, "truncated", "end"]) + "\r\n"
    return "\r\n".join([*out, "end"]) + "\r\n"


def _drain(pipe: IO[bytes], sink: Callable[[bytes], None]) -> None:
    # os.read returns whatever is there instead of waiting to fill a buffer, so output
    # reaches Receive as soon as the process writes it.
    fd = pipe.fileno()
    while chunk := os.read(fd, 1 << 16):
        sink(chunk)
    pipe.close()


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    # Already gone is fine (PermissionError: a reaped group id on some kernels).
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


@dataclass
class _Shell:
    codepage: int | None
    env: dict[str, str]
    cwd: str | None
    commands: dict[str, _Command] = field(default_factory=dict)


# -- SOAP -----------------------------------------------------------------------------


@dataclass
class _Request:
    action: str
    message_id: str
    shell_id: str | None
    operation_timeout: float | None
    root: ET.Element

    @property
    def body(self) -> ET.Element:
        found = self.root.find("s:Body", _NS)
        return found if found is not None else ET.Element("Body")


class _Fault(Exception):
    def __init__(
        self, subcode: str, reason: str, wsman_code: int | None = None, code: str = "s:Sender"
    ) -> None:
        super().__init__(reason)
        self.subcode, self.reason, self.wsman_code, self.code = subcode, reason, wsman_code, code


_DURATION = re.compile(r"^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?$")


def _duration(text: str | None) -> float | None:
    found = _DURATION.match((text or "").strip())
    if not found:
        return None
    hours, minutes, seconds = found.groups()
    return int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0)


def _parse(data: bytes) -> _Request:
    try:
        root = ET.fromstring(data)  # the client is our own test process
    except ET.ParseError as error:
        raise _Fault("w:InvalidMessage", f"The request is not XML: {error}") from None
    header = root.find("s:Header", _NS)
    if header is None:
        raise _Fault("w:InvalidMessage", "The SOAP envelope has no header.")
    selector = header.find("w:SelectorSet/w:Selector[@Name='ShellId']", _NS)
    return _Request(
        action=header.findtext("a:Action", "", _NS).strip(),
        message_id=header.findtext("a:MessageID", "", _NS).strip(),
        shell_id=(selector.text or "").strip() if selector is not None else None,
        operation_timeout=_duration(header.findtext("w:OperationTimeout", None, _NS)),
        root=root,
    )


def _envelope(action: str, relates_to: str, body: str) -> str:
    return (
        '<s:Envelope xml:lang="en-US" xmlns:s="{s}" xmlns:a="{a}" xmlns:x="{x}" xmlns:w="{w}" '
        'xmlns:rsp="{rsp}" xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd">'
        "<s:Header><a:Action>{action}</a:Action><a:MessageID>uuid:{mid}</a:MessageID>"
        "<a:To>{anon}</a:To><a:RelatesTo>{rel}</a:RelatesTo></s:Header>"
        "<s:Body>{body}</s:Body></s:Envelope>"
    ).format(
        **_NS,
        action=escape(action),
        mid=str(uuid.uuid4()).upper(),
        anon=_ANONYMOUS,
        rel=escape(relates_to),
        body=body,
    )


def _fault_envelope(fault: _Fault, relates_to: str) -> str:
    detail = ""
    if fault.wsman_code is not None:
        detail = (
            f'<s:Detail><f:WSManFault xmlns:f="{_NS["f"]}" Code="{fault.wsman_code}" '
            f'Machine="127.0.0.1"><f:Message>{escape(fault.reason)}</f:Message>'
            "</f:WSManFault></s:Detail>"
        )
    body = (
        f"<s:Fault><s:Code><s:Value>{fault.code}</s:Value><s:Subcode><s:Value>{fault.subcode}"
        f'</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">{escape(fault.reason)}'
        f"</s:Text></s:Reason>{detail}</s:Fault>"
    )
    return _envelope("http://schemas.dmtf.org/wbem/wsman/1/wsman/fault", relates_to, body)


# -- HTTP -----------------------------------------------------------------------------


class _HTTPServer(ThreadingHTTPServer):
    # Connection threads are tracked and joined by WsmanServer.stop with a deadline, so a
    # wedged one cannot hang the suite's teardown.
    daemon_threads = True
    block_on_close = False

    def __init__(self, owner: WsmanServer, tls: ssl.SSLContext | None) -> None:
        self.owner = owner
        self.tls = tls
        super().__init__(("127.0.0.1", 0), _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        sock = cast(socket.socket, request)
        # Headers and body go out in separate writes; without this, Nagle's algorithm and
        # the client's delayed ACK add some 40 ms to every WinRM round trip.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls is not None:
            # The handshake runs here, in the connection's own thread, not in accept():
            # a client that refuses our certificate must not hold up the others.
            try:
                sock.settimeout(10)
                sock = self.tls.wrap_socket(sock, server_side=True)
                sock.settimeout(None)
            except (ssl.SSLError, OSError) as error:
                self.owner.tls_failures.append(repr(error))
                sock.close()
                return
        self.owner._track(sock, opened=True)
        try:
            super().finish_request(sock, client_address)
        except (ConnectionError, ssl.SSLError, TimeoutError):
            pass  # the client went away; nothing to answer
        finally:
            self.owner._track(sock, opened=False)
            with suppress(OSError):
                sock.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not self.owner.stopping.is_set():
            import traceback

            self.owner._note_error(traceback.format_exc())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: NTLM authenticates the connection
    server_version = "Microsoft-HTTPAPI/2.0"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        self._ntlm: spnego.ContextProxy | None = None
        self._ntlm_user: str | None = None

    @property
    def owner(self) -> WsmanServer:
        return cast(_HTTPServer, self.server).owner

    def log_message(self, format: str, *args: Any) -> None:
        pass  # pytest would show it as noise on every failure

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        owner = self.owner
        if owner.stall:
            owner.stopping.wait()
            self.close_connection = True
            return
        if self.path.split("?", 1)[0].lower() != "/wsman":
            self._reply(404, b"")
            return
        if not self._authorised():
            return
        sealed = self.headers.get("Content-Type", "").lower().startswith("multipart/encrypted")
        if sealed:
            try:
                body = self._unseal(body)
            except (SpnegoError, ValueError, struct.error) as error:
                owner._note_error(f"cannot unseal a message: {error!r}")
                self._reply(400, b"")
                return
            with owner._lock:
                owner.sealed_messages += 1
        if not body:
            # pywinrm's setup_encryption authenticates with an empty POST first.
            self._reply(200, b"")
            return
        status, answer = owner._handle_soap(body)
        data = answer.encode("utf-8")
        if sealed:
            self._reply(status, self._seal(data), sealed=True)
        else:
            self._reply(status, data, content_type="application/soap+xml;charset=UTF-8")

    def _reply(
        self,
        status: int,
        data: bytes,
        *,
        content_type: str | None = None,
        challenge: Sequence[str] = (),
        sealed: bool = False,
    ) -> None:
        self.send_response(status)
        for value in challenge:
            self.send_header("WWW-Authenticate", value)
        if sealed:
            content_type = (
                f'multipart/encrypted;protocol="{_SEALED_PROTOCOL}";boundary="Encrypted Boundary"'
            )
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    # -- authentication

    def _authorised(self) -> bool:
        """True to go on with the request; False when a 401 has been sent."""
        owner = self.owner
        header = self.headers.get("Authorization", "")
        scheme, _, token = header.strip().partition(" ")
        if owner.auth == "basic":
            offer = ['Basic realm="WSMAN"']
            if scheme.lower() != "basic":
                self._reply(401, b"", challenge=offer)
                return False
            try:
                user, _, password = base64.b64decode(token).decode("utf-8").partition(":")
            except ValueError:
                user, password = "?", None
            ok = password is not None and owner.users.get(user) == password
            owner._note_auth("Basic", user, ok)
            if not ok:
                self._reply(401, b"", challenge=offer)
            return ok

        offer = list(owner.offer)
        if not header:
            if self._ntlm_user is not None:
                return True  # this connection authenticated earlier
            self._reply(401, b"", challenge=offer)
            return False
        if scheme.lower() not in ("negotiate", "ntlm"):
            self._reply(401, b"", challenge=offer)
            return False
        try:
            raw = base64.b64decode(token)
        except ValueError:
            raw = b""
        kind = _ntlm_message_type(raw)
        if kind == 1:  # NEGOTIATE: a new handshake, even on an authenticated connection
            self._ntlm_user = None
            with _ntlm_user_file(owner._ntlm_file):
                # use_ntlm: pyspnego's own NTLM, never a system GSSAPI that may lack it.
                self._ntlm = spnego.server(
                    protocol="ntlm", options=spnego.NegotiateOptions.use_ntlm
                )
                challenge_token = self._ntlm.step(raw)
            assert challenge_token is not None
            challenge = f"{scheme} {base64.b64encode(challenge_token).decode()}"
            self._reply(401, b"", challenge=[challenge])
            return False
        if kind == 3 and self._ntlm is not None:  # AUTHENTICATE
            context, self._ntlm = self._ntlm, None
            user = _ntlm_user(raw)
            bindings = owner._channel_bindings
            if owner.cbt == "relaxed" and not _ntlm_has_bindings(raw):
                bindings = None
            try:
                with _ntlm_user_file(owner._ntlm_file):
                    context.step(raw, channel_bindings=bindings)
            except SpnegoError:
                owner._note_auth(scheme, user, False)
                self._reply(401, b"", challenge=offer)
                return False
            owner._note_auth(scheme, context.client_principal or user, True)
            self._ntlm = context  # kept for sealing messages over plain HTTP
            self._ntlm_user = user
            return True
        # SPNEGO-wrapped tokens (Kerberos-capable clients) and stray messages are refused.
        self._reply(401, b"", challenge=offer)
        return False

    # -- message sealing over plain HTTP (MS-WSMV 2.2.9.1.1)

    def _unseal(self, data: bytes) -> bytes:
        if self._ntlm is None:
            raise ValueError("a sealed message on a connection that has not authenticated")
        length_at = data.index(b"Length=") + len(b"Length=")
        length = int(data[length_at : data.index(b"\r\n", length_at)])
        marker = b"\tContent-Type: application/octet-stream\r\n"
        payload = data[data.index(marker) + len(marker) :]
        (signature_length,) = struct.unpack_from("<i", payload)
        signature = payload[4 : 4 + signature_length]
        # RC4 keeps the length, so the sealed bytes end exactly `length` later; the
        # closing boundary follows.
        sealed = payload[4 + signature_length : 4 + signature_length + length]
        return self._ntlm.unwrap_winrm(signature, sealed)

    def _seal(self, data: bytes) -> bytes:
        assert self._ntlm is not None
        wrapped = self._ntlm.wrap_winrm(data)
        return (
            _BOUNDARY + b"\r\n"
            b"\tContent-Type: " + _SEALED_PROTOCOL.encode() + b"\r\n"
            b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length="
            + str(len(data)).encode()
            + b"\r\n"
            + _BOUNDARY
            + b"\r\n\tContent-Type: application/octet-stream\r\n"
            + struct.pack("<i", len(wrapped.header))
            + wrapped.header
            + wrapped.data
            + _BOUNDARY
            + b"--\r\n"
        )


# -- the endpoint -------------------------------------------------------------------


class WsmanServer:
    """A WinRM endpoint on 127.0.0.1 (ephemeral port) for one test; use it with `with`.

    Everything the client did is recorded: `actions` (Create, Command, Send, ...),
    `command_lines`, `codepages` (WINRS_CODEPAGE of each Create), `signals` (signal
    code URIs), `auth_log` ((scheme, user, ok) per attempt), `process_ids` (every
    `/bin/sh` started), `sealed_messages` (HTTP+NTLM messages that arrived sealed),
    `tls_failures` (refused handshakes) and `errors` (the double's own failures,
    which a test may assert to be empty).
    """

    def __init__(
        self,
        directory: Path,
        *,
        tls: bool = True,
        untrusted_cert: bool = False,
        auth: Literal["ntlm", "basic"] = "ntlm",
        users: Mapping[str, str] | None = None,
        offer: Sequence[str] = ("Negotiate",),
        cbt: Literal["relaxed", "strict", "none"] = "relaxed",
        stall: bool = False,
        operation_timeout_cap: float | None = None,
        receive_limit: int = 256 * 1024,
        cmd_exe: bool = False,
    ) -> None:
        """`offer`: the WWW-Authenticate schemes of an NTLM endpoint (WinRM offers Negotiate;
        requests_ntlm answers in NTLM when "NTLM" is offered). `receive_limit`: the output
        bytes one Receive response carries at most."""
        if auth not in ("ntlm", "basic"):
            raise ValueError(f"unsupported auth {auth!r}")
        self.directory = Path(directory)
        self.tls = tls
        self.auth = auth
        self.users: dict[str, str] = dict(users or {DEFAULT_USER: DEFAULT_PASSWORD})
        self.offer = tuple(offer)
        self.cbt = cbt
        self.stall = stall
        self.operation_timeout_cap = operation_timeout_cap
        self.receive_limit = receive_limit
        self.cmd_exe = cmd_exe
        # Called with (op, path) before each fetch script's op is served: a test changes the
        # file there, between two ops, deterministically.
        self.fetch_hook: Callable[[str, str], None] | None = None
        # The answer to irtool's first-contact probe (cmd.exe's `ver` and `reg query`): a
        # Server 2019 with PowerShell 5.1 and IIS 10 unless a test plays another Windows.
        self.windows_said = SERVER_2019_SAYS

        self.actions: list[str] = []
        self.command_lines: list[str] = []
        self.codepages: list[int | None] = []
        self.signals: list[str] = []
        self.auth_log: list[tuple[str, str, bool]] = []
        self.process_ids: list[int] = []
        self.sealed_messages = 0
        self.tls_failures: list[str] = []
        self.errors: list[str] = []
        self.stopping = threading.Event()

        self._lock = threading.Lock()
        self._shells: dict[str, _Shell] = {}
        self._connections: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._httpd: _HTTPServer | None = None
        self._serve_thread: threading.Thread | None = None

        self.directory.mkdir(parents=True, exist_ok=True)
        ca_key, ca_cert = _make_ca("irtool test CA")
        self.ca_file = self.directory / "wsman-ca.pem"
        self.ca_file.write_bytes(_pem(ca_cert))
        if untrusted_cert:
            ca_key, ca_cert = _make_ca("irtool untrusted CA")
            (self.directory / "wsman-untrusted-ca.pem").write_bytes(_pem(ca_cert))
        key, cert = _make_server_cert(ca_key, ca_cert)
        self.cert_file = self.directory / "wsman-server.pem"
        self.key_file = self.directory / "wsman-server.key"
        self.cert_file.write_bytes(_pem(cert) + _pem(ca_cert))
        self.key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        der = cert.public_bytes(serialization.Encoding.DER)
        self.cert_sha256 = hashlib.sha256(der).hexdigest()
        # RFC 5929 tls-server-end-point: the hash of the signature's algorithm (SHA-256 here).
        self._channel_bindings = (
            GssChannelBindings(
                application_data=b"tls-server-end-point:" + hashlib.sha256(der).digest()
            )
            if tls and cbt != "none"
            else None
        )

        self._ntlm_file = self.directory / "wsman-ntlm-users"
        lines = []
        for name, password in self.users.items():
            domain, _, user = name.rpartition("\\")
            lines.append(f"{domain}:{user}:{password}\n")
        self._ntlm_file.write_text("".join(lines), encoding="utf-8")

        self.port = 0
        self.url = ""

    # -- life cycle

    def __enter__(self) -> WsmanServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        context: ssl.SSLContext | None = None
        if self.tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.cert_file, self.key_file)
        self._httpd = _HTTPServer(self, context)
        self.port = self._httpd.server_address[1]
        self.url = f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/wsman"
        self._serve_thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._serve_thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, kill every process group started, close every connection."""
        self.stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
        with self._lock:
            shells = list(self._shells.values())
            self._shells.clear()
            connections = list(self._connections)
        commands = [command for shell in shells for command in shell.commands.values()]
        for command in commands:
            command.kill()
        for sock in connections:
            with suppress(OSError):  # wakes a thread blocked reading a keep-alive connection
                sock.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for thread in threads + [command.thread for command in commands]:
            if thread.ident is not None:
                thread.join(max(0.0, deadline - time.monotonic()))
                if thread.is_alive():
                    self._note_error(f"thread {thread.name} did not stop")
        if self._httpd is not None:
            self._httpd.server_close()
            self._httpd = None

    # -- bookkeeping used by the handler and commands

    def _track(self, sock: socket.socket, *, opened: bool) -> None:
        with self._lock:
            if opened:
                self._connections.add(sock)
                self._threads.add(threading.current_thread())
            else:
                self._connections.discard(sock)
                self._threads.discard(threading.current_thread())

    def _note_auth(self, scheme: str, user: str, ok: bool) -> None:
        with self._lock:
            self.auth_log.append((scheme, user, ok))

    def _note_error(self, text: str) -> None:
        with self._lock:
            self.errors.append(text)

    def _note_process(self, pid: int) -> None:
        with self._lock:
            self.process_ids.append(pid)

    def process_group_alive(self, pgid: int) -> bool:
        """Whether a live process is left in group `pgid` (each /bin/sh we start leads one).

        Zombies do not count: a killed grandchild is reparented to init, which may take
        its time to reap it, but it runs nothing any more.
        """
        proc = Path("/proc")
        if not proc.is_dir():
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return False
            return True
        for stat in proc.glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue  # exited while we looked
            state, pgrp = fields[0], int(fields[2])
            if pgrp == pgid and state not in ("Z", "X"):
                return True
        return False

    # -- WS-Management

    def _handle_soap(self, data: bytes) -> tuple[int, str]:
        relates_to = ""
        try:
            request = _parse(data)
            relates_to = request.message_id
            name = request.action.rsplit("/", 1)[-1]
            with self._lock:
                self.actions.append(name)
            handler = {
                "Create": self._create,
                "Command": self._command,
                "Send": self._send,
                "Receive": self._receive,
                "Signal": self._signal,
                "Delete": self._delete,
            }.get(name)
            if handler is None:
                raise _Fault(
                    "a:ActionNotSupported",
                    f"The WS-Management service cannot process the request: action "
                    f"{request.action} is not supported.",
                )
            resource = request.root.findtext("s:Header/w:ResourceURI", "", _NS).strip()
            if resource != SHELL_URI:
                raise _Fault(
                    "w:DestinationUnreachable",
                    f"The WS-Management service cannot process the request: resource {resource}.",
                )
            return 200, _envelope(request.action + "Response", relates_to, handler(request))
        except _Fault as fault:
            return 500, _fault_envelope(fault, relates_to)

    def _shell(self, request: _Request) -> _Shell:
        with self._lock:
            shell = self._shells.get(request.shell_id or "")
        if shell is None:
            raise _Fault(
                "w:InvalidSelectors",
                f"The request for the Windows Remote Shell with ShellId {request.shell_id} failed "
                "because the shell was not found on the server. Possible causes are: the specified "
                "ShellId is incorrect or the shell no longer exists on the server.",
                FAULT_SHELL_NOT_FOUND,
            )
        return shell

    def _command_of(self, shell: _Shell, command_id: str | None) -> _Command:
        with self._lock:
            command = shell.commands.get(command_id or "")
        if command is None:
            raise _Fault(
                "w:InvalidParameter", f"The CommandId {command_id} is not valid for this shell."
            )
        return command

    def _create(self, request: _Request) -> str:
        codepage_text = request.root.findtext(
            "s:Header/w:OptionSet/w:Option[@Name='WINRS_CODEPAGE']", None, _NS
        )
        codepage = int(codepage_text) if codepage_text and codepage_text.strip().isdigit() else None
        shell_xml = request.body.find("rsp:Shell", _NS)
        env = dict(os.environ)
        env.pop("NTLM_USER_FILE", None)
        cwd = None
        if shell_xml is not None:
            for variable in shell_xml.findall("rsp:Environment/rsp:Variable", _NS):
                env[variable.get("Name", "")] = variable.text or ""
            directory = shell_xml.findtext("rsp:WorkingDirectory", None, _NS)
            cwd = directory if directory and os.path.isdir(directory) else None
        shell_id = str(uuid.uuid4()).upper()
        with self._lock:
            self.codepages.append(codepage)
            self._shells[shell_id] = _Shell(codepage, env, cwd)
        # Both shapes real WinRM sends: the selector (what pywinrm reads) and rsp:Shell.
        return (
            f"<x:ResourceCreated><a:Address>{escape(self.url)}</a:Address><a:ReferenceParameters>"
            f"<w:ResourceURI>{SHELL_URI}</w:ResourceURI><w:SelectorSet>"
            f'<w:Selector Name="ShellId">{shell_id}</w:Selector></w:SelectorSet>'
            f"</a:ReferenceParameters></x:ResourceCreated>"
            f"<rsp:Shell><rsp:ShellId>{shell_id}</rsp:ShellId><rsp:ResourceUri>{SHELL_URI}"
            f"</rsp:ResourceUri><rsp:Owner>{escape(next(iter(self.users), ''))}</rsp:Owner>"
            "<rsp:InputStreams>stdin</rsp:InputStreams>"
            "<rsp:OutputStreams>stdout stderr</rsp:OutputStreams></rsp:Shell>"
        )

    def _command(self, request: _Request) -> str:
        shell = self._shell(request)
        line_xml = request.body.find("rsp:CommandLine", _NS)
        if line_xml is None:
            raise _Fault("w:InvalidParameter", "The request has no rsp:CommandLine.")
        parts = [line_xml.findtext("rsp:Command", "", _NS)]
        parts += [argument.text or "" for argument in line_xml.findall("rsp:Arguments", _NS)]
        line = " ".join(parts)
        command = _Command(self, str(uuid.uuid4()).upper(), line, shell.env, shell.cwd)
        with self._lock:
            if self.stopping.is_set():
                raise _Fault("w:InternalError", "The endpoint is stopping.", code="s:Receiver")
            self.command_lines.append(line)
            shell.commands[command.id] = command
        command.start()
        return (
            "<rsp:CommandResponse>"
            f"<rsp:CommandId>{command.id}</rsp:CommandId></rsp:CommandResponse>"
        )

    def _send(self, request: _Request) -> str:
        shell = self._shell(request)
        for stream in request.body.findall("rsp:Send/rsp:Stream", _NS):
            command = self._command_of(shell, stream.get("CommandId"))
            data = base64.b64decode(stream.text or "")
            command.send(data, end=stream.get("End", "false").lower() == "true")
        return "<rsp:SendResponse/>"

    def _receive(self, request: _Request) -> str:
        shell = self._shell(request)
        desired = request.body.find("rsp:Receive/rsp:DesiredStream", _NS)
        command = self._command_of(shell, desired.get("CommandId") if desired is not None else None)
        wait = request.operation_timeout if request.operation_timeout is not None else 60.0
        if self.operation_timeout_cap is not None:
            wait = min(wait, self.operation_timeout_cap)
        got = command.receive(self.receive_limit, time.monotonic() + wait, self.stopping)
        if got is None:
            raise _Fault(
                "w:TimedOut",
                "The WS-Management service cannot complete the operation within the time "
                "specified in OperationTimeout.",
                FAULT_OPERATION_TIMEOUT,
                code="s:Receiver",
            )
        stdout, stderr, exit_code = got
        cid = command.id
        streams = "".join(
            f'<rsp:Stream Name="{name}" CommandId="{cid}">{base64.b64encode(data).decode()}'
            "</rsp:Stream>"
            for name, data in (("stdout", stdout), ("stderr", stderr))
            if data
        )
        if exit_code is None:
            state = f'<rsp:CommandState CommandId="{cid}" State="{_STATE}Running"/>'
        else:
            streams += "".join(
                f'<rsp:Stream Name="{name}" CommandId="{cid}" End="true"></rsp:Stream>'
                for name in ("stdout", "stderr")
            )
            state = (
                f'<rsp:CommandState CommandId="{cid}" State="{_STATE}Done">'
                f"<rsp:ExitCode>{exit_code}</rsp:ExitCode></rsp:CommandState>"
            )
        return f"<rsp:ReceiveResponse>{streams}{state}</rsp:ReceiveResponse>"

    def _signal(self, request: _Request) -> str:
        shell = self._shell(request)
        signal_xml = request.body.find("rsp:Signal", _NS)
        if signal_xml is None:
            raise _Fault("w:InvalidParameter", "The request has no rsp:Signal.")
        code = signal_xml.findtext("rsp:Code", "", _NS).strip()
        with self._lock:
            self.signals.append(code)
        command = self._command_of(shell, signal_xml.get("CommandId"))
        if code == SIGNAL_TERMINATE:
            command.kill()
        elif code in (SIGNAL_CTRL_C, SIGNAL_CTRL_BREAK):
            command.interrupt()
        else:
            raise _Fault("w:InvalidParameter", f"The signal code {code} is not supported.")
        return "<rsp:SignalResponse/>"

    def _delete(self, request: _Request) -> str:
        shell = self._shell(request)
        with self._lock:
            self._shells.pop(request.shell_id or "", None)
        for command in shell.commands.values():
            command.kill()
        return ""
