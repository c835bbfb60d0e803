"""Which PowerShell a command needs, and whether a cmd.exe script holds any PowerShell at all.

`FEATURES` lists the cmdlets, parameters, modules and language features that came after
PowerShell 2.0 (irtool's launcher minimum), each with the first PowerShell that has it and,
where Windows ships the module rather than WMF, the first Windows (NT) version that has it,
with the page that says so. WMF brings a newer PowerShell to an older Windows, but not the
modules that are part of Windows: Server 2008 R2 with WMF 5.1 is PowerShell 5.1 and still has
no `Get-NetTCPConnection`, `Get-ScheduledTask` or NetSecurity cmdlets (Windows Server 2012,
NT 6.2, brought them), and Server 2008 (IIS 7.0) has no WebAdministration module at all.

- `features_used(source)`: where a PowerShell command template uses them. It reads the
  template as PowerShell does, roughly: comments and the text of strings are not code (a
  cmdlet named in a message is not a use), `$(...)` inside a double-quoted string is;
  `{{ ... }}` stands for a value and `{% ... %}` tags are dropped (both branches of an `if`
  are read). Names match case-insensitively as whole command words; a parameter counts only
  after its own cmdlet, on the same pipeline element. A use inside
  `if (Get-Command NAME ...) { ... }` (or `Get-Module -ListAvailable MODULE`, or
  `$PSVersionTable.PSVersion.Major -ge N`) is guarded and not reported for what the test
  establishes: the other branch is where the older host goes. So is a missing cmdlet or
  module inside a one-statement `try { ... } catch`, or any `try` whose `catch` names
  CommandNotFoundException: PowerShell 2.0 catches a command it does not have.
- `too_new(source, version, windows=None)`: the uses a host with PowerShell `version` (and,
  when known, that Windows) may lack.
- `reach(when)`: the oldest PowerShell and Windows a command with that `when` can be sent to.
- `powershell_in_cmd(source)`: the lines of a cmd.exe script that are PowerShell.
- `version_problems(source, shell, when)`: all of it, as (line, message) for `validate`.
- `command_words(source)`: the words PowerShell would run as commands (the tests hold them
  against tree-sitter-powershell's reading of every shipped template).

Parameters missing from PowerShell 2.0 were checked against PowerShell 2.0's own parameter
sets as PSScriptAnalyzer records them (Engine/Settings/desktop-2.0-windows.json).

Known limits: parameter names must be written in full or as a documented alias (PowerShell
also takes any unambiguous prefix); a command called through a variable (`& $cmd`), splatted
parameters, and member enumeration (PowerShell 3.0) are not seen.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from irtool.model.facts import When

Kind = Literal["cmdlet", "parameter", "module", "syntax"]

# The launcher needs PowerShell 2.0: the oldest PowerShell any command is sent to.
LAUNCHER_MINIMUM = "2.0"


@dataclass(frozen=True)
class Feature:
    kind: Kind
    name: str  # Get-FileHash, -Raw, WebAdministration, [pscustomobject]
    powershell: str  # the first PowerShell that has it
    source: str  # where that is written down
    windows: str | None = None  # the first Windows (NT version) that ships it, when WMF does not
    cmdlet: str | None = None  # a parameter's (or a cmdlet-bound syntax's) cmdlet
    module: str | None = None  # a cmdlet's module
    aliases: tuple[str, ...] = ()  # a parameter's other names

    @property
    def label(self) -> str:
        if self.kind == "parameter":
            return f"{self.cmdlet} {self.name}"
        if self.kind == "module":
            return f"the {self.name} module"
        return self.name

    def needs(self) -> str:
        """`PowerShell 3.0 on Windows Server 2012 (NT 6.2) or later`."""
        if self.windows and self.powershell == LAUNCHER_MINIMUM:
            return f"{windows_name(self.windows)} or later"
        text = f"PowerShell {self.powershell}"
        if self.windows:
            text += f" on {windows_name(self.windows)} or later"
        return text


@dataclass(frozen=True)
class Use:
    """A feature used in a template: where (1-based line and column within it, and offset)."""

    line: int
    column: int
    offset: int
    feature: Feature


@dataclass(frozen=True)
class Reach:
    """The oldest host a command can be sent to: its PowerShell, and its Windows if known."""

    powershell: str
    windows: str | None = None

    def text(self) -> str:
        where = f" on {windows_name(self.windows)}" if self.windows else " on any Windows"
        return f"PowerShell {self.powershell}{where}"


# -- versions ------------------------------------------------------------------------------


def _key(version: str | None) -> tuple[int, ...]:
    parts = [int(p) for p in re.findall(r"\d+", version or "")][:4]
    return tuple(parts + [0] * (4 - len(parts)))


def _newer(needed: str, have: str | None) -> bool:
    return _key(needed) > _key(have)


_SERVERS = {
    "6.0": "Windows Server 2008",
    "6.1": "Windows Server 2008 R2",
    "6.2": "Windows Server 2012",
    "6.3": "Windows Server 2012 R2",
    "10.0": "Windows Server 2016",
}


def windows_name(nt: str) -> str:
    """`Windows Server 2012 (NT 6.2)` for `6.2`."""
    name = _SERVERS.get(".".join(str(p) for p in _key(nt)[:2]))
    return f"{name} (NT {nt})" if name else f"Windows NT {nt}"


# What a `when` key implies about the rest (each Windows ships a PowerShell; WMF 4.0 and later
# install on Windows 7 / Server 2008 R2 SP1 and newer only; IIS versions map to Windows ones).
_WINDOWS_POWERSHELL = (("10.0.14393", "5.1"), ("10.0", "5.0"), ("6.3", "4.0"), ("6.2", "3.0"))
_BUILD_WINDOWS = ((10240, "10.0"), (9600, "6.3"), (9200, "6.2"), (7600, "6.1"), (6000, "6.0"))
_IIS_WINDOWS = (("10.0", "10.0"), ("8.5", "6.3"), ("8.0", "6.2"), ("7.5", "6.1"), ("7.0", "6.0"))
_POWERSHELL_WINDOWS = (("4.0", "6.1"),)


def _first(table: tuple[tuple[str, str], ...], have: str | None) -> str | None:
    if not have:
        return None
    return next((value for floor, value in table if _key(have) >= _key(floor)), None)


def _highest(*versions: str | None) -> str | None:
    given = [v for v in versions if v]
    return max(given, key=_key) if given else None


def reach(when: When | None) -> Reach:
    """The oldest PowerShell (and Windows, when `when` tells) a command with this `when` can be
    sent to: its own minimums, what they imply (`windows: "6.2"` means PowerShell 3.0 at least,
    `iis: "7.5"` means Windows 6.1), and never below the launcher's PowerShell 2.0."""
    if when is None:
        return Reach(LAUNCHER_MINIMUM)
    build = when.build
    build_windows = next((w for floor, w in _BUILD_WINDOWS if build and build >= floor), None)
    windows = _highest(when.windows, build_windows, _first(_IIS_WINDOWS, when.iis))
    nt_build = f"{windows}.{build}" if windows and build else windows
    powershell = _highest(LAUNCHER_MINIMUM, when.powershell, _first(_WINDOWS_POWERSHELL, nt_build))
    windows = _highest(windows, _first(_POWERSHELL_WINDOWS, powershell))
    return Reach(powershell or LAUNCHER_MINIMUM, windows)


