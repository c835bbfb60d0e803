"""Runbooks for tests: the boilerplate every one-phase test runbook shares, written once."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from irtool.engine.session import IncidentSession
from irtool.model.loader import load_inventory, load_runbook

_HEADER = """\
id: {id}
title: {title}
summary: A runbook for tests.
version: "1"
severity: high
applies_to: [iis]
triggers: [A test]
activation:
  may_activate: [security]
roles: [security]
phases:
  - id: work
    title: Work
    steps:
"""

# One collect step on every host, its timeout and command left to `.format()`.
COLLECT_ALL = """\
- id: collect
  type: collect
  title: Collect
  shell: sh
  timeout: {timeout}
  targets: [all]
  command: {command}
"""


def runbook(runbook_id: str, title: str, steps: str) -> str:
    """A one-phase runbook whose steps are `steps` (YAML list items, written at column 0)."""
    header = _HEADER.replace("{id}", runbook_id).replace("{title}", title)
    return header + textwrap.indent(textwrap.dedent(steps), " " * 6)


def open_collect_incident(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    hosts: dict[str, dict[str, Any]],
    command: str = "true",
    timeout: float = 10,
) -> IncidentSession:
    """An incident, in process, of one collect step (`command` on every host) over `hosts`."""
    monkeypatch.setenv("IRTOOL_HOME", str(tmp_path / "home"))
    steps = COLLECT_ALL.format(timeout=timeout, command=json.dumps(command))
    (tmp_path / "collect.yaml").write_text(runbook("collect", "Collect", steps))
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump({"hosts": hosts}))
    return IncidentSession.new(
        load_runbook(tmp_path / "collect.yaml"),
        {},
        actor="ann",
        inventory=load_inventory(tmp_path / "inventory.yaml"),
    )
