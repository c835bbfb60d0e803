"""An indicator sweep as a script: what a read-only look for a finding's indicators sends to a
host, per shell, and how its output reads back.

The script prints one JSON object per line:

    {"kind": K, "value": V, "where": W, "detail": D}   a hit: V (of kind K) is at W
    {"kind": K, "value": V, "warning": T}                K/V could not be checked fully
    {"warning": T}                                       something else went wrong (a folder)
    {"done": true, "checked": N, "unchecked": [[K, V, WHY], ...], "too_large": L}

The last line tells an empty result (nothing found) apart from a script that died on the way.
Every object is ASCII: a hit's kind and value are written here (JSON, quoted for the shell as
one literal), and what the host adds (a path, a task's action) is escaped there, so no name on
a host (a quote, a line break, a byte that is not UTF-8) can bend a line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from irtool.model.quoting import powershell_literal, sh_literal
from irtool.model.steps import Shell

# What each shell's script looks for; the other kinds are named as not checked.
CHECKED: dict[Shell, tuple[str, ...]] = {
    Shell.POWERSHELL: (
        "sha256",
        "file",
        "task",
        "service",
        "module",
        "ip",
        "account",
        "url",
        "domain",
        "user_agent",
    ),
    Shell.SH: ("sha256", "file", "ip", "account"),
}
# A hit of these is something planted on the host; the rest (an address, a log line) may be
# traffic that touched it.
HIGH_KINDS = frozenset({"sha256", "file", "module", "task", "service"})
# Files this large or larger are not hashed (counted as too_large): no web shell is.
MAX_HASH_BYTES = 50 * 1024 * 1024
DEFAULT_WEBROOT = {Shell.POWERSHELL: r"%SystemDrive%\inetpub\wwwroot", Shell.SH: "/var/www"}
# Where a dropped file is also looked for, besides the web root.
DEFAULT_ALSO = {
    Shell.POWERSHELL: (r"%windir%\Temp", r"%windir%\System32\inetsrv"),
    # The host's temp folders, read there, never written: where a dropped file may sit.
    Shell.SH: ("/tmp", "/var/tmp", "/dev/shm"),  # noqa: S108
}
NOT_ON_SHELL = "not checked on this shell"


def checked(indicators: Sequence[tuple[str, str]], shell: Shell) -> list[tuple[str, str]]:
    """The indicators the script for `shell` looks for, each once, in the order given."""
    kinds = CHECKED.get(shell, ())
    return [i for i in dict.fromkeys(indicators) if i[0] in kinds]


def unchecked(indicators: Sequence[tuple[str, str]], shell: Shell) -> list[tuple[str, str, str]]:
    """(kind, value, why) of the indicators the script for `shell` does not look for."""
    kinds = CHECKED.get(shell, ())
    return [(k, v, NOT_ON_SHELL) for k, v in dict.fromkeys(indicators) if k not in kinds]


def sweep_script(
    indicators: Sequence[tuple[str, str]],
    shell: Shell,
    *,
    webroot: str | None,
    also: Sequence[str] | None = None,
    log_days: int = 7,
) -> str:
    """A read-only script for `shell` that looks for each indicator on the host it runs on.
    Files (sha256, file) are looked for under `webroot` (default DEFAULT_WEBROOT) and the
    folders `also` (default DEFAULT_ALSO); web logs (PowerShell) over the last `log_days`."""
    if shell not in CHECKED:
        raise ValueError(f"a sweep runs in sh or powershell, not {shell}")
    folders = [webroot or DEFAULT_WEBROOT[shell], *(DEFAULT_ALSO[shell] if also is None else also)]
    wanted = checked(indicators, shell)
    summary = _summary_prefix(len(wanted), unchecked(indicators, shell))
    if shell is Shell.SH:
        return _sh(wanted, folders, summary)
    return _powershell(wanted, folders, summary, log_days)


def _prefix(kind: str, value: str) -> str:
    """The start of a hit's object, written here: the host adds where and the detail."""
    return _json({"kind": kind, "value": value})[:-1]


