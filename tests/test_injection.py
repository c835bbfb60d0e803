"""Hostile values substituted into commands stay one literal in PowerShell and in sh."""

from __future__ import annotations

import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from irtool.model.steps import Shell
from irtool.model.templating import TemplateProblem, render
from tests.support.powershell import command_arguments, decode_verbatim, syntax_problems

HOSTILE = [
    "plain",
    "",
    " leading and trailing ",
    "it's",
    "''",
    "'; Remove-Item -Recurse C:\\ ; '",
    'double "quotes" inside',
    "\u2018left\u2019 \u201alow\u201b",
    "\u2019; Stop-Computer -Force; \u2018",
    "$(Invoke-Expression 'calc')",
    "`backtick` and `$(calc)`",
    "a; b && c || d | e & f",
    "line one\nline two\r\nthree",
    "$env:COMPUTERNAME $env:Path",
    "@(1,2,3) @{a=1}",
    "--% stop parsing here 'x' \"y\"",
    "<# comment #> # hash",
    "\\trailing backslash\\",
    "C:\\inetpub\\wwwroot\\shell.aspx",
    "1.2.3.4; calc",
    "{{ jinja }} {% raw %}",
    "\t tab \x1b[31m escape \x7f",
    "日本語 ünïcödé 🙂",
]


def _powershell_value(rendered: str) -> str:
    assert not syntax_problems(rendered), rendered
    arguments = command_arguments(rendered)
    assert len(arguments) == 1, f"value split into {len(arguments)} arguments: {arguments}"
    return decode_verbatim(arguments[0][1])


@pytest.mark.parametrize("value", HOSTILE)
def test_powershell_gets_one_verbatim_literal(value: str) -> None:
    rendered = render("Write-Output {{ value }}", Shell.POWERSHELL, {"value": value})
    assert _powershell_value(rendered) == value


TEXT = st.characters(exclude_characters="\x00", exclude_categories=["Cs"])


@given(st.text(alphabet=TEXT, max_size=60))
@settings(max_examples=300, deadline=None)
def test_powershell_literal_holds_for_any_text(value: str) -> None:
    rendered = render("Write-Output {{ value }}", Shell.POWERSHELL, {"value": value})
    assert _powershell_value(rendered) == value


def _sh_echo(values: list[str]) -> list[str]:
    script = "".join(
        render("printf '%s\\0' {{ value }}\n", Shell.SH, {"value": value}) for value in values
    )
    result = subprocess.run(["sh", "-c", script], capture_output=True, check=True, timeout=30)
    return result.stdout.decode("utf-8", "surrogateescape").split("\0")[:-1]


def test_sh_echoes_hostile_values_back_unchanged() -> None:
    assert _sh_echo(HOSTILE) == HOSTILE


@given(st.lists(st.text(alphabet=TEXT), min_size=1, max_size=8))
@settings(max_examples=100, deadline=None)
def test_sh_literal_holds_for_any_text(values: list[str]) -> None:
    assert _sh_echo(values) == values


def test_a_value_never_escapes_in_a_longer_script() -> None:
    script = render(
        "$site = {{ site }}\nGet-Website -Name $site | Select-Object name\n",
        Shell.POWERSHELL,
        {"site": "x'; Remove-Website -Name 'Default Web Site"},
    )
    assert not syntax_problems(script)
    assert script.count("\n") == 2
    assert "Remove-Website -Name ''Default Web Site'" in script  # inert text inside the literal


def test_lists_become_one_literal_per_item() -> None:
    rendered = render("Write-Output {{ ports }}", Shell.POWERSHELL, {"ports": ["80", "4'43"]})
    assert rendered == "Write-Output @('80', '4''43')"
    # An array whatever the count: none is @(), not a dangling `$x =`.
    assert render("$x = {{ ports }}", Shell.POWERSHELL, {"ports": []}) == "$x = @()"
    assert _sh_echo_list(["a b", "c'd"]) == ["a b", "c'd"]


def _sh_echo_list(values: list[str]) -> list[str]:
    script = render("printf '%s\\0' {{ values }}", Shell.SH, {"values": values})
    out = subprocess.run(["sh", "-c", script], capture_output=True, check=True).stdout
    return out.decode().split("\0")[:-1]


def test_raw_insertion_only_through_the_named_filter() -> None:
    context = {"value": "$(whoami)"}
    assert render("echo {{ value }}", Shell.SH, context) == "echo '$(whoami)'"
    assert render("echo {{ value | unquoted }}", Shell.SH, context) == "echo $(whoami)"
    # Any other filter's output is still quoted.
    assert render("echo {{ value | upper }}", Shell.SH, context) == "echo '$(WHOAMI)'"


@pytest.mark.parametrize("shell", list(Shell))
def test_nul_and_lone_surrogates_cannot_be_substituted(shell: Shell) -> None:
    with pytest.raises(TemplateProblem, match="NUL"):
        render("echo {{ value }}", shell, {"value": "a\x00b"})
    with pytest.raises(TemplateProblem, match="not valid Unicode"):
        render("echo {{ value }}", shell, {"value": "a\udcffb"})


def test_templates_cannot_reach_python_internals() -> None:
    with pytest.raises(TemplateProblem, match="not allowed"):
        render("{{ value.__class__.__mro__ }}", Shell.SH, {"value": "x"})


def test_undefined_names_are_errors() -> None:
    with pytest.raises(TemplateProblem, match="undefined"):
        render("Get-Item {{ missing }}", Shell.POWERSHELL, {})