# -- the table -----------------------------------------------------------------------------

_DOCS = "learn.microsoft.com/powershell/module"
WN3 = "What's New in Windows PowerShell 3.0"
WN4 = "What's New in Windows PowerShell 4.0"
WN5 = "What's New in Windows PowerShell 5.0"
WMF51 = "WMF 5.1 release notes"
NET4 = (
    "a .NET Framework 4 API: Windows PowerShell 2.0 runs on the .NET 2.0 runtime, 3.0 is the "
    "first on .NET 4 (WMF 3.0 system requirements)"
)


def _cmdlets(
    module: str,
    powershell: str,
    names: str,
    note: str,
    windows: str | None = None,
) -> list[Feature]:
    return [
        Feature(
            "cmdlet",
            name,
            powershell,
            f"{note}; {_DOCS}/{module.lower()}/{name.lower()}",
            windows=windows,
            module=module,
        )
        for name in names.split()
    ]


def _parameter(
    cmdlet: str, name: str, powershell: str, note: str, *aliases: str, module: str
) -> Feature:
    return Feature(
        "parameter",
        name,
        powershell,
        f"{note}; {_DOCS}/{module.lower()}/{cmdlet.lower()}",
        cmdlet=cmdlet,
        module=module,
        aliases=aliases,
    )


_OS_2012 = "in Windows from Windows Server 2012 / Windows 8 (not in WMF)"
_MGMT = "Microsoft.PowerShell.Management"
_UTIL = "Microsoft.PowerShell.Utility"
_SECURITY = "Microsoft.PowerShell.Security"

CMDLETS: tuple[Feature, ...] = (
    *_cmdlets(
        "CimCmdlets",
        "3.0",
        "Get-CimInstance Get-CimClass Get-CimAssociatedInstance Invoke-CimMethod "
        "New-CimInstance Set-CimInstance Remove-CimInstance New-CimSession Remove-CimSession "
        "Register-CimIndicationEvent",
        f"{WN3}: CIM cmdlets",
    ),
    *_cmdlets(
        _UTIL,
        "3.0",
        "ConvertTo-Json ConvertFrom-Json Invoke-WebRequest Invoke-RestMethod Unblock-File",
        f"{WN3}: new cmdlets",
    ),
    *_cmdlets(_UTIL, "4.0", "Get-FileHash", f"{WN4}: Get-FileHash"),
    *_cmdlets(
        _UTIL,
        "5.0",
        "ConvertFrom-String Format-Hex New-Guid New-TemporaryFile Write-Information",
        f"{WN5}: new cmdlets",
    ),
    *_cmdlets(
        _MGMT,
        "5.0",
        "Get-ItemPropertyValue Get-Clipboard Set-Clipboard",
        f"{WN5}: new cmdlets",
    ),
    *_cmdlets(_MGMT, "5.1", "Get-ComputerInfo Get-TimeZone Set-TimeZone", f"{WMF51}: new cmdlets"),
    *_cmdlets(
        "Microsoft.PowerShell.Archive",
        "5.0",
        "Compress-Archive Expand-Archive",
        f"{WN5}: Microsoft.PowerShell.Archive module",
    ),
    *_cmdlets(
        "Microsoft.PowerShell.LocalAccounts",
        "5.1",
        "Get-LocalUser New-LocalUser Set-LocalUser Remove-LocalUser Rename-LocalUser "
        "Enable-LocalUser Disable-LocalUser Get-LocalGroup New-LocalGroup Set-LocalGroup "
        "Remove-LocalGroup Get-LocalGroupMember Add-LocalGroupMember Remove-LocalGroupMember",
        "Microsoft.PowerShell.LocalAccounts: Windows PowerShell 5.1 as shipped in Windows "
        "Server 2016 (not installed by WMF 5.1 on older Windows)",
        windows="10.0",
    ),
    *_cmdlets(
        "NetSecurity",
        "3.0",
        "Get-NetFirewallRule New-NetFirewallRule Set-NetFirewallRule Remove-NetFirewallRule "
        "Enable-NetFirewallRule Disable-NetFirewallRule Show-NetFirewallRule "
        "Get-NetFirewallProfile Set-NetFirewallProfile Get-NetFirewallPortFilter "
        "Get-NetFirewallAddressFilter Get-NetFirewallApplicationFilter Get-NetFirewallSetting",
        f"NetSecurity module, {_OS_2012}",
        windows="6.2",
    ),
    *_cmdlets(
        "NetTCPIP",
        "3.0",
        "Get-NetTCPConnection Get-NetUDPEndpoint Get-NetIPAddress Get-NetIPConfiguration "
        "Get-NetRoute Get-NetNeighbor Get-NetIPInterface",
        f"NetTCPIP module, {_OS_2012}",
        windows="6.2",
    ),
    *_cmdlets(
        "NetTCPIP",
        "4.0",
        "Test-NetConnection",
        "NetTCPIP module, from Windows Server 2012 R2 / Windows 8.1",
        windows="6.3",
    ),
    *_cmdlets("NetAdapter", "3.0", "Get-NetAdapter", f"NetAdapter module, {_OS_2012}", "6.2"),
    *_cmdlets(
        "NetConnection",
        "3.0",
        "Get-NetConnectionProfile Set-NetConnectionProfile",
        f"NetConnection module, {_OS_2012}",
        windows="6.2",
    ),
    *_cmdlets(
        "DnsClient",
        "3.0",
        "Resolve-DnsName Get-DnsClientCache Clear-DnsClientCache Get-DnsClientServerAddress",
        f"DnsClient module, {_OS_2012}",
        windows="6.2",
    ),
    *_cmdlets(
        "ScheduledTasks",
        "3.0",
        "Get-ScheduledTask Get-ScheduledTaskInfo Enable-ScheduledTask Disable-ScheduledTask "
        "Export-ScheduledTask Register-ScheduledTask Unregister-ScheduledTask Set-ScheduledTask "
        "Start-ScheduledTask Stop-ScheduledTask New-ScheduledTaskAction "
        "New-ScheduledTaskTrigger",
        f"ScheduledTasks module, {_OS_2012}",
        windows="6.2",
    ),
    *_cmdlets(
        "SmbShare",
        "3.0",
        "Get-SmbShare Get-SmbShareAccess Get-SmbSession Get-SmbOpenFile "
        "Get-SmbServerConfiguration Set-SmbServerConfiguration",
        f"SmbShare module, {_OS_2012}",
        windows="6.2",
    ),
    *_cmdlets(
        "Storage",
        "3.0",
        "Get-Disk Get-Volume Get-Partition",
        f"Storage module, {_OS_2012}",
        windows="6.2",
    ),
    *_cmdlets(
        "Dism",
        "3.0",
        "Get-WindowsOptionalFeature Enable-WindowsOptionalFeature "
        "Disable-WindowsOptionalFeature Get-WindowsPackage Add-WindowsPackage "
        "Remove-WindowsPackage",
        f"DISM module, {_OS_2012}",
        windows="6.2",
    ),
    *_cmdlets(
        "ServerManager",
        "3.0",
        "Install-WindowsFeature Uninstall-WindowsFeature",
        "ServerManager module of Windows Server 2012 (2008 R2 has Add-WindowsFeature)",
        windows="6.2",
    ),
    *_cmdlets(
        "ServerManager",
        "2.0",
        "Get-WindowsFeature Add-WindowsFeature Remove-WindowsFeature",
        "ServerManager module, from Windows Server 2008 R2 (Server 2008 has ServerManagerCmd)",
        windows="6.1",
    ),
    *_cmdlets(
        "Defender",
        "5.0",
        "Get-MpComputerStatus Get-MpPreference Set-MpPreference Add-MpPreference "
        "Remove-MpPreference Get-MpThreat Get-MpThreatDetection Update-MpSignature Start-MpScan",
        "Defender module, with Windows Defender in Windows Server 2016 (2012 R2 has none)",
        windows="10.0",
    ),
    *_cmdlets(
        "IISAdministration",
        "5.0",
        "Get-IISSite Start-IISSite Stop-IISSite New-IISSite Remove-IISSite Get-IISAppPool "
        "Get-IISServerManager Get-IISConfigSection Get-IISConfigElement "
        "Get-IISConfigCollection Start-IISCommitDelay Stop-IISCommitDelay",
        "IISAdministration module, in-box with IIS 10.0 (Windows Server 2016)",
        windows="10.0",
    ),
    *_cmdlets(
        "WebAdministration",
        "2.0",
        "Get-Website Start-Website Stop-Website New-Website Remove-Website Get-WebBinding "
        "New-WebBinding Remove-WebBinding Set-WebBinding Get-WebApplication "
        "Get-WebVirtualDirectory Get-WebAppPoolState Start-WebAppPool Stop-WebAppPool "
        "Restart-WebAppPool New-WebAppPool Remove-WebAppPool Get-WebConfiguration "
        "Set-WebConfiguration Add-WebConfiguration Clear-WebConfiguration "
        "Get-WebConfigurationProperty Set-WebConfigurationProperty "
        "Add-WebConfigurationProperty Remove-WebConfigurationProperty Get-WebConfigFile "
        "Backup-WebConfiguration Restore-WebConfiguration Get-WebConfigurationBackup "
        "Remove-WebConfigurationBackup Get-WebGlobalModule New-WebGlobalModule "
        "Set-WebGlobalModule Remove-WebGlobalModule Enable-WebGlobalModule "
        "Disable-WebGlobalModule Get-WebManagedModule New-WebManagedModule "
        "Remove-WebManagedModule Get-WebHandler New-WebHandler Set-WebHandler Remove-WebHandler "
        "Get-WebRequest Get-WebItemState Start-WebItem Stop-WebItem Get-WebAppDomain "
        "Get-WebFilePath Get-WebURL",
        "WebAdministration module, from IIS 7.5 (Windows Server 2008 R2); IIS 7.0 on "
        "Server 2008 has none",
        windows="6.1",
    ),
)

