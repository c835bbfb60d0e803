"""The kinds of event the engine writes; exports and the UI read the same names."""

INCIDENT_OPENED = "incident.opened"
INCIDENT_CLOSED = "incident.closed"
STEP_COMPLETED = "step.completed"
STEP_SKIPPED = "step.skipped"
DECISION_MADE = "decision.made"
NOTE_ADDED = "note.added"
EVENT_CORRECTED = "event.corrected"
CONTACT_ATTEMPTED = "contact.attempted"
CONTACT_ESCALATED = "contact.escalated"
MEETING_OPENED = "meeting.opened"
MEETING_CLOSED = "meeting.closed"
RECONVENE_SET = "reconvene.set"
ACTION_REQUESTED = "action.requested"
ACTION_APPROVED = "action.approved"
ACTION_ROLLED_BACK = "action.rolled_back"
COMMAND_HANDED_OVER = "command.handed_over"
ACTION_ITEM_ASSIGNED = "action_item.assigned"  # a follow-up with its owner
RUN_STARTED = "run.started"
COMMAND_RAN = "command.ran"
FILE_FETCHED = "file.fetched"
HOST_WARNING = "host.warning"
HOST_FAILED = "host.failed"
RUN_FINISHED = "run.finished"
# What the team learns as the incident unfolds: a parameter's value, indicators, the scope.
PARAMETER_SET = "parameter.set"
IOC_ADDED = "ioc.added"
IOC_REMOVED = "ioc.removed"
SCOPE_CHANGED = "scope.changed"
STEP_STARTED_EARLY = "step.started_early"  # before the steps ahead of it, with a reason
POSTMORTEM_ANSWERED = "postmortem.answered"  # answers given after the step was done
# What a host is (OS, PowerShell, IIS versions): on its first contact, and on demand.
HOST_FACTS = "host.facts"
# What the hunts found in the evidence, and a responder's verdict on it.
FINDING_RAISED = "finding.raised"
FINDING_CONFIRMED = "finding.confirmed"
FINDING_DISMISSED = "finding.dismissed"
# An analysis over the evidence: what it read (evidence files, requests), what it ran (hunts,
# rules, rules it could not convert) and the findings it raised. Written after them.
ANALYSIS_RAN = "analysis.ran"
# Exercises only: what the facilitator plays and records.
INJECT_FIRED = "inject.fired"
INJECT_HANDLED = "inject.handled"
CLOCK_PAUSED = "clock.paused"
CLOCK_RESUMED = "clock.resumed"
OBSERVATION_RECORDED = "observation.recorded"
# Written by the journal itself, which cannot import the engine: the writer's clock was behind
# the journal's head (`writer_clock`, `head_time`, `behind_s`); its event follows at the head's
# time. Imported down here so the list above stays the engine's own.
from irtool.journal.events import CLOCK_SKEWED as CLOCK_SKEWED  # noqa: E402
from irtool.model.indicators import IOC_KINDS as IOC_KINDS  # noqa: E402