def _json(data: object) -> str:
    return json.dumps(data, ensure_ascii=True, separators=(",", ":"))


def _summary_prefix(count: int, skipped: list[tuple[str, str, str]]) -> str:
    start = {"done": True, "checked": count, "unchecked": [list(s) for s in skipped]}
    return _json(start)[:-1] + ',"too_large":'


def log_pattern(kind: str, value: str) -> str:
    """The text a web log line holds for this indicator: IIS writes a space as `+`, and logs
    a URL's path (cs-uri-stem) without its scheme and host."""
    if kind == "user_agent":
        return value.replace(" ", "+")
    if kind == "url" and "://" in value:
        parts = urlsplit(value)
        return parts.path if parts.path not in ("", "/") else parts.netloc
    return value


def _name_of(value: str, shell: Shell) -> str:
    """A file indicator's file name: the last part of its path. A backslash separates on
    Windows, and on Linux only in what is written as a Windows path (`C:\\`, `\\\\server`):
    elsewhere it is part of a Linux name."""
    windows = shell is Shell.POWERSHELL or re.match(r"[A-Za-z]:\\|\\\\", value)
    return re.split(r"[\\/]" if windows else "/", value)[-1] or value


def _fnmatch_literal(name: str) -> str:
    """`name` as a find -name pattern that matches only itself."""
    return re.sub(r"([\\*?\[\]])", r"\\\1", name)


# -- sh ---------------------------------------------------------------------------------------

# Functions the script and its find -exec children share (a child sh gets them as text).
_SH_LIB = r"""json() {
  printf '%s\n' "$1" | awk 'BEGIN { ORS = ""; for (i = 1; i < 32; i++) code[sprintf("%c", i)] = i }
    NR > 1 { printf "\\n" }
    { out = ""; n = length($0)
      for (i = 1; i <= n; i++) {
        c = substr($0, i, 1)
        if (c == "\\" || c == "\"") out = out "\\" c
        else if (c in code) out = out sprintf("\\u%04x", code[c])
        else out = out c
      }
      print out }'
}
hit() { printf '%s,"where":"%s","detail":"%s"}\n' "$1" "$(json "$2")" "$(json "$3")"; }
warn() { printf '%s,"warning":"%s"}\n' "$1" "$(json "$2")"; }
note() { printf '{"warning":"%s"}\n' "$(json "$1")"; }
if command -v sha256sum >/dev/null 2>&1; then hasher=sha256sum; else hasher="shasum -a 256"; fi
sum256() { $hasher < "$1" | cut -c1-64; }
"""

_SH_HEAD = """# irtool indicator sweep: read-only. One JSON object per line per hit, then a summary.
LC_ALL=C
export LC_ALL
lib=$(cat <<'IRTOOL_LIB'
@lib@IRTOOL_LIB
)
eval "$lib"
too_large=0
"""

_SH_ROOTS = """set --
for root in @roots@; do
  if [ -d "$root" ]; then set -- "$@" "$root"; else note "$root: no such folder"; fi
done
"""

# The found paths reach a child sh as its arguments: no name (a line break in it) is split.
_SH_NAME = """if [ "$#" -gt 0 ]; then
  find "$@" -type f -name @pattern@ -exec sh -c "$lib"'
prefix=$1; shift
for f do
  size=$(wc -c < "$f" 2>/dev/null | tr -d " ")
  if [ -n "$size" ] && [ "$size" -lt @cap@ ]; then
    hit "$prefix" "$f" "size $size, sha256 $(sum256 "$f")"
  else
    hit "$prefix" "$f" "size $size, not hashed"
  fi
done' sh @prefix@ {} +
fi
"""