# Modules that PowerShell 2.0 loads only when told to (autoloading came with 3.0): their
# cmdlets need an `Import-Module` first on a 2.0 host.
IMPORT_NEEDED = ("WebAdministration", "ServerManager")

MODULES: tuple[Feature, ...] = tuple(
    Feature("module", name, powershell, source, windows=windows)
    for name, powershell, windows, source in (
        ("CimCmdlets", "3.0", None, f"{WN3}: CIM cmdlets"),
        ("NetSecurity", "3.0", "6.2", f"{_DOCS}/netsecurity ({_OS_2012})"),
        ("NetTCPIP", "3.0", "6.2", f"{_DOCS}/nettcpip ({_OS_2012})"),
        ("NetAdapter", "3.0", "6.2", f"{_DOCS}/netadapter ({_OS_2012})"),
        ("DnsClient", "3.0", "6.2", f"{_DOCS}/dnsclient ({_OS_2012})"),
        ("ScheduledTasks", "3.0", "6.2", f"{_DOCS}/scheduledtasks ({_OS_2012})"),
        ("SmbShare", "3.0", "6.2", f"{_DOCS}/smbshare ({_OS_2012})"),
        ("Storage", "3.0", "6.2", f"{_DOCS}/storage ({_OS_2012})"),
        ("Dism", "3.0", "6.2", f"{_DOCS}/dism ({_OS_2012})"),
        ("Defender", "5.0", "10.0", f"{_DOCS}/defender (Windows Server 2016)"),
        ("IISAdministration", "5.0", "10.0", f"{_DOCS}/iisadministration (IIS 10.0)"),
        ("Microsoft.PowerShell.Archive", "5.0", None, f"{WN5}: Archive module"),
        (
            "Microsoft.PowerShell.LocalAccounts",
            "5.1",
            "10.0",
            f"{_DOCS}/microsoft.powershell.localaccounts (Windows Server 2016)",
        ),
        (
            "WebAdministration",
            "2.0",
            "6.1",
            f"{_DOCS}/webadministration (IIS 7.5, Windows Server 2008 R2)",
        ),
        ("ServerManager", "2.0", "6.1", f"{_DOCS}/servermanager (Windows Server 2008 R2)"),
    )
)

