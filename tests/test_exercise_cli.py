"""The facilitator's headless commands, as a second terminal would use them: an inject due after
a step arrives with the command that finished it, the clock pauses, injects fire early or are
made up, observations are kept, the review reads them back; a live incident refuses it all."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.support.cli import irtool
from tests.support.drill import RUNBOOK

SCENARIO = """\
id: quick
title: Quick drill
runbook: drill
parameters: {attacker_ip: 203.0.113.9}
injects:
  - {id: edr, title: EDR shows whoami.exe under w3wp.exe, to: security, after: assess}
  - {id: regulator, title: The regulator calls, to: server-management, at: 5h}
"""


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "drill.yaml").write_text(RUNBOOK)
    (tmp_path / "quick.yaml").write_text(SCENARIO)
    return {**os.environ, "IRTOOL_HOME": str(tmp_path / "home"), "IRTOOL_RESPONDER": "fiona"}


def ok(env: dict[str, str], *args: str) -> str:
    done = irtool(env, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def test_a_facilitator_runs_an_exercise_headless(tmp_path: Path, env: dict[str, str]) -> None:
    incident = ok(
        env,
        "incident",
        "new",
        str(tmp_path / "drill.yaml"),
        "--exercise",
        str(tmp_path / "quick.yaml"),
    ).strip()
    said = ok(env, "incident", "done", incident, "assess", "--as", "ann")
    assert "INJECT for security: EDR shows whoami.exe under w3wp.exe" in said

    ok(env, "incident", "pause", incident, "--reason", "discussion")
    status = json.loads(ok(env, "incident", "injects", incident, "--json"))
    assert status["paused"] is True
    assert [f["id"] for f in status["fired"]] == ["edr"]
    assert [(c["id"], c["due"]) for c in status["coming"]] == [("regulator", "5:00:00")]
    refused = irtool(env, "incident", "pause", incident)
    assert refused.returncode == 2 and "already paused" in refused.stderr
    ok(env, "incident", "resume", incident)

    ok(env, "incident", "inject", incident, "regulator")
    ok(
        env,
        "incident",
        "inject",
        incident,
        "press",
        "--title",
        "The press calls",
        "--to",
        "security",
    )
    unknown = irtool(env, "incident", "inject", incident, "nothing")
    assert unknown.returncode == 2 and "no inject 'nothing' in the scenario" in unknown.stderr
    ok(env, "incident", "handled", incident, "edr", "--note", "triage started on web01")
    ok(env, "incident", "observe", incident, "The scribe was named late.")

    listed = ok(env, "incident", "injects", incident)
    assert "edr -> security: EDR shows whoami.exe under w3wp.exe  [handled T+" in listed
    assert "regulator -> server-management: The regulator calls  [WAITING for an answer]" in listed
    review = ok(env, "incident", "review", incident)
    assert "| triage started on web01 (fiona) |" in review
    assert "(`regulator`, facilitator)" in review and "(`press`, facilitator)" in review
    assert "fiona: The scribe was named late." in review


def test_a_live_incident_refuses_the_facilitator(tmp_path: Path, env: dict[str, str]) -> None:
    incident = ok(
        env, "incident", "new", str(tmp_path / "drill.yaml"), "--param", "attacker_ip=203.0.113.9"
    ).strip()
    for args in (
        ("inject", incident, "x", "--title", "t", "--to", "security"),
        ("pause", incident),
        ("observe", incident, "text"),
        ("injects", incident),
        ("review", incident),
    ):
        refused = irtool(env, "incident", *args)
        assert refused.returncode == 2, args
        assert "is live" in refused.stderr, (args, refused.stderr)
    events = json.loads(ok(env, "incident", "show", incident, "--json"))["events"]
    assert events == 1  # nothing was written
