"""PowerShell on the wire: how scripts are started, how long ones get through, CLIXML decoded.

Both Windows routes (WinRM and Windows OpenSSH) start commands under cmd.exe,
whose command line stops at 8191 characters. A script goes as
`powershell -EncodedCommand` (UTF-16LE, base64) when it fits; a longer one is
sent on stdin, base64 so no codepage can bend it, to a small bootstrap that
fits.
"""

from __future__ import annotations

import base64
import binascii
import html
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from irtool.model.quoting import POWERSHELL_SINGLE_QUOTES, powershell_literal
from irtool.remote.base import (
    Failure,
    FetchLimits,
    HostFailure,
    ListedFile,
    Listing,
    make_listing,
)

CMD_LINE_LIMIT = 8191

POWERSHELL = "powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand "

# Progress records would otherwise arrive as CLIXML noise on stderr; UTF-8 keeps
# non-ASCII file names and user names intact in the evidence.
PRELUDE = (
    "$ProgressPreference = 'SilentlyContinue'\n"
    "[Console]::OutputEncoding = [System.Text.Encoding]::UTF8\n"
)

STDIN_BOOTSTRAP = (
    PRELUDE + "$irtoolScript = [System.Text.Encoding]::UTF8.GetString("
    "[System.Convert]::FromBase64String([Console]::In.ReadToEnd().Trim()))\n"
    "& ([scriptblock]::Create($irtoolScript))\n"
    # As -EncodedCommand would: a native exit code, else 1 when the last command failed.
    "if ($LASTEXITCODE) { exit $LASTEXITCODE } elseif (-not $?) { exit 1 }\n"
)


def encode(script: str) -> str:
    return base64.b64encode(script.encode("utf-16-le")).decode("ascii")


def command_line(script: str) -> tuple[str, bytes | None]:
    """The cmd.exe line that runs `script`, and what to write to its stdin (None: nothing)."""
    full = PRELUDE + script
    line = POWERSHELL + encode(full)
    if len(line) <= CMD_LINE_LIMIT:
        return line, None
    return POWERSHELL + encode(STDIN_BOOTSTRAP), base64.b64encode(full.encode("utf-8")) + b"\r\n"


def decode_command_line(line: str) -> str | None:
    """The script inside a line `command_line` made (test endpoints and previews use it)."""
    if not line.startswith(POWERSHELL):
        return None
    return base64.b64decode(line[len(POWERSHELL) :]).decode("utf-16-le")


# -- fetching files in hashed chunks ---------------------------------------------

FetchOp = Literal["stat", "chunk", "hash"]

# How a fetch script refuses what is not a regular file: this, then what it is ("a directory"),
# on a line of its own on stderr, and exit 3. Written raw, not thrown: PowerShell would wrap
# an error record at the console's width, and the line must arrive whole.
NOT_A_FILE = "irtool-not-a-file:"

# Every op looks before it opens: opening a device or a pipe can act on it, a directory has no
# bytes, and the path may have been replaced since the last op.
_FETCH = """$ErrorActionPreference = 'Stop'
$op = {op}
$path = {path}
$offset = {offset}
$count = {count}
$item = Get-Item -LiteralPath $path -Force
if ($item -isnot [System.IO.FileInfo]) {{
  $kind = 'a ' + $item.GetType().Name
  if ($item -is [System.IO.DirectoryInfo]) {{ $kind = 'a directory' }}
  [Console]::Error.WriteLine('{refusal} ' + $kind)
  exit 3
}}
$f = [System.IO.File]::Open($path, 'Open', 'Read', 'ReadWrite')
try {{
  if (-not $f.CanSeek) {{ [Console]::Error.WriteLine('{refusal} a device or a pipe'); exit 3 }}
  if ($op -eq 'stat') {{ [string]$f.Length; exit 0 }}
  if ($op -eq 'chunk') {{
    $buffer = New-Object byte[] $count
    $f.Position = $offset
    $n = $f.Read($buffer, 0, $count)
    [System.Convert]::ToBase64String($buffer, 0, $n)
    exit 0
  }}
  $sha = [System.Security.Cryptography.SHA256]::Create()
  $buffer = New-Object byte[] 1048576
  $left = $count
  while ($left -gt 0) {{
    $n = $f.Read($buffer, 0, [Math]::Min($buffer.Length, $left))
    if ($n -le 0) {{ break }}
    [void]$sha.TransformBlock($buffer, 0, $n, $null, 0)
    $left -= $n
  }}
  [void]$sha.TransformFinalBlock($buffer, 0, 0)
  ([System.BitConverter]::ToString($sha.Hash) -replace '-', '').ToLower()
}} finally {{ $f.Dispose() }}
"""

_FETCH_PARSE = re.compile(
    r"\$op = '(?P<op>\w+)'\n\$path = '(?P<path>(?:[^']|'')*)'\n"
    r"\$offset = (?P<offset>\d+)\n\$count = (?P<count>\d+)\n"
)


