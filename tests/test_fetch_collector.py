"""The fetch collector end to end: a runbook's globs listed and fetched over a real sshd and
over the WS-Management endpoint, into a real incident journal and evidence store."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from irtool.engine import kinds
from irtool.engine.runner import Runner
from irtool.engine.session import IncidentSession
from irtool.evidence.store import EvidenceStore
from irtool.exercise.setup import load_exercise, open_exercise
from irtool.exercise.transports import transports_for
from irtool.journal.incidents import EVIDENCE_DIR, incident_dir
from irtool.model.context import load_context
from irtool.model.inventory import Inventory, ResolvedHost
from irtool.model.psfeatures import too_new
from irtool.model.steps import FetchSpec
from irtool.remote import powershell
from irtool.remote.base import (
    Connection,
    Deadline,
    ListedFile,
    Listing,
    Transport,
    apply_limits,
    glob_regex,
)
from irtool.remote.simulated import SimulatedTransport, example_listing
from irtool.remote.ssh import SshTransport, find_script
from irtool.remote.winrm import WinrmTransport
from irtool.secrets.run import RunSecrets
from tests.support.powershell import syntax_problems
from tests.support.runbooks import runbook
from tests.support.sshd import SshdFarm, inventory_entry
from tests.support.wsman import DEFAULT_PASSWORD, DEFAULT_USER, WsmanServer

# One collect step whose collectors each test sets (`commands` is filled in per test).
RUNBOOK = runbook(
    "grab",
    "Grab files",
    """\
- id: copies
  type: collect
  title: Copies
  shell: sh
  timeout: 60
  targets: [all]
  commands: []
""",
)

OLD = time.time() - 90 * 86400  # three months ago: outside a 30-day window


class Given:
    def __init__(self, **values: str) -> None:
        self.values = values

    def secret(self, name: str) -> str:
        return self.values[name]


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdFarm]:
    with SshdFarm(tmp_path_factory.mktemp("sshd"), count=1) as started:
        yield started


@pytest.fixture
def wsman(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WsmanServer]:
    # The shell's environment is what %VAR% expands from, as on a Windows host.
    monkeypatch.setenv("IRTOOL_SITE", str(tmp_path / "site"))
    with WsmanServer(tmp_path / "wsman", operation_timeout_cap=0.5) as started:
        yield started
        assert started.errors == []


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRTOOL_HOME", str(tmp_path / "home"))


def ssh_host(farm: SshdFarm) -> dict[str, Any]:
    return inventory_entry(farm)


def winrm_host(server: WsmanServer) -> dict[str, Any]:
    return {
        "address": "127.0.0.1",
        "port": server.port,
        "transport": "winrm",
        "os": "windows",
        "scheme": "https",
        "auth": "ntlm",
        "user": DEFAULT_USER,
        "credential": "collect",
        "tls": {"ca_file": str(server.ca_file)},
        "connect_timeout": 5,
        # Stated, so nothing depends on what the endpoint's sh makes of the cmd probe.
        "facts": {"os": "windows", "windows": "10.0", "build": "17763", "powershell": "5.1"},
    }


def site(root: Path) -> dict[str, bytes]:
    """The files of a web site as a host holds them; returns path -> content."""
    files = {
        "site/conf/applicationHost.config": b"<configuration/>\n",
        "site/conf/web.config": b"<configuration><system.webServer/></configuration>\n",
        "site/conf/notes.txt": b"not a config\n",
        "site/conf/big.config": b"x" * 5000,
        "site/conf/old.config": b"<configuration old='yes'/>\n",
        "site/conf/tab\there.config": b"a tab in the name\n",
        "site/conf/new\nline.config": b"a line break in the name\n",
        "site/conf/\u00fcn\u00ef \u20ac [1] it's.config": b"non-ASCII, brackets, a quote\n",
        "site/history/CFGHISTORY_0000000001/applicationHost.config": b"<v1/>\n",
        "site/history/CFGHISTORY_0000000002/deeper/web.config": b"<v2/>\n",
        "site/history/CFGHISTORY_0000000002/deeper/readme.txt": b"skip me\n",
    }
    made = {}
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        made[str(path)] = content
    os.utime(root / "site/conf/old.config", (OLD, OLD))
    return made


def incident(tmp_path: Path, hosts: dict[str, Any], fetch: dict[str, Any]) -> IncidentSession:
    book = yaml.safe_load(RUNBOOK)
    book["phases"][0]["steps"][0]["commands"] = [
        {"id": "files", "title": "Configuration copies", "fetch": fetch}
    ]
    (tmp_path / "grab.yaml").write_text(yaml.safe_dump(book))
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump({"hosts": hosts}))
    context, _ = load_context(tmp_path / "grab.yaml", inventory=tmp_path / "inventory.yaml")
    return IncidentSession.new(context.runbook, {}, actor="ann", inventory=context.inventory)


def runner(session: IncidentSession, tmp_path: Path, **transports: Any) -> Runner:
    (tmp_path / "ssh_config").write_text("")
    (tmp_path / "known_hosts").write_text("")
    chosen = {
        "ssh": SshTransport(
            RunSecrets(),
            config_file=tmp_path / "ssh_config",
            known_hosts_file=tmp_path / "known_hosts",
        ),
        "winrm": WinrmTransport(Given(collect=DEFAULT_PASSWORD)),
        **transports,
    }
    store = EvidenceStore(incident_dir(session.state.id) / EVIDENCE_DIR)
    return Runner(session, chosen, store, "ann")


def journal(session: IncidentSession, kind: str) -> list[dict[str, Any]]:
    session.refresh()
    return [e.as_dict() for e in session.journal.events() if e.kind == kind]


def stored(session: IncidentSession, sha256: str) -> bytes:
    return (incident_dir(session.state.id) / EVIDENCE_DIR / sha256).read_bytes()


def listing_of(session: IncidentSession) -> tuple[dict[str, Any], dict[str, Any]]:
    """The listing's command.ran, and the listing it kept as evidence."""
    (ran,) = journal(session, kinds.COMMAND_RAN)
    return ran, json.loads(stored(session, ran["data"]["stdout"]["sha256"]))


