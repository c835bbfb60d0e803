"""The indicator sweep: a finding's indicators looked for on other hosts, read-only, over the
real test sshd, its hits raised as findings with custody; the generated scripts keep every
hostile value as data (run in a real sh; parsed as PowerShell)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tree_sitter
from click.testing import CliRunner

from irtool.analysis.hunts import FindingDraft
from irtool.cli.sweep import sweep
from irtool.engine import kinds
from irtool.engine.findings import raise_findings
from irtool.engine.refusal import Refused
from irtool.engine.runner import Runner
from irtool.engine.session import IncidentSession
from irtool.engine.sweep import plan_sweep, sweep_finding
from irtool.evidence.store import EvidenceStore
from irtool.journal.incidents import EVIDENCE_DIR, incident_dir
from irtool.model.steps import Shell
from irtool.model.sweep import read_sweep_output, sweep_script
from irtool.remote.ssh import SshTransport
from irtool.secrets.run import RunSecrets
from tests.support.powershell import decode_verbatim, parser, string_problems, syntax_problems
from tests.support.runbooks import open_collect_incident
from tests.support.sshd import BlackHole, SshdFarm, closed_port, inventory_entry

SHELL = b'<%@ Page Language="C#" %><% System.Diagnostics.Process.Start("cmd.exe"); %>'
SHELL_SHA = hashlib.sha256(SHELL).hexdigest()

# Values an indicator may carry that a shell would read as code if they were not quoted.
HOSTILE = [
    "it's",
    "''",
    "'; touch PWNED; '",
    'double "quotes" and \\ backslash',
    "\u2018left\u2019 \u201alow\u201b; touch PWNED",
    "\u2019; Stop-Computer -Force; \u2018",
    "$(touch PWNED)",
    "`touch PWNED`",
    "a; touch PWNED && b || c | d & e",
    "line one\ntouch PWNED\r\nthree",
    "$env:COMPUTERNAME $HOME ${IFS}",
    "--% stop parsing 'x' \"y\"",
    "<# comment #> # hash",
    "-name",
    "*",
    "[a-z]?.aspx",
    "\t tab \x1b[31m escape",
    "日本語 ünïcödé 🙂",
]


# -- the scripts, on their own -----------------------------------------------------------


def run_sh(script: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["sh", "-c", script], capture_output=True, cwd=cwd, timeout=60)


def test_sh_finds_files_named_by_hostile_values_and_runs_none_of_them(tmp_path: Path) -> None:
    root = tmp_path / "wwwroot"
    (root / "deep").mkdir(parents=True)
    names = [v for v in HOSTILE if "/" not in v]
    for value in names:
        (root / "deep" / value).write_bytes(b"planted")
    (root / "other.aspx").write_bytes(b"not named")  # what `*` or a glob would also match
    indicators = [("file", v) for v in names]
    indicators += [(kind, v) for kind in ("account", "ip", "sha256") for v in HOSTILE]
    script = sweep_script(indicators, Shell.SH, webroot=str(root), also=[])
    done = run_sh(script, tmp_path)
    assert done.returncode == 0, done.stderr
    assert not list(tmp_path.rglob("PWNED")) and not (Path.cwd() / "PWNED").exists()
    output = read_sweep_output(done.stdout, indicators)
    assert output.done and not output.garbled
    planted = hashlib.sha256(b"planted").hexdigest()
    got = {(h.value, h.where) for h in output.hits}
    assert got == {(v, str(root / "deep" / v)) for v in names}  # each finds itself, only
    assert all(h.detail == f"size 7, sha256 {planted}" for h in output.hits)
    assert output.summary is not None
    assert output.summary["checked"] == len(indicators) and not output.summary["unchecked"]


def test_sh_hashes_under_the_folders_given_and_names_kinds_it_does_not_check(
    tmp_path: Path,
) -> None:
    root, temp = tmp_path / "wwwroot", tmp_path / "temp"
    (root / "img").mkdir(parents=True)
    temp.mkdir()
    (root / "img" / "logo.png").write_bytes(SHELL)  # renamed: only its hash gives it away
    (temp / "x").write_bytes(SHELL)
    (root / "index.html").write_bytes(b"<html/>")
    big = root / "big.iso"
    with big.open("wb") as sparse:  # past the hashing cap, without writing 50 MB
        sparse.truncate(50 * 1024 * 1024)
    indicators = [("sha256", SHELL_SHA.upper()), ("task", "Updater"), ("service", "evil")]
    script = sweep_script(indicators, Shell.SH, webroot=str(root), also=[str(temp), "/nowhere"])
    output = read_sweep_output(run_sh(script, tmp_path).stdout, indicators)
    assert {h.where for h in output.hits} == {str(root / "img/logo.png"), str(temp / "x")}
    assert {h.value for h in output.hits} == {SHELL_SHA}
    assert output.warnings == ["/nowhere: no such folder"]
    assert output.summary is not None
    assert output.summary["checked"] == 1 and output.summary["too_large"] == 1
    assert output.summary["unchecked"] == [
        ["task", "Updater", "not checked on this shell"],
        ["service", "evil", "not checked on this shell"],
    ]


def test_a_file_the_hasher_skips_shifts_no_hash_onto_another_name(tmp_path: Path) -> None:
    # A stand-in sha256sum that says nothing of the first file of a batch, as the real one
    # does of a file it cannot read (root reads every file, so the test cannot make one).
    tools = tmp_path / "bin"
    tools.mkdir()
    real = subprocess.run(["sh", "-c", "command -v sha256sum"], capture_output=True, text=True)
    (tools / "sha256sum").write_text(
        f'#!/bin/sh\nif [ "$1" = "--" ]; then {real.stdout.strip()} "$@" | tail -n +2\n'
        f'else {real.stdout.strip()} "$@"; fi\n'
    )
    (tools / "sha256sum").chmod(0o755)
    root = tmp_path / "wwwroot"
    root.mkdir()
    for number in range(20):
        (root / f"page{number}.aspx").write_bytes(b"page %d" % number)
    (root / "zz.jpg").write_bytes(SHELL)
    indicators = [("sha256", SHELL_SHA)]
    script = sweep_script(indicators, Shell.SH, webroot=str(root), also=[])
    done = subprocess.run(
        ["sh", "-c", script],
        capture_output=True,
        timeout=60,
        env={"PATH": f"{tools}:/usr/bin:/bin"},
    )
    output = read_sweep_output(done.stdout, indicators)
    assert [h.where for h in output.hits] == [str(root / "zz.jpg")] and output.done


def test_an_output_cut_short_is_not_an_empty_result_and_a_host_cannot_add_indicators() -> None:
    asked = [("file", "shell.aspx")]
    lines = [
        b'{"kind":"file","value":"shell.aspx","where":"/srv/shell.aspx","detail":""}',
        b'{"kind":"file","value":"other.aspx","where":"/srv/other.aspx","detail":""}',
        b"Last login: yesterday",
    ]
    cut = read_sweep_output(b"\n".join(lines), asked)
    assert not cut.done and [h.where for h in cut.hits] == ["/srv/shell.aspx"]
    assert cut.garbled == [2, 3]
    whole = read_sweep_output(b"\n".join([*lines, b'{"done":true,"checked":1}']), asked)
    assert whole.done


def _hash_entries(script: str) -> list[dict[str, str]]:
    """Each `$indicators.Add(@{...})` of a PowerShell sweep, its values decoded as PowerShell
    reads them; every value must be one verbatim literal."""
    data = script.encode()
    found: list[dict[str, str]] = []

    def walk(node: tree_sitter.Node) -> None:
        if node.type == "hash_literal_body":
            entry: dict[str, str] = {}
            for child in (c for c in node.children if c.type == "hash_entry"):
                key = data[child.children[0].start_byte : child.children[0].end_byte].decode()
                text = data[child.children[2].start_byte : child.children[2].end_byte].decode()
                entry[key] = decode_verbatim(text.strip())
            found.append(entry)
        for child in node.children:
            walk(child)

    walk(parser().parse(data).root_node)
    return found


def _shape(script: str) -> list[str]:
    """The script's syntax tree without the text of its string literals."""
    shape: list[str] = []

    def walk(node: tree_sitter.Node) -> None:
        shape.append(node.type)
        if "string" not in node.type:
            for child in node.children:
                walk(child)

    walk(parser().parse(script.encode()).root_node)
    return shape