# One hasher per batch of files, its lines in the order of the files given (GNU marks an odd
# name's line with a leading backslash). A file that could not be read has no line: then the
# lines no longer pair with the files, and the batch is hashed again file by file. A match is
# hashed again alone before it is said. The hit's value is that hash: 64 hex digits found in
# the list.
_SH_HASH = r"""if [ "$#" -gt 0 ]; then
  find "$@" -type f -size -@cap@c -exec sh -c "$lib"'
want=$1; shift
check() {
  case " $want " in
    *" $2 "*) [ "$(sum256 "$1")" = "$2" ] &&
      hit "{\"kind\":\"sha256\",\"value\":\"$2\"" "$1" "size $(wc -c < "$1" | tr -d " ")" ;;
  esac
}
sums=$($hasher -- "$@" 2>/dev/null)
if [ "$(printf "%s\n" "$sums" | wc -l)" -eq "$#" ]; then
  printf "%s\n" "$sums" | {
    for f do
      IFS= read -r line || break
      h=${line%% *}
      check "$f" "${h#\\}"
    done
  }
else
  for f do check "$f" "$(sum256 "$f" 2>/dev/null)"; done
fi' sh @wanted@ {} +
  too_large=$(find "$@" -type f -size +@below@c -exec printf . \; | wc -c | tr -d " ")
fi
"""

_SH_CONNECTIONS = """if command -v ss >/dev/null 2>&1; then connections=$(ss -tan 2>/dev/null)
elif command -v netstat >/dev/null 2>&1; then connections=$(netstat -tan 2>/dev/null)
else connections=""; note "neither ss nor netstat: connections not checked"
fi
"""

# ss: State Recv-Q Send-Q Local Peer; netstat: Proto Recv-Q Send-Q Local Foreign State.
# The address reaches awk through its environment: -v would read backslashes in it.
_SH_IP = r"""printf '%s
' "$connections" | want=@value@ awk '
  function addr(a) { sub(/:[^:]*$/, "", a); gsub(/\[|\]/, "", a); sub(/%.*/, "", a)
                     sub(/^::ffff:/, "", a); return a }
  NF >= 5 && $4 ~ /:/ {
    state = ($1 ~ /^tcp/) ? $6 : $1
    if (addr($4) == ENVIRON["want"] || addr($5) == ENVIRON["want"]) print state " " $4 " " $5
  }' | while IFS= read -r line; do
  hit @prefix@ "tcp $line" "connection $line"
done
"""

# `--`: a name that starts with a dash is a name, not an option.
_SH_ACCOUNT = """entry=$(getent passwd -- @value@ 2>/dev/null ||
  want=@value@ awk -F: '$1 == ENVIRON["want"]' /etc/passwd 2>/dev/null)
if [ -n "$entry" ]; then
  hit @prefix@ "user $(printf '%s' "$entry" | head -n 1 | cut -d: -f1)" "$entry"
fi
"""

_SH_DONE = """printf '%s%d}\\n' @summary@ "$too_large"
"""

_MARK = re.compile(r"@([a-z]+)@")


def _fill(template: str, **values: object) -> str:
    """`template` with each @name@ replaced by its value (which is not looked at again)."""
    return _MARK.sub(lambda m: str(values[m.group(1)]), template)


def _sh(wanted: list[tuple[str, str]], folders: list[str], summary: str) -> str:
    cap = MAX_HASH_BYTES
    parts = [_fill(_SH_HEAD, lib=_SH_LIB)]
    kinds = {kind for kind, _ in wanted}
    if kinds & {"file", "sha256"}:
        parts.append(_fill(_SH_ROOTS, roots=" ".join(sh_literal(f) for f in folders)))
    for kind, value in wanted:
        if kind == "file":
            pattern = sh_literal(_fnmatch_literal(_name_of(value, Shell.SH)))
            prefix = sh_literal(_prefix(kind, value))
            parts.append(_fill(_SH_NAME, pattern=pattern, prefix=prefix, cap=cap))
    hashes = [value.lower() for kind, value in wanted if kind == "sha256"]
    if hashes:
        # Only 64 hex digits reach the list (the rest cannot be a SHA-256 and match nothing).
        valid = " ".join(h for h in hashes if re.fullmatch(r"[0-9a-f]{64}", h))
        parts.append(_fill(_SH_HASH, cap=cap, below=cap - 1, wanted=sh_literal(valid)))
    if "ip" in kinds:
        parts.append(_SH_CONNECTIONS)
    for kind, value in wanted:
        prefix = sh_literal(_prefix(kind, value))
        if kind == "ip":
            parts.append(_fill(_SH_IP, value=sh_literal(value), prefix=prefix))
        elif kind == "account":
            parts.append(_fill(_SH_ACCOUNT, value=sh_literal(value), prefix=prefix))
    parts.append(_fill(_SH_DONE, summary=sh_literal(summary)))
    return "".join(parts)


