"""What a host is: its OS version and build, PowerShell and IIS versions, and which command
variant of a step it gets.

Facts come from the inventory (a host may state them) and from the host itself: on its
first contact in an incident irtool asks it, with a probe written for cmd.exe (a stock
Server 2008 has no usable PowerShell) or sh, and records the answer as a `host.facts`
event. A step's `variants` are chosen by `When`: the first whose every stated minimum the
host's facts meet.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

from irtool.model.base import Model
from irtool.model.untrusted import visible

_VERSION = re.compile(r"\d+(?:\.\d+){0,3}")


def _version(value: str) -> str:
    value = value.strip()
    if not _VERSION.fullmatch(value):
        raise ValueError(f"'{value}' is not a version: write numbers and dots, such as 6.1 or 5.1")
    return value


Version = Annotated[str, AfterValidator(_version)]


def version_key(text: str) -> tuple[int, ...]:
    """'6.1.7601' -> (6, 1, 7601), padded so 6.1 == 6.1.0."""
    parts = [int(p) for p in text.split(".")]
    return tuple(parts + [0] * (4 - len(parts)))


def at_least(have: str | None, need: str) -> bool:
    return bool(have) and version_key(have or "0") >= version_key(need)


class When(Model):
    """Minimums a host's facts must meet for a variant to be its own; all stated must hold."""

    os: str | None = Field(default=None, pattern="^(windows|linux)$")
    windows: Version | None = Field(default=None, description="NT version at least: 6.0 = 2008.")
    build: int | None = Field(default=None, ge=0, description="OS build number at least.")
    powershell: Version | None = Field(default=None, description="PowerShell at least.")
    iis: Version | None = Field(default=None, description="IIS at least.")

    def text(self) -> str:
        said = [f"{k} >= {v}" if k != "os" else f"os {v}" for k, v in self.stated().items()]
        return ", ".join(said) or "any host"

    def stated(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.model_dump().items() if v is not None}


class HostFacts(Model):
    """A host as it is: empty text (or None) for what is not known or not there."""

    os: str | None = Field(default=None, pattern="^(windows|linux)$")
    windows: Version | None = Field(default=None, description="NT version: 6.1 = 2008 R2.")
    build: int | None = Field(default=None, ge=0)
    powershell: Version | None = Field(
        default=None, description="PowerShell version; absent: no PowerShell on the host."
    )
    iis: Version | None = Field(default=None, description="IIS version; absent: no IIS.")
    name: str | None = Field(default=None, description="The OS's own name for itself.")

    def fits(self, when: When | None) -> bool:
        if when is None:
            return True
        if when.os and self.os and when.os != self.os:
            return False
        if when.os and not self.os and when.os != "windows":
            return False
        if when.windows and not at_least(self.windows, when.windows):
            return False
        if when.build is not None and (self.build or 0) < when.build:
            return False
        if when.powershell and not at_least(self.powershell, when.powershell):
            return False
        return not (when.iis and not at_least(self.iis, when.iis))

    def why_not(self, when: When) -> str:
        """What the host lacks for `when`, in a responder's words."""
        lacking = []
        for key, need in when.stated().items():
            have = getattr(self, key)
            if not HostFacts.model_validate({key: have}).fits(When.model_validate({key: need})):
                lacking.append(f"{key} {have or 'none'} (needs {need})")
        return ", ".join(lacking) or "nothing"

    def summary(self) -> str:
        if self.os == "linux":
            return self.name or "linux"
        parts = []
        if self.name:
            parts.append(self.name)
        elif self.windows:
            build = f" build {self.build}" if self.build else ""
            parts.append(f"Windows NT {self.windows}{build}")
        parts.append(f"PowerShell {self.powershell}" if self.powershell else "no PowerShell")
        parts.append(f"IIS {self.iis}" if self.iis else "no IIS")
        return ", ".join(parts)

    def template(self) -> dict[str, str]:
        """What a command template reads as host.facts.NAME: text, empty when unknown."""
        return {
            k: "" if v is None else str(v) for k, v in self.model_dump(exclude_none=False).items()
        }


UNKNOWN = HostFacts()

# -- the probe: one read-only command that works on every Windows (cmd.exe) or on sh ------