_FS = "FileSystem provider parameter"
_PS2_SETS = (
    "not in PowerShell 2.0's parameter sets (PSScriptAnalyzer's compatibility data, "
    "github.com/PowerShell/PSScriptAnalyzer Engine/Settings/desktop-2.0-windows.json); "
    "added in PowerShell 3.0"
)
PARAMETERS: tuple[Feature, ...] = (
    _parameter("Get-ChildItem", "-File", "3.0", f"{WN3}: {_FS}", "-af", module=_MGMT),
    _parameter("Get-ChildItem", "-Directory", "3.0", f"{WN3}: {_FS}", "-ad", module=_MGMT),
    _parameter("Get-ChildItem", "-Attributes", "3.0", f"{WN3}: {_FS}", module=_MGMT),
    _parameter("Get-ChildItem", "-Hidden", "3.0", f"{WN3}: {_FS}", "-ah", module=_MGMT),
    _parameter("Get-ChildItem", "-ReadOnly", "3.0", f"{WN3}: {_FS}", "-ar", module=_MGMT),
    _parameter("Get-ChildItem", "-System", "3.0", f"{WN3}: {_FS}", "-as", module=_MGMT),
    _parameter("Get-ChildItem", "-Depth", "5.0", f"{WN5}: Get-ChildItem -Depth", module=_MGMT),
    _parameter("Get-Content", "-Raw", "3.0", f"{WN3}: {_FS}", module=_MGMT),
    _parameter("Get-Content", "-Stream", "3.0", f"{WN3}: {_FS} (alternate streams)", module=_MGMT),
    _parameter("Get-Content", "-Tail", "3.0", f"{WN3}: Get-Content -Tail", "-Last", module=_MGMT),
    _parameter("Get-Item", "-Stream", "3.0", f"{WN3}: {_FS} (alternate streams)", module=_MGMT),
    _parameter("Remove-Item", "-Stream", "3.0", f"{WN3}: {_FS} (alternate streams)", module=_MGMT),
    _parameter("Set-Content", "-Stream", "3.0", f"{WN3}: {_FS} (alternate streams)", module=_MGMT),
    _parameter("Add-Content", "-Stream", "3.0", f"{WN3}: {_FS} (alternate streams)", module=_MGMT),
    _parameter("Set-Content", "-NoNewline", "5.0", f"{WN5}: -NoNewline", module=_MGMT),
    _parameter("Add-Content", "-NoNewline", "5.0", f"{WN5}: -NoNewline", module=_MGMT),
    _parameter("Out-File", "-NoNewline", "5.0", f"{WN5}: -NoNewline", module=_UTIL),
    _parameter("Export-Csv", "-Append", "3.0", f"{WN3}: Export-Csv -Append", module=_UTIL),
    _parameter("Tee-Object", "-Append", "3.0", f"{WN3}: Tee-Object -Append", module=_UTIL),
    _parameter("Add-Member", "-NotePropertyName", "3.0", f"{WN3}: Add-Member", module=_UTIL),
    _parameter("Add-Member", "-NotePropertyValue", "3.0", f"{WN3}: Add-Member", module=_UTIL),
    _parameter("Add-Member", "-NotePropertyMembers", "3.0", f"{WN3}: Add-Member", module=_UTIL),
    _parameter("Add-Member", "-TypeName", "3.0", f"{WN3}: Add-Member", module=_UTIL),
    _parameter(
        "Select-Object", "-SkipLast", "5.0", f"{WN5}: Select-Object -SkipLast", module=_UTIL
    ),
    *(
        _parameter(cmdlet, name, "3.0", _PS2_SETS, module=module)
        for cmdlet, name, module in (
            ("Rename-Item", "-LiteralPath", _MGMT),
            ("Out-File", "-LiteralPath", _UTIL),
            ("Export-Csv", "-LiteralPath", _UTIL),
            ("Import-Csv", "-LiteralPath", _UTIL),
            ("Import-Csv", "-Encoding", _UTIL),
            ("Export-Clixml", "-LiteralPath", _UTIL),
            ("Import-Clixml", "-LiteralPath", _UTIL),
            ("Select-String", "-LiteralPath", _UTIL),
            ("Select-Xml", "-LiteralPath", _UTIL),
            ("Get-Acl", "-LiteralPath", _SECURITY),
            ("Set-Acl", "-LiteralPath", _SECURITY),
            ("Get-AuthenticodeSignature", "-LiteralPath", _SECURITY),
        )
    ),
    _parameter(
        "Get-Process",
        "-IncludeUserName",
        "4.0",
        f"{WN4}: Get-Process -IncludeUserName",
        module=_MGMT,
    ),
)

_ABOUT = "learn.microsoft.com/powershell/module/microsoft.powershell.core/about"
WHERE_SIMPLE = Feature(
    "syntax",
    "Where-Object PROPERTY -OPERATOR VALUE (the comparison statement)",
    "3.0",
    f"{WN3}: simplified Where-Object syntax; {_DOCS}/microsoft.powershell.core/where-object",
    cmdlet="Where-Object",
)
FOREACH_SIMPLE = Feature(
    "syntax",
    "ForEach-Object MEMBER (the operation statement, -MemberName)",
    "3.0",
    f"{WN3}: simplified ForEach-Object syntax; {_DOCS}/microsoft.powershell.core/foreach-object",
    cmdlet="ForEach-Object",
)
AUTOLOAD: dict[str, Feature] = {
    name.lower(): Feature(
        "syntax",
        f"{name} cmdlets without Import-Module {name} (module autoloading)",
        "3.0",
        f"{_ABOUT}/about_modules: modules are imported automatically from PowerShell 3.0",
        module=name,
    )
    for name in IMPORT_NEEDED
}

SYNTAX: tuple[tuple[Feature, re.Pattern[str]], ...] = tuple(
    (Feature("syntax", name, powershell, source), re.compile(pattern, re.IGNORECASE | re.M))
    for name, powershell, source, pattern in (
        (
            "[pscustomobject]",
            "3.0",
            f"{_ABOUT}/about_pscustomobject: the type accelerator came with PowerShell 3.0",
            r"\[\s*pscustomobject\s*\]",
        ),
        (
            "[ordered]",
            "3.0",
            f"{_ABOUT}/about_hash_tables: [ordered] from PowerShell 3.0",
            r"\[\s*ordered\s*\]",
        ),
        ("$PSItem", "3.0", f"{_ABOUT}/about_automatic_variables ({WN3})", r"\$PSItem\b"),
        (
            "$using:",
            "3.0",
            f"{_ABOUT}/about_remote_variables: the Using scope modifier from PowerShell 3.0",
            r"\$using:",
        ),
        (
            "-in / -notin",
            "3.0",
            f"{_ABOUT}/about_comparison_operators: -in and -notin came with PowerShell 3",
            r"(?<![\w-])-(?:not)?in(?![\w-])",
        ),
        (
            "-shl / -shr",
            "3.0",
            f"{_ABOUT}/about_arithmetic_operators: bitwise shifts from PowerShell 3.0",
            r"(?<![\w-])-sh[lr](?![\w-])",
        ),
        (
            "$PSScriptRoot / $PSCommandPath outside a module",
            "3.0",
            f"{_ABOUT}/about_automatic_variables: 2.0 sets $PSScriptRoot in modules only",
            r"\$(?:PSScriptRoot|PSCommandPath)\b",
        ),
        (
            "$PSDefaultParameterValues",
            "3.0",
            f"{_ABOUT}/about_parameters_default_values: from PowerShell 3.0",
            r"\$PSDefaultParameterValues\b",
        ),
        (
            "[ciminstance] / Microsoft.Management.Infrastructure",
            "3.0",
            f"{WN3}: CIM (Microsoft.Management.Infrastructure)",
            r"\[\s*(?:ciminstance\s*[\]\[]|Microsoft\.Management\.Infrastructure\.)",
        ),
        (
            ".Where() / .ForEach() methods",
            "4.0",
            f"{WN4}: collection filtering with method syntax; {_ABOUT}/about_arrays",
            r"\.(?:Where|ForEach)\(",
        ),
        (
            "class definitions",
            "5.0",
            f"{WN5}: classes; {_ABOUT}/about_classes",
            r"(?:^|[;{}])\s*class\s+[A-Za-z_]\w*\s*(?::\s*[\w.]+\s*)?\{",
        ),
        (
            "enum definitions",
            "5.0",
            f"{WN5}: enums; {_ABOUT}/about_enum",
            r"(?:^|[;{}])\s*enum\s+[A-Za-z_]\w*\s*\{",
        ),
        ("::new()", "5.0", f"{WN5}: the static new() method; {_ABOUT}/about_classes", r"::new\("),
        (
            "using namespace / using module",
            "5.0",
            f"{WN5}; {_ABOUT}/about_using",
            r"^\s*using\s+(?:namespace|module|assembly)\b",
        ),
        ("$PSEdition", "5.1", f"{WMF51}: $PSEdition", r"\$PSEdition\b"),
        (
            "[string]::IsNullOrWhiteSpace()",
            "3.0",
            f"String.IsNullOrWhiteSpace is {NET4}",
            r"::IsNullOrWhiteSpace\s*\(",
        ),
        (
            "[IO.File]::ReadLines() / [IO.Directory]::Enumerate*()",
            "3.0",
            f"File.ReadLines and Directory.EnumerateFiles are {NET4}",
            r"::(?:ReadLines|EnumerateFiles|EnumerateDirectories|EnumerateFileSystemEntries)\s*\(",
        ),
        (
            "[Environment]::Is64BitOperatingSystem / Is64BitProcess",
            "3.0",
            f"Environment.Is64BitOperatingSystem is {NET4}",
            r"::Is64Bit(?:OperatingSystem|Process)\b",
        ),
        (
            "[Microsoft.Win32.RegistryKey]::OpenBaseKey()",
            "3.0",
            f"RegistryKey.OpenBaseKey (with RegistryView) is {NET4}",
            r"::OpenBaseKey\s*\(",
        ),
        (
            "[Net.SecurityProtocolType]::Tls12 / Tls11",
            "4.0",
            "SecurityProtocolType.Tls11/Tls12 are .NET Framework 4.5, which WMF 4.0 requires",
            r"SecurityProtocolType\]::Tls1[12]\b",
        ),
        (
            "[Parameter(Mandatory)] without =$true",
            "3.0",
            f"{_ABOUT}/about_functions_advanced_parameters: attribute arguments may omit "
            "=$true from PowerShell 3.0",
            r"\[\s*Parameter\s*\((?:[^)]*,)?\s*(?:Mandatory|ValueFromPipeline|"
            r"ValueFromPipelineByPropertyName|ValueFromRemainingArguments)\s*[,)]",
        ),
        (
            "[IO.Compression.ZipFile]",
            "4.0",
            "System.IO.Compression.ZipFile is .NET Framework 4.5, which WMF 4.0 requires",
            r"\bIO\.Compression\.ZipFile\b",
        ),
        (
            "&& / || (pipeline chain operators)",
            "7.0",
            f"{_ABOUT}/about_pipeline_chain_operators: PowerShell 7; Windows PowerShell "
            "refuses them",
            r"&&|\|\|",
        ),
    )
)

