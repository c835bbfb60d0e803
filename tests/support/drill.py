"""A short runbook and team for the terminal UI tests: every kind of step a drill needs."""

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
