"""`irtool incident meet|adjourn|action-item` and `done --answer`, as a scribe types them: what
the meetings and the post-mortem decide reaches the journal and the post-mortem report."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.support.cli import irtool
from tests.support.drill import WRAP_UP_RUNBOOK


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "IRTOOL_HOME": str(tmp_path / "home"), "IRTOOL_RESPONDER": "judy"}


@pytest.fixture
def incident(env: dict[str, str], tmp_path: Path) -> str:
    runbook = tmp_path / "wrap-up.yaml"
    runbook.write_text(WRAP_UP_RUNBOOK)
    opened = irtool(env, "incident", "new", str(runbook), "--json")
    assert opened.returncode == 0, opened.stderr
    return str(json.loads(opened.stdout)["id"])


def events(env: dict[str, str], incident: str) -> int:
    shown = irtool(env, "incident", "show", incident, "--json")
    return int(json.loads(shown.stdout)["events"])


def refused(env: dict[str, str], incident: str, message: str, *args: str) -> None:
    """Exit 2, the reason on stderr, and nothing written."""
    before = events(env, incident)
    done = irtool(env, "incident", *args)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert events(env, incident) == before


def test_a_meeting_its_outcomes_the_answers_and_the_action_items_reach_the_report(
    env: dict[str, str], incident: str
) -> None:
    refused(env, incident, "no meeting is open", "adjourn", incident)
    assert irtool(env, "incident", "meet", incident, "debrief").returncode == 0
    refused(env, incident, "is not TOPIC=TEXT", "adjourn", incident, "--outcome", "threat")
    refused(env, incident, "no topic 'weather'", "adjourn", incident, "--outcome", "weather=ok")
    adjourned = irtool(
        env,
        "incident",
        "adjourn",
        incident,
        "--outcome",
        "threat=web shell via the upload form",
        "--outcome",
        "strategy=block, then rebuild web01",
        "--reconvene",
        "2026-11-21T05:00",
    )
    assert adjourned.returncode == 0, adjourned.stderr

    refused(env, incident, "Missing option '--owner'", "action-item", incident, "patch it")
    refused(
        env, incident, "--due", "action-item", incident, "patch", "--owner", "ben", "--due", "soon"
    )
    for text, owner, due in (
        ("patch the upload handler", "ben", "2026-11-28"),
        ("WAF rule", "cy", ""),
    ):
        args = ["--due", due] if due else []
        made = irtool(env, "incident", "action-item", incident, text, "--owner", owner, *args)
        assert made.returncode == 0, made.stderr

    refused(env, incident, "no question '9' (1-2)", "done", incident, "lessons", "--answer", "9=x")
    answered = irtool(
        env,
        "incident",
        "done",
        incident,
        "lessons",
        "--answer",
        "2=patch sooner",
        "--answer",
        "1=a web shell, found in an hour",
        "--note",
        "held with the web team",
    )
    assert answered.returncode == 0, answered.stderr

    report = irtool(env, "export", incident).stdout
    for needed in (
        "- **Threat and vulnerabilities identified**: web shell via the upload form",
        "- **Tactical strategy**: block, then rebuild web01",
        "Reconvene at 2026-11-21 05:00:00 UTC.",
        "| 1 | What happened? | a web shell, found in an hour |",
        "| 2 | What would we change? | patch sooner |",
        "Lessons learned: done by judy at ",
        "| patch the upload handler | ben | 2026-11-28 | [",
        "| WAF rule | cy | – | [",
    ):
        assert needed in report, needed
    timeline = irtool(env, "export", incident, "--format", "csv").stdout
    assert "action item for ben: patch the upload handler (due 2026-11-28)" in timeline
