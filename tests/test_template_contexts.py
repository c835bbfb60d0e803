"""Substitutions where the quoting of values cannot protect them are refused (issue 15, part 4).

Every `{{ ... }}` is quoted for its shell ('...' in sh and in PowerShell). That protects
the value only where those quotes are the only quotes: a word of its own in code.
Inside quotes the author wrote, a comment, a heredoc body or a here-string, the value
escapes. `irtool validate` refuses each of those at the substitution's own line and
column; for sh, each refused placement is shown to be a real escape under a real shell.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from irtool.model.shellscan import unsafe_substitutions
from irtool.model.steps import Shell
from irtool.model.templating import render
from tests.support.cli import irtool

SH, PS = Shell.SH, Shell.POWERSHELL

_HEADER = """\
id: contexts
title: Template contexts
summary: A runbook for tests.
version: "1"
severity: high
applies_to: [iis]
triggers: [A test]
activation:
  may_activate: [security]
roles: [security]
parameters:
  s: {type: string, description: Any text, required: true}
phases:
  - id: work
    title: Work
    steps:
"""
_STEP = """\
      - id: run{n}
        type: collect
        title: Run {n}
        shell: {shell}
        targets: [all]
        command: |
"""
# The first step's template starts on this line of the file, ten columns in.
FIRST_LINE, INDENT = 23, 10


def runbook(*commands: tuple[Shell, str]) -> str:
    text = _HEADER
    for n, (shell, command) in enumerate(commands):
        text += _STEP.format(n=n, shell=shell) + textwrap.indent(command, " " * INDENT) + "\n"
    return text


@dataclass(frozen=True)
class Refused:
    name: str
    shell: Shell
    command: str
    row: int  # where the `{{` stands in the template, counting from 1
    col: int
    context: str  # words of the message
    hostile: str = ""  # sh: a value that runs `touch PWNED` from this placement
    interpreter: str = "/bin/sh"  # sh: the shell the escape is shown under


REFUSED = [
    Refused("sh-single-quotes", SH, "echo 'x {{ s }}'", 1, 9,
            "inside single quotes", "; touch PWNED #"),
    Refused("sh-double-quotes", SH, 'echo "x {{ s }}"', 1, 9,
            "inside double quotes", "$(touch PWNED)"),
    Refused("sh-comment", SH, "echo x # {{ s }}", 1, 10,
            "in a comment", "\ntouch PWNED #"),
    Refused("sh-heredoc", SH, "cat <<EOF\nx {{ s }}\nEOF", 2, 3,
            "in a heredoc body", "$(touch PWNED)"),
    Refused("sh-quoted-heredoc", SH, "cat <<'EOF'\n{{ s }}\nEOF", 2, 1,
            "in a heredoc body", "\nEOF\ntouch PWNED #"),
    Refused("sh-backslash", SH, "echo \\{{ s }}", 1, 7,
            "after a backslash", "; touch PWNED #"),
    Refused("sh-dollar-single-quotes", SH, "echo $'{{ s }}'", 1, 8,
            "inside $'...' quotes", "; touch PWNED #"),
    Refused("sh-arithmetic", SH, "echo $(( {{ s }} ))", 1, 10,
            "arithmetic expansion", "$(touch PWNED)"),
    Refused("sh-expansion-in-double-quotes", SH, 'echo "${u:-{{ s }}}"', 1, 12,
            "parameter expansion", "$(touch PWNED)"),
    # dash reads backquotes and `$'` as POSIX says; bash (/bin/sh on many systems) does not.
    Refused("sh-backquotes", SH, "echo `echo {{ s }}`", 1, 12,
            "inside backquotes", "`; touch PWNED; `", "bash"),
    Refused("sh-after-dollar", SH, "echo ${{ s }}", 1, 7,
            "right after a $", "a\\' ; touch PWNED #", "bash"),
    Refused("ps-single-quotes", PS, "Write-Output 'x {{ s }}'", 1, 17,
            "inside a single-quoted string"),
    Refused("ps-double-quotes", PS, 'Write-Output "x {{ s }}"', 1, 17,
            "inside a double-quoted string"),
    Refused("ps-typographic-double-quotes", PS, "Write-Output \u201cx {{ s }}\u201d", 1, 17,
            "inside a double-quoted string"),
    Refused("ps-comment", PS, "Write-Output x # {{ s }}", 1, 18, "in a comment"),
    Refused("ps-block-comment", PS, "<#\n  {{ host.name }}\n#>\nWrite-Output x", 2, 3,
            "in a comment"),
    Refused("ps-here-string", PS, '$t = @"\n{{ s }}\n"@\nWrite-Output $t', 2, 1,
            "in a here-string"),
    Refused("ps-verbatim-here-string", PS, "$t = @'\nx {{ host.vars.site }}\n'@", 2, 3,
            "in a here-string"),
    Refused("ps-backtick", PS, "Write-Output `{{ s }}", 1, 15, "after a backtick"),
    Refused("ps-stop-parsing", PS, "icacls.exe --% {{ s }}", 1, 16, "after --%"),
]  # fmt: skip

SAFE = [
    (SH, "printf '%s\\n' {{ s }}"),
    (SH, 'x={{ s }}\nprintf "%s\\n" "$x"'),
    (SH, 'printf "%s\\n" "$(printf %s {{ s }})"'),
    (SH, "printf '%s\\n' ${u:-{{ s }}}"),
    (SH, "printf '%s\\n' 'a' {{ s }} \"b\" # c"),
    (SH, "cat <<'EOF'\nbody 'x\nEOF\nprintf '%s\\n' {{ s }}"),
    (PS, "Write-Output {{ s }}"),
    (PS, "$x = {{ s }}\n$y = @({{ host.vars.webroot }})"),
    (PS, 'Write-Output "a $({{ s }}) b"'),
    (PS, "# c\n$t = @'\nbody \"x\n'@\nWrite-Output 'a' {{ s }} \"b\""),
]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "IRTOOL_HOME": str(tmp_path / "home")}


def test_the_header_puts_the_first_template_where_the_table_says() -> None:
    line = runbook((SH, "x")).splitlines()[FIRST_LINE - 1]
    assert line == " " * INDENT + "x"


@pytest.mark.parametrize("case", REFUSED, ids=lambda case: case.name)
def test_refused_at_the_substitution(tmp_path: Path, env: dict[str, str], case: Refused) -> None:
    # A safe step first, so the refused one is not simply the first template of the file.
    path = tmp_path / "runbook.yaml"
    path.write_text(runbook((case.shell, "echo {{ s }}"), (case.shell, case.command)))
    first_line = FIRST_LINE + 1 + len(_STEP.splitlines())
    result = irtool(env, "validate", str(path))
    assert result.returncode == 2, result.stdout + result.stderr
    found = [line for line in (result.stdout + result.stderr).splitlines() if "stands" in line]
    where = f"{path}:{first_line + case.row - 1}:{INDENT + case.col}: "
    assert len(found) == 1, found
    assert found[0].startswith(where), (found, where)
    assert case.context in found[0]
    assert "1 error(s)" in result.stdout + result.stderr


@pytest.mark.parametrize("case", [c for c in REFUSED if c.shell is SH], ids=lambda case: case.name)
def test_each_refused_sh_placement_is_a_real_escape(tmp_path: Path, case: Refused) -> None:
    interpreter = shutil.which(case.interpreter)
    if interpreter is None:
        pytest.skip(f"no {case.interpreter} here")
    command = render(case.command, SH, {"s": case.hostile})
    subprocess.run([interpreter, "-c", command], cwd=tmp_path, capture_output=True, timeout=10)
    assert (tmp_path / "PWNED").exists(), command


@pytest.mark.parametrize("interpreter", ["/bin/sh", "bash"])
@pytest.mark.parametrize("command", [c for shell, c in SAFE if shell is SH])
def test_the_safe_sh_placements_hold_against_every_hostile_value(
    tmp_path: Path, command: str, interpreter: str
) -> None:
    found = shutil.which(interpreter)
    if found is None:
        pytest.skip(f"no {interpreter} here")
    for hostile in sorted({c.hostile for c in REFUSED if c.shell is SH}):
        rendered = render(command, SH, {"s": hostile})
        done = subprocess.run(
            [found, "-c", rendered], cwd=tmp_path, capture_output=True, text=True, timeout=10
        )
        assert not (tmp_path / "PWNED").exists(), rendered
        assert done.returncode == 0, done.stderr
        assert hostile in done.stdout  # the value arrived whole


def test_the_safe_placements_are_accepted(tmp_path: Path, env: dict[str, str]) -> None:
    path = tmp_path / "runbook.yaml"
    path.write_text(runbook(*SAFE))
    result = irtool(env, "validate", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "stands" not in result.stdout + result.stderr


def test_flow_scalars_and_fragments_are_located_too(tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "fragment.yaml").write_text(
        "steps:\n"
        "  - id: frag\n"
        "    type: collect\n"
        "    title: Fragment\n"
        "    shell: sh\n"
        "    targets: [all]\n"
        "    command: |  # {{ not a template line }}\n"
        "      echo ok\n"
        '      echo {{ s }} "{{ s }}"\n'
    )
    text = runbook() + (
        "      - id: plain\n"
        "        type: collect\n"
        "        title: Plain\n"
        "        targets: [all]\n"
        "        command: Write-Output {{ s }} '{{ s }}'\n"
        "      - id: quoted\n"
        "        type: collect\n"
        "        title: Quoted\n"
        "        targets: [all]\n"
        '        command: "Write-Output {{ s }}\\n  # {{ s }}"\n'
        "      - include: fragment.yaml\n"
    )
    path = tmp_path / "runbook.yaml"
    path.write_text(text)
    result = irtool(env, "validate", str(path))
    assert result.returncode == 2, result.stdout + result.stderr
    output = result.stdout + result.stderr
    marks = [line.split(": ")[0] for line in output.splitlines() if "stands" in line]
    assert marks == [
        f"{tmp_path / 'fragment.yaml'}:9:21",
        f"{path}:21:40",
        f"{path}:26:45",
    ]


@pytest.mark.parametrize(
    ("shell", "command", "refused"),
    [
        (SH, 'echo "$(echo {{ s }})"', []),  # a command substitution is code again
        (SH, 'echo "$(echo "{{ s }}")"', ["inside double quotes"]),
        (SH, "cat <<EOF\n$(echo x)\nEOF\necho {{ s }} # {{ s }}", ["in a comment"]),
        (SH, "cat <<-EOF\n\tx\n\tEOF\necho {{ s }}", []),
        (SH, "echo {% raw %}'{{ s }}'{% endraw %} {{ s }}", []),  # raw text is not substituted
        (SH, "echo x #\n{{- s }}", ["in a comment"]),  # `{{-` pulls it up into the comment
        (SH, "echo {{ \"}}'\" }} '{{ s }}'", ["inside single quotes"]),
        (SH, "echo $#{{ s }} a#{{ s }}", []),  # `$#` is a parameter, `a#` no comment
        (PS, 'Write-Output "$("{{ s }}")"', ["inside a double-quoted string"]),
        (PS, 'Write-Output \'it\'\'s\' {{ s }} "say ""hi""" {{ s }}', []),
        (PS, "Write-Output a#{{ s }}", []),  # `#` inside a word starts no comment
        # a here-string ends at a line that starts with its quote and @, not an indented one
        (PS, "@'\nx\n '@ {{ s }}\n'@\nWrite-Output {{ s }}", ["in a here-string"]),
        (PS, "$h = @'x'\n{{ s }}", []),  # `@'x'` is no here-string: text follows the quote
    ],
)
def test_the_scanners(shell: Shell, command: str, refused: list[str]) -> None:
    found = unsafe_substitutions(command, shell)
    assert len(found) == len(refused), found
    for unsafe, context in zip(found, refused, strict=True):
        assert context in unsafe.context
