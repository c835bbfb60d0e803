"""The hosts a runbook can reach, how to reach them, and which identity to expect."""

from __future__ import annotations

import base64
import binascii
import re
import struct
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, Field, TypeAdapter, ValidationError

from irtool.model.base import GroupName, HostName, Model
from irtool.model.facts import HostFacts
from irtool.model.steps import Shell


class Transport(StrEnum):
    WINRM = "winrm"
    SSH = "ssh"
    LOCAL = "local"


class Auth(StrEnum):
    NTLM = "ntlm"
    KERBEROS = "kerberos"
    CREDSSP = "credssp"
    BASIC = "basic"
    KEY = "key"
    AGENT = "agent"
    PASSWORD = "password"  # noqa: S105 - the auth method's name, not a secret


WINRM_AUTH = {Auth.NTLM, Auth.KERBEROS, Auth.CREDSSP, Auth.BASIC}
SSH_AUTH = {Auth.KEY, Auth.AGENT, Auth.PASSWORD}


class Scheme(StrEnum):
    HTTPS = "https"
    HTTP = "http"


class OsFamily(StrEnum):
    WINDOWS = "windows"
    LINUX = "linux"


_KEY_TYPES = {
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
}
_FINGERPRINT = re.compile(r"SHA256:[A-Za-z0-9+/]{43}=?")


def _host_key(value: str) -> str:
    """A pinned SSH host key: 'TYPE BASE64' as known_hosts holds it, or its SHA256 fingerprint."""
    if _FINGERPRINT.fullmatch(value):
        return value
    parts = value.split()
    if len(parts) >= 2 and parts[0] in _KEY_TYPES:
        try:
            blob = base64.b64decode(parts[1], validate=True)
            (length,) = struct.unpack(">I", blob[:4])
            if blob[4 : 4 + length].decode("ascii") == parts[0]:
                return f"{parts[0]} {parts[1]}"
        except (binascii.Error, struct.error, UnicodeDecodeError):
            pass
    raise ValueError(
        "host_key must be a public key as known_hosts holds it ('ssh-ed25519 AAAA...') "
        "or its fingerprint ('SHA256:...', as ssh-keygen -lf prints it)"
    )


def _thumbprint(value: str) -> str:
    digits = re.sub(r"[\s:]", "", value).lower()
    if not re.fullmatch(r"[0-9a-f]{64}|[0-9a-f]{40}", digits):
        raise ValueError("thumbprint must be the certificate's SHA-256 (or SHA-1) as hex")
    return digits


HostKey = Annotated[str, AfterValidator(_host_key)]
Thumbprint = Annotated[str, AfterValidator(_thumbprint)]


class Tls(Model):
    ca_file: str | None = Field(default=None, description="PEM bundle of CAs to trust.")
    thumbprint: Thumbprint | None = Field(
        default=None, description="Pinned server certificate: SHA-256 (or SHA-1) as hex."
    )
    server_name: str | None = Field(default=None, description="Name to check the certificate for.")


class HostSettings(Model):
    """What a host is reached with; `defaults:` holds the same keys for every host."""

    transport: Transport | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    scheme: Scheme | None = Field(default=None, description="WinRM only; https unless insecure.")
    user: str | None = None
    auth: Auth | None = None
    credential: str | None = Field(
        default=None, description="Keyring entry holding the password (never the password)."
    )
    identity_file: str | None = Field(default=None, description="SSH private key file.")
    host_key: HostKey | None = None
    tls: Tls | None = None
    insecure: bool | None = Field(
        default=None, description="Explicit opt-in to plain HTTP or Basic auth for WinRM."
    )
    os: OsFamily | None = None
    shell: Shell | None = None
    connect_timeout: int | None = Field(default=None, ge=1, le=600)


class Host(HostSettings):
    address: str
    description: str = ""
    groups: list[GroupName] = []
    tags: list[str] = []
    vars: dict[str, str] = Field(
        default_factory=dict, description="Values runbook commands can use as host.vars.NAME."
    )
    facts: HostFacts | None = Field(
        default=None,
        description="What the host is (OS, PowerShell, IIS versions), as far as is known before "
        "contact; what the host itself says on first contact is recorded and wins.",
    )


_T = TypeVar("_T")


def pick(value: _T | None, default: _T | None) -> _T | None:
    return value if value is not None else default


_DEFAULT_PORT = {
    (Transport.WINRM, Scheme.HTTPS): 5986,
    (Transport.WINRM, Scheme.HTTP): 5985,
    (Transport.SSH, None): 22,
}


class ResolvedHost(Model):
    """A host with its defaults applied: what a transport is handed."""

    name: str
    address: str
    transport: Transport
    port: int | None
    scheme: Scheme | None
    user: str | None
    auth: Auth | None
    credential: str | None
    identity_file: str | None
    host_key: str | None
    tls: Tls | None
    insecure: bool
    os: OsFamily
    shell: Shell
    connect_timeout: int
    groups: list[str]
    tags: list[str]
    vars: dict[str, str]


