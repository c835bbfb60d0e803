"""SSH signatures of journal events: the SSHSIG format of `ssh-keygen -Y sign` (and of git),
as OpenSSH's PROTOCOL.sshsig describes it.

Signing goes through a running ssh-agent, so irtool never holds a private key: the responder's
key stays where they keep it (an agent, a hardware token behind one). The agent protocol is
spoken directly over its UNIX socket with `socket` and `struct`: a scribe's note imports this
module to sign and must start fast, so neither paramiko nor cryptography is imported here.
Verifying needs real cryptography and imports `cryptography` when it is called.

A signature made here verifies with `ssh-keygen -Y verify -n irtool-journal`, and one made by
`ssh-keygen -Y sign -n irtool-journal` verifies here: anyone can check a journal's signatures
with stock OpenSSH, without irtool.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import socket
import struct

from irtool.model.sshkeys import PublicKey as PublicKey
from irtool.model.sshkeys import WireReader as _Reader
from irtool.model.sshkeys import wire_string as _string

NAMESPACE = "irtool-journal"

_MAGIC = b"SSHSIG"
_VERSION = 1
_HASH = "sha512"  # what ssh-keygen signs with; sha256 is accepted when verifying
_BEGIN = "-----BEGIN SSH SIGNATURE-----"
_END = "-----END SSH SIGNATURE-----"
_WRAP = 70  # ssh-keygen's line length inside the armor

# The ssh-agent protocol (draft-miller-ssh-agent).
_FAILURE = 5
_REQUEST_IDENTITIES = 11
_IDENTITIES_ANSWER = 12
_SIGN_REQUEST = 13
_SIGN_RESPONSE = 14
_RSA_SHA2_512 = 4  # sign flag: an RSA signature with SHA-512, not the SHA-1 "ssh-rsa"
_AGENT_TIMEOUT = 10.0  # seconds: a hung agent (or one waiting on a confirm dialog) fails
_AGENT_MAX_LEN = 256 * 1024  # OpenSSH's own limit: a bigger length is a broken peer

# Key type -> the signature algorithms accepted for it. The SHA-1 "ssh-rsa" signature is
# refused, as OpenSSH itself refuses it by default.
_SIGNATURE_ALGORITHMS = {
    "ssh-ed25519": ("ssh-ed25519",),
    "ecdsa-sha2-nistp256": ("ecdsa-sha2-nistp256",),
    "ecdsa-sha2-nistp384": ("ecdsa-sha2-nistp384",),
    "ecdsa-sha2-nistp521": ("ecdsa-sha2-nistp521",),
    "ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256"),
}


class SigningError(Exception):
    """No agent, the agent refused, or the key is not in the agent (a one-line reason)."""


class BadSignature(Exception):
    """The signature does not verify, or is not an SSH signature (a one-line reason)."""


# The agent.


def _agent_call(sock: socket.socket, kind: int, payload: bytes = b"") -> tuple[int, bytes]:
    """One request to the agent and its reply: (reply type, reply payload)."""
    sock.sendall(struct.pack(">IB", len(payload) + 1, kind) + payload)
    (length,) = struct.unpack(">I", _recv_exactly(sock, 4))
    if not 1 <= length <= _AGENT_MAX_LEN:
        raise SigningError(f"the socket sent a reply of {length} bytes: not an ssh-agent?")
    reply = _recv_exactly(sock, length)
    return reply[0], reply[1:]


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < n:
        chunk = sock.recv(n - len(chunks))
        if not chunk:
            raise SigningError("the ssh-agent closed the connection")
        chunks += chunk
    return bytes(chunks)


def _connect(socket_path: str | None) -> socket.socket:
    path = socket_path if socket_path is not None else os.environ.get("SSH_AUTH_SOCK")
    if not path:
        raise SigningError("no ssh-agent: SSH_AUTH_SOCK is not set")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(_AGENT_TIMEOUT)
    try:
        sock.connect(path)
    except OSError as exc:
        sock.close()
        raise SigningError(f"no ssh-agent at {path}: {exc.strerror or exc}") from None
    return sock


def _identities(sock: socket.socket) -> list[PublicKey]:
    kind, payload = _agent_call(sock, _REQUEST_IDENTITIES)
    if kind != _IDENTITIES_ANSWER:
        raise SigningError(f"the ssh-agent would not list its keys (reply type {kind})")
    try:
        reader = _Reader(payload)
        keys = []
        for _ in range(reader.uint32()):
            blob = reader.string()
            keys.append(PublicKey(blob, reader.string().decode("utf-8", "replace")))
        reader.end()
    except ValueError:
        raise SigningError("the ssh-agent's list of keys is malformed") from None
    return keys


def agent_keys(socket_path: str | None = None) -> list[PublicKey]:
    """The keys the agent holds (at `socket_path`, by default $SSH_AUTH_SOCK), in its order."""
    try:
        with _connect(socket_path) as sock:
            return _identities(sock)
    except OSError as exc:  # a timeout included: a hung agent must not hang the caller
        raise SigningError(f"the ssh-agent failed: {exc.strerror or exc}") from None


def _signed_data(namespace: str, hash_algorithm: str, message: bytes) -> bytes:
    """What the key actually signs (PROTOCOL.sshsig): the message's hash, bound to the
    namespace so a signature made for one purpose is no good for another."""
    digest = hashlib.new(hash_algorithm, message).digest()
    return _MAGIC + _string(namespace) + _string(b"") + _string(hash_algorithm) + _string(digest)


def _armor(blob: bytes) -> str:
    b64 = base64.b64encode(blob).decode()
    lines = [b64[i : i + _WRAP] for i in range(0, len(b64), _WRAP)]
    return "\n".join([_BEGIN, *lines, _END]) + "\n"


def sign(
    message: bytes,
    key: PublicKey,
    namespace: str = NAMESPACE,
    socket_path: str | None = None,
) -> str:
    """`message` signed by `key` through the ssh-agent, armored as `ssh-keygen -Y sign` writes
    it; SigningError if there is no agent, it lacks the key or it refuses."""
    if not namespace:
        raise ValueError("an SSH signature needs a namespace")
    if key.type not in _SIGNATURE_ALGORITHMS:
        raise SigningError(f"cannot sign with a {key.type} key")
    flags = _RSA_SHA2_512 if key.type == "ssh-rsa" else 0
    request = _string(key.blob) + _string(_signed_data(namespace, _HASH, message))
    try:
        with _connect(socket_path) as sock:
            # Asked first so that a missing key reads as such, not as a bare refusal.
            if key.blob not in {held.blob for held in _identities(sock)}:
                raise SigningError(f"the ssh-agent does not hold key {key.fingerprint()}")
            kind, payload = _agent_call(sock, _SIGN_REQUEST, request + struct.pack(">I", flags))
    except OSError as exc:
        raise SigningError(f"the ssh-agent failed: {exc.strerror or exc}") from None
    if kind == _FAILURE:
        raise SigningError(f"the ssh-agent refused to sign with key {key.fingerprint()}")
    if kind != _SIGN_RESPONSE:
        raise SigningError(f"the ssh-agent sent an unexpected reply (type {kind})")
    try:
        reader = _Reader(payload)
        signature = reader.string()
        reader.end()
        algorithm = _Reader(signature).text()
    except ValueError:
        raise SigningError("the ssh-agent's signature is malformed") from None
    # An old agent may ignore the flag and sign with SHA-1, which verifiers refuse.
    asked = "rsa-sha2-512" if key.type == "ssh-rsa" else key.type
    if algorithm != asked:
        raise SigningError(f"the ssh-agent signed with {algorithm}, not {asked}")
    blob = (
        _MAGIC
        + struct.pack(">I", _VERSION)
        + _string(key.blob)
        + _string(namespace)
        + _string(b"")
        + _string(_HASH)
        + _string(signature)
    )
    return _armor(blob)


# Verifying.


def _dearmor(armored: str) -> bytes:
    lines = armored.strip().splitlines()
    if len(lines) < 3 or lines[0].strip() != _BEGIN or lines[-1].strip() != _END:
        raise BadSignature("not an SSH signature: no BEGIN/END SSH SIGNATURE lines")
    try:
        return base64.b64decode("".join(line.strip() for line in lines[1:-1]), validate=True)
    except binascii.Error:
        raise BadSignature("not an SSH signature: its body is not base64") from None


def verify(message: bytes, armored: str, namespace: str = NAMESPACE) -> PublicKey:
    """The signer's public key, if `armored` is a good signature of `message` for `namespace`;
    BadSignature otherwise. Who the signer may be is the caller's to decide."""
    try:
        reader = _Reader(_dearmor(armored))
        if reader.take(6) != _MAGIC:
            raise BadSignature("not an SSH signature: no SSHSIG magic")
        version = reader.uint32()
        if version != _VERSION:
            raise BadSignature(f"SSH signature version {version} is not supported")
        key = PublicKey(reader.string())
        signed_namespace = reader.text()
        reader.string()  # reserved
        hash_algorithm = reader.text()
        signature = reader.string()
        reader.end()
        key_type = key.type
        sig = _Reader(signature)
        algorithm = sig.text()
        raw = sig.string()
        sig.end()
    except ValueError:  # UnicodeDecodeError included
        raise BadSignature("malformed SSH signature") from None
    if signed_namespace != namespace:
        raise BadSignature(f"signed for namespace {signed_namespace!r}, not {namespace!r}")
    if hash_algorithm not in ("sha256", "sha512"):
        raise BadSignature(f"hash algorithm {hash_algorithm!r} is not supported")
    if key_type not in _SIGNATURE_ALGORITHMS:
        raise BadSignature(f"{key_type} keys are not supported")
    if algorithm not in _SIGNATURE_ALGORITHMS[key_type]:
        raise BadSignature(f"a {algorithm} signature is not accepted from a {key_type} key")
    _check(key, algorithm, raw, _signed_data(namespace, hash_algorithm, message))
    return key