# -- PowerShell (2.0 and later: no ConvertTo-Json, no CIM, .NET 2.0) -------------------------

_PS_HEAD = r"""# irtool indicator sweep: read-only. One JSON object per line per hit, then a summary
$ErrorActionPreference = 'Continue'
$out = [Console]::Out
function J([string]$s) {
  $b = New-Object Text.StringBuilder
  foreach ($c in $s.ToCharArray()) {
    $n = [int]$c
    if ($n -eq 34 -or $n -eq 92) { [void]$b.Append([char]92).Append($c) }
    elseif ($n -lt 32 -or $n -gt 126) { [void]$b.Append('\u' + $n.ToString('x4')) }
    else { [void]$b.Append($c) }
  }
  '"' + $b.ToString() + '"'
}
function Hit([string]$prefix, [string]$where, [string]$detail) {
  $out.WriteLine($prefix + ',"where":' + (J $where) + ',"detail":' + (J $detail) + '}')
}
function Warn([string]$prefix, [string]$text) {
  $out.WriteLine($prefix + ',"warning":' + (J $text) + '}')
}
function Note([string]$text) { $out.WriteLine('{"warning":' + (J $text) + '}') }
function Same([string]$a, [string]$b) {
  [string]::Equals($a, $b, [StringComparison]::OrdinalIgnoreCase)
}
# The indicators of one kind (call it as @(Of 'kind'): a function's output is unrolled).
function Of([string]$kind) { $indicators | Where-Object { $_.kind -eq $kind } }
$sha = [Security.Cryptography.SHA256]::Create()
function Digest([string]$path) {
  $stream = [IO.File]::Open($path, 'Open', 'Read', 'ReadWrite')
  try { [BitConverter]::ToString($sha.ComputeHash($stream)).Replace('-', '').ToLower() }
  finally { $stream.Close() }
}
# A 32-bit PowerShell on a 64-bit host sees SysWOW64 as System32: Sysnative is the real one.
$system = Join-Path $env:windir 'System32'
if (Test-Path (Join-Path $env:windir 'Sysnative')) { $system = Join-Path $env:windir 'Sysnative' }
$inetsrv = Join-Path $system 'inetsrv'
$cap = @cap@
$tooLarge = 0
$indicators = New-Object System.Collections.ArrayList
"""

_PS_INDICATOR = (
    "[void]$indicators.Add(@{ kind = @kind@; value = @value@; name = @name@; "
    "pattern = @pattern@; prefix = @prefix@ })\n"
)

_PS_FILES = r"""$names = @(Of 'file')
$hashes = @{}
foreach ($i in @(Of 'sha256')) { $hashes[$i.value] = $i }
$seen = @{}
foreach ($given in @(@roots@)) {
  $root = [Environment]::ExpandEnvironmentVariables($given)
  $root = $root -ireplace [regex]::Escape((Join-Path $env:windir 'System32')), $system
  if (-not [IO.Directory]::Exists($root)) { Note ($root + ': no such folder'); continue }
  $stack = New-Object System.Collections.Stack
  $stack.Push($root)
  while ($stack.Count -gt 0) {
    $dir = [string]$stack.Pop()
    try { $entries = [IO.Directory]::GetFileSystemEntries($dir) }
    catch { Note ($dir + ': ' + $_.Exception.Message); continue }
    foreach ($entry in $entries) {
      try {
        $attributes = [IO.File]::GetAttributes($entry)
        if ($attributes -band [IO.FileAttributes]::Directory) {
          # A junction is not followed: it may loop, or lead off the folders asked for.
          if (-not ($attributes -band [IO.FileAttributes]::ReparsePoint)) { $stack.Push($entry) }
          continue
        }
        if ($seen.ContainsKey($entry)) { continue }
        $seen[$entry] = $true
        $size = (New-Object IO.FileInfo $entry).Length
        $leaf = [IO.Path]::GetFileName($entry)
        $digest = $null
        foreach ($i in $names) {
          if (Same $leaf $i.name) {
            if ($size -lt $cap) {
              $digest = Digest $entry
              Hit $i.prefix $entry ('size ' + $size + ', sha256 ' + $digest)
            } else { Hit $i.prefix $entry ('size ' + $size + ', not hashed') }
          }
        }
        if ($hashes.Count -eq 0) { continue }
        if ($size -ge $cap) { $tooLarge++; continue }
        if ($null -eq $digest) { $digest = Digest $entry }
        if ($hashes.ContainsKey($digest)) { Hit $hashes[$digest].prefix $entry ('size ' + $size) }
      } catch { Note ($entry + ': ' + $_.Exception.Message) }
    }
  }
}
"""

