"""A short runbook and team for the terminal UI tests: every kind of step a drill needs, and a
scenario to play it as an exercise (web02 hangs on one collector; four injects)."""

from pathlib import Path

RUNBOOK = """\
id: drill
title: Web shell drill
summary: A short runbook for the terminal UI tests.
version: "3"
severity: high
applies_to: [iis]
triggers: [A web shell is found]
activation:
  may_activate: [security]
roles: [security, server-management]
parameters:
  attacker_ip: {type: ip, description: Where the attack comes from, example: 203.0.113.7}
phases:
  - id: activate
    title: Activate
    steps:
      - id: assess
        type: manual
        title: Record the trigger
        instructions: Write down **what** was seen.
        checklist: [Trigger written down, Hosts grouped]
      - id: call-team
        type: notify
        title: Call the team
        roles: [security, server-management]
      - id: is-compromise
        type: decision
        title: Is it a compromise?
        question: Is the host compromised?
        options:
          - {id: confirmed, label: Confirmed}
          - {id: false-positive, label: False positive, next: wrap-up}
  - id: triage
    title: Triage
    steps:
      - id: collect-state
        type: collect
        title: Processes and listeners
        shell: sh
        timeout: 20
        targets: [group:fleet]
        commands:
          - {id: name, title: Name, command: "echo collected-on-{{ host.name }}"}
          - {id: root, title: Root, command: "echo listening 0.0.0.0:443"}
      - id: block
        type: action
        title: Block the attacker
        shell: sh
        timeout: 20
        approvals: 2
        targets: [group:fleet]
        command: "echo {{ attacker_ip }} > {{ host.vars.marker }}"
        rollback: "rm {{ host.vars.marker }}"
  - id: close
    title: Close
    steps:
      - id: wrap-up
        type: manual
        title: Wrap up
"""

CONTACTS = """\
team: Drill team
people:
  ann: {name: Ann, timezone: UTC, phone: "+1 555 0100"}
  ben: {name: Ben, timezone: Europe/London, email: ben@example.org}
roles:
  security: {title: Security, primary: ann, backups: [ben]}
  server-management: {title: Servers, primary: ben, backups: [ann]}
"""

SCENARIO = """\
id: drill-webshell
title: Drill web shell
runbook: drill
speed: 10
briefing: A web shell was reported on web01.
parameters: {attacker_ip: 203.0.113.9}
hosts:
  web01: {address: 192.0.2.11, transport: ssh, groups: [fleet], vars: {marker: MARKER1}}
  web02: {address: 192.0.2.12, transport: ssh, groups: [fleet], vars: {marker: MARKER2}}
replies:
  - {hosts: ["host:web02"], step: collect-state, item: root, fail: timeout, delay: 10s}
  - step: collect-state
    item: root
    stdout: |
      tcp LISTEN 0.0.0.0:443 w3wp.exe
      tcp ESTAB 10.0.0.11:443 203.0.113.9:51234 cmd.exe
injects:
  - id: never
    title: The regulator calls
    to: security
    at: 5h
  - id: second-server
    title: A second server shows the same module
    to: security
    after: collect-state
    delay: 5m
    expect: [block]
  - id: defaced
    title: The help desk reports the home page defaced
    to: server-management
    at: 10m
    expect: [collect-state]
  - id: back
    title: The attacker is back after containment
    to: security
    after: block
"""


def drill_scenario(markers: Path) -> str:
    """The scenario, with each host's marker file (an action would create it) under `markers`."""
    return SCENARIO.replace("MARKER1", str(markers / "web01")).replace(
        "MARKER2", str(markers / "web02")
    )


# A post-mortem step and an agenda step, both available at once: the minutes' tests.
WRAP_UP_RUNBOOK = """\
id: lessons-first
title: Lessons first
summary: A post-mortem step and an agenda step, for the minutes tests.
version: "1"
severity: low
applies_to: [iis]
triggers: [A drill]
activation: {may_activate: [security]}
roles: [security]
phases:
  - id: wrap-up
    title: Wrap up
    steps:
      - id: lessons
        type: postmortem
        title: Lessons learned
        questions: ["What happened?", "What would we change?"]
      - {id: debrief, type: agenda, title: Debrief}
"""
