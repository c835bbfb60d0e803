"""Baselines end to end over the real test sshd: a sh collector that prints users and services
as JSON records, a known-good state captured with `irtool baseline capture`, the host
changed (a new user, a new service), collected again, and exactly the new ones found."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from irtool.analysis.baseline import baseline_drafts, read_baseline
from irtool.cli.baseline import baseline
from irtool.engine.records import host_records, hosts_per_kind, records_of
from irtool.engine.runner import Runner
from irtool.engine.session import IncidentSession
from irtool.evidence.store import EvidenceStore
from irtool.journal.incidents import EVIDENCE_DIR, incident_dir
from irtool.model.context import load_context
from irtool.model.problems import InvalidFile
from irtool.remote.ssh import SshTransport
from irtool.secrets.run import RunSecrets
from tests.support.runbooks import runbook
from tests.support.sshd import SshdFarm, inventory_entry

USERS = [
    {"name": "Administrator", "sid": "S-1-5-21-1-500", "enabled": True},
    {"name": "iis_deploy", "sid": "S-1-5-21-1-1001", "enabled": True},
]
SERVICES = [
    {
        "name": "W3SVC",
        "path": "C:\\Windows\\system32\\svchost.exe -k iissvcs",
        "account": "LocalSystem",
    },
    {
        "name": "WAS",
        "path": "C:\\Windows\\system32\\svchost.exe -k iissvcs",
        "account": "LocalSystem",
    },
]


def book(host_dir: Path) -> str:
    return runbook(
        "known-good",
        "Known good",
        f"""\
- id: persistence
  type: collect
  title: Users and services
  shell: sh
  timeout: 30
  targets: [all]
  commands:
    - id: local-users
      title: Local users (JSON)
      command: cat '{host_dir}/users.json'
      records:
        kind: local-user
        path: local_users
        key: [name]
    - id: services
      title: Services (JSON)
      command: cat '{host_dir}/services.json'
      records:
        kind: service
        path: services
        key: [name, path, account]
        show: [name, path]
    - id: uptime
      title: Not records
      command: echo up