FEATURES: tuple[Feature, ...] = (
    *CMDLETS,
    *MODULES,
    *PARAMETERS,
    WHERE_SIMPLE,
    FOREACH_SIMPLE,
    *AUTOLOAD.values(),
    *(feature for feature, _ in SYNTAX),
)

_BY_CMDLET = {f.name.lower(): f for f in CMDLETS}
_MODULE_BY_NAME = {f.name.lower(): f for f in MODULES}
_PARAMETERS_OF: dict[str, list[Feature]] = {}
for _p in PARAMETERS:
    _PARAMETERS_OF.setdefault((_p.cmdlet or "").lower(), []).append(_p)

# Aliases of the cmdlets whose parameters are in the table, as PowerShell 2.0 defines them.
# `foreach`, `%` and `?` are read as commands only right after a `|`.
_ALIASES = {
    "gci": "get-childitem",
    "dir": "get-childitem",
    "ls": "get-childitem",
    "gc": "get-content",
    "cat": "get-content",
    "type": "get-content",
    "gi": "get-item",
    "ri": "remove-item",
    "rm": "remove-item",
    "del": "remove-item",
    "erase": "remove-item",
    "rd": "remove-item",
    "rmdir": "remove-item",
    "sc": "set-content",
    "ac": "add-content",
    "epcsv": "export-csv",
    "tee": "tee-object",
    "gps": "get-process",
    "ps": "get-process",
    "select": "select-object",
    "where": "where-object",
    "?": "where-object",
    "foreach": "foreach-object",
    "%": "foreach-object",
    "ipmo": "import-module",
}
_AFTER_PIPE_ONLY = {"foreach", "%", "?"}


# -- reading a template as PowerShell reads it ---------------------------------------------

_SINGLE = "'\u2018\u2019\u201a\u201b"
_DOUBLE = '"\u201c\u201d\u201e'
_MAX_NESTING = 50


def _expression_end(text: str, start: int, closer: str) -> int:
    """Just past the `closer` that ends the Jinja tag opened at `start`."""
    i, n = start + 2, len(text)
    while i < n:
        c = text[i]
        if c in "'\"":
            close = text.find(c, i + 1)
            i = n if close == -1 else close + 1
            continue
        if text.startswith(closer, i):
            return i + len(closer)
        i += 1
    return n


_RAW_OPEN = re.compile(r"\{%-?\s*raw\s*-?%\}")
_RAW_CLOSE = re.compile(r"\{%-?\s*endraw\s*-?%\}")


def without_jinja(text: str) -> str:
    """The template as the shell sees it, with every offset kept: each `{{ ... }}` becomes a
    word of `x` (a quoted value once rendered), `{% ... %}` and `{# ... #}` become blanks."""
    out = list(text)
    i, n = 0, len(text)

    def fill(a: int, b: int, char: str) -> None:
        for k in range(a, min(b, n)):
            if out[k] not in "\r\n":
                out[k] = char

    while i < n:
        j = text.find("{", i)
        if j == -1 or j + 1 >= n:
            break
        kind = text[j + 1]
        if kind == "{":
            end = _expression_end(text, j, "}}")
            fill(j, end, "x")
        elif kind == "%":
            raw = _RAW_OPEN.match(text, j)
            if raw:
                fill(j, raw.end(), " ")
                close = _RAW_CLOSE.search(text, raw.end())
                if close is None:
                    break
                fill(close.start(), close.end(), " ")
                i = close.end()
                continue
            end = _expression_end(text, j, "%}")
            fill(j, end, " ")
        elif kind == "#":
            shut = text.find("#}", j + 2)
            end = n if shut == -1 else shut + 2
            fill(j, end, " ")
        else:
            end = j + 1
        i = end
    return "".join(out)


_BLANKABLE = re.compile(r"[^\r\n]")
# What may change the reading of PowerShell code; everything between is left as it is.
_CODE_SPECIAL = re.compile("\\s+|[<#`@$()\\-;{}|&,=" + _SINGLE + _DOUBLE + "]")
_DOUBLE_SPECIAL = re.compile("[`$" + _DOUBLE + "]")
_SINGLE_END = re.compile("[" + _SINGLE + "]")


