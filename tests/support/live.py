"""A live incident for the terminal UI's live-command tests: two hosts on this machine (the
local transport runs real commands), one parameter triage has not found yet, a collector that
fails on web02, and a containment action."""

from __future__ import annotations

from pathlib import Path

import yaml

from irtool.engine.session import IncidentSession
from irtool.journal import Journal
from irtool.model.context import load_context
from tests.support.runbooks import runbook

STEPS = """\
- id: assess
  type: manual
  title: Record the trigger
- id: is-compromise
  type: decision
  title: Is it a compromise?
  question: Is the host compromised?
  options:
    - {id: confirmed, label: Confirmed}
    - {id: false-positive, label: False positive, next: wrap-up}
- id: sweep
  type: collect
  title: Look for the attacker
  shell: sh
  timeout: 20
  targets: [group:fleet]
  command: "echo looking-for {{ attacker_ip }} on {{ host.name }}"
- id: listeners
  type: collect
  title: Listeners
  shell: sh
  timeout: 20
  targets: [group:fleet]
  command: "echo listeners-on-{{ host.name }}; test {{ host.name }} != web02"
- id: block
  type: action
  title: Block the attacker
  shell: sh
  timeout: 20
  targets: [group:fleet]
  command: "echo blocked > MARKERS/blocked-{{ host.name }}"
  rollback: "rm MARKERS/blocked-{{ host.name }}"
- id: late
  type: manual
  strict: true
  title: Only after all the rest
- id: wrap-up
  type: manual
  title: Wrap up
"""

PARAMETERS = """\
parameters:
  attacker_ip: {type: ip, description: Where the attack comes from, example: 203.0.113.7}
  suspect_files: {type: path, list: true, required: false, description: Files to hash}
"""


def live_incident(tmp_path: Path, hosts: tuple[str, ...] = ("web01", "web02")) -> str:
    """A live incident over `hosts` (group fleet, local transport), attacker_ip not yet set;
    IRTOOL_HOME must point under tmp_path already."""
    steps = STEPS.replace("MARKERS", str(tmp_path))  # what the action leaves on this machine
    text = runbook("live", "Live drill", steps).replace("phases:\n", PARAMETERS + "phases:\n", 1)
    (tmp_path / "live.yaml").write_text(text)
    inventory = {
        "hosts": {
            name: {
                "address": "127.0.0.1",
                "transport": "local",
                "groups": ["fleet"],
            }
            for name in hosts
        }
    }
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump(inventory))
    context, _ = load_context(tmp_path / "live.yaml", inventory=tmp_path / "inventory.yaml")
    session = IncidentSession.new(context.runbook, {}, actor="ann", inventory=context.inventory)
    session.close_journal()
    return session.state.id


def live_journal(tmp_path: Path, incident: str) -> Journal:
    """The journal of `incident` under live_home's directory."""
    return Journal(tmp_path / "home" / "incidents" / incident / "journal.sqlite", incident)