""",
    )


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdFarm]:
    with SshdFarm(tmp_path_factory.mktemp("sshd"), count=1) as started:
        yield started


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRTOOL_HOME", str(tmp_path / "home"))


def ssh_host(farm: SshdFarm) -> dict[str, Any]:
    return inventory_entry(farm)


def host_state(host_dir: Path, users: list[dict[str, Any]], services: list[dict[str, Any]]) -> None:
    """What the host says: users as one JSON object, services as PowerShell 3 wraps an array."""
    host_dir.mkdir(exist_ok=True)
    (host_dir / "users.json").write_text(
        json.dumps({"computer": "WEB01", "local_users": users}, indent=4)
    )
    wrapped = {"value": services, "Count": len(services)}
    (host_dir / "services.json").write_text(json.dumps({"services": wrapped}))


def open_incident(tmp_path: Path, farm: SshdFarm) -> IncidentSession:
    (tmp_path / "book.yaml").write_text(book(tmp_path / "host"))
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump({"hosts": {"web01": ssh_host(farm)}}))
    context, _ = load_context(tmp_path / "book.yaml", inventory=tmp_path / "inventory.yaml")
    return IncidentSession.new(context.runbook, {}, actor="ann", inventory=context.inventory)


def collect(session: IncidentSession, tmp_path: Path) -> None:
    (tmp_path / "ssh_config").write_text("")
    (tmp_path / "known_hosts").write_text("")
    transport = SshTransport(
        RunSecrets(),
        config_file=tmp_path / "ssh_config",
        known_hosts_file=tmp_path / "known_hosts",
    )
    store = EvidenceStore(incident_dir(session.state.id) / EVIDENCE_DIR)
    report = Runner(session, {"ssh": transport}, store, "ann").run("persistence")
    assert not report.failed, report
    session.refresh()


def test_capture_then_diff_finds_exactly_the_new_user_and_service(
    farm: SshdFarm, tmp_path: Path
) -> None:
    host_dir = tmp_path / "host"
    host_state(host_dir, USERS, SERVICES)
    session = open_incident(tmp_path, farm)
    collect(session, tmp_path)
    incident = session.state.id

    kept = tmp_path / "web01.baseline.json"
    captured = CliRunner().invoke(
        baseline, ["capture", incident, "--host", "web01", "-o", str(kept)]
    )
    assert captured.exit_code == 0, captured.output
    assert f"baseline of web01 from incident {incident}: 4 record(s)" in captured.output
    counts = [line.split() for line in captured.output.splitlines() if line.startswith("  ")]
    assert counts == [["local-user", "2"], ["service", "2"]]
    written = json.loads(kept.read_text())
    assert written["format"] == "irtool-baseline" and written["version"] == 1
    assert written["host"] == "web01" and written["from"]["incident"] == incident
    assert len(written["from"]["evidence"]) == 2  # the two outputs that hold records
    assert sorted(e["identity"] for e in written["records"]["local-user"]) == [
        "administrator",
        "iis_deploy",
    ]
    assert len(written["records"]["service"]) == 2

    # The attacker adds a user and a service; the host is collected again.
    backdoor: dict[str, Any] = {
        "name": "support_388945a0",
        "sid": "S-1-5-21-1-1009",
        "enabled": True,
    }
    helper = {"name": "WinHttpHelper", "path": "C:\\ProgramData\\whh.exe", "account": "LocalSystem"}
    # The same user in another case and order is not new (Windows names are case-insensitive).
    renamed: list[dict[str, Any]] = [
        {"name": "ADMINISTRATOR", "sid": "S-1-5-21-1-500"},
        USERS[1],
        backdoor,
    ]
    host_state(host_dir, renamed, [*SERVICES, helper])
    collect(session, tmp_path)

    store = EvidenceStore(incident_dir(incident) / EVIDENCE_DIR, create=False)
    outputs = host_records(session.state, store)["web01"]
    # The second collection supersedes the first: one output per collector, the latest.
    latest = {e.item: e.files["stdout"]["sha256"] for e in session.state.evidence}
    assert {(o.item, o.sha256) for o in outputs} == {
        ("local-users", latest["local-users"]),
        ("services", latest["services"]),
    }
    assert hosts_per_kind({"web01": outputs}) == {"local-user": 1, "service": 1}
    records = [r for got in outputs for r in got.records]
    drafts = baseline_drafts(read_baseline(kept), records, host="web01")
    assert sorted((d.hunt, d.key) for d in drafts) == [
        ("baseline:local-user", "baseline:web01:local-user:support_388945a0"),
        (
            "baseline:service",
            "baseline:web01:service:winhttphelper|c:\\programdata\\whh.exe|localsystem",
        ),
    ]
    service = next(d for d in drafts if d.hunt == "baseline:service")
    assert service.indicators == (("service", "WinHttpHelper"),)
    assert service.refs[0][1] == "web01:persistence/services"
    user = next(d for d in drafts if d.hunt == "baseline:local-user")
    assert user.indicators == (("account", "support_388945a0"),)
    assert user.summary.startswith("local-user support_388945a0 on web01 is not in its baseline")

    shown = CliRunner().invoke(baseline, ["diff", incident, "--host", "web01", str(kept)])
    assert shown.exit_code == 1, shown.output
    assert "support_388945a0" in shown.output and "WinHttpHelper" in shown.output
    assert "iis_deploy" not in shown.output


def test_a_host_without_records_is_refused_naming_the_collectors(
    farm: SshdFarm, tmp_path: Path
) -> None:
    host_state(tmp_path / "host", USERS, SERVICES)
    session = open_incident(tmp_path, farm)
    collect(session, tmp_path)
    result = CliRunner().invoke(
        baseline,
        ["capture", session.state.id, "--host", "web09", "-o", str(tmp_path / "b.json")],
    )
    assert result.exit_code == 2
    assert "no records from host 'web09'" in result.output
    assert "persistence/local-users, persistence/services" in result.output
    assert not (tmp_path / "b.json").exists()


def test_a_baseline_that_is_not_json_is_a_located_error(farm: SshdFarm, tmp_path: Path) -> None:
    host_state(tmp_path / "host", USERS, SERVICES)
    session = open_incident(tmp_path, farm)
    collect(session, tmp_path)
    bad = tmp_path / "baseline.json"
    bad.write_text('{\n  "format": "irtool-baseline",\n  "version": 1,\n  oops\n}\n')
    result = CliRunner().invoke(baseline, ["diff", session.state.id, "--host", "web01", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}:4:3: not JSON" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ('{"format": "something-else", "version": 1}', ":1:2:", "not a baseline"),
        ('{"format": "irtool-baseline",\n "version": 7}', ":2:2:", "version 7"),
        (
            '{"format": "irtool-baseline", "version": 1, "host": "w", "captured_at": "t",\n'
            ' "records": {"service": [{"fields": {}}]}}',
            ":2:14:",
            "record 1 of 'service' has no identity",
        ),
    ],
)
def test_a_wrong_baseline_file_is_located(
    tmp_path: Path, text: str, where: str, message: str
) -> None:
    path = tmp_path / "b.json"
    path.write_text(text)
    with pytest.raises(InvalidFile) as raised:
        read_baseline(path)
    (problem,) = raised.value.problems
    assert str(problem).startswith(f"{path}{where}") and message in problem.message


def test_a_cmd_variant_or_a_failed_run_holds_no_records(tmp_path: Path) -> None:
    from irtool.engine.state import Evidence
    from irtool.model.records import RecordSpec
    from irtool.model.steps import Collector, Shell, Variant

    store = EvidenceStore(tmp_path / "evidence")  # neither output is read from it
    collector = Collector(
        id="local-users",
        title="Users",
        variants=[
            Variant(id="ps3", command="Get-LocalUser"),
            Variant(id="cmd", shell=Shell.CMD, command="net user"),
        ],
        records=[RecordSpec(kind="local-user", path="local_users", key=["name"])],
    )

    def kept(variant: str, status: int) -> Evidence:
        files: dict[str, dict[str, Any]] = {"stdout": {"sha256": "0" * 64, "size": 40}}
        return Evidence(7, "t", "ann", "persistence", "web01", "collect", "local-users",
                        "x", None, status, files, variant=variant)  # fmt: skip

    raw = records_of(kept("cmd", 0), collector, store, Shell.CMD)
    assert raw is not None and raw.records == [] and not raw.readable
    (said,) = raw.read.problems
    assert str(said).startswith("web01:persistence/local-users:1:1: warning: the cmd variant")
    assert records_of(kept("ps3", 1), collector, store, Shell.POWERSHELL) is None
