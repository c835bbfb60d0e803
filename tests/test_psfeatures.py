"""The PowerShell feature table, the detector that finds its features in a command template,
the cmd.exe check, and the walk over every shipped step: no variant uses a feature the hosts
it can be sent to lack, and no cmd variant holds PowerShell."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import tree_sitter

from irtool.model.facts import When
from irtool.model.loader import Kind, load, load_runbook
from irtool.model.psfeatures import (
    AUTOLOAD,
    CMDLETS,
    FEATURES,
    FOREACH_SIMPLE,
    MODULES,
    PARAMETERS,
    SYNTAX,
    WHERE_SIMPLE,
    Feature,
    Reach,
    command_words,
    features_used,
    masked,
    powershell_in_cmd,
    reach,
    too_new,
    version_problems,
    without_jinja,
)
from irtool.model.runbook import Fragment, Runbook
from irtool.model.steps import CollectStep, Shell, StepBase, variant_sources
from tests.conftest import ROOT
from tests.support.powershell import parser


def names(source: str) -> list[str]:
    return [u.feature.label for u in features_used(source)]


def located(source: str) -> list[tuple[int, str]]:
    return [(u.line, u.feature.label) for u in features_used(source)]


# -- the table ------------------------------------------------------------------------------


def test_every_entry_has_a_version_and_a_source() -> None:
    assert len(CMDLETS) >= 40
    for feature in FEATURES:
        assert feature.kind in ("cmdlet", "parameter", "module", "syntax"), feature
        assert feature.name.strip(), feature
        major, _, minor = feature.powershell.partition(".")
        assert major.isdigit() and minor.isdigit(), feature
        assert (2, 0) <= (int(major), int(minor)) <= (7, 0), feature
        assert len(feature.source) > 10, feature
        if feature.windows is not None:
            assert feature.windows in ("6.0", "6.1", "6.2", "6.3", "10.0"), feature
        if feature.kind == "parameter":
            assert feature.cmdlet and feature.name.startswith("-"), feature
    keys = [(f.kind, f.cmdlet, f.name.lower()) for f in FEATURES]
    assert len(keys) == len(set(keys)), "an entry is listed twice"


@pytest.mark.parametrize(
    ("name", "powershell", "windows"),
    [
        ("Get-NetTCPConnection", "3.0", "6.2"),
        ("Get-ScheduledTask", "3.0", "6.2"),
        ("Get-NetFirewallRule", "3.0", "6.2"),
        ("New-NetFirewallRule", "3.0", "6.2"),
        ("Remove-NetFirewallRule", "3.0", "6.2"),
        ("Set-NetFirewallProfile", "3.0", "6.2"),
        ("Get-CimInstance", "3.0", None),
        ("ConvertTo-Json", "3.0", None),
        ("ConvertFrom-Json", "3.0", None),
        ("Invoke-WebRequest", "3.0", None),
        ("Get-FileHash", "4.0", None),
        ("Compress-Archive", "5.0", None),
        ("Get-LocalUser", "5.1", "10.0"),
        ("Get-MpComputerStatus", "5.0", "10.0"),
        ("Get-Website", "2.0", "6.1"),
        ("Resolve-DnsName", "3.0", "6.2"),
        ("Test-NetConnection", "4.0", "6.3"),
    ],
)
def test_the_issues_examples_are_in_the_table(
    name: str, powershell: str, windows: str | None
) -> None:
    entry = next(f for f in CMDLETS if f.name == name)
    assert (entry.powershell, entry.windows) == (powershell, windows)


def test_pscustomobject_is_powershell_3() -> None:
    entry = next(f for f, _ in SYNTAX if f.name == "[pscustomobject]")
    assert entry.powershell == "3.0"


@pytest.mark.parametrize("feature", CMDLETS, ids=lambda f: f.name)
def test_every_cmdlet_of_the_table_is_found(feature: Feature) -> None:
    name, module = feature.name, (feature.module or "").lower()
    autoload = [AUTOLOAD[module].label] if module in AUTOLOAD else []
    if feature.powershell != "2.0":
        autoload = []  # a 3.0 cmdlet is flagged as such; autoloading comes with it
    assert names(f"$x = {name} -ErrorAction Stop") == [name, *autoload]
    assert names(f"# {name}\n'{name}'\nWrite-Output \"{name} is not run\"") == []


@pytest.mark.parametrize("feature", PARAMETERS, ids=lambda f: f"{f.cmdlet}{f.name}")
def test_every_parameter_of_the_table_is_found_after_its_cmdlet(feature: Feature) -> None:
    cmdlet, flag = feature.cmdlet, feature.name
    label = f"{cmdlet} {flag}"
    assert label in names(f"{cmdlet} -Path x {flag}")
    # The same flag after another cmdlet, or in a string, is not it.
    assert label not in names(f"Write-Host x {flag}")
    assert label not in names(f"{cmdlet} -Path '{flag}'")


SYNTAX_SAMPLES = {
    "[pscustomobject]": "$o = [PSCustomObject]@{ a = 1 }",
    "[ordered]": "$h = [ordered]@{ a = 1 }",
    "$PSItem": "$list | ForEach-Object { $PSItem.Name }",
    "$using:": "Invoke-Command -Session $s { $using:path }",
    "-in / -notin": "if ($name -notin $allowed) { 'no' }",
    "-shl / -shr": "$v = 1 -shl 4",
    "$PSScriptRoot / $PSCommandPath outside a module": "Join-Path $PSScriptRoot 'x'",
    "$PSDefaultParameterValues": "$PSDefaultParameterValues['*:ErrorAction'] = 'Stop'",
    "[ciminstance] / Microsoft.Management.Infrastructure": "[CimInstance[]]$all = @()",
    ".Where() / .ForEach() methods": "$all.Where({ $_.Enabled })",
    "class definitions": "class Finding {\n  [string]$Path\n}",
    "enum definitions": "enum Level { Low; High }",
    "::new()": "$list = [System.Collections.Generic.List[string]]::new()",
    "using namespace / using module": "using namespace System.IO\nGet-Item x",
    "$PSEdition": "if ($PSEdition -eq 'Desktop') { 1 }",
    "[string]::IsNullOrWhiteSpace()": "if ([string]::IsNullOrWhiteSpace($v)) { 1 }",
    "[IO.File]::ReadLines() / [IO.Directory]::Enumerate*()": "[IO.File]::ReadLines($p)",
    "[Environment]::Is64BitOperatingSystem / Is64BitProcess": "[Environment]::Is64BitProcess",
    "[IO.Compression.ZipFile]": "[IO.Compression.ZipFile]::OpenRead($p)",
    "[Microsoft.Win32.RegistryKey]::OpenBaseKey()": (
        "$hive = [Microsoft.Win32.RegistryKey]::OpenBaseKey('LocalMachine', 'Registry64')"
    ),
    "[Net.SecurityProtocolType]::Tls12 / Tls11": (
        "[Net.ServicePointManager]::SecurityProtocol = [Net.SecurityProtocolType]::Tls12"
    ),
    "[Parameter(Mandatory)] without =$true": (
        "function Get-X {\n  param([Parameter(Position = 0, Mandatory)][string]$Path)\n}"
    ),
    "&& / || (pipeline chain operators)": "Get-Item x && Get-Item y",
}


def test_every_syntax_feature_has_a_sample_and_is_found_in_it() -> None:
    assert set(SYNTAX_SAMPLES) == {f.name for f, _ in SYNTAX}
    for name, sample in SYNTAX_SAMPLES.items():
        assert name in names(sample), (name, names(sample))
        quoted = sample.replace("'", "''")
        assert name not in names(f"Write-Output '{quoted}'"), name
        assert name not in names("# " + sample.replace("\n", "\n# ")), name


def test_attribute_arguments_with_their_value_are_powershell_2() -> None:
    assert names("param([Parameter(Mandatory = $true, ValueFromPipeline = $true)]$x)") == []
    assert names("param([Parameter(Mandatory=$true)][string]$Path)") == []


def test_modules_are_found_where_they_are_imported() -> None:
    for module in MODULES:
        assert module.label in names(f"Import-Module {module.name} -ErrorAction Stop")
        assert module.label in names(f"Import-Module -Name '{module.name}'")
        assert module.label not in names(f"Get-Module -ListAvailable {module.name}")


# -- the detector -----------------------------------------------------------------------------


def test_uses_are_found_with_their_line() -> None:
    source = "\n".join(
        [
            "$ErrorActionPreference = 'Stop'",
            "$p = Get-CimInstance Win32_Process",
            "$h = (Get-FileHash -Algorithm SHA256 -LiteralPath $f).Hash",
            "foreach ($r in Get-NetFirewallRule -Direction Inbound) { $r.Name }",
            "$rows | ForEach-Object { [pscustomobject]@{ n = $_ } } | ConvertTo-Json",
        ]
    )
    assert located(source) == [
        (2, "Get-CimInstance"),
        (3, "Get-FileHash"),
        (4, "Get-NetFirewallRule"),
        (5, "[pscustomobject]"),
        (5, "ConvertTo-Json"),
    ]
    use = features_used(source)[1]
    assert (use.line, use.column) == (3, 7)


def test_comments_and_strings_are_not_uses() -> None:
    source = "\n".join(
        [
            "# Get-FileHash needs PowerShell 4",
            "<# Get-CimInstance",
            "   [pscustomobject] #>",
            "Write-Output 'Get-NetTCPConnection is not available: using netstat'",
            'throw "Get-ScheduledTask missing on $env:COMPUTERNAME"',
            "$xml = @'",
            "<Task>Get-ScheduledTask</Task>",
            "'@",
            '$text = @"',
            "ConvertTo-Json is $name",
            '"@',
            "$x = 'it''s Get-FileHash'",
            "Get-Item x # Get-Content -Raw",
        ]
    )
    assert names(source) == []


def test_a_subexpression_inside_double_quotes_is_code() -> None:
    assert names('"hash: $((Get-FileHash $f).Hash)"') == ["Get-FileHash"]
    assert names('@"\nhash: $(Get-FileHash $f)\n"@') == ["Get-FileHash"]
    assert names('"name: $($o.Name) (Get-FileHash)"') == []


def test_case_does_not_matter() -> None:
    assert names("get-filehash x") == ["Get-FileHash"]
    assert names("GET-CIMINSTANCE Win32_Service") == ["Get-CimInstance"]
    assert names("$o = [PSCUSTOMOBJECT]@{}") == ["[pscustomobject]"]
    assert names("get-childitem C:\\ -FILE") == ["Get-ChildItem -File"]


def test_names_are_whole_words() -> None:
    assert names("Get-FileHashes x") == []
    assert names("My-Get-FileHash x") == []
    assert names("$Get = 1; $obj.Get-FileHash") == []
    assert names(".\\Get-FileHash.ps1 -Path x") == []


def test_a_parameter_belongs_to_its_own_pipeline_element() -> None:
    assert names("Get-ChildItem $p | Get-Content -Raw") == ["Get-Content -Raw"]
    assert names("Get-ChildItem (Get-Content $list -Raw)") == ["Get-Content -Raw"]
    assert names("Get-Content $p | Select-Object -First 1 -Raw") == []
    assert names("Get-ChildItem $p -Recurse; Write-Output -File") == []
    assert names("Get-ChildItem $p { -File }") == []
    # A line continuation keeps the element going; a plain line break ends it.
    assert located("Get-ChildItem $p -Recurse `\n  -File") == [(2, "Get-ChildItem -File")]
    assert names("Get-ChildItem $p\n-File") == []
    assert names("Get-ChildItem -File:$true $p") == ["Get-ChildItem -File"]


def test_aliases_carry_their_cmdlets_parameters() -> None:
    assert names("gci C:\\inetpub -Recurse -af") == ["Get-ChildItem -File"]
    assert names("dir $root -Directory") == ["Get-ChildItem -Directory"]
    assert names("$t = gc $log -Tail 50") == ["Get-Content -Tail"]
    assert names("$x | Tee-Object -FilePath out.txt -Append") == ["Tee-Object -Append"]
    assert names("$rows | epcsv x.csv -Append") == ["Export-Csv -Append"]
    assert names("ls -Depth 2") == ["Get-ChildItem -Depth"]
    assert names("$dir = 'x'; $type = 1") == []
    assert names("$h = @{\n  type = 'x'\n  dir = $p -File\n}") == []


def test_the_simplified_where_and_foreach_syntax() -> None:
    where, each = WHERE_SIMPLE.label, FOREACH_SIMPLE.label
    assert names("Get-Service | Where-Object Status -eq Running") == [where]
    assert names("Get-Service | ? Status -eq Running") == [where]
    assert names("Get-Service | where -Property Status -Value Running -EQ") == [where]
    assert names("Get-Service | Where-Object { $_.Status -eq 'Running' }") == []
    assert names("Get-Service | ?{ $_.Status -eq 'Running' }") == []
    assert names("Get-Service | Where-Object -FilterScript { $_.Status }") == []
    assert names("Get-Process | ForEach-Object Name") == [each]
    assert names("Get-Process | % Name") == [each]
    assert names("Get-Process | ForEach-Object -MemberName Name") == [each]
    assert names("Get-Process | % { $_.Name }") == []
    assert names("Get-Process | ForEach-Object -Begin { 0 } -Process { 1 }") == []
    assert names("foreach ($p in Get-Process) { $p.Name }") == []
    assert names("$a = 7 % 2") == []


def test_a_cmdlet_named_as_an_argument_is_not_a_use() -> None:
    assert names("Get-Command -Name Get-FileHash -ErrorAction SilentlyContinue") == []
    assert names("Get-Help Get-CimInstance") == []


def test_a_function_of_the_same_name_is_the_scripts_own() -> None:
    source = "function Get-FileHash($Path) { 'md5' }\nGet-FileHash x"
    assert names(source) == []


def test_guarded_uses_are_not_reported() -> None:
    guarded = "\n".join(
        [
            "if (Get-Command -Name New-NetFirewallRule -ErrorAction SilentlyContinue) {",
            "    if (-not (Get-NetFirewallRule -Name $rule -ErrorAction SilentlyContinue)) {",
            "        New-NetFirewallRule -Name $rule -Direction Inbound -Action Block",
            "    }",
            "    foreach ($p in Get-NetFirewallProfile) { $p.Enabled }",
            "} else {",
            "    netsh advfirewall firewall add rule name=$rule dir=in action=block",
            "}",
        ]
    )
    assert names(guarded) == []
    # The guard covers its own module, not others, and not the else branch.
    assert names(guarded.replace("netsh advfirewall", "Get-NetTCPConnection; netsh")) == [
        "Get-NetTCPConnection"
    ]
    assert names(
        "if (Get-Command Get-NetFirewallRule -EA 0) { Get-ScheduledTask } else { Get-FileHash x }"
    ) == ["Get-ScheduledTask", "Get-FileHash"]
    # A negated test guards nothing.
    assert names("if (-not (Get-Command Get-FileHash -EA 0)) { Get-FileHash x }") == [
        "Get-FileHash"
    ]
    assert names("if (Get-Module -ListAvailable ScheduledTasks) { Get-ScheduledTask }") == []
    assert names("if ($PSVersionTable.PSVersion.Major -ge 3) { Get-CimInstance x }") == []
    assert names("if ($PSVersionTable.PSVersion.Major -ge 3) { Get-FileHash x }") == [
        "Get-FileHash"
    ]
    # A PowerShell version says nothing of the Windows that ships NetTCPIP.
    assert names("if ($PSVersionTable.PSVersion.Major -gt 4) { Get-NetTCPConnection }") == [
        "Get-NetTCPConnection"
    ]


def test_a_missing_command_caught_by_a_narrow_try_is_a_fallback() -> None:
    fallback = (
        "try { $a = @(Get-LocalGroupMember -SID 'S-1-5-32-544') }\n"
        "catch { $a = @(net localgroup administrators) }"
    )
    assert names(fallback) == []
    typed = (
        "try {\n  Get-NetTCPConnection\n  Get-NetUDPEndpoint\n}\n"
        "catch [System.Management.Automation.CommandNotFoundException] { netstat -ano }"
    )
    assert names(typed) == []
    # A try around a whole script is no fallback; nor does it excuse a parameter or syntax.
    broad = "try {\n  Get-NetTCPConnection\n  $x = 1\n} catch { throw }"
    assert names(broad) == ["Get-NetTCPConnection"]
    assert names("try { Get-ChildItem $p -File } catch { }") == ["Get-ChildItem -File"]
    assert names("try { $o = [pscustomobject]@{} } catch { }") == ["[pscustomobject]"]


def test_webadministration_needs_an_import_on_powershell_2() -> None:
    autoload = AUTOLOAD["webadministration"].label
    imported = "Import-Module WebAdministration\nGet-Website | Select-Object Name"
    assert autoload not in names(imported)
    not_imported = "Get-Website | Select-Object Name\nImport-Module WebAdministration"
    assert located(not_imported)[:2] == [(1, "Get-Website"), (1, autoload)]
    assert [u.feature.label for u in too_new(imported, "2.0", "6.1")] == []
    assert autoload in [u.feature.label for u in too_new(not_imported, "2.0", "6.1")]
    assert [u.feature.label for u in too_new(not_imported, "3.0", "6.1")] == []


def test_jinja_is_read_as_the_shell_will_see_it() -> None:
    assert names("$p = {{ path }}\nGet-ChildItem $p -File") == ["Get-ChildItem -File"]
    assert names("{# Get-FileHash would be nicer #}Get-Item {{ path }}") == []
    assert names("Get-Item {{ 'Get-FileHash' }}") == []
    # Both branches of a template `if` are read: either may be sent.
    assert names("{% if x %}Get-FileHash $p{% else %}Get-Item $p{% endif %}") == ["Get-FileHash"]
    assert names("{% raw %}Get-FileHash {{ x }}{% endraw %}") == ["Get-FileHash"]
    assert len(masked("a {{ b }}\n{% c %}d")) == len("a {{ b }}\n{% c %}d")


def test_too_new_compares_versions_and_windows() -> None:
    source = "Get-CimInstance x\nGet-FileHash y\nGet-NetTCPConnection\n$h = [ordered]@{}"

    def labels(powershell: str, windows: str | None = None) -> list[str]:
        return [u.feature.label for u in too_new(source, powershell, windows)]

    assert labels("2.0") == ["Get-CimInstance", "Get-FileHash", "Get-NetTCPConnection", "[ordered]"]
    assert labels("3.0") == ["Get-FileHash", "Get-NetTCPConnection"]
    assert labels("3.0", "6.2") == ["Get-FileHash"]
    # WMF 5.1 on Server 2008 R2 is PowerShell 5.1 without NetTCPIP.
    assert labels("5.1") == ["Get-NetTCPConnection"]
    assert labels("5.1", "6.1") == ["Get-NetTCPConnection"]
    assert labels("4.0", "6.3") == []


def test_reach_reads_what_a_when_implies() -> None:
    assert reach(None) == Reach("2.0", None)
    assert reach(When(powershell="3.0")) == Reach("3.0", None)
    assert reach(When(powershell="1.0")) == Reach("2.0", None)
    assert reach(When(powershell="4.0")) == Reach("4.0", "6.1")  # WMF 4.0: 2008 R2 and later
    assert reach(When(windows="6.2")) == Reach("3.0", "6.2")
    assert reach(When(windows="6.3")) == Reach("4.0", "6.3")
    assert reach(When(windows="10.0")) == Reach("5.0", "10.0")
    assert reach(When(windows="10.0", build=14393)) == Reach("5.1", "10.0")
    assert reach(When(build=9600)) == Reach("4.0", "6.3")
    assert reach(When(iis="7.5")) == Reach("2.0", "6.1")
    assert reach(When(iis="8.5", powershell="5.1")) == Reach("5.1", "6.3")
    assert reach(When(os="windows")) == Reach("2.0", None)


def test_version_problems_word_what_to_do() -> None:
    problems = version_problems("Get-Item x\nGet-FileHash x", "powershell", None)
    assert problems == [
        (
            2,
            "PowerShell line 2: Get-FileHash: needs PowerShell 4.0, and this command can be "
            "sent to PowerShell 2.0 on any Windows; give it a variant with "
            '`when: {powershell: "4.0"}` (and another for older hosts) '
            "[What's New in Windows PowerShell 4.0: Get-FileHash; "
            "learn.microsoft.com/powershell/module/microsoft.powershell.utility/get-filehash]",
        )
    ]
    [(_, message)] = version_problems("Get-NetTCPConnection", "powershell", When(powershell="5.1"))
    assert 'when: {powershell: "5.1", windows: "6.2"}' in message
    assert "PowerShell 3.0 on Windows Server 2012 (NT 6.2) or later" in message
    [(_, message)] = version_problems("Import-Module WebAdministration", "powershell", None)
    assert "needs Windows Server 2008 R2 (NT 6.1) or later" in message
    assert 'when: {windows: "6.1"}' in message
    # IIS 7.5 brings WebAdministration, but PowerShell 2.0 must be told to load it.
    [(line, message)] = version_problems("Get-Website", "powershell", When(iis="7.5"))
    assert line == 1
    assert "without Import-Module WebAdministration (module autoloading)" in message
    assert version_problems("Import-Module WebAdministration", "powershell", When(iis="7.5")) == []
    assert version_problems("Get-FileHash x", "sh", None) == []
    assert version_problems("netstat -ano", "cmd", None) == []
    [(line, message)] = version_problems("ver\npowershell -c 1", "cmd", None)
    assert line == 2
    assert message.startswith("cmd line 2 is PowerShell (runs powershell)")


# -- cmd.exe ----------------------------------------------------------------------------------


def test_powershell_in_cmd_is_found() -> None:
    script = "\n".join(
        [
            "ver",  # 1
            "powershell.exe -NoProfile -Command Get-Process",  # 2
            "%SystemRoot%\\System32\\WindowsPowerShell\\v1.0\\powershell.exe -c 1",  # 3
            'for /f "delims=" %i in (\'powershell -nop -c "Get-Date"\') do @echo %i',  # 4
            'cmd /c "powershell -c 1"',  # 5
            "Get-Service W3SVC",  # 6
            "$x = 1",  # 7
            "echo start & Get-ChildItem C:\\inetpub",  # 8
            "if exist C:\\x (Get-Item C:\\x) else (echo no)",  # 9
            "netstat -ano | Select-String 443",  # 10
            "sc.exe query w3svc && [IO.File]::ReadAllText('x')",  # 11
            "PowerShell -ExecutionPolicy Bypass -File x.ps1",  # 12
        ]
    )
    assert [line for line, _ in powershell_in_cmd(script)] == list(range(2, 13))


def test_cmd_without_powershell_passes() -> None:
    script = "\n".join(
        [
            "rem Get-FileHash is PowerShell 4: use certutil",
            ":: powershell.exe is not on this host",
            "@echo off",
            "echo PowerShell is not installed here: collecting with cmd",
            'certutil -hashfile "%windir%\\System32\\inetsrv\\config\\applicationHost.config" '
            "SHA256",
            "%windir%\\System32\\inetsrv\\appcmd.exe list site /config /xml",
            'netsh advfirewall firewall add rule name="irtool-web-{{ incident.id }}" dir=in '
            "action=block protocol=TCP localport=80,443",
            'findstr /i "powershell Invoke-WebRequest" C:\\inetpub\\logs\\x.log',
            "findstr /i Get-Process %TEMP%\\history.txt",
            "schtasks /query /xml ONE",
            'wevtutil qe Security /q:"*[System[(EventID=4720)]]" /f:xml /c:100',
            "for /f \"tokens=5\" %i in ('netstat -ano ^| findstr :443') do @echo %i",
            "if not exist C:\\irtool md C:\\irtool",
            "reg query HKLM\\SOFTWARE\\Microsoft\\InetStp /v VersionString",
            "{{ path }}",
        ]
    )
    assert powershell_in_cmd(script) == []


# -- the shipped runbooks, every variant of every step ----------------------------------------

RUNBOOKS = sorted((ROOT / "runbooks").glob("*.yaml"))
FRAGMENTS = sorted((ROOT / "runbooks" / "fragments").glob("*.yaml"))


def _steps(path: Path) -> list[StepBase]:
    if path.parent.name == "fragments":
        fragment = load(path, Kind.FRAGMENT).model
        assert isinstance(fragment, Fragment)
        return list(fragment.steps)
    runbook = load_runbook(path).model
    assert isinstance(runbook, Runbook)
    return [step for _, step in runbook.steps()]


def version_findings(steps: list[StepBase]) -> Iterator[str]:
    """Every variant that uses a feature the hosts it can be sent to lack, and every cmd
    variant holding PowerShell: `step path line: what`."""
    for step in steps:
        for path, variant, source, shell in variant_sources(step):
            where = f"{step.id} {'.'.join(str(p) for p in path)}"
            if shell == Shell.POWERSHELL:
                at = reach(variant.when if variant is not None else None)
                for use in too_new(source, at.powershell, at.windows):
                    yield (
                        f"{where} line {use.line}: {use.feature.label} needs "
                        f"{use.feature.needs()}, sent to {at.text()}"
                    )
            elif shell == Shell.CMD:
                for line, why in powershell_in_cmd(source):
                    yield f"{where} line {line}: PowerShell in a cmd variant ({why})"


def _tree_sitter_view(text: str) -> tuple[set[tuple[int, str]], list[bool]]:
    """What tree-sitter-powershell reads in `text`: its Verb-Noun command names (offset, name)
    and, per character, whether it is comment or string text (not code)."""
    data = text.encode()
    assert len(data) == len(text), "ASCII only: offsets are bytes"
    tree = parser().parse(data)
    commands: set[tuple[int, str]] = set()
    inert = [False] * len(text)
    strings = ("verbatim_string_characters", "verbatim_here_string_characters")
    expandable = ("expandable_string_literal", "expandable_here_string_literal")

    def walk(node: tree_sitter.Node) -> None:
        kind = node.type
        start, end = node.start_byte, node.end_byte
        if kind == "command_name":
            name = text[start:end]
            if "-" in name and name.replace("-", "").isalnum():
                commands.add((start, name))
        if kind == "comment" or kind in strings or kind in expandable:
            first, last = (start + 1, end - 1) if kind != "comment" else (start, end)
            for k in range(first, last):
                inert[k] = True
        for child in node.children:
            if kind in expandable and child.type == "sub_expression":
                for k in range(child.start_byte, child.end_byte):
                    inert[k] = False
            walk(child)

    walk(tree.root_node)
    return commands, inert


SAMPLES = [
    "Get-Item x # Get-FileHash\n<# Get-CimInstance #>\n'Get-Date' | Out-Null",
    '"a $((Get-FileHash $f).Hash) b" | Write-Output\n$h = @{ a = (Get-Date) }',
    "if ($x) { Get-Service } else { foreach ($p in Get-Process) { $p } }",
    "$rows | Where-Object { $_.A } | ForEach-Object { Get-Item $_ } | Sort-Object",
    "Get-ChildItem $p -Recurse `\n  -File | Select-Object -First 1",
]


def _read_alike(where: str, source: str) -> None:
    plain = without_jinja(source)
    if not plain.isascii():
        return  # tree-sitter's offsets are bytes
    text = masked(source)
    commands, inert = _tree_sitter_view(plain)
    mine = {(at, word) for at, word in command_words(source) if "-" in word}
    assert mine == commands, where
    for k, (original, seen) in enumerate(zip(plain, text, strict=True)):
        if original in "\r\n":
            continue
        if inert[k]:
            assert seen == " " or original in "'\"@", (where, plain[max(0, k - 30) : k + 30])
        else:
            assert seen == original, (where, plain[max(0, k - 30) : k + 30])


@pytest.mark.parametrize("source", SAMPLES)
def test_the_detector_reads_code_as_tree_sitter_does(source: str) -> None:
    _read_alike("sample", source)


@pytest.mark.parametrize("path", RUNBOOKS + FRAGMENTS, ids=lambda p: p.stem)
def test_the_detector_reads_shipped_templates_as_tree_sitter_does(path: Path) -> None:
    """Command words, comments and strings, as a real PowerShell grammar reads them."""
    checked = 0
    for step in _steps(path):
        for at, _variant, source, shell in variant_sources(step):
            if shell == Shell.POWERSHELL:
                _read_alike(f"{path.name} {step.id} {'.'.join(map(str, at))}", source)
                checked += 1
    assert checked or path.stem in ("rogue-server", "iis-version")


def test_the_walk_finds_what_it_looks_for() -> None:
    step = CollectStep.model_validate(
        {
            "type": "collect",
            "id": "connections",
            "title": "Connections",
            "targets": ["all"],
            "variants": [
                {"id": "ps5", "when": {"windows": "6.2"}, "command": "Get-NetTCPConnection"},
                {"id": "ps3", "when": {"powershell": "3.0"}, "command": "Get-NetTCPConnection"},
                {"id": "ps2", "when": {"powershell": "2.0"}, "command": "Get-CimInstance x"},
                {"id": "ps2-ok", "when": {"powershell": "2.0"}, "command": "netstat -ano"},
                {"id": "cmd", "shell": "cmd", "command": "netstat -ano\npowershell -c 1"},
                {"id": "cmd-ok", "shell": "cmd", "command": "netstat -ano"},
            ],
        }
    )
    assert list(version_findings([step])) == [
        "connections variants.1.command line 1: Get-NetTCPConnection needs PowerShell 3.0 on "
        "Windows Server 2012 (NT 6.2) or later, sent to PowerShell 3.0 on any Windows",
        "connections variants.2.command line 1: Get-CimInstance needs PowerShell 3.0, sent to "
        "PowerShell 2.0 on any Windows",
        "connections variants.4.command line 2: PowerShell in a cmd variant (runs powershell)",
    ]


@pytest.mark.parametrize("path", RUNBOOKS + FRAGMENTS, ids=lambda p: p.stem)
def test_no_shipped_variant_needs_more_than_its_hosts_have(path: Path) -> None:
    found = list(dict.fromkeys(version_findings(_steps(path))))
    assert not found, f"{path.name}: {len(found)} uses too new:\n" + "\n".join(found)