@pytest.mark.parametrize("value", HOSTILE)
def test_powershell_keeps_each_hostile_value_one_literal(value: str) -> None:
    kinds_checked = ["file", "task", "service", "module", "account", "url", "user_agent"]
    hostile = [(k, value) for k in kinds_checked]
    script = sweep_script(hostile, Shell.POWERSHELL, webroot=value)
    assert not syntax_problems(script) and not string_problems(script)
    entries = _hash_entries(script)
    assert [(e["kind"], e["value"]) for e in entries] == hostile
    for entry in entries:  # what the host writes back starts with the value as JSON
        assert json.loads(entry["prefix"] + "}") == {"kind": entry["kind"], "value": value}
    # The same script as for a plain value, but for the literals' text: nothing was code.
    plain = sweep_script([(k, "plain") for k in kinds_checked], Shell.POWERSHELL, webroot="C:\\w")
    assert _shape(script) == _shape(plain)


def test_powershell_looks_for_each_kind_the_checklist_names() -> None:
    indicators = [
        ("sha256", SHELL_SHA),
        ("file", "C:\\inetpub\\wwwroot\\shell.aspx"),
        ("task", "\\Updater"),
        ("service", "evilsvc"),
        ("module", "backdoor.dll"),
        ("ip", "203.0.113.7"),
        ("account", "support$"),
        ("user_agent", "Mozilla/5.0 (evil)"),
        ("url", "https://example.com/x.aspx"),
        ("cidr", "203.0.113.0/24"),
    ]
    script = sweep_script(indicators, Shell.POWERSHELL, webroot=None)
    assert not syntax_problems(script)
    entries = {e["kind"]: e for e in _hash_entries(script)}
    assert entries["file"]["name"] == "shell.aspx"
    assert entries["user_agent"]["pattern"] == "Mozilla/5.0+(evil)"  # as IIS logs it
    assert entries["url"]["pattern"] == "/x.aspx"
    looked_with = ["Schedule.Service", "Win32_Service", "globalModules", "netstat -ano"]
    looked_with += ["Win32_UserAccount", "IndexOf", "SHA256", "%SystemDrive%\\inetpub"]
    for needle in looked_with:
        assert needle in script
    assert "ConvertTo-Json" not in script  # PowerShell 2.0 has none
    assert '"unchecked":[["cidr","203.0.113.0/24","not checked on this shell"]]' in script