def fetched(session: IncidentSession) -> dict[str, dict[str, Any]]:
    return {e["data"]["path"]: e for e in journal(session, kinds.FILE_FETCHED)}


# -- globs, limits, a missing path and odd names, over both transports ------------------------


@pytest.mark.parametrize("transport", ["ssh", "winrm"])
def test_globs_and_limits_fetch_what_they_match_and_list_what_they_skip(
    transport: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    root = tmp_path
    files = site(root)
    if transport == "ssh":
        host = ssh_host(request.getfixturevalue("farm"))
        conf = f"{root}/site/conf/*.config"
    else:
        host = winrm_host(request.getfixturevalue("wsman"))
        conf = "%IRTOOL_SITE%/conf/*.config"  # expanded on the host
    patterns = [conf, f"{root}/site/history/**/*.config", f"{root}/site/gone/*.log"]
    session = incident(
        tmp_path,
        {"web01": host},
        {
            "paths": patterns,
            "max_size": 1000,
            "modified_within": "30d",
            "reason": "Configuration as the attacker left it.",
        },
    )
    report = runner(session, tmp_path).run("copies")
    assert not report.failed, report.failed
    assert report.completed_step

    expected = {
        str(root / "site/conf" / name)
        for name in (
            "applicationHost.config",
            "web.config",
            "tab\there.config",
            "new\nline.config",
            "\u00fcn\u00ef \u20ac [1] it's.config",
        )
    } | {
        str(root / "site/history/CFGHISTORY_0000000001/applicationHost.config"),
        str(root / "site/history/CFGHISTORY_0000000002/deeper/web.config"),
    }
    got = fetched(session)
    assert set(got) == expected
    for path, event in got.items():
        data = event["data"]
        digest = hashlib.sha256(files[path]).hexdigest()
        assert (event["step"], data["item"], event["host"]) == ("copies", "files", "web01")
        assert data["remote_sha256"] == digest and data["file"]["sha256"] == digest
        assert data["exit_status"] == 0 and data["failure"] is None
        assert data["size"] == len(files[path])
        assert data["reason"] == "Configuration as the attacker left it."
        assert datetime.fromisoformat(data["modified"]) > datetime.now(UTC) - timedelta(hours=1)
        assert stored(session, digest) == files[path]

    ran, listed = listing_of(session)
    assert (ran["data"]["item"], ran["data"]["exit_status"], ran["data"]["failure"]) == (
        "files",
        0,
        None,
    )
    assert ran["data"]["fetch"]["missing"] == [patterns[2]]
    assert listed["missing"] == [patterns[2]]
    why = {f["path"]: f.get("skipped") for f in listed["files"]}
    assert "larger than 1000 bytes" in why[str(root / "site/conf/big.config")]
    assert "modified_within" in why[str(root / "site/conf/old.config")]
    assert str(root / "site/conf/notes.txt") not in why  # *.config only
    assert str(root / "site/history/CFGHISTORY_0000000002/deeper/readme.txt") not in why
    assert {p for p, skipped in why.items() if skipped is None} == expected
    if transport == "winrm":
        assert listed["patterns"][0]["expanded"] == f"{root}/site/conf/*.config"


@pytest.mark.parametrize("transport", ["ssh", "winrm"])
def test_past_max_files_the_newest_are_fetched_and_the_rest_listed(
    transport: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    for age, name in enumerate(["u_ex03.log", "u_ex02.log", "u_ex01.log"]):
        (logs / name).write_text(name)
        moment = time.time() - 3600 * (age + 1)
        os.utime(logs / name, (moment, moment))
    host = (
        ssh_host(request.getfixturevalue("farm"))
        if transport == "ssh"
        else winrm_host(request.getfixturevalue("wsman"))
    )
    session = incident(
        tmp_path,
        {"web01": host},
        {"paths": [f"{logs}/u_ex??.log"], "max_files": 2, "reason": "Raw logs."},
    )
    report = runner(session, tmp_path).run("copies")
    assert not report.failed
    assert set(fetched(session)) == {str(logs / "u_ex03.log"), str(logs / "u_ex02.log")}
    _, listed = listing_of(session)
    (skipped,) = [f for f in listed["files"] if not f["fetch"]]
    assert skipped["path"] == str(logs / "u_ex01.log")
    assert "beyond max_files 2" in skipped["skipped"]


# -- a file that changes while it is read -----------------------------------------------------


class Hooked:
    """A real transport whose connections call `hook` at a chosen moment: after the listing,
    or before a given command; what the host then does is the host's own."""

    def __init__(self, real: Transport, after_listing: Callable[[], None] | None = None) -> None:
        self.real = real
        self.after_listing = after_listing
        self.before_run: Callable[[str], None] | None = None

    def connect(self, host: ResolvedHost, deadline: Deadline) -> Connection:
        connection = self.real.connect(host, deadline)
        listing, running = connection.list_files, connection.run

        def list_files(*args: Any) -> Listing:
            found: Listing = listing(*args)
            if self.after_listing:
                self.after_listing()
            return found

        def run(command: str, *args: Any) -> int:
            if self.before_run:
                self.before_run(command)
            status: int = running(command, *args)
            return status

        connection.list_files = list_files  # type: ignore[method-assign,assignment]
        connection.run = run  # type: ignore[method-assign,assignment]
        return connection


def changing_site(tmp_path: Path) -> tuple[Path, Path, Path]:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.log").write_bytes(b"steady\n")
    (logs / "b.log").write_bytes(b"first line\n")
    (logs / "c.log").write_bytes(b"also steady\n")
    return logs, logs / "b.log", logs / "c.log"


def assert_one_failed(session: IncidentSession, report: Any, bad: Path, why: str) -> None:
    got = fetched(session)
    assert set(got) == {str(bad.parent / n) for n in ("a.log", "b.log", "c.log")}
    failed = got[str(bad)]["data"]
    assert failed["exit_status"] is None and why in failed["failure"]
    assert failed["file"]["sha256"]  # what arrived is kept all the same
    for path, event in got.items():
        if path != str(bad):
            assert event["data"]["exit_status"] == 0
    ran, _ = listing_of(session)
    assert ran["data"]["exit_status"] == 1
    assert (
        "1 of 3 file(s) not fetched" in ran["data"]["failure"]
        and str(bad) in (ran["data"]["failure"])
    )
    result = report.failed["web01"]
    assert "files: 1 of 3 file(s) not fetched" in result.why() and why in result.why()
    assert not report.completed_step


def assert_grown_kept(session: IncidentSession, report: Any, grown: Path) -> None:
    """A log appended to between the listing and its copy is kept as it was when fetched,
    hash-checked, and its record says it grew: busy logs are what a responder fetches."""
    got = fetched(session)
    data = got[str(grown)]["data"]
    assert data["exit_status"] == 0 and data["failure"] is None
    assert data["changed"].startswith("grew from 11 to 44 bytes between the listing and the copy")
    assert data["file"]["size"] == 44 and data["remote_sha256"] == data["file"]["sha256"]
    assert not report.failed and report.completed_step


def test_a_log_that_grows_between_listing_and_fetch_is_kept_as_fetched_over_ssh(
    farm: SshdFarm, tmp_path: Path
) -> None:
    logs, growing, _ = changing_site(tmp_path)
    session = incident(
        tmp_path, {"web01": ssh_host(farm)}, {"paths": [f"{logs}/*.log"], "reason": "Logs."}
    )

    def grow() -> None:
        with growing.open("ab") as log:
            log.write(b"a request logged while we looked\n")

    base = runner(session, tmp_path)
    hooked = Hooked(base.transports["ssh"], after_listing=grow)
    report = runner(session, tmp_path, ssh=hooked).run("copies")
    assert_grown_kept(session, report, growing)


def test_a_file_rewritten_between_its_copy_and_its_hash_fails_alone_over_ssh(
    farm: SshdFarm, tmp_path: Path
) -> None:
    logs, _, rewritten = changing_site(tmp_path)
    session = incident(
        tmp_path, {"web01": ssh_host(farm)}, {"paths": [f"{logs}/*.log"], "reason": "Logs."}
    )
    base = runner(session, tmp_path)
    hooked = Hooked(base.transports["ssh"])

    def rewrite(command: str) -> None:  # the same size, other bytes, before the host hashes
        if "sha256sum" in command and str(rewritten) in command:
            rewritten.write_bytes(b"ALSO STEADY\n")

    hooked.before_run = rewrite
    report = runner(session, tmp_path, ssh=hooked).run("copies")
    assert_one_failed(session, report, rewritten, "changed while read (or was bent on the way)")


def test_a_log_that_grows_before_its_copy_is_kept_as_fetched_over_winrm(
    wsman: WsmanServer, tmp_path: Path
) -> None:
    logs, growing, _ = changing_site(tmp_path)
    session = incident(
        tmp_path, {"web01": winrm_host(wsman)}, {"paths": [f"{logs}/*.log"], "reason": "Logs."}
    )

    def change(op: str, path: str) -> None:
        if op == "stat" and path == str(growing):
            with growing.open("ab") as log:
                log.write(b"a request logged while we looked\n")

    wsman.fetch_hook = change
    report = runner(session, tmp_path).run("copies")
    assert_grown_kept(session, report, growing)


def test_a_file_rewritten_before_the_hosts_hash_fails_alone_over_winrm(
    wsman: WsmanServer, tmp_path: Path
) -> None:
    logs, _, rewritten = changing_site(tmp_path)
    session = incident(
        tmp_path, {"web01": winrm_host(wsman)}, {"paths": [f"{logs}/*.log"], "reason": "Logs."}
    )

    def change(op: str, path: str) -> None:
        if op == "hash" and path == str(rewritten):
            rewritten.write_bytes(b"ALSO STEADY\n")

    wsman.fetch_hook = change
    report = runner(session, tmp_path).run("copies")
    assert_one_failed(session, report, rewritten, "changed while read (or was bent on the way)")


# -- what only a Linux host can hold, and what the wire carries ---------------------------------


def test_a_name_that_is_not_utf8_and_a_symlink_are_listed_not_fetched_over_ssh(
    farm: SshdFarm, tmp_path: Path
) -> None:
    folder = tmp_path / "odd"
    folder.mkdir()
    (folder / "good.log").write_bytes(b"ok\n")
    with open(os.path.join(os.fsencode(folder), b"bad\xff.log"), "wb") as bad:
        bad.write(b"latin-1 name\n")
    (folder / "link.log").symlink_to(folder / "good.log")
    session = incident(
        tmp_path, {"web01": ssh_host(farm)}, {"paths": [f"{folder}/*.log"], "reason": "Odd."}
    )
    report = runner(session, tmp_path).run("copies")
    assert not report.failed
    assert set(fetched(session)) == {str(folder / "good.log")}
    _, listed = listing_of(session)
    why = {f["path"]: f.get("skipped") for f in listed["files"]}
    assert "symbolic link" in why[str(folder / "link.log")]
    assert any("not UTF-8" in (w or "") for p, w in why.items() if p.startswith(f"{folder}/bad"))


def test_the_windows_listing_script_parses_and_needs_only_powershell_2() -> None:
    script = powershell.PRELUDE + powershell.list_script(
        ["%windir%\\System32\\inetsrv\\config\\*.config", "C:\\it's \u2019\\**\\*.log"], 1000
    )
    assert syntax_problems(script) == []
    assert too_new(script, "2.0") == []  # the project's table of PowerShell 3+ features
    for newer in ("ConvertTo-Json", "pscustomobject", "Get-CimInstance", "Get-FileHash", "-File "):
        assert newer.lower() not in script.lower()
    assert powershell.parse_list_script(script[len(powershell.PRELUDE) :]) == (
        ["%windir%\\System32\\inetsrv\\config\\*.config", "C:\\it's \u2019\\**\\*.log"],
        1000,
    )


def test_globs_match_within_a_folder_unless_they_say_any_depth() -> None:
    one = glob_regex("/srv/*/web.config")
    assert one.fullmatch("/srv/a/web.config") and not one.fullmatch("/srv/a/b/web.config")
    deep = glob_regex("/srv/**/web.config")
    assert deep.fullmatch("/srv/web.config") and deep.fullmatch("/srv/a/b/web.config")
    assert not deep.fullmatch("/srv/aweb.config")
    windows = glob_regex("C:\\inetpub\\[x]?.LOG", "\\/", ignore_case=True)
    assert windows.fullmatch("c:\\INETPUB\\[x]1.log") and not windows.fullmatch(
        "C:\\inetpub\\x1.log"
    )
    assert "-mindepth 1 -maxdepth 1 " in find_script(["/var/log/*.log"])
    assert "-mindepth 1 ! -type d" in find_script(["/var/www/**/*.php"])


def test_limits_keep_every_match_listed_with_why() -> None:
    now = datetime(2026, 12, 7, tzinfo=UTC)
    spec = FetchSpec(paths=["/x/*"], max_size=10, max_files=1, modified_within="1d", reason="r")
    files = [
        ListedFile("/x/new", 5, now - timedelta(hours=1), 0),
        ListedFile("/x/newer", 5, now - timedelta(minutes=1), 0),
        ListedFile("/x/big", 50, now, 0),
        ListedFile("/x/old", 5, now - timedelta(days=3), 0),
        ListedFile("/x/new", 5, now - timedelta(hours=1), 1),  # a second glob matched it too
    ]
    decided = {f.path: f.skipped for f in apply_limits(files, spec, now)}
    assert decided["/x/newer"] is None
    assert "beyond max_files 1" in (decided["/x/new"] or "")
    assert "larger than 10 bytes" in (decided["/x/big"] or "")
    assert "modified_within" in (decided["/x/old"] or "")
    assert len(decided) == 4


def test_a_simulated_host_lists_an_example_file_per_glob() -> None:
    host = Inventory.model_validate(
        {"hosts": {"web01": {"address": "192.0.2.1", "transport": "winrm", "os": "windows"}}}
    ).resolve("web01")
    answer, found = example_listing(host, ["%windir%\\System32\\inetsrv\\config\\*.config"])
    assert found == [(0, "C:\\Windows\\System32\\inetsrv\\config\\example.config")]
    transport = SimulatedTransport(lambda *a: answer, lambda h, p: answer)
    connection = transport.connect(host, Deadline(5))
    spec = FetchSpec(paths=["%windir%\\x\\*"], reason="r")
    listing = connection.list_files(spec.paths, spec, Deadline(5))
    assert [f.path for f in listing.to_fetch] == ["C:\\Windows\\x\\example"]


SCENARIO = r"""
id: grab-drill
title: Grab drill
runbook: grab
hosts:
  web01: {address: 192.0.2.10, transport: winrm, os: windows, credential: x}
replies:
  - step: copies
    item: files
    stdout: |
      C:\Windows\System32\inetsrv\config\applicationHost.config
      C:\Windows\System32\inetsrv\config\schema\IIS_schema.xml
      C:\inetpub\wwwroot\web.config
  - purpose: fetch
    match: 'applicationHost\.config$'
    stdout: "<configuration planted='yes'/>\n"
"""


def test_an_exercise_lists_the_files_its_scenario_names_and_fetches_their_answers(
    tmp_path: Path,
) -> None:
    book = yaml.safe_load(RUNBOOK)
    book["phases"][0]["steps"][0]["commands"] = [
        {
            "id": "files",
            "title": "Configuration copies",
            "fetch": {
                "paths": ["%windir%\\System32\\inetsrv\\config\\*.config"],
                "reason": "Configuration as the attacker left it.",
            },
        }
    ]
    (tmp_path / "grab.yaml").write_text(yaml.safe_dump(book))
    (tmp_path / "scenario.yaml").write_text(SCENARIO)
    exercise, _ = load_exercise(tmp_path / "grab.yaml", tmp_path / "scenario.yaml")
    session = open_exercise(exercise, {}, "ann")
    store = EvidenceStore(incident_dir(session.state.id) / EVIDENCE_DIR)
    transports = transports_for(session.state, lambda: pytest.fail("live transports built"))
    report = Runner(session, transports, store, "ann").run("copies")
    assert not report.failed and report.completed_step
    (only,) = fetched(session).values()
    assert only["data"]["path"] == "C:\\Windows\\System32\\inetsrv\\config\\applicationHost.config"
    assert only["data"]["transport"] == "simulated"
    assert stored(session, only["data"]["file"]["sha256"]) == b"<configuration planted='yes'/>\n"
    _, listed = listing_of(session)
    assert [f["path"] for f in listed["files"]] == [only["data"]["path"]]


def test_a_cancel_after_the_listing_stops_the_fetches_and_says_which_were_left(
    farm: SshdFarm, tmp_path: Path
) -> None:
    logs, _, _ = changing_site(tmp_path)
    session = incident(
        tmp_path, {"web01": ssh_host(farm)}, {"paths": [f"{logs}/*.log"], "reason": "Logs."}
    )
    base = runner(session, tmp_path)
    base.transports = {"ssh": Hooked(base.transports["ssh"], after_listing=base.cancel.cancel)}
    report = base.run("copies")
    assert report.cancelled and "cancelled" in report.failed["web01"].why()
    got = fetched(session)
    assert len(got) == 1  # the first was tried and cut short; the rest were not begun
    (tried,) = got.values()
    assert "cancelled" in tried["data"]["failure"]
    ran, listed = listing_of(session)
    assert ran["data"]["exit_status"] == 1
    assert "3 of 3 file(s) not fetched" in ran["data"]["failure"]
    assert "not fetched: cancelled" in ran["data"]["failure"]
    assert len(listed["files"]) == 3  # what was looked for and found is kept all the same
    (failed,) = journal(session, kinds.HOST_FAILED)
    assert failed["data"]["failure"] == "cancelled"
