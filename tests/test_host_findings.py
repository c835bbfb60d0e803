"""An incident's analysis reads more than web logs: the Windows event logs it fetched, the
records its collectors emitted (stacked across five hosts, against each host's baseline
captured at admission), and a host's web root against the known-good manifest, YARA over the
fetched file that differs. Every hit is a finding of the one findings model, on its evidence."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from irtool.analysis.manifest import build_manifest
from irtool.cli import cli
from irtool.engine import kinds
from irtool.engine.findings import analyze_incident
from irtool.engine.known_good import library_path
from irtool.engine.runner import Runner
from irtool.engine.session import IncidentSession
from irtool.evidence.store import EvidenceStore
from irtool.export.postmortem import _findings
from irtool.journal.incidents import EVIDENCE_DIR, incident_dir
from irtool.model.loader import load_inventory, load_runbook
from irtool.remote.local import LocalTransport
from tests.support.runbooks import runbook
from tests.support.webroot import planted_webroot

ROOT = Path(__file__).resolve().parent.parent
EVTX = ROOT / "tests" / "data" / "evtx"
HOSTS = ("web01", "web02", "web03", "web04", "web05")

STEPS = """\
- id: records
  type: collect
  title: Modules and services
  shell: sh
  timeout: 20
  targets: [all]
  commands:
    - id: modules
      title: Global modules
      command: cat {{ host.vars.modules }}
      records: {kind: global-module, path: modules, key: [name, image]}
    - id: services
      title: Services
      command: cat {{ host.vars.services }}
      records: {kind: service, key: [name, path]}
- id: files
  type: collect
  title: The web root, hashed
  shell: sh
  timeout: 20
  targets: [host:web01, host:web02]
  commands:
    - id: webroot
      title: Web root listing
      command: cat {{ host.vars.listing }}
      records: {kind: webroot-file, key: [relative_path, sha256]}
- id: admit
  type: analyze
  title: Keep the baselines
  sources: [records]
  baseline: capture
- id: review
  type: analyze
  title: Review
  sources: [records, files]