class _Masker:
    """PowerShell code with comments and the text of strings blanked (quotes kept, `$(...)`
    inside double quotes kept as code), every offset and line break where it was."""

    def __init__(self, text: str) -> None:
        self.t, self.n = text, len(text)
        self.out = list(text)
        self.nesting = 0

    def blank(self, a: int, b: int) -> None:
        b = min(b, self.n)
        if a < b:
            self.out[a:b] = _BLANKABLE.sub(" ", self.t[a:b])

    def line_end(self, i: int) -> int:
        end = self.t.find("\n", i)
        return self.n if end == -1 else end

    def code(self, i: int, in_subexpression: bool = False) -> int:
        if self.nesting >= _MAX_NESTING:
            self.blank(i, self.n)
            return self.n
        self.nesting += 1
        try:
            return self._code(i, in_subexpression)
        finally:
            self.nesting -= 1

    def _code(self, i: int, in_subexpression: bool) -> int:
        t, n = self.t, self.n
        depth, token_start = 0, True
        while i < n:
            special = _CODE_SPECIAL.search(t, i)
            if special is None:
                return n
            if special.start() > i:
                token_start, i = False, special.start()
            c = t[i]
            if c.isspace():
                token_start, i = True, special.end()
            elif t.startswith("<#", i):
                end = t.find("#>", i + 2)
                end = n if end == -1 else end + 2
                self.blank(i, end)
                token_start, i = True, end
            elif c == "#" and token_start:
                end = self.line_end(i)
                self.blank(i, end)
                i = end
            elif c == "`":
                token_start, i = False, i + 2
            elif c == "@" and t[i + 1 : i + 2] in tuple(_SINGLE + _DOUBLE) and self.here_opens(i):
                token_start, i = False, self.here_string(i)
            elif c in _SINGLE:
                token_start, i = False, self.single(i)
            elif c in _DOUBLE:
                token_start, i = False, self.double(i)
            elif c == "$" and t.startswith("{", i + 1):
                end = t.find("}", i + 2)
                token_start, i = False, (n if end == -1 else end + 1)
            elif token_start and t.startswith("--%", i):
                end = self.line_end(i)
                self.blank(i + 3, end)
                i = end
            else:
                if c == "(":
                    depth += 1
                elif c == ")":
                    if in_subexpression and depth == 0:
                        return i + 1
                    depth = max(0, depth - 1)
                token_start, i = c in ";(){}|&,=", i + 1
        return n

    def here_opens(self, i: int) -> bool:
        rest = self.t[i + 2 : self.line_end(i)]
        return not rest.strip()

    def here_string(self, i: int) -> int:
        t, n = self.t, self.n
        quote = t[i + 1]
        closers = _SINGLE if quote in _SINGLE else _DOUBLE
        j = self.line_end(i) + 1
        body_start = j
        while j < n:
            if t[j : j + 1] in tuple(closers) and t[j + 1 : j + 2] == "@":
                break
            j = self.line_end(j) + 1
        close = min(j, n)
        if quote in _SINGLE:
            self.blank(body_start, close)
        else:
            self.double_body(body_start, close)
        return min(close + 2, n)

    def single(self, i: int) -> int:
        t, n = self.t, self.n
        j = i + 1
        while j < n:
            found = _SINGLE_END.search(t, j)
            if found is None:
                j = n
                break
            j = found.start()
            if j + 1 < n and t[j + 1] in _SINGLE:
                j += 2
                continue
            break
        self.blank(i + 1, j)
        return j + 1

    def double(self, i: int) -> int:
        return self.double_body(i + 1, self.n, closing=True)

    def double_body(self, j: int, stop: int, closing: bool = False) -> int:
        """Blank string text from `j` to `stop` (or its closing quote), keeping `$(...)`."""
        t = self.t
        while j < stop:
            found = _DOUBLE_SPECIAL.search(t, j, stop)
            if found is None:
                self.blank(j, stop)
                return stop
            self.blank(j, found.start())
            j = found.start()
            c = t[j]
            if c == "`":
                self.blank(j, j + 2)
                j += 2
            elif c in _DOUBLE:
                if not closing:
                    self.blank(j, j + 1)
                    j += 1
                elif j + 1 < stop and t[j + 1] in _DOUBLE:
                    self.blank(j, j + 2)
                    j += 2
                else:
                    return j + 1
            elif t[j + 1 : j + 2] == "(":
                j = min(self.code(j + 2, True), stop)
            else:
                self.blank(j, j + 1)
                j += 1
        return stop


def masked(source: str) -> str:
    """The template's PowerShell code only: Jinja, comments and string text blanked."""
    masker = _Masker(without_jinja(source))
    masker.code(0)
    return "".join(masker.out)


# -- finding uses --------------------------------------------------------------------------

_COMMAND_WORD = re.compile(r"(?<![\w$.:\\/@-])([A-Za-z][\w]*(?:-[A-Za-z][\w]*)?|[?%])(?![\w-])")
_KEYWORD_BEFORE = re.compile(
    r"(?:^|[^\w-])(?:in|return|throw|else|do|try|finally)\s*$", re.I | re.M
)
_FUNCTION = re.compile(r"(?<![\w-])function\s+([A-Za-z][\w-]*)", re.IGNORECASE)
_PARAMETER = re.compile(r"(?<!\S)(-[A-Za-z][A-Za-z0-9]*)(?=[\s:]|$)")
_IF = re.compile(r"(?<![\w-])(?:else)?if\s*\(", re.IGNORECASE)
_VERSION_TEST = re.compile(r"\$PSVersionTable\.PSVersion\.Major\s*-(ge|gt)\s*(\d+)", re.IGNORECASE)
_TRY = re.compile(r"(?<![\w-])try\s*\{", re.IGNORECASE)
_CATCH = re.compile(
    r"\s*catch\b\s*(\[\s*(?:System\.)?Management\.Automation\.CommandNotFoundException\s*\])?",
    re.IGNORECASE,
)
_NAME = re.compile(r"(?<![\w-])([A-Za-z]+-[A-Za-z][A-Za-z0-9]*)(?![\w-])")


def _previous(code: str, i: int) -> tuple[int, str]:
    """The index and character of the last non-blank before `i` on the same logical line."""
    j = i - 1
    while j >= 0 and code[j] in " \t":
        j -= 1
    return j, (code[j] if j >= 0 else "")


def _at_command_position(code: str, i: int, after_pipe_only: bool = False) -> bool:
    j, c = _previous(code, i)
    if after_pipe_only:
        return c == "|"
    if c in ("", "|", ";", "(", "{", "}", "=", "&"):
        return True
    if c in "\r\n":
        k, before = _previous(code, j)
        while before == "\r":
            k, before = _previous(code, k)
        return before != "`"
    line_start = code.rfind("\n", max(0, i - 40), i) + 1
    return bool(_KEYWORD_BEFORE.search(code, max(line_start, i - 40), i))