_PS_TASKS = r"""$wanted = @(Of 'task')
if ($wanted.Count -gt 0) {
  try {
    $scheduler = New-Object -ComObject Schedule.Service
    $scheduler.Connect()
    $folders = New-Object System.Collections.Stack
    $folders.Push($scheduler.GetFolder('\'))
    while ($folders.Count -gt 0) {
      $folder = $folders.Pop()
      foreach ($sub in @($folder.GetFolders(0))) { $folders.Push($sub) }
      foreach ($task in @($folder.GetTasks(1))) {
        foreach ($i in $wanted) {
          if ((Same $task.Name $i.value) -or (Same $task.Path $i.value)) {
            $runs = @()
            foreach ($action in @($task.Definition.Actions)) {
              if ($action.Type -eq 0) { $runs += ($action.Path + ' ' + $action.Arguments).Trim() }
            }
            $detail = 'runs: ' + ($runs -join '; ') + '; enabled: ' + $task.Enabled
            Hit $i.prefix ('task ' + $task.Path) $detail
          }
        }
      }
    }
  } catch {
    $why = 'scheduled tasks could not be read: ' + $_.Exception.Message
    foreach ($i in $wanted) { Warn $i.prefix $why }
  }
}
"""

_PS_SERVICES = r"""$wanted = @(Of 'service')
if ($wanted.Count -gt 0) {
  try {
    foreach ($s in @(Get-WmiObject -Class Win32_Service -ErrorAction Stop)) {
      foreach ($i in $wanted) {
        if ((Same $s.Name $i.value) -or (Same $s.DisplayName $i.value)) {
          $detail = 'path: ' + $s.PathName + '; account: ' + $s.StartName +
            '; start: ' + $s.StartMode + '; state: ' + $s.State
          Hit $i.prefix ('service ' + $s.Name) $detail
        }
      }
    }
  } catch {
    $why = 'services could not be read: ' + $_.Exception.Message
    foreach ($i in $wanted) { Warn $i.prefix $why }
  }
}
"""

_PS_MODULES = r"""$wanted = @(Of 'module')
if ($wanted.Count -gt 0) {
  $config = Join-Path $inetsrv 'config\applicationHost.config'
  try {
    $xml = New-Object Xml.XmlDocument
    $xml.Load($config)
    $server = '/configuration/system.webServer'
    $nodes = $xml.SelectNodes($server + '/globalModules/add | ' + $server + '/modules/add | ' +
      '/configuration/location/system.webServer/modules/add')
    foreach ($node in @($nodes)) {
      $name = $node.GetAttribute('name')
      $image = $node.GetAttribute('image')
      $type = $node.GetAttribute('type')
      $section = $node.ParentNode.Name
      $location = $node.ParentNode.ParentNode.ParentNode.GetAttribute('path')
      if ($location) { $section = $section + ' of ' + $location }
      foreach ($i in $wanted) {
        $file = ''
        if ($image) { $file = [IO.Path]::GetFileName($image) }
        if ((Same $name $i.value) -or (Same $image $i.value) -or (Same $file $i.value)) {
          $where = 'applicationHost.config ' + $section + ': ' + $name
          Hit $i.prefix $where ('image: ' + $image + '; type: ' + $type)
        }
      }
    }
  } catch {
    $why = $config + ' could not be read: ' + $_.Exception.Message
    foreach ($i in $wanted) { Warn $i.prefix $why }
  }
}
"""