WINDOWS_PROBE = "\n".join(
    [
        "ver",
        'reg query "HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion" /v ProductName',
        'reg query "HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion" /v CurrentBuildNumber',
        'reg query "HKLM\\SOFTWARE\\Microsoft\\PowerShell\\1\\PowerShellEngine" '
        "/v PowerShellVersion",
        'reg query "HKLM\\SOFTWARE\\Microsoft\\PowerShell\\3\\PowerShellEngine" '
        "/v PowerShellVersion",
        'reg query "HKLM\\SOFTWARE\\Microsoft\\InetStp" /v VersionString',
    ]
)

LINUX_PROBE = 'uname -sr; (. /etc/os-release 2>/dev/null && echo "PRETTY_NAME=$PRETTY_NAME")'

# `ver` says "[Version 10.0.17763.5458]", "[version ...]" in French, "[Versión ...]" in Spanish.
_VER = re.compile(r"\[[^\]\d]{0,20}?(\d+)\.(\d+)\.(\d+)(?:\.\d+)?\]")
# A host's own name for itself is its text: kept short (it is shown, escaped, in reports).
NAME_LIMIT = 200
_REG = re.compile(r"^\s*(\w+)\s+REG_\w+\s+(.*?)\s*$")


def _name(said: str) -> str | None:
    """The host's own name for itself, as the host wrote it: with control and format
    characters written out (an escape sequence in ProductName cannot reach a terminal from a
    plan, a confirmation or a refusal), and kept short."""
    return visible(said.strip())[:NAME_LIMIT] or None


def said_nothing(text: str, windows: bool) -> bool:
    """A probe answer that is not one: no version line from Windows (a PowerShell default
    shell, a banner, a blocked reg.exe), nothing at all from Linux. Its "facts" would be
    guesses; they are not recorded."""
    return _VER.search(text) is None if windows else not text.strip()


def parse_windows_probe(text: str) -> HostFacts:
    """Facts from the probe's output; what it could not read stays unknown."""
    values: dict[str, str] = {}
    windows = build = None
    found = _VER.search(text)
    if found:
        windows, build = f"{found[1]}.{found[2]}", int(found[3]) or None
    powershell = None
    for line in text.splitlines():
        entry = _REG.match(line)
        if not entry:
            continue
        key, value = entry[1], entry[2]
        if key == "PowerShellVersion":
            # The 3 key (3.0 and later) wins over the 1 key (1.0 and 2.0).
            if _VERSION.fullmatch(value) and (
                powershell is None or version_key(value) > version_key(powershell)
            ):
                powershell = value
        else:
            values[key] = value
    if values.get("CurrentBuildNumber", "").isdigit():
        build = int(values["CurrentBuildNumber"])
    iis = None
    if m := re.search(r"(\d+\.\d+)", values.get("VersionString", "")):
        iis = m[1]
    # PowerShell 1.0 cannot run irtool's launcher: record it, and variants needing 2.0 skip it.
    name = _name(values.get("ProductName", ""))
    return HostFacts(
        os="windows", windows=windows, build=build, powershell=powershell, iis=iis, name=name
    )


def probe_answer(facts: HostFacts) -> str:
    """What a host with `facts` would answer the probe: `parse_*_probe` reads it back as
    `facts` (a simulated host answers so)."""
    if facts.os == "linux":
        return f"Linux\nPRETTY_NAME={facts.name or ''}\n"
    lines = [f"Microsoft Windows [Version {facts.windows or '10.0'}.{facts.build or 0}]", ""]
    values = {
        "ProductName": facts.name,
        "CurrentBuildNumber": str(facts.build) if facts.build is not None else None,
        "PowerShellVersion": facts.powershell,
        "VersionString": f"Version {facts.iis}" if facts.iis else None,
    }
    for key, value in values.items():
        if value:
            lines += [f"    {key}    REG_SZ    {value}", ""]
    return "\n".join(lines)


def parse_linux_probe(text: str) -> HostFacts:
    """The release's own name (os-release PRETTY_NAME), else the kernel line `uname` gave."""
    pretty = [line for line in text.splitlines() if line.startswith("PRETTY_NAME=")]
    if pretty:
        return HostFacts(os="linux", name=_name(pretty[-1].removeprefix("PRETTY_NAME=")))
    return HostFacts(os="linux", name=_name(text.strip().splitlines()[0]) if text.strip() else None)