def fetch_script(op: FetchOp, path: str, offset: int = 0, count: int = 0) -> str:
    """`stat`: the file's length; `chunk`: base64 of [offset, offset+count); `hash`: SHA-256 of
    the first `count` bytes. The file is opened shared, so a log IIS is writing can be read."""
    return _FETCH.format(
        op=powershell_literal(op),
        path=powershell_literal(path),
        offset=offset,
        count=count,
        refusal=NOT_A_FILE,
    )


def parse_fetch_script(script: str) -> tuple[str, str, int, int] | None:
    """(op, path, offset, count) of a script `fetch_script` made; for test endpoints."""
    found = _FETCH_PARSE.search(script)
    if not found:
        return None
    path = found["path"].replace("''", "'")
    return found["op"], path, int(found["offset"]), int(found["count"])


# -- listing files by glob -------------------------------------------------------------

# PowerShell 2.0 and .NET 2.0 only: no Get-ChildItem -File, no [pscustomobject], no JSON.
# One line per finding, every name base64 of its UTF-8 so no character (a tab, a line
# break) can bend the framing:
#   now TICKS                      the host's clock (UTC, 100 ns ticks since 0001-01-01)
#   pattern I B64                  glob I as the host read it (%VAR% expanded)
#   file I SIZE TICKS B64          a regular file glob I matched (its last write, UTC ticks)
#   other I B64-KIND B64-PATH      something else it matched (a directory given literally)
#   error I B64                    what went wrong while looking (an unreadable folder)
#   truncated                      LIST_CAP matches reached: the host stopped looking
#   end                            the listing is whole
# Wildcards are `*`, `?` and a `**` folder; `[` is an ordinary character, as in the names
# of Windows files, so the host matches with a regular expression of its own, not -like.
_LIST = r"""$ErrorActionPreference = 'Stop'
$patterns = @({patterns})
$cap = {cap}
$out = [Console]::Out
function B64([string]$text) {{ [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes($text)) }}
function Say($what, $index, [string]$text) {{
  $out.WriteLine($what + ' ' + $index + ' ' + (B64 $text))
}}
function Found($index, [string]$path) {{
  $info = New-Object IO.FileInfo $path
  $when = $info.LastWriteTimeUtc.Ticks
  $out.WriteLine('file ' + $index + ' ' + $info.Length + ' ' + $when + ' ' + (B64 $path))
}}
$out.WriteLine('now ' + [DateTime]::UtcNow.Ticks)
$count = 0
for ($i = 0; $i -lt $patterns.Length; $i++) {{
  $pattern = [Environment]::ExpandEnvironmentVariables($patterns[$i])
  Say 'pattern' $i $pattern
  $sep = '/'
  if ($pattern.Contains('\')) {{ $sep = '\' }}
  $parts = $pattern -split '[\\/]'
  $first = -1
  for ($j = 0; $j -lt $parts.Length; $j++) {{
    if ($parts[$j].IndexOfAny([char[]]'*?') -ge 0) {{ $first = $j; break }}
  }}
  if ($first -lt 0) {{
    if ([IO.File]::Exists($pattern)) {{
      Found $i $pattern
    }} elseif ([IO.Directory]::Exists($pattern)) {{
      $out.WriteLine('other ' + $i + ' ' + (B64 'a directory') + ' ' + (B64 $pattern))
    }}
    continue
  }}
  if ($first -eq 0) {{
    Say 'error' $i ($pattern + ': not a full path (give the drive)')
    continue
  }}
  $root = [string]::Join($sep, @($parts[0..($first - 1)])) + $sep
  $rest = @($parts[$first..($parts.Length - 1)])
  $recursive = $rest -contains '**'
  $depth = $rest.Length
  $rx = [regex]::Escape([string]::Join('/', $rest))
  $rx = $rx.Replace('\*\*/', [string][char]1).Replace('\*\*', [string][char]2)
  $rx = $rx.Replace('\*', [string][char]3).Replace('\?', [string][char]4)
  $rx = $rx.Replace('/', [string][char]5)
  $rx = $rx.Replace([string][char]1, '(?:[^\\/]+[\\/])*').Replace([string][char]2, '.*')
  $rx = $rx.Replace([string][char]3, '[^\\/]*').Replace([string][char]4, '[^\\/]')
  $rx = '^' + $rx.Replace([string][char]5, '[\\/]') + '$'
  if (-not [IO.Directory]::Exists($root)) {{ continue }}
  $stack = New-Object System.Collections.Stack
  $stack.Push($root)
  while ($stack.Count -gt 0) {{
    $dir = [string]$stack.Pop()
    try {{ $entries = [IO.Directory]::GetFileSystemEntries($dir) }}
    catch {{ Say 'error' $i ($dir + ': ' + $_.Exception.Message); continue }}
    foreach ($entry in $entries) {{
      try {{
        $rel = $entry.Substring($root.Length)
        $attributes = [IO.File]::GetAttributes($entry)
        if ($attributes -band [IO.FileAttributes]::Directory) {{
          # A junction is not followed: it may loop, or lead off the tree asked for.
          if ($attributes -band [IO.FileAttributes]::ReparsePoint) {{ continue }}
          if ($recursive -or ($rel -split '[\\/]').Length -lt $depth) {{ $stack.Push($entry) }}
          continue
        }}
        if (-not [regex]::IsMatch($rel, $rx, 'IgnoreCase')) {{ continue }}
        Found $i $entry
        $count++
        if ($count -ge $cap) {{ $out.WriteLine('truncated'); $out.WriteLine('end'); exit 0 }}
      }} catch {{
        Say 'error' $i ($entry + ': ' + $_.Exception.Message)
      }}
    }}
  }}
}}
$out.WriteLine('end')
"""

