"""SSH signatures (irtool/journal/sshsig.py) against real OpenSSH: a real ssh-agent on a socket
of the test's own, keys made by ssh-keygen and added with ssh-add, signatures checked both
ways with `ssh-keygen -Y verify` and `ssh-keygen -Y sign`.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from irtool.journal import sshsig
from irtool.journal.sshsig import NAMESPACE, BadSignature, PublicKey, SigningError
from tests.conftest import ROOT
from tests.support.sshagent import ssh_agent

MESSAGE = b'{"seq": 7, "kind": "note", "text": "isolated web01"}\n'

# name -> ssh-keygen options: every key type the module signs and verifies.
KEY_TYPES = {
    "ed25519": ["-t", "ed25519"],
    "ecdsa256": ["-t", "ecdsa", "-b", "256"],
    "ecdsa384": ["-t", "ecdsa", "-b", "384"],
    "ecdsa521": ["-t", "ecdsa", "-b", "521"],
    "rsa": ["-t", "rsa", "-b", "2048"],
}


@dataclass(frozen=True)
class Agent:
    socket: str
    dir: Path
    keys: dict[str, Path]  # name -> private key file (its .pub next to it), all in the agent
    outsider: Path  # a key not in the agent
    confirm: Path  # in the agent, but each use must be confirmed, and confirming fails

    def pub(self, key: Path) -> PublicKey:
        return PublicKey.parse(key.with_suffix(".pub").read_text())


def _keygen(path: Path, *options: str) -> Path:
    subprocess.run(
        ["ssh-keygen", *options, "-N", "", "-C", f"{path.name}@test", "-f", str(path), "-q"],
        check=True,
    )
    return path


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agent]:
    root = tmp_path_factory.mktemp("sshsig")
    # Asked to confirm a key's use, the agent runs SSH_ASKPASS: `false` says no.
    with ssh_agent(root, askpass=shutil.which("false") or "/bin/false") as running:
        sock = str(running.socket)
        env = {**os.environ, **running.env}
        keys = {name: _keygen(root / name, *options) for name, options in KEY_TYPES.items()}
        outsider = _keygen(root / "outsider", "-t", "ed25519")
        confirm = _keygen(root / "confirm", "-t", "ed25519")
        for key in keys.values():
            subprocess.run(["ssh-add", "-q", str(key)], env=env, check=True, capture_output=True)
        subprocess.run(
            ["ssh-add", "-q", "-c", str(confirm)], env=env, check=True, capture_output=True
        )
        yield Agent(sock, root, keys, outsider, confirm)


def _ssh_keygen_fingerprint(pub: Path) -> str:
    # "256 SHA256:... comment (ED25519)"
    return subprocess.run(
        ["ssh-keygen", "-l", "-f", str(pub)], capture_output=True, text=True, check=True
    ).stdout.split()[1]


def _ssh_keygen_sign(agent: Agent, key: Path, *options: str) -> str:
    message = agent.dir / "message"
    message.write_bytes(MESSAGE)
    sig = agent.dir / "message.sig"
    sig.unlink(missing_ok=True)
    subprocess.run(
        ["ssh-keygen", "-Y", "sign", "-f", str(key), "-n", NAMESPACE, *options, str(message)],
        check=True,
        capture_output=True,
    )
    return sig.read_text()


# The SSHSIG blob taken apart and put back together, to tamper with one field at a time.


def _fields(armored: str) -> list[bytes]:
    """magic, version, public key, namespace, reserved, hash algorithm, signature."""
    body = base64.b64decode("".join(armored.strip().splitlines()[1:-1]))
    out, at = [body[:6], body[6:10]], 10
    while at < len(body):
        (n,) = struct.unpack(">I", body[at : at + 4])
        out.append(body[at + 4 : at + 4 + n])
        at += 4 + n
    assert len(out) == 7
    return out


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _armor(fields: list[bytes]) -> str:
    body = fields[0] + fields[1] + b"".join(_string(field) for field in fields[2:])
    b64 = base64.b64encode(body).decode()
    lines = [b64[i : i + 70] for i in range(0, len(b64), 70)]
    return "\n".join(["-----BEGIN SSH SIGNATURE-----", *lines, "-----END SSH SIGNATURE-----"])


# Signing through the agent; ssh-keygen verifies.


def _ssh_keygen_verify(
    agent: Agent, key: Path, armored: str, namespace: str, message: bytes
) -> subprocess.CompletedProcess[bytes]:
    """`ssh-keygen -Y verify` of `armored` as signed by `key`, known as "someone"."""
    sig = agent.dir / "verify.sig"
    sig.write_text(armored)
    signers = agent.dir / "allowed_signers"
    signers.write_text(f"someone {key.with_suffix('.pub').read_text()}")
    return subprocess.run(
        [
            *("ssh-keygen", "-Y", "verify", "-f", str(signers), "-I", "someone"),
            *("-n", namespace, "-s", str(sig)),
        ],
        input=message,
        capture_output=True,
    )


@pytest.mark.parametrize("name", KEY_TYPES)
def test_a_signature_through_the_agent_verifies_with_ssh_keygen(agent: Agent, name: str) -> None:
    key = agent.keys[name]
    armored = sshsig.sign(MESSAGE, agent.pub(key), socket_path=agent.socket)
    assert armored.startswith("-----BEGIN SSH SIGNATURE-----\n")
    assert armored.endswith("\n-----END SSH SIGNATURE-----\n")
    assert all(len(line) <= 70 for line in armored.splitlines())
    good = _ssh_keygen_verify(agent, key, armored, NAMESPACE, MESSAGE)
    assert good.returncode == 0, good.stderr
    assert b"Good" in good.stdout
    # ssh-keygen's own check can fail: the same signature is refused for another message.
    assert _ssh_keygen_verify(agent, key, armored, NAMESPACE, MESSAGE + b"x").returncode != 0
    assert _ssh_keygen_verify(agent, key, armored, "git", MESSAGE).returncode != 0
    # And this module agrees on the signature it made.
    assert sshsig.verify(MESSAGE, armored).blob == agent.pub(key).blob


def test_the_namespace_is_signed(agent: Agent) -> None:
    key = agent.keys["ecdsa256"]
    armored = sshsig.sign(MESSAGE, agent.pub(key), namespace="git", socket_path=agent.socket)
    assert _ssh_keygen_verify(agent, key, armored, "git", MESSAGE).returncode == 0
    assert sshsig.verify(MESSAGE, armored, namespace="git").blob == agent.pub(key).blob
    # The namespace field rewritten: the signature no longer covers what it claims.
    fields = _fields(_ssh_keygen_sign(agent, key))
    fields[3] = b"git"
    with pytest.raises(BadSignature, match="does not match"):
        sshsig.verify(MESSAGE, _armor(fields), namespace="git")


@pytest.mark.parametrize("name", ["ed25519", "rsa"])
def test_a_deterministic_signature_is_byte_for_byte_what_ssh_keygen_writes(
    agent: Agent, name: str
) -> None:
    """Ed25519 and RSA (PKCS#1 v1.5) signatures are deterministic, so the whole armored text,
    line wrapping and RSA's rsa-sha2-512 included, must be ssh-keygen's own."""
    key = agent.keys[name]
    ours = sshsig.sign(MESSAGE, agent.pub(key), socket_path=agent.socket)
    assert ours == _ssh_keygen_sign(agent, key)


def test_an_rsa_key_signs_with_sha512_not_sha1(agent: Agent) -> None:
    armored = sshsig.sign(MESSAGE, agent.pub(agent.keys["rsa"]), socket_path=agent.socket)
    signature = _fields(armored)[6]
    assert signature[4 : 4 + struct.unpack(">I", signature[:4])[0]] == b"rsa-sha2-512"
    assert _fields(armored)[5] == b"sha512"


# Verifying what ssh-keygen signed.


@pytest.mark.parametrize("name", KEY_TYPES)
def test_a_signature_by_ssh_keygen_verifies_and_names_its_key(agent: Agent, name: str) -> None:
    key = agent.keys[name]
    signer = sshsig.verify(MESSAGE, _ssh_keygen_sign(agent, key))
    pub_line = key.with_suffix(".pub").read_text().split()
    assert signer.openssh() == " ".join(pub_line[:2])
    assert signer.type == pub_line[0]
    assert signer.fingerprint() == _ssh_keygen_fingerprint(key.with_suffix(".pub"))


def test_a_sha256_signature_verifies(agent: Agent) -> None:
    key = agent.keys["ecdsa256"]
    armored = _ssh_keygen_sign(agent, key, "-O", "hashalg=sha256")
    assert _fields(armored)[5] == b"sha256"
    assert sshsig.verify(MESSAGE, armored).blob == agent.pub(key).blob


@pytest.mark.parametrize("name", KEY_TYPES)
def test_a_changed_message_or_another_namespace_is_a_bad_signature(agent: Agent, name: str) -> None:
    armored = _ssh_keygen_sign(agent, agent.keys[name])
    with pytest.raises(BadSignature, match="does not match"):
        sshsig.verify(MESSAGE.replace(b"web01", b"web02"), armored)
    with pytest.raises(BadSignature, match="namespace 'irtool-journal', not 'git'"):
        sshsig.verify(MESSAGE, armored, namespace="git")


@pytest.mark.parametrize("name", KEY_TYPES)
def test_a_flipped_signature_byte_is_a_bad_signature(agent: Agent, name: str) -> None:
    fields = _fields(_ssh_keygen_sign(agent, agent.keys[name]))
    raw = bytearray(fields[6])
    raw[-5] ^= 0x01  # inside the signature's own bytes, past its algorithm name
    fields[6] = bytes(raw)
    with pytest.raises(BadSignature):
        sshsig.verify(MESSAGE, _armor(fields))


def test_a_signature_naming_another_key_is_a_bad_signature(agent: Agent) -> None:
    fields = _fields(_ssh_keygen_sign(agent, agent.outsider))
    fields[2] = agent.pub(agent.keys["ed25519"]).blob  # same type, another key
    with pytest.raises(BadSignature, match="does not match"):
        sshsig.verify(MESSAGE, _armor(fields))


def test_a_sha1_rsa_signature_is_refused(agent: Agent) -> None:
    fields = _fields(_ssh_keygen_sign(agent, agent.keys["rsa"]))
    fields[6] = _string(b"ssh-rsa") + fields[6][4 + len(b"rsa-sha2-512") :]
    with pytest.raises(BadSignature, match="ssh-rsa signature is not accepted"):
        sshsig.verify(MESSAGE, _armor(fields))


@pytest.mark.parametrize(
    "key_type",
    ["sk-ssh-ed25519@openssh.com", "ssh-dss", "ssh-ed25519-cert-v01@openssh.com"],
)
def test_an_unsupported_key_type_is_named(agent: Agent, key_type: str) -> None:
    fields = _fields(_ssh_keygen_sign(agent, agent.keys["ed25519"]))
    fields[2] = _string(key_type.encode()) + _string(b"\x01" * 32)
    with pytest.raises(BadSignature, match=re.escape(f"{key_type} keys are not supported")):
        sshsig.verify(MESSAGE, _armor(fields))


@pytest.mark.parametrize(
    ("index", "value", "reason"),
    [
        (0, b"SSHSIH", "no SSHSIG magic"),
        (1, struct.pack(">I", 2), "version 2"),
        (5, b"sha1", "hash algorithm 'sha1'"),
        (6, b"\x00\x00\x00\xff", "malformed"),
    ],
)
def test_a_malformed_signature_is_a_bad_signature(
    agent: Agent, index: int, value: bytes, reason: str
) -> None:
    fields = _fields(_ssh_keygen_sign(agent, agent.keys["ed25519"]))
    fields[index] = value
    with pytest.raises(BadSignature, match=reason):
        sshsig.verify(MESSAGE, _armor(fields))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        "-----BEGIN SSH SIGNATURE-----\nnot base64!\n-----END SSH SIGNATURE-----\n",
        "-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----\n",
    ],
)
def test_text_that_is_no_signature_is_a_bad_signature(text: str) -> None:
    with pytest.raises(BadSignature):
        sshsig.verify(MESSAGE, text)


def test_trailing_data_after_the_signature_is_a_bad_signature(agent: Agent) -> None:
    fields = _fields(_ssh_keygen_sign(agent, agent.keys["ed25519"]))
    armored = _armor([*fields[:-1], fields[-1] + b"\x00\x00\x00\x00"])
    with pytest.raises(BadSignature, match="malformed"):
        sshsig.verify(MESSAGE, armored)


# The agent.


def test_agent_keys_lists_exactly_the_keys_added(agent: Agent) -> None:
    listed = sshsig.agent_keys(agent.socket)
    added = [*agent.keys.values(), agent.confirm]
    assert sorted(key.fingerprint() for key in listed) == sorted(
        _ssh_keygen_fingerprint(key.with_suffix(".pub")) for key in added
    )
    assert {key.openssh() for key in listed} == {agent.pub(key).openssh() for key in added}
    assert {key.comment for key in listed} == {f"{key.name}@test" for key in added}


def test_agent_keys_reads_ssh_auth_sock(agent: Agent, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSH_AUTH_SOCK", agent.socket)
    assert len(sshsig.agent_keys()) == len(agent.keys) + 1
    armored = sshsig.sign(MESSAGE, agent.pub(agent.keys["ed25519"]))
    assert sshsig.verify(MESSAGE, armored).blob == agent.pub(agent.keys["ed25519"]).blob


def test_no_agent_is_a_signing_error(
    agent: Agent, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = agent.pub(agent.keys["ed25519"])
    missing = str(tmp_path / "no-agent.sock")
    with pytest.raises(SigningError, match=r"^no ssh-agent at .*no-agent\.sock: No such file"):
        sshsig.sign(MESSAGE, key, socket_path=missing)
    with pytest.raises(SigningError, match=r"^no ssh-agent at"):
        sshsig.agent_keys(missing)
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    with pytest.raises(SigningError, match=r"^no ssh-agent: SSH_AUTH_SOCK is not set$"):
        sshsig.sign(MESSAGE, key)
    with pytest.raises(SigningError, match="SSH_AUTH_SOCK is not set"):
        sshsig.agent_keys()


def test_a_key_not_in_the_agent_is_a_signing_error(agent: Agent) -> None:
    outsider = agent.pub(agent.outsider)
    expected = f"does not hold key {re.escape(outsider.fingerprint())}$"
    with pytest.raises(SigningError, match=expected):
        sshsig.sign(MESSAGE, outsider, socket_path=agent.socket)


def test_an_agent_refusing_is_a_signing_error(agent: Agent) -> None:
    # Added with `ssh-add -c`: the agent asks SSH_ASKPASS, which declines.
    with pytest.raises(SigningError, match="refused to sign"):
        sshsig.sign(MESSAGE, agent.pub(agent.confirm), socket_path=agent.socket)


def test_a_hung_agent_times_out(
    agent: Agent, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A socket that is listened on but never answered: the connection is queued, the reply
    # never comes.
    path = str(tmp_path / "hung.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as hung:
        hung.bind(path)
        hung.listen()
        monkeypatch.setattr(sshsig, "_AGENT_TIMEOUT", 0.2)
        with pytest.raises(SigningError, match="timed out"):
            sshsig.sign(MESSAGE, agent.pub(agent.keys["ed25519"]), socket_path=path)


def test_signing_imports_neither_paramiko_nor_cryptography(agent: Agent) -> None:
    script = (
        "import sys\n"
        "from irtool.journal import sshsig\n"
        "sock = sys.argv[1]\n"
        "key = next(k for k in sshsig.agent_keys(sock) if k.type == 'ssh-ed25519')\n"
        "assert sshsig.sign(b'note', key, socket_path=sock).startswith('-----BEGIN SSH')\n"
        "heavy = {m.split('.')[0] for m in sys.modules} & {'paramiko', 'cryptography'}\n"
        "print(sorted(heavy))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, agent.socket],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "[]"


# Public keys.


def test_a_public_key_line_parses(agent: Agent) -> None:
    pub = agent.keys["ecdsa384"].with_suffix(".pub")
    key = PublicKey.parse(pub.read_text())
    assert key.type == "ecdsa-sha2-nistp384"
    assert key.comment == "ecdsa384@test"
    assert key.openssh() == " ".join(pub.read_text().split()[:2])
    assert key.fingerprint() == _ssh_keygen_fingerprint(pub)
    assert PublicKey.parse(key.openssh()) == PublicKey(key.blob)


@pytest.mark.parametrize(
    "line",
    [
        "",
        "garbage",
        "ssh-ed25519 !!!not-base64!!!",
        "ssh-ed25519 AAAA",  # base64, but not a key blob
        # an Ed25519 key's blob under another type's name
        "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIK6Hv5IsW2/wT4PdXd4XW0EHfdCYyrEbXu0PHmuB+Qv+",
    ],
)
def test_garbage_is_no_public_key(line: str) -> None:
    with pytest.raises(ValueError, match=r"^not an SSH public key") as raised:
        PublicKey.parse(line)
    assert "\n" not in str(raised.value)
