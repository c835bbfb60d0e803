"""SSH public keys as OpenSSH writes and reads them: a `.pub` or authorized_keys line, the
wire-format blob agents and signatures carry, the fingerprint `ssh-keygen -l` prints.

Parsing only, no I/O: the contacts file lists each person's keys and is checked with this;
signing and verifying (journal.sshsig) build on it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass


class WireReader:
    """SSH wire-format fields read off a buffer; ValueError when they run short."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    def take(self, n: int) -> bytes:
        if n > len(self._data) - self._at:
            raise ValueError("truncated")
        out = self._data[self._at : self._at + n]
        self._at += n
        return out

    def uint32(self) -> int:
        value: int = struct.unpack(">I", self.take(4))[0]
        return value

    def string(self) -> bytes:
        return self.take(self.uint32())

    def text(self) -> str:
        return self.string().decode("utf-8")

    def mpint(self) -> int:
        value = int.from_bytes(self.string(), "big", signed=True)
        if value < 0:
            raise ValueError("negative integer")
        return value

    def end(self) -> None:
        # Trailing bytes would be data the signature does not account for.
        if self._at != len(self._data):
            raise ValueError("trailing data")


def wire_string(data: bytes | str) -> bytes:
    raw = data.encode() if isinstance(data, str) else data
    return struct.pack(">I", len(raw)) + raw


@dataclass(frozen=True)
class PublicKey:
    """An SSH public key, as its wire-format blob (what agents and signatures carry)."""

    blob: bytes
    comment: str = ""

    @property
    def type(self) -> str:
        """The key type the blob starts with, e.g. "ssh-ed25519"."""
        return WireReader(self.blob).text()

    def openssh(self) -> str:
        """The key as a .pub or authorized_keys line, without its comment."""
        return f"{self.type} {base64.b64encode(self.blob).decode()}"

    def fingerprint(self) -> str:
        """The fingerprint exactly as `ssh-keygen -l` prints it: "SHA256:" + unpadded base64."""
        digest = base64.b64encode(hashlib.sha256(self.blob).digest()).decode()
        return "SHA256:" + digest.rstrip("=")

    @classmethod
    def parse(cls, line: str) -> PublicKey:
        """A "TYPE BASE64 [comment]" line (a .pub file, an authorized_keys line without
        options); ValueError with a one-line reason if it is not one."""
        fields = line.strip().split(maxsplit=2)
        if len(fields) < 2:
            raise ValueError("not an SSH public key: expected 'TYPE BASE64 [comment]'")
        try:
            blob = base64.b64decode(fields[1], validate=True)
            inner = WireReader(blob).text()
        except (binascii.Error, ValueError):
            raise ValueError("not an SSH public key: its key data is not valid") from None
        # The type is written twice; a line whose two disagree has been tampered with or
        # mangled, and which of the two to believe is not ours to guess.
        if inner != fields[0]:
            raise ValueError(f"not an SSH public key: a {fields[0]} line holds a {inner!r} key")
        return cls(blob, fields[2] if len(fields) > 2 else "")


def people_keys(contacts: object) -> dict[str, list[str]]:
    """Person -> their public keys (OpenSSH lines), from a contacts file as dumped into the
    journal; what is not shaped as one (a tampered journal: verify says where) gives none."""
    people = contacts.get("people") if isinstance(contacts, dict) else None
    if not isinstance(people, dict):
        return {}
    return {
        str(person): [line for line in said.get("keys", []) if isinstance(line, str)]
        for person, said in people.items()
        if isinstance(said, dict) and isinstance(said.get("keys", []), list)
    }


def signatures_required(contacts: object) -> bool:
    return isinstance(contacts, dict) and contacts.get("signed_events") == "required"


def team_signs(contacts: object) -> bool:
    """Whether a team signs its events, by its contacts file as dumped into the journal: it
    lists keys, or requires signatures. An event without a signature is then marked unsigned
    wherever it is shown."""
    return any(people_keys(contacts).values()) or signatures_required(contacts)