_PS_CONNECTIONS = r"""$wanted = @(Of 'ip')
function Address([string]$a) {
  $a = $a -replace ':[^:]*$', ''
  $a = $a.Trim([char[]]'[]') -replace '%.*$', ''
  $a -replace '^::ffff:', ''
}
if ($wanted.Count -gt 0) {
  try {
    foreach ($line in @(netstat -ano)) {
      $f = @(([string]$line).Trim() -split '\s+')
      if ($f.Count -lt 5 -or $f[0] -ne 'TCP') { continue }
      $local = Address $f[1]
      $remote = Address $f[2]
      foreach ($i in $wanted) {
        if ((Same $remote $i.value) -or (Same $local $i.value)) {
          $owner = ''
          try {
            $owner = ' (' + (Get-Process -Id ([int]$f[4]) -ErrorAction Stop).ProcessName + ')'
          } catch { }
          $detail = 'state ' + $f[3] + '; pid ' + $f[4] + $owner
          Hit $i.prefix ('tcp ' + $f[1] + ' ' + $f[2]) $detail
        }
      }
    }
  } catch {
    $why = 'connections could not be read: ' + $_.Exception.Message
    foreach ($i in $wanted) { Warn $i.prefix $why }
  }
}
"""

_PS_ACCOUNTS = r"""$wanted = @(Of 'account')
if ($wanted.Count -gt 0) {
  try {
    $users = @(Get-WmiObject -Class Win32_UserAccount -Filter 'LocalAccount=True' -ErrorAction Stop)
    foreach ($u in $users) {
      foreach ($i in $wanted) {
        if ((Same $u.Name $i.value) -or (Same $u.Caption $i.value)) {
          $detail = 'SID ' + $u.SID + '; disabled: ' + $u.Disabled
          Hit $i.prefix ('local user ' + $u.Caption) $detail
        }
      }
    }
  } catch {
    $why = 'local users could not be read: ' + $_.Exception.Message
    foreach ($i in $wanted) { Warn $i.prefix $why }
  }
}
"""

_PS_LOGS = r"""$wanted = @(Of 'url') + @(Of 'domain') + @(Of 'user_agent')
if ($wanted.Count -gt 0) {
  $since = (Get-Date).AddDays(-@days@)
  $folders = @(Join-Path $env:SystemDrive 'inetpub\logs\LogFiles')
  try {
    $xml = New-Object Xml.XmlDocument
    $xml.Load((Join-Path $inetsrv 'config\applicationHost.config'))
    foreach ($node in @($xml.SelectNodes('//sites/siteDefaults/logFile | //sites/site/logFile'))) {
      $directory = $node.GetAttribute('directory')
      if ($directory) { $folders += [Environment]::ExpandEnvironmentVariables($directory) }
    }
  } catch { Note ('log folders from applicationHost.config: ' + $_.Exception.Message) }
  $logs = @{}
  foreach ($folder in $folders) {
    if (-not [IO.Directory]::Exists($folder)) { continue }
    try { $found = [IO.Directory]::GetFiles($folder, '*.log', 'AllDirectories') }
    catch { Note ($folder + ': ' + $_.Exception.Message); continue }
    foreach ($log in $found) {
      if ([IO.File]::GetLastWriteTime($log) -ge $since) { $logs[$log] = $true }
    }
  }
  # Each log read once, shared with IIS (which holds today's open): every indicator counted.
  foreach ($path in @($logs.Keys)) {
    $counts = New-Object 'int[]' $wanted.Count
    try {
      $stream = New-Object IO.FileStream($path, 'Open', 'Read', 'ReadWrite')
      $reader = New-Object IO.StreamReader($stream)
      try {
        while ($null -ne ($line = $reader.ReadLine())) {
          for ($k = 0; $k -lt $wanted.Count; $k++) {
            if ($line.IndexOf($wanted[$k].pattern, [StringComparison]::OrdinalIgnoreCase) -ge 0) {
              $counts[$k]++
            }
          }
        }
      } finally { $reader.Close() }
      for ($k = 0; $k -lt $wanted.Count; $k++) {
        if ($counts[$k] -gt 0) {
          $said = [string]$counts[$k] + ' line(s) hold ' + $wanted[$k].pattern
          Hit $wanted[$k].prefix $path $said
        }
      }
    } catch { Note ($path + ': ' + $_.Exception.Message) }
  }
}
"""