_LIST_PARSE = re.compile(r"\$patterns = @\((?P<patterns>.*)\)\n\$cap = (?P<cap>\d+)\n")
_LITERAL = re.compile(r"'((?:[^']|'')*)'")


def list_script(patterns: list[str], cap: int) -> str:
    """Lists what the globs match on a Windows host (see the line format above)."""
    return _LIST.format(patterns=", ".join(powershell_literal(p) for p in patterns), cap=cap)


def parse_list_script(script: str) -> tuple[list[str], int] | None:
    """(patterns, cap) of a script `list_script` made; for test endpoints."""
    found = _LIST_PARSE.search(script)
    if not found:
        return None
    patterns = []
    for text in _LITERAL.findall(found["patterns"]):
        for quote in POWERSHELL_SINGLE_QUOTES:
            text = text.replace(quote * 2, quote)
        patterns.append(text)
    return patterns, int(found["cap"])


_TICKS_EPOCH = datetime(1, 1, 1, tzinfo=UTC)


def _ticks(text: str) -> datetime:
    return _TICKS_EPOCH + timedelta(microseconds=int(text) // 10)


def _b64(text: str) -> str:
    return base64.b64decode(text, validate=True).decode("utf-8", "replace")


@dataclass
class HostListing:
    """What a listing script said, before the limits are applied."""

    expanded: dict[int, str] = field(default_factory=dict)
    files: list[ListedFile] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    host_time: datetime | None = None
    truncated: bool = False


def read_list_output(stdout: bytes, patterns: list[str]) -> HostListing:
    """The lines of `list_script`'s output; a line out of place, or a missing `end`, is a
    protocol failure (a listing cut short must not pass for a whole one)."""
    said = HostListing()
    ended = False
    for number, raw in enumerate(stdout.decode("ascii", "replace").splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        word, *rest = line.split(" ")
        try:
            if word == "end" and not rest:
                ended = True
            elif ended:
                raise ValueError("output after the end")
            elif word == "now" and len(rest) == 1:
                said.host_time = _ticks(rest[0])
            elif word == "truncated" and not rest:
                said.truncated = True
            elif word == "pattern" and len(rest) == 2:
                said.expanded[int(rest[0])] = _b64(rest[1])
            elif word == "file" and len(rest) == 4:
                index, size, ticks, path = rest
                said.files.append(ListedFile(_b64(path), int(size), _ticks(ticks), int(index)))
            elif word == "other" and len(rest) == 3:
                kind, path = _b64(rest[1]), _b64(rest[2])
                said.files.append(
                    ListedFile(path, 0, None, int(rest[0]), f"{kind}, not a regular file")
                )
            elif word == "error" and len(rest) == 2:
                said.errors.append(_b64(rest[1]))
            else:
                raise ValueError("not a listing line")
        except (ValueError, IndexError, binascii.Error) as bad:
            raise HostFailure(
                Failure.PROTOCOL, f"the host's listing is garbled at line {number}: {bad}"
            ) from None
    if not ended:
        raise HostFailure(Failure.PROTOCOL, "the host's listing ended before its last line")
    for listed in said.files:
        if not 0 <= listed.pattern < len(patterns):
            raise HostFailure(Failure.PROTOCOL, "the host's listing names a glob not asked for")
    return said


def windows_listing(
    patterns: list[str], spec: FetchLimits, status: int, stdout: bytes, stderr: bytes
) -> Listing:
    """The Listing of a `list_script` run that exited `status` with this output."""
    if status != 0:
        lines = decode_clixml(stderr).decode("utf-8", "replace").strip().splitlines()
        raise HostFailure(
            Failure.ERROR,
            f"the host could not list files: {lines[0] if lines else f'exit {status}'}",
        )
    said = read_list_output(stdout, patterns)
    return make_listing(
        patterns,
        [said.expanded.get(i, "") for i in range(len(patterns))],
        said.files,
        spec,
        now=datetime.now(UTC),
        host_time=said.host_time,
        errors=said.errors,
        truncated=said.truncated,
        stderr=decode_clixml(stderr),
    )


# -- CLIXML on stderr -------------------------------------------------------------

_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")
_STREAM_PREFIX = {"error": "", "warning": "WARNING: ", "verbose": "VERBOSE: ", "debug": "DEBUG: "}
_TOKEN = re.compile(
    r"\s+|#< CLIXML\r?\n|<\?xml[^>]*\?>|<Objs\b[^>]*>|</Objs>"
    r"|<S S=\"(?P<stream>\w+)\">(?P<text>.*?)</S>|<S S=\"\w+\"\s*/>",
    re.DOTALL,
)
_OBJ_OPEN = re.compile(r"<Obj\b[^>]*?(/?)>")
_OBJ_CLOSE = "</Obj>"


def _unescape(text: str) -> str:
    text = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), html.unescape(text))
    # Characters beyond the BMP come as two escaped UTF-16 halves: join them; a lone half
    # becomes U+FFFD rather than an error that would lose the whole stream.
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


