"""Scenario files are checked like runbooks: every problem on one `path:line:col: message` line,
exit 2, no traceback, and no exercise opened from a broken one."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from tests.support.cli import irtool
from tests.support.drill import RUNBOOK, drill_scenario

ROOT = Path(__file__).resolve().parent.parent

BROKEN = """\
id: broken
title: A scenario with one of each mistake
runbook: drill
sped: 10
parameters: {attacker_ip: not-an-address}
groups:
  fleet: [web01, web09]
hosts:
  web01: {address: 192.0.2.11, transport: ssh, groups: [fleet]}
replies:
  - {step: collect-state, item: uptime, stdout: "up"}
  - {step: colect-state, stdout: "up"}
  - {step: assess, stdout: "up"}
  - {match: "([unclosed", stdout: "up"}
  - {step: collect-state, fail: melted}
injects:
  - {id: both, title: Both, to: security, at: 5m, after: assess}
  - {id: nobody, title: To nobody, to: press-office, at: 5m}
  - {id: ghost, title: Ghost, to: security, after: no-such-step}
  - {id: ghost, title: Twice, to: security, at: 1m}
"""


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "IRTOOL_HOME": str(tmp_path / "home"), "IRTOOL_RESPONDER": "ann"}


def located(stderr: str) -> list[tuple[int, str]]:
    """(line, message) of every `path:line:col: message` line; any other line fails the test."""
    found = []
    for line in stderr.splitlines():
        if re.fullmatch(r"\d+ error\(s\), \d+ warning\(s\)", line):
            continue
        match = re.fullmatch(r".*broken\.yaml:(\d+):(\d+): (.*)", line)
        assert match, f"not a located problem: {line!r}"
        found.append((int(match[1]), match[3]))
    return found


def test_every_mistake_is_located_and_nothing_is_opened(
    tmp_path: Path, env: dict[str, str]
) -> None:
    (tmp_path / "drill.yaml").write_text(RUNBOOK)
    (tmp_path / "broken.yaml").write_text(BROKEN)
    # The schema first: unknown keys, a trigger given twice, a failure that does not exist.
    checked = irtool(env, "validate", str(tmp_path / "broken.yaml"), str(tmp_path / "drill.yaml"))
    assert checked.returncode == 2
    problems = located(checked.stderr)
    assert (4, "unknown key 'sped' (did you mean 'speed'?)") in problems
    assert any(n == 14 and "not a regular expression" in m for n, m in problems)
    assert any(n == 15 and "fail" in m and "unreachable" in m for n, m in problems)
    assert any(n == 17 and "either 'at' an offset or 'after' a step" in m for n, m in problems)

    # Fixed at the schema level, the cross-checks against the runbook speak.
    fixed = (
        BROKEN.replace("sped:", "speed:")
        .replace('"([unclosed"', '"uptime"')
        .replace("fail: melted", "fail: timeout")
        .replace("at: 5m, after: assess", "after: assess")
    )
    (tmp_path / "broken.yaml").write_text(fixed)
    checked = irtool(env, "validate", str(tmp_path / "broken.yaml"), str(tmp_path / "drill.yaml"))
    assert checked.returncode == 2, checked.stderr
    problems = located(checked.stderr)
    expected = {
        5: "parameter 'attacker_ip' (ip)",
        7: "group 'fleet' names no simulated host 'web09'",
        11: "step 'collect-state' has no collector 'uptime' (name, root)",
        12: "no step 'colect-state' in runbook drill",
        13: "step 'assess' is a manual step: it runs nothing",
        18: "no role 'press-office' in runbook drill (roles: security, server-management)",
        19: "no step 'no-such-step' in runbook drill",
        20: "duplicate inject id 'ghost'",
    }
    for line, message in expected.items():
        assert any(n == line and message in m for n, m in problems), (line, problems)

    opened = irtool(
        env, "incident", "new", str(tmp_path / "drill.yaml"), "--exercise",
        str(tmp_path / "broken.yaml"), "--param", "attacker_ip=203.0.113.9",
    )  # fmt: skip
    assert opened.returncode == 2
    assert located(opened.stderr)
    assert not (tmp_path / "home" / "incidents").exists() or not any(
        (tmp_path / "home" / "incidents").iterdir()
    )


def test_a_scenario_for_another_runbook_is_refused(tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "drill.yaml").write_text(RUNBOOK)
    (tmp_path / "broken.yaml").write_text(
        drill_scenario(tmp_path).replace("runbook: drill", "runbook: iis-compromise")
    )
    runbook, scenario = str(tmp_path / "drill.yaml"), str(tmp_path / "broken.yaml")
    checked = irtool(env, "incident", "new", runbook, "--exercise", scenario)
    assert checked.returncode == 2
    assert located(checked.stderr) == [
        (3, "this scenario is for runbook 'iis-compromise', not 'drill'")
    ]


def test_the_runbook_s_own_scenario_is_found_and_a_generic_one_stands_in(
    tmp_path: Path, env: dict[str, str]
) -> None:
    (tmp_path / "drill.yaml").write_text(RUNBOOK)
    opened = irtool(env, "incident", "new", str(tmp_path / "drill.yaml"), "--exercise", "--json")
    assert opened.returncode == 0, opened.stderr
    generic = json.loads(opened.stdout)["id"]
    shown = json.loads(irtool(env, "incident", "show", generic, "--json").stdout)
    assert shown["mode"] == "exercise" and shown["exercise"]["scenario"] == "generic"
    assert shown["parameters"]["attacker_ip"] == "203.0.113.7"  # the runbook's example

    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "drill.yaml").write_text(drill_scenario(tmp_path))
    opened = irtool(env, "incident", "new", str(tmp_path / "drill.yaml"), "--exercise", "--json")
    shipped = json.loads(opened.stdout)["id"]
    shown = json.loads(irtool(env, "incident", "show", shipped, "--json").stdout)
    assert shown["exercise"]["scenario"] == "drill-webshell"
    assert shown["parameters"]["attacker_ip"] == "203.0.113.9"  # the scenario's value
    listed = irtool(env, "incident", "list").stdout
    assert listed.count("EXERCISE") == 2


def test_the_scenario_schema_is_printed_and_shipped() -> None:
    printed = irtool(dict(os.environ), "schema", "scenario")
    schema = json.loads(printed.stdout)
    assert {"runbook", "injects", "replies", "hosts", "speed"} <= set(schema["properties"])
    shipped = json.loads((ROOT / "schema" / "scenario.schema.json").read_text())
    assert shipped["properties"] == schema["properties"]


def test_a_scenario_s_cast_must_exist(tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "drill.yaml").write_text(RUNBOOK)
    text = drill_scenario(tmp_path) + "contacts: ../team.yaml\n"
    (tmp_path / "broken.yaml").write_text(text)
    checked = irtool(env, "validate", str(tmp_path / "broken.yaml"), str(tmp_path / "drill.yaml"))
    assert checked.returncode == 2
    line = text.count("\n")
    assert located(checked.stderr) == [
        (line, "no contacts file '../team.yaml' beside this scenario")
    ]