"""

MODULE = {"name": "UriCacheModule", "image": "%windir%\\System32\\inetsrv\\cachuri.dll"}
ODD = {"name": "CacheHelperModule", "image": "%windir%\\System32\\inetsrv\\cachehlp.dll"}
SERVICE = {"name": "W3SVC", "path": "C:\\Windows\\system32\\svchost.exe -k iissvcs"}
NEW = {"name": "updsvc", "path": "C:\\Users\\Public\\upd.exe"}


def _open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[IncidentSession, Runner]:
    monkeypatch.setenv("IRTOOL_HOME", str(tmp_path / "home"))
    hosts = {}
    for name in HOSTS:
        data = tmp_path / name
        data.mkdir()
        modules = [MODULE, ODD] if name == "web03" else [MODULE]
        (data / "modules.json").write_text(json.dumps({"computer": name, "modules": modules}))
        (data / "services.json").write_text(json.dumps([SERVICE]))
        hosts[name] = {
            "address": "127.0.0.1",
            "transport": "local",
            "vars": {
                "modules": str(data / "modules.json"),
                "services": str(data / "services.json"),
                "listing": str(tmp_path / "listing.csv"),
            },
        }
    (tmp_path / "book.yaml").write_text(runbook("hosts", "Hosts", STEPS))
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump({"hosts": hosts}))
    session = IncidentSession.new(
        load_runbook(tmp_path / "book.yaml"),
        {},
        actor="ann",
        inventory=load_inventory(tmp_path / "inventory.yaml"),
    )
    evidence = EvidenceStore(incident_dir(session.state.id) / EVIDENCE_DIR)
    return session, Runner(session, {"local": LocalTransport()}, evidence, "ann")


def test_event_logs_fetched_from_a_host_raise_the_checklist_findings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, runner = _open(tmp_path, monkeypatch)
    for name in ("security.evtx", "system.evtx"):
        runner.fetch("web01", str(EVTX / name))
    # A copy with a chunk's header overwritten: the other chunks count, that one is a located
    # warning.
    broken = tmp_path / "cut.evtx"
    data = bytearray((EVTX / "security.evtx").read_bytes())
    data[0x1000 + 2 * 0x10000 : 0x1000 + 2 * 0x10000 + 8] = b"XXXXXXXX"
    broken.write_bytes(bytes(data))
    runner.fetch("web02", str(broken))
    said: list[str] = []
    done = analyze_incident(session, runner.evidence, "ann", on_warning=said.append)
    found = {e.data["hunt"] for e in done.raised}
    assert {
        "win-new-local-user",
        "win-admin-group-addition",
        "win-service-installed",
        "win-log-cleared",
    } <= found, found
    assert "win-new-logon-source" not in found  # routine logons from sources seen before
    assert any(h.startswith("sigma:win_") for h in found), found
    assert any("cut.evtx" in line and "chunk 2" in line for line in said), said
    assert done.events > 4000
    ran = done.record
    assert ran.kind == kinds.ANALYSIS_RAN and ran.data["events"] == done.events
    # A finding leads to its records: the evidence file and the record's number.
    users = next(e for e in done.raised if e.data["hunt"] == "win-new-local-user")
    kept = {
        str(f["sha256"])
        for item in session.state.evidence
        for f in item.files.values()
        if item.host == "web01"
    }
    assert users.data["refs"] and all(r["sha256"] in kept for r in users.data["refs"])
    assert all(r["line"] > 0 for r in users.data["refs"])
    # Analysing again raises nothing new: the same findings on the same evidence.
    assert analyze_incident(session, runner.evidence, "ann").raised == []


def test_records_are_stacked_and_compared_with_baselines_and_the_known_good_web_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, runner = _open(tmp_path, monkeypatch)
    planted = planted_webroot(tmp_path / "site")
    shutil.copy(planted.listing_csv, tmp_path / "listing.csv")
    manifest = tmp_path / "known-good.json"
    build_manifest(planted.good).write(manifest)

    # Admission: every host known good; its records become its baseline.
    assert not runner.run("records", list(HOSTS)).failed
    admitted = analyze_incident(session, runner.evidence, "ann", step="admit")
    assert admitted.raised == []
    assert admitted.compared is not None and sorted(admitted.compared.baselines) == list(HOSTS)
    for name in HOSTS:
        kept = json.loads(library_path(name).read_text())
        assert kept["host"] == name and "service" in kept["records"]
    provided = [e for e in session.state.evidence if e.purpose == "provided"]
    assert sorted(e.host for e in provided) == list(HOSTS)
    assert session.state.analyses[-1].captured

    # Later: web04 has a new service; web01's web root was changed and its shell fetched.
    (tmp_path / "web04" / "services.json").write_text(json.dumps([SERVICE, NEW]))
    assert not runner.run("records", list(HOSTS)).failed
    files = runner.run("files", ["web01"])
    assert not files.failed, files
    runner.fetch("web01", str(planted.server / planted.shell))
    said: list[str] = []
    done = analyze_incident(
        session, runner.evidence, "ann", step="review", manifest=manifest, on_warning=said.append
    )
    raised = {(e.data["hunt"], tuple(e.data["hosts"])): e for e in done.raised}

    # what is rare across the five hosts: the module only web03 loads
    rare = raised[("stack:global-module", ("web03",))]
    assert "CacheHelperModule" in rare.data["summary"]
    # W3SVC is on every host: only web04's new service is rare
    assert [k for k in raised if k[0] == "stack:service"] == [("stack:service", ("web04",))]
    # what is new against the baseline: web04's service, nothing on the others
    new = [k for k in raised if k[0].startswith("baseline:")]
    assert new == [("baseline:service", ("web04",))], new
    assert ["service", "updsvc"] in raised[new[0]].data["indicators"]
    # the web root against known good: exactly what was planted
    web = {(h, e.data["summary"]) for (h, _), e in raised.items() if h.startswith("webroot:")}
    assert {h for h, _ in web} == {"webroot:added", "webroot:changed", "webroot:missing"}
    assert len(web) == len(planted.added) + len(planted.changed) + len(planted.missing)
    assert not any(v in s for _, s in web for v in planted.volatile)
    # YARA over the fetched shell, on the evidence kept
    (shell,) = [e for (h, _), e in raised.items() if h.startswith("yara:")]
    assert shell.data["hosts"] == ["web01"] and shell.data["severity"] in ("high", "critical")
    assert ["sha256", planted.sha256[planted.shell]] in shell.data["indicators"]
    # the manifest and the baselines compared with are evidence of the incident
    ran = done.record.data
    assert ran["manifest"] and sorted(ran["baselines"]) == list(HOSTS)
    assert "baselines_captured" not in ran  # compared with, not kept
    said = str(list(_findings(session.state)))  # the post-mortem's findings section
    assert "Baselines kept (known good, at admission): web01, web02" in said
    assert "compared: with each other, with 5 baseline(s), web roots" in said
    assert ran["yara_scanned"] == 1
    items = {e.item for e in session.state.evidence if e.purpose == "provided"}
    assert items == {"baseline", "known-good-manifest"}
    # a later analysis uses the same manifest without being given it, and raises nothing new
    assert analyze_incident(session, runner.evidence, "ann", step="review").raised == []


def test_the_stack_view_lists_each_kind_the_fewest_hosts_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, runner = _open(tmp_path, monkeypatch)
    assert not runner.run("records", list(HOSTS)).failed
    incident = session.state.id
    session.close_journal()
    shown = CliRunner().invoke(cli, ["stack", incident, "--kind", "global-module"])
    assert shown.exit_code == 0, shown.output
    lines = [line for line in shown.output.splitlines() if line.strip()]
    assert lines[0] == "global-module (5 host(s) read)"
    assert "1/5" in lines[1] and "CacheHelperModule" in lines[1] and "[web03]" in lines[1]
    assert "5/5" in lines[2] and "UriCacheModule" in lines[2]
    group = CliRunner().invoke(cli, ["stack", incident, "--hosts", "web01", "--json"])
    listed = json.loads(group.output)
    assert {s["kind"] for s in listed} == {"global-module", "service"}
    assert all(s["hosts"] == ["web01"] and s["of"] == 1 for s in listed)