class Inventory(Model):
    defaults: HostSettings = HostSettings()
    groups: dict[GroupName, list[HostName]] = Field(
        default_factory=dict, description="Groups listed by name, added to each host's own."
    )
    hosts: dict[HostName, Host] = Field(min_length=1)

    def groups_of(self, name: str) -> list[str]:
        own = list(self.hosts[name].groups)
        return own + [g for g, members in self.groups.items() if name in members and g not in own]

    def all_groups(self) -> set[str]:
        return set(self.groups) | {g for h in self.hosts.values() for g in h.groups}

    def all_tags(self) -> set[str]:
        return {t for h in self.hosts.values() for t in h.tags}

    def resolve(self, name: str) -> ResolvedHost:
        host, base = self.hosts[name], self.defaults
        transport = pick(host.transport, base.transport) or Transport.WINRM
        os_family = pick(host.os, base.os) or (
            OsFamily.WINDOWS if transport is Transport.WINRM else OsFamily.LINUX
        )
        scheme = pick(host.scheme, base.scheme)
        if transport is Transport.WINRM and scheme is None:
            scheme = Scheme.HTTPS
        return ResolvedHost(
            name=name,
            address=host.address,
            transport=transport,
            port=pick(host.port, base.port) or _DEFAULT_PORT.get((transport, scheme)),
            scheme=scheme,
            user=pick(host.user, base.user),
            auth=pick(host.auth, base.auth),
            credential=pick(host.credential, base.credential),
            identity_file=pick(host.identity_file, base.identity_file),
            host_key=pick(host.host_key, base.host_key),
            tls=pick(host.tls, base.tls),
            insecure=bool(pick(host.insecure, base.insecure)),
            os=os_family,
            shell=pick(host.shell, base.shell)
            or (Shell.POWERSHELL if os_family is OsFamily.WINDOWS else Shell.SH),
            connect_timeout=pick(host.connect_timeout, base.connect_timeout) or 15,
            groups=self.groups_of(name),
            tags=list(host.tags),
            vars=dict(host.vars),
        )

    def select(self, selectors: list[str]) -> list[str]:
        """Host names matched by any of `selectors`, in inventory order."""
        chosen: list[str] = []
        for name in self.hosts:
            for selector in selectors:
                kind, _, value = selector.partition(":")
                if (
                    kind == "all"
                    or (kind == "host" and value == name)
                    or (kind == "group" and value in self.groups_of(name))
                    or (kind == "tag" and value in self.hosts[name].tags)
                ):
                    chosen.append(name)
                    break
        return chosen


def rescoped(
    inventory: Inventory | None,
    host: str,
    group: str,
    add: bool,
    new_host: dict[str, Any] | None = None,
) -> Inventory | None:
    """The inventory once `host` joins (or leaves) `group`; a host not yet in it comes with
    its entry (`new_host`, checked as inventory.yaml is). The model is frozen: a new one."""
    hosts = dict(inventory.hosts) if inventory else {}
    groups = {g: list(m) for g, m in (inventory.groups if inventory else {}).items()}
    if new_host is not None and host not in hosts:
        hosts[host] = Host.model_validate(new_host)
    if host not in hosts:
        return inventory
    entry = hosts[host]
    if add:
        if group not in entry.groups and host not in groups.get(group, []):
            groups.setdefault(group, []).append(host)
    else:
        groups = {
            g: [m for m in members if not (g == group and m == host)]
            for g, members in groups.items()
        }
        if group in entry.groups:
            hosts[host] = entry.model_copy(
                update={"groups": [g for g in entry.groups if g != group]}
            )
    defaults = inventory.defaults if inventory else HostSettings()
    return Inventory(defaults=defaults, groups=groups, hosts=hosts)


def group_problem(group: str) -> str | None:
    """What inventory.yaml would say of a group's name; None when it is fine."""
    try:
        TypeAdapter(GroupName).validate_python(group)
    except ValidationError as bad:
        return str(bad.errors()[0]["msg"]).removeprefix("Value error, ")
    return None


def new_host_problems(name: str, group: str, entry: dict[str, Any]) -> list[tuple[str, str]]:
    """What inventory.yaml would say of `entry` as host `name` in `group`, one problem each:
    (the key it is about, `""` for the host's name or the entry as a whole, and the message).
    Empty when the host is fine. The engine and the UI's form check a new host by this."""
    try:
        Inventory.model_validate({"groups": {group: [name]}, "hosts": {name: entry}})
    except ValidationError as bad:
        found = []
        for problem in bad.errors():
            where = [str(part) for part in problem["loc"]]
            if where[:2] == ["hosts", name]:  # the entry itself: the key is what is wrong
                key = ".".join(where[2:])
            elif where[:1] == ["groups"]:
                key = "group"
            else:  # the host's name
                key = ""
            found.append((key, str(problem["msg"]).removeprefix("Value error, ")))
        return found
    return []
