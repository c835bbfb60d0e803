"""Commands start fast: each imports what it uses, and `irtool --help` imports no command.

What a real process imports is read from `sys.modules` as it exits (a small wrapper around
`irtool.cli.main`); the listing is compared with click's own over the real commands.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from irtool.cli import COMMANDS, SUMMARIES, cli
from irtool.cli.incident import EXTENSIONS, incident
from irtool.cli.lazy import summary
from tests.conftest import ROOT
from tests.support.cli import irtool

RUNBOOK = ROOT / "runbooks" / "iis-compromise.yaml"

# Run as the `irtool` console script does; at exit, the modules the command imported.
WRAPPER = """\
import atexit, json, sys
out = sys.argv.pop(1)
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
from irtool.cli import main
main(sys.argv[1:])
"""

# Loaded only by the commands that use them: the terminal UI, the transports and their
# libraries, the templates, the analysis store and rules, the exports.
HEAVY = [
    "textual",
    "paramiko",
    "winrm",
    "requests",
    "jinja2",
    "duckdb",
    "sigma",
    "yara_x",
    "irtool.tui",
    "irtool.remote.ssh",
    "irtool.remote.winrm",
    "irtool.export",
    "irtool.analysis",
]
# What a note has no use for besides: running steps, exercises and their scenarios, the
# other commands' modules.
NOT_FOR_A_NOTE = [
    *HEAVY,
    "irtool.engine.runner",
    "irtool.exercise",
    "irtool.model.templating",
    "irtool.model.lint",
    "irtool.cli.remote",
    "irtool.cli.facilitate",
    "irtool.cli.minutes",
    "irtool.cli.unfolding",
    "irtool.cli.adhoc",
    "irtool.cli.context",
    "yaml",
    "irtool.model.loader",
    "irtool.model.scenario",
    "pydantic",  # the models are made from the journal's data only when read
]


def imported(tmp_path: Path, *args: str) -> set[str]:
    out = tmp_path / "modules.json"
    env = {**os.environ, "IRTOOL_HOME": str(tmp_path / "home")}
    result = subprocess.run(
        [sys.executable, "-c", WRAPPER, str(out), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(out.read_text()))


def loaded(modules: set[str], packages: list[str]) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(f"{p}.") for p in packages))


def test_help_imports_no_command_module(tmp_path: Path) -> None:
    modules = imported(tmp_path, "--help")
    command_modules = sorted({module for module, _ in COMMANDS.values()})
    assert loaded(modules, [*command_modules, *HEAVY, "pydantic", "yaml"]) == []


def test_help_lists_every_command_with_its_own_one_line_help() -> None:
    ctx = click.Context(cli, info_name="irtool")
    assert set(SUMMARIES) == set(COMMANDS)
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None and not command.hidden
        assert SUMMARIES[name] == summary(command), f"SUMMARIES[{name!r}]: the docstring changed"
    for width in (60, 80, 120):
        lazy, eager = click.HelpFormatter(width=width), click.HelpFormatter(width=width)
        cli.format_commands(ctx, lazy)
        # click's own listing: every command imported and asked for its short help
        click.Group.format_commands(cli, ctx, eager)
        assert lazy.getvalue() == eager.getvalue()
        assert lazy.getvalue().count("\n") == len(COMMANDS) + 1  # the heading, a row each


def test_the_incident_group_names_the_module_of_every_command_it_loads_on_demand() -> None:
    for module in set(EXTENSIONS.values()):
        importlib.import_module(module)
    ctx = click.Context(incident, info_name="incident")
    assert set(incident.list_commands(ctx)) == set(incident.commands)
    for name, command in incident.commands.items():
        assert command.callback is not None
        assert command.callback.__module__ == EXTENSIONS.get(name, "irtool.cli.incident"), name


@pytest.mark.parametrize("name", ["run", "inject", "meet", "ioc", "collect"])
def test_a_command_of_another_module_loads_when_named(tmp_path: Path, name: str) -> None:
    modules = imported(tmp_path, "incident", name, "--help")
    assert EXTENSIONS[name] in modules
    others = sorted(set(EXTENSIONS.values()) - {EXTENSIONS[name], "irtool.cli.remote"})
    assert loaded(modules, others) == []


def test_a_note_imports_only_what_it_writes_with(tmp_path: Path) -> None:
    env = {**os.environ, "IRTOOL_HOME": str(tmp_path / "home")}
    opened = irtool(env, "incident", "new", str(RUNBOOK), "--as", "ann")
    assert opened.returncode == 0, opened.stderr
    incident_id = opened.stdout.strip()
    modules = imported(tmp_path, "incident", "note", incident_id, "web01 isolated", "--as", "ann")
    assert "irtool.engine.session" in modules  # it did open the incident
    assert loaded(modules, NOT_FOR_A_NOTE) == []


def test_a_note_from_a_checkpoint_imports_no_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Past EVERY events the first note checkpoints the standing state and the next loads it:
    # neither makes a model (the checkpoint holds the journal's data), so neither loads
    # pydantic, scope changes and learned host facts included.
    from irtool.engine import checkpoint, kinds
    from irtool.engine.session import IncidentSession
    from irtool.journal import EventDraft
    from tests.support.runbooks import open_collect_incident

    monkeypatch.setenv("IRTOOL_HOME", str(tmp_path / "home"))
    hosts = {"web01": {"address": "127.0.0.1", "transport": "local"}}
    session = open_collect_incident(tmp_path, monkeypatch, hosts)
    session.change_scope("web01", "affected", True, "ann", "the shell is there")
    with session.journal.transaction() as tx:
        tx.append(EventDraft(kinds.HOST_FACTS, "ann", {"facts": {"os": "linux"}}, host="web01"))
        for n in range(checkpoint.EVERY):
            tx.append(EventDraft(kinds.NOTE_ADDED, "scribe", {"text": f"note {n}"}))
    session.close_journal()
    incident = session.state.id
    for _ in range(2):
        modules = imported(tmp_path, "incident", "note", incident, "still here", "--as", "ann")
        assert checkpoint.path_of(incident).is_file()
        assert loaded(modules, NOT_FOR_A_NOTE) == []
    reopened = IncidentSession.open(incident, records=False)  # from that checkpoint
    reopened.close_journal()
    assert reopened.state.inventory is not None
    assert "web01" in reopened.state.inventory.groups["affected"]
    assert reopened.state.host_facts()["web01"].os == "linux"