_PS_DONE = "$out.WriteLine(@summary@ + $tooLarge + '}')\n"


def _powershell(
    wanted: list[tuple[str, str]], folders: list[str], summary: str, log_days: int
) -> str:
    parts = [_fill(_PS_HEAD, cap=MAX_HASH_BYTES)]
    for kind, value in wanted:
        name = _name_of(value, Shell.POWERSHELL) if kind == "file" else value
        parts.append(
            _fill(
                _PS_INDICATOR,
                kind=powershell_literal(kind),
                value=powershell_literal(value.lower() if kind == "sha256" else value),
                name=powershell_literal(name),
                pattern=powershell_literal(log_pattern(kind, value)),
                prefix=powershell_literal(_prefix(kind, value)),
            )
        )
    kinds = {kind for kind, _ in wanted}
    if kinds & {"file", "sha256"}:
        roots = ", ".join(powershell_literal(f) for f in folders)
        parts.append(_fill(_PS_FILES, roots=roots))
    sections = (
        ("task", _PS_TASKS),
        ("service", _PS_SERVICES),
        ("module", _PS_MODULES),
        ("ip", _PS_CONNECTIONS),
        ("account", _PS_ACCOUNTS),
    )
    parts += [text for kind, text in sections if kind in kinds]
    if kinds & {"url", "domain", "user_agent"}:
        parts.append(_fill(_PS_LOGS, days=int(log_days)))
    parts.append(_fill(_PS_DONE, summary=powershell_literal(summary)))
    return "".join(parts)


# -- reading the output back -----------------------------------------------------------------


@dataclass(frozen=True)
class SweepHit:
    """One hit as the host reported it, with the output line it is on (1-based)."""

    kind: str
    value: str
    where: str
    detail: str
    line: int


@dataclass
class SweepOutput:
    """What a sweep script printed: its hits, its warnings, and its summary (None: the
    script did not finish, so an empty result there is not "nothing found")."""

    hits: list[SweepHit] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    summary: dict[str, Any] | None = None
    garbled: list[int] = field(default_factory=list)  # lines that are not the format's

    @property
    def done(self) -> bool:
        return self.summary is not None


def read_sweep_output(stdout: bytes, asked: Sequence[tuple[str, str]]) -> SweepOutput:
    """The lines of a sweep script's output. A hit for an indicator that was not asked for is
    not taken (a host cannot raise findings of its own making): its line counts as garbled."""
    said = SweepOutput()
    wanted = {(k, v.lower() if k == "sha256" else v) for k, v in asked}
    for number, raw in enumerate(stdout.split(b"\n"), start=1):
        text = raw.strip(b"\r \t").decode("utf-8", "replace")
        if not text:
            continue
        try:
            data = json.loads(text)
        except ValueError:
            said.garbled.append(number)
            continue
        if not isinstance(data, dict):
            said.garbled.append(number)
        elif data.get("done") is True and said.summary is None:
            said.summary = data
        elif "warning" in data:
            about = f"{data['kind']} {data.get('value')!r}: " if data.get("kind") else ""
            said.warnings.append(f"{about}{data['warning']}")
        elif (data.get("kind"), data.get("value")) in wanted and "where" in data:
            said.hits.append(
                SweepHit(
                    str(data["kind"]),
                    str(data["value"]),
                    str(data["where"]),
                    str(data.get("detail") or ""),
                    number,
                )
            )
        else:
            said.garbled.append(number)
    return said