# -- an incident over the real sshd ------------------------------------------------------


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdFarm]:
    with SshdFarm(tmp_path_factory.mktemp("sshd"), count=1) as started:
        yield started


def ssh_host(farm: SshdFarm, **settings: Any) -> dict[str, Any]:
    return inventory_entry(farm, **{"connect_timeout": 2, **settings})


def plant(tmp_path: Path) -> tuple[Path, Path]:
    """A web root and a temp folder on the "host" (the sshd is local): the shell, a renamed
    copy of it, and files that must stay quiet."""
    root, temp = tmp_path / "wwwroot", tmp_path / "temp"
    (root / "img").mkdir(parents=True)
    temp.mkdir()
    (root / "shell.aspx").write_bytes(SHELL)
    (root / "img" / "logo.jpg").write_bytes(SHELL)
    (root / "index.aspx").write_bytes(b"<%@ Page %>hello")
    (temp / "notes.txt").write_bytes(b"nothing")
    return root, temp


def with_finding(session: IncidentSession) -> int:
    draft = FindingDraft(
        hunt="iis-webshell-post",
        version="1",
        severity="high",
        title="POSTs to a new .aspx",
        summary="203.0.113.7 POSTed to /shell.aspx",
        hosts=("web01",),
        first_seen="2026-12-01T10:00:00Z",
        last_seen="2026-12-01T10:05:00Z",
        count=3,
        refs=(("0" * 64, "web01:u_ex.log", 12),),
        key="iis-webshell-post:/shell.aspx",
        indicators=(("sha256", SHELL_SHA), ("file", "shell.aspx"), ("task", "Updater")),
    )
    (event,) = raise_findings(session, "ann", [draft])
    return event.seq


def make_runner(session: IncidentSession, tmp_path: Path) -> Runner:
    (tmp_path / "ssh_config").write_text("")
    (tmp_path / "known_hosts").write_text("")
    transport = SshTransport(
        RunSecrets(),
        config_file=tmp_path / "ssh_config",
        known_hosts_file=tmp_path / "known_hosts",
    )
    store = EvidenceStore(incident_dir(session.state.id) / EVIDENCE_DIR)
    return Runner(session, {"ssh": transport}, store, "ann")


