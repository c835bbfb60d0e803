"""`irtool analyze PATH...`: the logs a responder was handed, hunted offline, every finding
standing on its lines (file:line), exit 1 when something was found; bad input is located."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from irtool.cli import cli
from tests.support.weblog import Manifest, write_log


@pytest.fixture(scope="module")
def attacked(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Manifest]:
    folder = tmp_path_factory.mktemp("logs")
    log = folder / "W3SVC1" / "u_ex240303.log"
    log.parent.mkdir()
    return log, write_log(log, lines=30_000, seed=7)


def analyze(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["analyze", *args])
    return result.exit_code, result.stdout, result.stderr


def test_a_web_shell_is_found_and_named_by_its_lines(attacked: tuple[Path, Manifest]) -> None:
    log, manifest = attacked
    code, out, err = analyze(str(log.parent.parent), "--json")
    assert code == 1, err
    findings = json.loads(out)
    shell = manifest["webshell"]
    hits = [f for f in findings if any(r["line"] in shell.lines for r in f["refs"])]
    assert hits, [f["summary"] for f in findings]
    assert all(r["source"] == str(log) for r in hits[0]["refs"])
    assert shell.client in hits[0]["summary"] or shell.uri in hits[0]["summary"]
    assert {f["severity"] for f in findings} <= {"info", "low", "medium", "high", "critical"}
    assert "request(s) and 0 event(s) in the store" in err


def test_a_kept_store_does_not_read_a_log_twice(
    attacked: tuple[Path, Manifest], tmp_path: Path
) -> None:
    log, _ = attacked
    store = tmp_path / "requests.duckdb"
    first = analyze(str(log), "--store", str(store), "--json")
    again = analyze(str(log), "--store", str(store), "--json")
    assert first[0] == again[0] == 1
    assert "1 file(s) already in it" in again[2] and "0 read now" in again[2]
    assert json.loads(first[1]) == json.loads(again[1])  # derived: the same findings


def test_a_gzipped_log_reads_as_the_log(attacked: tuple[Path, Manifest], tmp_path: Path) -> None:
    log, _ = attacked
    packed = tmp_path / "u_ex240303.log.gz"
    packed.write_bytes(gzip.compress(log.read_bytes()))
    plain = json.loads(analyze(str(log), "--json")[1])
    zipped = json.loads(analyze(str(packed), "--json")[1])
    assert [f["summary"] for f in zipped] == [f["summary"] for f in plain]


def test_quiet_traffic_exits_0(tmp_path: Path) -> None:
    log = tmp_path / "u_ex240303.log"
    write_log(log, lines=20_000, seed=3, attacks=())
    code, out, err = analyze(str(log))
    assert code == 0, out + err
    assert "0 finding(s)" in err


def test_nothing_readable_is_exit_2_with_located_warnings(tmp_path: Path) -> None:
    junk = tmp_path / "u_ex240303.log"
    junk.write_bytes(b"\x00\x01garbage\xff\n" * 20)
    code, _, err = analyze(str(junk))
    assert code == 2
    assert f"{junk}:" in err and "no request or event could be read" in err
    assert "Traceback" not in err
    missing = analyze(str(tmp_path / "nope.log"))
    assert missing[0] == 2 and "nope.log" in missing[2] and "Traceback" not in missing[2]


USER_RULE = """\
title: Our own portal's debug page reached
id: 5d0f4a53-3c43-4c2e-9a44-9d4c34f1d0a1
status: experimental
level: high
logsource:
  category: webserver
detection:
  selection:
    cs-uri-stem|endswith: '{stem}'
  condition: selection
"""
COUNTED_RULE = """\
title: Too many requests
id: 0b3c4b9e-1f0e-4a59-8a43-3f0ad1f9f1c2
status: experimental
level: low
logsource:
  category: webserver
detection:
  selection:
    cs-method: POST
  condition: selection | count() by c-ip > 100
"""


def test_a_users_sigma_rules_run_beside_the_shipped_ones_and_a_bad_one_is_named(
    attacked: tuple[Path, Manifest], tmp_path: Path
) -> None:
    log, manifest = attacked
    shell = manifest["webshell"]
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "debug_page.yml").write_text(USER_RULE.format(stem=shell.uri))
    (rules / "counted.yml").write_text(COUNTED_RULE)
    code, out, err = analyze(str(log), "--sigma", str(rules), "--json")
    assert code == 1, err
    ours = [f for f in json.loads(out) if f["hunt"] == "sigma:debug_page"]
    assert ours and ours[0]["severity"] == "high"
    assert {r["line"] for f in ours for r in f["refs"]} >= set(shell.lines)
    said = [line for line in err.splitlines() if "counted.yml" in line]
    assert said and said[0].startswith(f"{rules / 'counted.yml'}:"), err
    assert "(rule not run)" in said[0]

    # --rule and --hunt choose what runs: only the named rule here, no hunt.
    code, out, err = analyze(str(log), "--sigma", str(rules), "--rule", "debug_page", "--json")
    assert code == 1, err
    assert {f["hunt"] for f in json.loads(out)} == {"sigma:debug_page"}
    assert "0 hunt(s), 1 Sigma rule(s)" in err
    code, out, err = analyze(str(log), "--rule", "no_such_rule")
    assert code == 2 and "no Sigma rule no_such_rule" in err


EVTX = Path(__file__).resolve().parent / "data" / "evtx"


def test_event_logs_handed_over_are_hunted_beside_a_web_log(
    attacked: tuple[Path, Manifest], tmp_path: Path
) -> None:
    log, _ = attacked
    renamed = tmp_path / "System.bin"  # an EVTX file is known by its first bytes
    renamed.write_bytes((EVTX / "system.evtx").read_bytes())
    code, out, err = analyze(str(EVTX / "security.evtx"), str(renamed), str(log), "--json")
    assert code == 1, err
    found = {f["hunt"]: f for f in json.loads(out)}
    assert {"win-new-local-user", "win-service-installed", "win-log-cleared"} <= set(found)
    assert "iis-webshell" in found  # the web log still read
    cleared = found["win-log-cleared"]
    assert all(r["source"] == str(renamed) and r["line"] > 0 for r in cleared["refs"])
    assert "4142 event(s)" in err


def test_comparing_hosts_needs_an_incident(tmp_path: Path) -> None:
    code, _, err = analyze(str(EVTX / "system.evtx"), "--manifest", str(EVTX / "README.md"))
    assert code == 2 and "give the incident's ID" in err
