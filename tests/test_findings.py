"""Findings in an incident: the hunts run over the web logs it fetched, each hit a
`finding.raised` event with the lines it stands on; never raised twice for the same
evidence; a responder confirms or dismisses one with a reason; the store is no evidence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from irtool.journal.incidents import incident_dir
from tests.support.cli import irtool
from tests.support.findings import incident_with_a_log


def test_the_hunts_raise_findings_on_fetched_logs_once_and_a_responder_judges_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env, incident, manifest, log = incident_with_a_log(tmp_path, monkeypatch)
    first = irtool(env, "analyze", incident, "--json")
    assert first.returncode == 1, first.stderr
    raised = json.loads(first.stdout)
    assert all(e["kind"] == "finding.raised" for e in raised)
    shell = next(e for e in raised if e["data"]["hunt"] == "iis-webshell")
    refs = shell["data"]["refs"]
    planted = manifest["webshell"]
    written = log.read_text().splitlines()
    assert set(planted.lines) <= {r["line"] for r in refs}  # every POST of the shell
    for ref in refs:  # and only the shell's requests (its first GET too)
        assert planted.uri in written[ref["line"] - 1]
        assert planted.client in written[ref["line"] - 1]
    assert {r["source"] for r in refs} == {f"web01:{log}"}
    assert shell["data"]["hosts"] == ["web01"]
    assert (incident_dir(incident) / "analysis.duckdb").exists()

    again = irtool(env, "analyze", incident, "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == []
    assert "0 new finding(s)" in again.stderr

    judged = irtool(
        env, "findings", incident, "--confirm", str(shell["seq"]), "--reason", "the shell"
    )
    assert judged.returncode == 0, judged.stderr
    assert f"#{shell['seq']} CRITICAL iis-webshell" in judged.stdout
    assert "[CONFIRMED by ann]" in judged.stdout
    listed = json.loads(irtool(env, "findings", incident, "--json").stdout)
    assert [f["status"] for f in listed if f["seq"] == shell["seq"]] == ["confirmed"]
    assert len(listed) == len(raised)
    refused = irtool(env, "findings", incident, "--dismiss", "99999", "--reason", "x")
    assert refused.returncode == 2 and "no finding 99999" in refused.stderr
    no_reason = irtool(env, "findings", incident, "--dismiss", str(shell["seq"]))
    assert no_reason.returncode == 2 and "--reason" in no_reason.stderr

    # The store is derived, not evidence: verify is whole with it, and without it.
    assert irtool(env, "verify", incident).returncode == 0
    (incident_dir(incident) / "analysis.duckdb").unlink()
    rebuilt = irtool(env, "analyze", incident, "--json")
    assert rebuilt.returncode == 0 and json.loads(rebuilt.stdout) == []  # same evidence


def test_the_post_mortem_lists_the_confirmed_findings_with_their_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env, incident, _manifest, log = incident_with_a_log(tmp_path, monkeypatch)
    raised = json.loads(irtool(env, "analyze", incident, "--json").stdout)
    shell = next(e for e in raised if e["data"]["hunt"] == "iis-webshell")
    other = next(e for e in raised if e["data"]["hunt"] != "iis-webshell")
    irtool(env, "findings", incident, "--confirm", str(shell["seq"]), "--reason", "the shell")
    irtool(env, "findings", incident, "--dismiss", str(other["seq"]), "--reason", "a test")
    report = irtool(env, "export", incident).stdout
    assert "## Findings" in report
    said = f"{len(raised)} finding(s) raised by the hunts and Sigma rules: 1 confirmed, 1 dismissed"
    assert said in report
    assert shell["data"]["refs"][0]["sha256"] in report  # the evidence file, by its SHA-256
    assert f"web01:{log}:{shell['data']['refs'][0]['line']}" in report
    assert other["data"]["summary"] not in report.split("## Findings")[1].split("\n## ")[0]


def test_an_incidents_analysis_names_the_rules_it_could_not_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env, incident, _manifest, _log = incident_with_a_log(tmp_path, monkeypatch)
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "counted.yml").write_text(
        "title: Too many\nid: 0b3c4b9e-1f0e-4a59-8a43-3f0ad1f9f1c2\nlevel: low\n"
        "logsource:\n  category: webserver\ndetection:\n  selection:\n    cs-method: POST\n"
        "  condition: selection | count() by c-ip > 100\n"
    )
    (rules / "process.yml").write_text(
        "title: A process\nlogsource:\n  category: process_creation\n  product: linux\n"
        "detection:\n  selection:\n    Image|endswith: '\\\\cmd.exe'\n  condition: selection\n"
    )
    ran = irtool(env, "analyze", incident, "--sigma", str(rules), "--json")
    assert ran.returncode == 1, ran.stderr
    said = ran.stderr.splitlines()
    assert any(line.startswith(f"{rules / 'counted.yml'}:") for line in said), ran.stderr
    assert "1 rules of other log sources skipped" in ran.stderr
    document = json.loads(irtool(env, "export", incident, "--format", "json").stdout)
    [analysis] = document["state"]["analyses"]
    assert [u.split(":")[0] for u in analysis["unconvertible"]] == [str(rules / "counted.yml")]
    assert analysis["findings"] == [e["seq"] for e in json.loads(ran.stdout)]