HOLD_LIMIT = 1 << 20


class ClixmlDecoder:
    """Turns PowerShell's serialized stderr into the text a console would have shown.

    Fed in arbitrary chunks (a WinRM receive can split a record anywhere);
    progress and other object records are dropped. Text that is not CLIXML
    passes through unchanged.
    """

    def __init__(self) -> None:
        self._pending = ""
        self._clixml: bool | None = None
        self._decoder_tail = b""

    def feed(self, data: bytes, final: bool = False) -> bytes:
        raw = self._decoder_tail + data
        try:
            text = raw.decode("utf-8")
            self._decoder_tail = b""
        except UnicodeDecodeError as bad:
            if final or bad.reason != "unexpected end of data":
                # Not UTF-8 (a native tool writing its OEM codepage): show it now, replaced.
                text = raw.decode("utf-8", "replace")
                self._decoder_tail = b""
            else:  # a character split across two receives
                text = raw[: bad.start].decode("utf-8")
                self._decoder_tail = raw[bad.start :]
        self._pending += text
        if self._clixml is None:
            if len(self._pending) < len("#< CLIXML") and not final:
                return b""
            self._clixml = self._pending.startswith("#< CLIXML")
        if not self._clixml:
            out, self._pending = self._pending, ""
            return out.encode("utf-8")
        # A record never closed must not hold memory (or the output) forever.
        return self._drain(final or len(self._pending) > HOLD_LIMIT).encode("utf-8")

    def _drain(self, final: bool) -> str:
        out: list[str] = []
        pos, text = 0, self._pending
        while pos < len(text):
            token = _TOKEN.match(text, pos)
            if token and token.end() > pos:
                if token["stream"]:
                    body = _unescape(token["text"])
                    prefix = _STREAM_PREFIX.get(token["stream"].lower(), "")
                    out.append(prefix + body)
                pos = token.end()
                continue
            obj = _OBJ_OPEN.match(text, pos)
            if obj:
                end = self._object_end(text, obj)
                if end is None:
                    break
                pos = end
                continue
            if text.startswith("<", pos) and not final and ">" not in text[pos:]:
                break  # a tag split across chunks
            if not final and (text.startswith("<S", pos) or text.startswith("#", pos)):
                break  # an <S> record or a header not yet complete
            # Not CLIXML after all (a native program wrote to stderr): pass it on as is.
            nxt = text.find("<", pos + 1)
            if nxt == -1:
                nxt = len(text)
            out.append(text[pos:nxt])
            pos = nxt
        self._pending = text[pos:]
        if final and self._pending:
            out.append(self._pending)
            self._pending = ""
        return "".join(out)

    @staticmethod
    def _object_end(text: str, first: re.Match[str]) -> int | None:
        if first.group(1) == "/":
            return first.end()
        depth, pos = 1, first.end()
        while depth:
            close = text.find(_OBJ_CLOSE, pos)
            if close == -1:
                return None
            nested = _OBJ_OPEN.search(text, pos, close)
            if nested and nested.group(1) != "/":
                depth += 1
                pos = nested.end()
            else:
                depth -= 1
                pos = close + len(_OBJ_CLOSE)
        return pos


def decode_clixml(data: bytes) -> bytes:
    decoder = ClixmlDecoder()
    return decoder.feed(data) + decoder.feed(b"", final=True)


def clixml_error_record(text: str) -> str:
    """How powershell.exe serializes `text` written to the error stream (test endpoints use it)."""
    escaped = html.escape(text, quote=False).replace("\r", "_x000D_").replace("\n", "_x000A_")
    return f'<S S="Error">{escaped}</S>'