def _check(key: PublicKey, algorithm: str, raw: bytes, data: bytes) -> None:
    """BadSignature unless `raw` is `key`'s `algorithm` signature of `data`."""
    # Imported here, not at the top: signing must not pay for it (see the module's doc).
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
    from cryptography.hazmat.primitives.serialization import load_ssh_public_key

    try:
        public = load_ssh_public_key(key.openssh().encode())
        if isinstance(public, ed25519.Ed25519PublicKey):
            public.verify(raw, data)
        elif isinstance(public, ec.EllipticCurvePublicKey):
            # The curve fixes the hash (RFC 5656): nistp256 SHA-256, 384 SHA-384, 521 SHA-512.
            hash_for: dict[int, hashes.HashAlgorithm] = {
                256: hashes.SHA256(),
                384: hashes.SHA384(),
                521: hashes.SHA512(),
            }
            point = _Reader(raw)
            r, s = point.mpint(), point.mpint()
            point.end()
            der = encode_dss_signature(r, s)
            public.verify(der, data, ec.ECDSA(hash_for[public.curve.key_size]))
        elif isinstance(public, rsa.RSAPublicKey):
            if public.key_size < 1024:  # OpenSSH's own floor
                raise BadSignature(f"RSA key of {public.key_size} bits is too small")
            # OpenSSH accepts a signature short of the modulus' length (leading zero bytes
            # dropped); OpenSSL wants it at full length.
            size = (public.key_size + 7) // 8
            if len(raw) > size:
                raise BadSignature("RSA signature longer than its key")
            digest = hashes.SHA512() if algorithm == "rsa-sha2-512" else hashes.SHA256()
            public.verify(raw.rjust(size, b"\0"), data, padding.PKCS1v15(), digest)
        else:
            raise BadSignature(f"{key.type} keys are not supported")
    except InvalidSignature:
        raise BadSignature(
            f"the signature by {key.fingerprint()} does not match the message"
        ) from None
    except (ValueError, KeyError, TypeError):
        raise BadSignature(f"malformed {key.type} key or signature") from None