def _element_end(code: str, i: int) -> int:
    """The end of the pipeline element that goes on at `i`."""
    depth, n = 0, len(code)
    while i < n:
        c = code[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            if depth == 0:
                return i
            depth -= 1
        elif depth == 0 and c in "|;":
            return i
        elif depth == 0 and c == "\n":
            j, before = _previous(code, i)
            while before == "\r":
                j, before = _previous(code, j)
            if before != "`":
                return i
        i += 1
    return n


def _top_level(code: str, start: int, end: int) -> str:
    """code[start:end] with everything inside brackets blanked."""
    out, depth = [], 0
    for c in code[start:end]:
        if c in "([{":
            depth += 1
            out.append(" ")
        elif c in ")]}":
            depth = max(0, depth - 1)
            out.append(" ")
        else:
            out.append(c if depth == 0 else (" " if c != "\n" else "\n"))
    return "".join(out)


def _matching(code: str, i: int, opener: str, closer: str) -> int:
    """The index of the `closer` matching the `opener` at `i` (len(code) if none)."""
    depth = 0
    for m in re.finditer(f"[{re.escape(opener)}{re.escape(closer)}]", code[i:]):
        depth += 1 if m[0] == opener else -1
        if depth == 0:
            return i + m.start()
    return len(code)


def _classic_first(element: str, allowed: tuple[str, ...]) -> bool:
    """Whether the element after Where-Object / ForEach-Object starts in 2.0's syntax: a
    script block, a variable or expression, or one of 2.0's own parameters."""
    first = element.lstrip(" \t`\r\n")
    if not first or first[0] in "{$(@":
        return True
    if first[0] == "-":
        name = re.match(r"-([A-Za-z]*)", first)
        word = (name[1] if name else "").lower()
        return bool(word) and any(len(word) >= 2 and full.startswith(word) for full in allowed)
    return False


@dataclass
class _Guard:
    start: int
    end: int
    names: set[str]
    modules: set[str]
    major: int | None
    commands: bool = False  # a `try` whose `catch` takes a missing command

    def covers(self, use: Use) -> bool:
        if not self.start <= use.offset < self.end:
            return False
        f = use.feature
        if self.commands and (f.kind in ("cmdlet", "module") or f in AUTOLOAD.values()):
            return True
        if f.name.lower() in self.names or (f.cmdlet or "").lower() in self.names:
            return True
        if f.module and f.module.lower() in self.modules:
            return True
        return self.major is not None and f.windows is None and _key(f.powershell)[0] <= self.major


def _guards(code: str, plain: str) -> list[_Guard]:
    found = []
    for m in _IF.finditer(code):
        open_paren = m.end() - 1
        close = _matching(code, open_paren, "(", ")")
        condition, words = code[open_paren:close], plain[open_paren:close]
        if re.search(r"-not\b|!", condition, re.IGNORECASE):
            continue
        brace = close + 1
        while brace < len(code) and code[brace] in " \t\r\n":
            brace += 1
        if brace >= len(code) or code[brace] != "{":
            continue
        end = _matching(code, brace, "{", "}")
        names: set[str] = set()
        modules: set[str] = set()
        if re.search(r"\bGet-Command\b", condition, re.IGNORECASE):
            names = {n.lower() for n in _NAME.findall(words)} - {"get-command"}
            modules = {(_BY_CMDLET[n].module or "").lower() for n in names if n in _BY_CMDLET} - {
                ""
            }
        if re.search(r"\bGet-Module\b", condition, re.IGNORECASE):
            modules |= {
                name
                for name in _MODULE_BY_NAME
                if re.search(rf"(?<![\w.]){re.escape(name)}(?![\w.])", words, re.IGNORECASE)
            }
        version = _VERSION_TEST.search(condition)
        major = None
        if version:
            major = int(version[2]) + (1 if version[1].lower() == "gt" else 0)
        if names or modules or major is not None:
            found.append(_Guard(brace, end, names, modules, major))
    for m in _TRY.finditer(code):
        brace = m.end() - 1
        end = _matching(code, brace, "{", "}")
        catch = _CATCH.match(code, end + 1)
        if catch is None:
            continue
        one_statement = not re.search(r"[;\n]", _top_level(code, brace + 1, end))
        if one_statement or catch[1]:
            found.append(_Guard(brace, end, set(), set(), None, commands=True))
    return found


_ASSIGNED = re.compile(r"[ \t]*=")
_INTERESTING = frozenset({*_BY_CMDLET, *_PARAMETERS_OF, "where-object", "foreach-object"}) | {
    "import-module"
}


def _command_words(code: str) -> Iterator[re.Match[str]]:
    """The words of masked code that stand where a command does."""
    for m in _COMMAND_WORD.finditer(code):
        if _ASSIGNED.match(code, m.end()):
            continue  # a hashtable key or a property set: `@{ type = 1 }`
        if _at_command_position(code, m.start(), m[1].lower() in _AFTER_PIPE_ONLY):
            yield m


def command_words(source: str) -> list[tuple[int, str]]:
    """Every word of a PowerShell template that PowerShell would run as a command (a cmdlet,
    function, alias or program name written bare), with its offset, as the detector reads
    them."""
    return [(m.start(), m[1]) for m in _command_words(masked(source))]


class _Lines:
    def __init__(self, text: str) -> None:
        self.starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def use(self, offset: int, feature: Feature) -> Use:
        line = bisect.bisect_right(self.starts, offset)
        return Use(line, offset - self.starts[line - 1] + 1, offset, feature)


def features_used(source: str) -> list[Use]:
    """Every use of a feature in the FEATURES table in a PowerShell command template, in
    order; uses guarded by a test for that very feature are left out."""
    plain = without_jinja(source)
    code = masked(source)
    lines = _Lines(code)
    defined = {name.lower() for name in _FUNCTION.findall(code)}
    uses: list[Use] = []
    imported: dict[str, int] = {}
    first_needing_import: dict[str, int] = {}
    for m in _command_words(code):
        word = m[1].lower()
        if word in defined:
            continue
        canonical = _ALIASES.get(word, word)
        if canonical not in _INTERESTING:
            continue
        end = _element_end(code, m.end())
        cmdlet = _BY_CMDLET.get(canonical)
        if cmdlet is not None:
            uses.append(lines.use(m.start(), cmdlet))
            module = (cmdlet.module or "").lower()
            if (
                module in AUTOLOAD
                and cmdlet.powershell == LAUNCHER_MINIMUM
                and module not in first_needing_import
            ):
                first_needing_import[module] = m.start()
        top = _top_level(code, m.end(), end)
        given: dict[str, int] = {}
        for flag in _PARAMETER.finditer(top):
            given.setdefault(flag[1].lower(), m.end() + flag.start())
        for parameter in _PARAMETERS_OF.get(canonical, []):
            for name in (parameter.name, *parameter.aliases):
                if name.lower() in given:
                    uses.append(lines.use(given[name.lower()], parameter))
                    break
        element = code[m.end() : end]
        if canonical == "where-object" and not _classic_first(
            element, ("filterscript", "inputobject")
        ):
            uses.append(lines.use(m.start(), WHERE_SIMPLE))
        if canonical == "foreach-object" and not _classic_first(
            element, ("process", "begin", "end", "inputobject")
        ):
            uses.append(lines.use(m.start(), FOREACH_SIMPLE))
        if canonical == "import-module":
            words = plain[m.end() : end]
            for name, module_feature in _MODULE_BY_NAME.items():
                if re.search(rf"(?<![\w.\\/-]){re.escape(name)}(?![\w.-])", words, re.I):
                    uses.append(lines.use(m.start(), module_feature))
                    imported.setdefault(name, m.start())
    for module, at in first_needing_import.items():
        if imported.get(module, len(code)) > at:
            uses.append(lines.use(at, AUTOLOAD[module]))
    for feature, pattern in SYNTAX:
        for m in pattern.finditer(code):
            offset = m.start() + (len(m[0]) - len(m[0].lstrip(";{} \t\r\n")))
            uses.append(lines.use(offset, feature))
    guards = _guards(code, plain)
    kept = [u for u in uses if not any(g.covers(u) for g in guards)]
    unique = {(u.offset, u.feature.kind, u.feature.name): u for u in kept}
    return sorted(unique.values(), key=lambda u: (u.offset, u.feature.kind, u.feature.name))


def lacks(feature: Feature, powershell: str, windows: str | None = None) -> bool:
    """Whether a host with this PowerShell (and Windows; None: any Windows that runs this
    PowerShell) may lack the feature."""
    if _newer(feature.powershell, powershell):
        return True
    if feature.windows is None:
        return False
    floor = _highest(windows, _first(_POWERSHELL_WINDOWS, powershell))
    return _newer(feature.windows, floor)


def too_new(source: str, version: str, windows: str | None = None) -> list[Use]:
    """The uses in `source` that a host with PowerShell `version` ("2.0": a command that can be
    sent to PowerShell 2.0) on Windows `windows` (NT version; None: any) may lack."""
    return [u for u in features_used(source) if lacks(u.feature, version, windows)]


def explain(use: Use, at: Reach) -> str:
    """What to tell the author about a use too new for where the command can be sent."""
    f = use.feature
    want = []
    powershell = _highest(f.powershell, at.powershell) or LAUNCHER_MINIMUM
    if _newer(powershell, LAUNCHER_MINIMUM):
        want.append(f'powershell: "{powershell}"')
    if f.windows and lacks(f, at.powershell, at.windows):
        want.append(f'windows: "{f.windows}"')
    return (
        f"{f.label}: needs {f.needs()}, and this command can be sent to {at.text()}; give it "
        f"a variant with `when: {{{', '.join(want)}}}` (and another for older hosts) "
        f"[{f.source}]"
    )


# -- cmd.exe scripts -----------------------------------------------------------------------

_VERBS = frozenset(
    """add approve assert backup block checkpoint clear close compare complete compress confirm
    connect convert convertfrom convertto copy debug deny disable disconnect dismount edit
    enable enter exit expand export find foreach format get grant group hide import initialize
    install invoke join limit lock measure merge mount move new open optimize out ping pop
    protect publish push read receive redo register remove rename repair request reset resize
    resolve restart restore resume revoke save search select send set show skip sort split
    start step stop submit suspend switch sync tee test trace unblock undo uninstall unlock
    unprotect unpublish unregister update use wait watch where write""".split()  # noqa: SIM905
)
_QUIET = frozenset({"echo", "echo.", "rem", "title", "set", "goto", "::", "pause", "cls"})
_POWERSHELL_EXE = re.compile(
    r"""(?i)^["']?(?:[^\s"'&|()]*[\\/])?(?:powershell|pwsh)(?:\.exe)?["']?$"""
)
_POWERSHELL_WORD = re.compile(
    r"""(?i)(?<![\w.-])(?:powershell|pwsh)(?:\.exe)?["']?(?=\s+[-/]|\s*$|\s*["'])"""
)
_TYPE_CALL = re.compile(r"\[[A-Za-z_][\w.]*\]::")


def _cmd_segments(line: str) -> list[str]:
    """A cmd line split at the unquoted `&`, `&&`, `||` and `|`."""
    parts, current, quoted, i = [], [], False, 0
    while i < len(line):
        c = line[i]
        if c == "^" and not quoted:
            current.append(line[i : i + 2])
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        if not quoted and c in "&|":
            parts.append("".join(current))
            current = []
            while i + 1 < len(line) and line[i + 1] in "&|":
                i += 1
        else:
            current.append(c)
        i += 1
    parts.append("".join(current))
    return parts


def _unquoted(text: str) -> str:
    """`text` with what stands inside double quotes blanked."""
    return re.sub(r'"[^"]*("|$)', lambda m: '"' + " " * (len(m[0]) - 2) + m[1], text)


def _cmd_command_findings(segment: str, nesting: int = 0) -> list[str]:
    """Why a cmd command (one segment of a line) is PowerShell, if it is."""
    text = segment.strip().lstrip("@").strip()
    while text.startswith("("):
        text = text[1:].lstrip()
    text = text.rstrip(")").strip()
    if not text or nesting > 8:
        return []
    first = text.split()[0]
    word = first.lower()
    if word in _QUIET or word.startswith(("echo.", "echo(", "rem ")):
        return []
    rest = text[len(first) :].strip()
    found: list[str] = []
    if _POWERSHELL_EXE.match(first):
        return [f"runs {first.strip(chr(34))}"]
    if word == "for":
        inner = re.search(r"\bin\s*\(\s*'([^']*)'", text, re.IGNORECASE)
        if inner:
            found += _cmd_command_findings(inner[1], nesting + 1)
        body = re.search(r"\)\s+do\s+(.*)$", text, re.IGNORECASE)
        if body:
            found += _cmd_command_findings(body[1], nesting + 1)
        return found
    if word == "if":
        return found + _cmd_command_findings(_after_condition(rest), nesting + 1)
    if word in ("else", "do"):
        return _cmd_command_findings(rest, nesting + 1)
    if word in ("cmd", "cmd.exe", "start", "call"):
        args = re.sub(r'^(?:\s*(?:/[A-Za-z]+|""))*', "", rest).strip()
        if args.startswith('"') and args.endswith('"') and word.startswith("cmd"):
            args = args[1:-1]
        return _cmd_command_findings(args, nesting + 1)
    verb_noun = re.fullmatch(r"([A-Za-z]+)-([A-Za-z][A-Za-z0-9]*)", first)
    if verb_noun and verb_noun[1].lower() in _VERBS:
        found.append(f"the cmdlet {first}")
    elif first.startswith("$") and re.match(r"\$[\w:]+", first):
        found.append(f"the PowerShell variable {first.split('=')[0]}")
    plain = _unquoted(text)
    if _TYPE_CALL.search(plain):
        found.append("a .NET static call [type]::")
    if _POWERSHELL_WORD.search(plain):
        found.append("runs powershell.exe")
    return found


def _after_condition(rest: str) -> str:
    """What an `if` runs: its text after the condition."""
    tokens = rest.split()
    i = 0
    while i < len(tokens) and tokens[i].lower() in ("/i", "not"):
        i += 1
    if i < len(tokens) and tokens[i].lower() in ("exist", "defined", "errorlevel"):
        i += 2
    elif i < len(tokens) and "==" in tokens[i]:
        i += 1
    else:
        i += 3
    return " ".join(tokens[i:])


def powershell_in_cmd(source: str) -> list[tuple[int, str]]:
    """The lines of a cmd.exe script that hold PowerShell, with why: a `powershell.exe` (or
    pwsh) command, a cmdlet (Verb-Noun) run as a command, a `$variable` statement, a
    `[type]::` call. `rem` and `::` lines and `echo` text are not read."""
    found: list[tuple[int, str]] = []
    for n, line in enumerate(without_jinja(source).splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("::") or re.match(r"@?rem(\s|$)", text, re.IGNORECASE):
            continue
        reasons: list[str] = []
        for segment in _cmd_segments(text):
            for part in re.split(r"(?<=\))\s*else\s*(?=\()", segment, flags=re.IGNORECASE):
                reasons += _cmd_command_findings(part)
        if reasons:
            found.append((n, ", ".join(dict.fromkeys(reasons))))
    return found


# -- for validate --------------------------------------------------------------------------


def version_problems(source: str, shell: str, when: When | None) -> list[tuple[int, str]]:
    """What `validate` warns about in one command template: for PowerShell, the features the
    oldest host it can be sent to lacks; for cmd, any PowerShell at all. (line, message)."""
    if shell == "cmd":
        return [
            (
                line,
                f"cmd line {line} is PowerShell ({why}): a cmd variant is for hosts without "
                "PowerShell; use cmd.exe commands only, or make it a PowerShell variant",
            )
            for line, why in powershell_in_cmd(source)
        ]
    if shell != "powershell":
        return []
    at = reach(when)
    return [
        (u.line, f"PowerShell line {u.line}: {explain(u, at)}")
        for u in too_new(source, at.powershell, at.windows)
    ]