def test_a_sweep_over_ssh_raises_exactly_the_planted_hits_with_custody_while_dead_hosts_fail(
    farm: SshdFarm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, temp = plant(tmp_path)
    with BlackHole() as hole:
        session = open_collect_incident(
            tmp_path,
            monkeypatch,
            {
                "web02": ssh_host(farm),
                "hung": ssh_host(farm, port=hole.port),
                "gone": ssh_host(farm, port=closed_port()),
            },
        )
        seq = with_finding(session)
        runner = make_runner(session, tmp_path)
        runner.ad_hoc_timeout = 20
        began = time.monotonic()
        plan = plan_sweep(session.state, seq, ["all"], webroot=str(root), also=[str(temp)])
        result = sweep_finding(runner, plan, reason="sweep")
        took = time.monotonic() - began
    assert took < 20, took  # the hung host failed within its deadline, not after it
    assert set(result.failed) == {"hung", "gone"} and "web02" not in result.failed
    assert result.hits == {"web02": 3}

    state = session.state
    raised = {e.seq: state.findings[e.seq] for e in result.raised}
    assert sorted((f.hunt, f.key) for f in raised.values()) == [
        ("sweep:file", f"sweep:web02:file:shell.aspx:{root}/shell.aspx"),
        ("sweep:sha256", f"sweep:web02:sha256:{SHELL_SHA}:{root}/img/logo.jpg"),
        ("sweep:sha256", f"sweep:web02:sha256:{SHELL_SHA}:{root}/shell.aspx"),
    ]
    file_hit = next(f for f in raised.values() if f.hunt == "sweep:file")
    assert file_hit.severity == "high" and file_hit.hosts == ["web02"]
    assert file_hit.indicators == [("file", "shell.aspx"), ("sha256", SHELL_SHA)]

    # Custody: one ad-hoc run, its command the exact script, the output kept as evidence,
    # and each finding stands on the line of that output that names it.
    (run,) = [r for r in state.runs.values() if r.ad_hoc]
    assert result.runs == {Shell.SH: f"ad-hoc-{run.seq}"}
    assert run.command == result.plan.scripts[Shell.SH][1] and run.shell == "sh"
    assert run.purpose == "collect" and sorted(run.hosts) == ["gone", "hung", "web02"]
    (kept,) = [e for e in state.evidence if e.run == run.seq]
    assert kept.host == "web02" and kept.ad_hoc and kept.exit_status == 0
    sha = kept.files["stdout"]["sha256"]
    output = (incident_dir(state.id) / EVIDENCE_DIR / sha).read_bytes()
    assert hashlib.sha256(output).hexdigest() == sha
    lines = output.split(b"\n")
    for finding in raised.values():
        ((ref),) = finding.refs
        assert (ref["sha256"], ref["source"]) == (sha, f"web02:ad-hoc-{run.seq}")
        hit = json.loads(lines[ref["line"] - 1])
        assert finding.key == f"sweep:web02:{hit['kind']}:{hit['value']}:{hit['where']}"
    failed = {e.host for e in session.journal.events() if e.kind == kinds.HOST_FAILED}
    assert failed == {"hung", "gone"}


class CutShort:
    """The real SSH transport, but the host's output ends after its first two lines, as when
    a script dies on the way."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def connect(self, host: Any, deadline: Any) -> Any:
        connection = self.real.connect(host, deadline)
        running = connection.run

        def run(command: str, *args: Any) -> int:
            status: int = running("{\n" + command + "\n} | head -n 2", *args)
            return status

        connection.run = run
        return connection


def test_a_host_whose_sweep_stops_early_is_named_and_its_hits_still_count(
    farm: SshdFarm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, temp = plant(tmp_path)
    session = open_collect_incident(tmp_path, monkeypatch, {"web02": ssh_host(farm)})
    seq = with_finding(session)
    runner = make_runner(session, tmp_path)
    runner.transports = {"ssh": CutShort(runner.transports["ssh"])}
    plan = plan_sweep(session.state, seq, ["web02"], webroot=str(root), also=[str(temp)])
    result = sweep_finding(runner, plan)
    assert "stopped before its summary line" in result.failed["web02"]
    assert result.hits == {"web02": 2} and len(result.raised) == 2


def test_the_cli_dry_run_prints_the_script_per_shell_and_contacts_no_host(
    farm: SshdFarm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = open_collect_incident(
        tmp_path,
        monkeypatch,
        {
            "web02": ssh_host(farm),
            "iis01": {"address": "192.0.2.1", "transport": "winrm", "os": "windows"},
        },
    )
    seq = with_finding(session)
    incident, before = session.state.id, session.state.last_seq
    session.close_journal()
    args = [incident, "--finding", str(seq), "--targets", "all", "--webroot", "/srv/www"]
    shown = CliRunner().invoke(sweep, [*args, "--dry-run"], env={"IRTOOL_RESPONDER": "ann"})
    assert shown.exit_code == 0, shown.output
    indicators = [("sha256", SHELL_SHA), ("file", "shell.aspx"), ("task", "Updater")]
    for shell, host in ((Shell.SH, "web02"), (Shell.POWERSHELL, "iis01")):
        script = sweep_script(indicators, shell, webroot="/srv/www")
        assert f"--- {shell} on {host}:\n" in shown.output
        assert script.rstrip("\n") in shown.output
    assert "not looked for here: task 'Updater'" in shown.output  # on the sh hosts
    again = IncidentSession.open(incident)
    assert again.state.last_seq == before and not again.state.runs
    again.close_journal()

    nothing = CliRunner().invoke(
        sweep, [incident, "--finding", "999", "--targets", "all", "--dry-run"]
    )
    assert nothing.exit_code == 2 and "no finding 999" in nothing.output


def test_the_cli_sweeps_and_names_the_findings_it_raised(
    farm: SshdFarm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, temp = plant(tmp_path)
    session = open_collect_incident(tmp_path, monkeypatch, {"web02": ssh_host(farm)})
    seq = with_finding(session)
    incident = session.state.id
    session.close_journal()
    done = CliRunner().invoke(
        sweep,
        [incident, "--finding", str(seq), "--targets", "web02", "--kind", "file",
         "--webroot", str(root), "--also", str(temp), "--json"],
        env={"IRTOOL_RESPONDER": "ann"},
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    said = json.loads(done.output)
    assert said["hits"] == {"web02": 1} and said["failed"] == {}
    assert said["indicators"] == [["file", "shell.aspx"]]
    ((raised),) = said["raised"]
    assert raised["hosts"] == ["web02"] and f"{root}/shell.aspx" in raised["summary"]


def test_a_sweep_refuses_what_it_cannot_do(
    farm: SshdFarm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = open_collect_incident(tmp_path, monkeypatch, {"web02": ssh_host(farm)})
    seq = with_finding(session)
    state = session.state
    with pytest.raises(Refused, match="'web9' selects no host"):
        plan_sweep(state, seq, ["web9"])
    with pytest.raises(Refused, match="nothing to look for"):
        plan_sweep(state, seq, ["web02"], kinds=["task"])  # tasks are not looked for by sh
    with pytest.raises(Refused, match="names no indicator of kind ip"):
        plan_sweep(state, seq, ["web02"], kinds=["ip"])
    with pytest.raises(Refused, match="not a kind of indicator"):
        plan_sweep(state, seq, ["web02"], kinds=["colour"])


def test_a_sweep_again_raises_only_what_is_new_on_the_host(
    farm: SshdFarm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, temp = plant(tmp_path)
    session = open_collect_incident(tmp_path, monkeypatch, {"web02": ssh_host(farm)})
    seq = with_finding(session)
    runner = make_runner(session, tmp_path)
    plan = plan_sweep(session.state, seq, ["web02"], webroot=str(root), also=[str(temp)])
    first = sweep_finding(runner, plan)
    assert first.hits == {"web02": 3} and len(first.raised) == 3
    # A copy of the shell dropped since: the host's output changed, and only it is new.
    (temp / "cache.bin").write_bytes(SHELL)
    again = sweep_finding(runner, plan)
    assert again.hits == {"web02": 4}
    assert [e.data["key"] for e in again.raised] == [
        f"sweep:web02:sha256:{SHELL_SHA}:{temp}/cache.bin"
    ]
