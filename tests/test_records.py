"""Records from what collectors print: the JSON of PowerShell 3+, the CSV of PowerShell 2,
in the encodings and wrappings Windows writes; the shipped collectors' own specs over the
exercise's real-looking outputs; and what cannot be read, located."""

from __future__ import annotations

import codecs
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from irtool.analysis.records import read_records
from irtool.model.loader import load_runbook
from irtool.model.problems import Severity
from irtool.model.records import RecordSpec
from irtool.model.steps import CollectStep
from tests.conftest import ROOT

SHA_A = "84E202B1BE70E53D9D1342329FCDBEBBDE419703542928980D4B506811F89C2D"
SHA_B = "4137BEA64E0EF4F8F31D40A4DAE5553F4C91DF2D93360627445F3DC8394507C7"
MODULES = RecordSpec(
    kind="global-module",
    path="modules",
    key=["name", "image", "files.sha256"],
    show=["name", "image"],
)
SERVICES = RecordSpec(kind="service", key=["name", "path"], show=["name", "display"])


def module(name: str, *shas: str) -> dict[str, Any]:
    return {
        "name": name,
        "image": f"%windir%\\System32\\inetsrv\\{name}.dll",
        "files": [{"path": f"C:\\x\\{name}.dll", "sha256": s} for s in shas],
    }


def test_a_json_object_with_the_list_at_its_path() -> None:
    out = json.dumps({"computer": "WEB01", "modules": [module("Cache", SHA_A, SHA_B)]}, indent=4)
    read = read_records(out.encode(), MODULES, source="web01:triage/global-modules")
    assert read.format == "json" and read.problems == []
    (record,) = read.records
    # Nested list values sorted and joined; the hash lowercased; the name and path folded.
    assert record.identity == (
        f"cache|%windir%\\system32\\inetsrv\\cache.dll|{SHA_B.lower()},{SHA_A.lower()}"
    )
    assert record.show == "Cache %windir%\\System32\\inetsrv\\Cache.dll"
    # The line the record starts on in the output, as the evidence viewer shows it.
    assert out.splitlines()[record.line - 1].strip() == "{"
    assert '"name": "Cache"' in out.splitlines()[record.line]
    assert record.source == "web01:triage/global-modules"


def test_the_same_module_in_another_case_and_order_is_the_same_record() -> None:
    one = read_records(json.dumps({"modules": [module("Cache", SHA_A, SHA_B)]}).encode(),
                       MODULES, source="a")  # fmt: skip
    other = json.dumps({"modules": [module("CACHE", SHA_B.lower(), SHA_A)]}).encode()
    assert read_records(other, MODULES, source="b").records[0].identity == one.records[0].identity


@pytest.mark.parametrize(
    "shape",
    [
        "bare list",
        "one object",
        "value-Count wrapping",
        "utf-8 bom",
        "utf-16 bom",
        "json lines",
    ],
)
def test_every_json_shape_powershell_writes(shape: str) -> None:
    rows = [
        {
            "name": "W3SVC",
            "path": "C:\\Windows\\system32\\svchost.exe -k iissvcs",
            "display": "WWW",
        },
        {"name": "Tunnel", "path": "C:\\ProgramData\\t.exe", "display": "Helper"},
    ]
    data: bytes
    if shape == "bare list":
        data = json.dumps(rows).encode()
    elif shape == "one object":
        data = json.dumps(rows[1]).encode()
    elif shape == "value-Count wrapping":  # PowerShell 3/4: an array inside an object
        spec = SERVICES.model_copy(update={"path": "services"})
        data = json.dumps({"services": {"value": rows, "Count": 2}}).encode()
        assert [r.fields["name"] for r in read_records(data, spec, source="s").records] == [
            "W3SVC",
            "Tunnel",
        ]
        return
    elif shape == "utf-8 bom":
        data = codecs.BOM_UTF8 + json.dumps(rows).encode()
    elif shape == "utf-16 bom":  # what `> file` writes in Windows PowerShell
        data = codecs.BOM_UTF16_LE + json.dumps(rows, indent=2).encode("utf-16-le")
    else:
        data = "\n".join(json.dumps(r) for r in rows).encode()
    read = read_records(data, SERVICES, source="web01:services")
    assert read.problems == []
    names = [r.fields["name"] for r in read.records]
    assert names == (["Tunnel"] if shape == "one object" else ["W3SVC", "Tunnel"])
    assert read.records[-1].identity == "tunnel|c:\\programdata\\t.exe"
    assert read.records[-1].show == "Tunnel Helper"
    if shape == "json lines":
        assert read.format == "jsonl" and [r.line for r in read.records] == [1, 2]


def test_powershell_2_csv_reads_the_last_part_of_a_dotted_key() -> None:
    # global-modules ps2: one flat row per file, the hash at the top level.
    csv_text = (
        "#TYPE Selected.System.Management.Automation.PSCustomObject\r\n"
        '"review","name","image","path","sha256","signer"\r\n'
        f'"review","Cache","%windir%\\System32\\inetsrv\\Cache.dll","C:\\x.dll","{SHA_A}","CN=x"\r\n'
        '"","Uri","%windir%\\System32\\inetsrv\\cachuri.dll","C:\\y.dll","","CN=Microsoft"\r\n'
    )
    read = read_records(csv_text.encode(), MODULES, source="web04:global-modules")
    assert read.format == "csv" and read.problems == []
    first, second = read.records
    assert first.identity == f"cache|%windir%\\system32\\inetsrv\\cache.dll|{SHA_A.lower()}"
    assert (first.line, second.line) == (3, 4)  # the file's own lines, #TYPE counted
    assert second.identity.endswith("cachuri.dll|")  # no hash: still a record, by name


def test_a_powershell_2_csv_of_several_tables_keeps_the_rows_of_the_paths_list() -> None:
    # local-accounts ps2: users, administrators and profiles in one CSV, `kind` naming each.
    spec = RecordSpec(kind="local-admin", path="administrators", key=["name"])
    text = (
        '"kind","name","sid","enabled","description","detail"\n'
        '"local_user","Administrator","S-1-5-21-1-500","True","",""\n'
        '"administrators","WEB04\\Administrator","S-1-5-21-1-500","","","Win32_UserAccount"\n'
        '"administrators","EXAMPLE\\svc_backup","S-1-5-21-9-1107","","","Win32_UserAccount"\n'
        '"profile","C:\\Users\\ann","S-1-5-21-9-1201","","",""\n'
    )
    read = read_records(text.encode(), spec, source="web04:local-accounts")
    assert [r.identity for r in read.records] == ["web04\\administrator", "example\\svc_backup"]
    assert [r.line for r in read.records] == [3, 4]
    assert read.skipped == 2


def test_rows_without_a_key_value_are_not_records() -> None:
    # w3wp-modules ps2: worker rows carry no path or hash.
    spec = RecordSpec(kind="loaded-dll", path="loaded_files", key=["path", "sha256"])
    text = (
        '"kind","pid","app_pool","path","sha256"\n'
        '"worker_process","4242","Portal","",""\n'
        f'"loaded_file","4242","","C:\\inetpub\\bin\\x.dll","{SHA_A}"\n'
    )
    read = read_records(text.encode(), spec, source="w")
    assert [r.identity for r in read.records] == [f"c:\\inetpub\\bin\\x.dll|{SHA_A.lower()}"]


def test_what_cannot_be_read_is_located_never_raised() -> None:
    broken = b'{\n  "modules": [\n    {"name": "x",,}\n  ]\n}\n'
    read = read_records(broken, MODULES, source="web01:global-modules")
    (problem,) = read.problems
    assert str(problem).startswith("web01:global-modules:3:")
    assert "not JSON" in problem.message and read.records == []

    missing = read_records(b'{"computer": "WEB01"}', MODULES, source="s")
    assert [p.message for p in missing.problems] == ["no 'modules' in the output"]

    torn = read_records(b'"name","path"\n"a","unterminated\n', SERVICES, source="t")
    assert torn.records == [] or all(r.fields for r in torn.records)

    bad_bytes = read_records(b'"name","path"\n"caf\xe9","x"\n', SERVICES, source="u")
    assert bad_bytes.records[0].fields["name"] == "caf\ufffd"
    assert bad_bytes.problems[0].severity is Severity.WARNING
    assert str(bad_bytes.problems[0].mark) == "u:2:5"

    assert read_records(b"  \r\n", SERVICES, source="e").records == []

    # Text that is not this collector's CSV (cmd.exe's, an error message) names the key.
    text = b"The term 'Get-WebGlobalModule' is not recognized\r\nAt line:1 char:1\r\n"
    (said,) = read_records(text, SERVICES, source="v").problems
    assert (
        str(said) == "v:1:1: no column of the key (name, path): not the CSV this collector writes"
    )


# -- the shipped collectors' specs over the exercise's outputs ------------------------------


def shipped_specs() -> dict[tuple[str, str, str], RecordSpec]:
    """(step, collector, kind) -> spec: one output may hold several kinds."""
    book = load_runbook(ROOT / "runbooks" / "iis-compromise.yaml").model
    specs = {}
    for _phase, step in book.steps():
        if isinstance(step, CollectStep):
            for collector in step.collectors():
                for spec in collector.records or ():
                    specs[(step.id, collector.id, spec.kind)] = spec
    return specs


def scenario_outputs() -> list[tuple[str, str, str, str]]:
    scenario = yaml.safe_load((ROOT / "runbooks/scenarios/iis-compromise.yaml").read_text())
    found = []
    for reply in scenario["replies"]:
        if reply.get("item") and reply.get("stdout"):
            for host in reply["hosts"]:
                found.append((host, reply["step"], reply["item"], reply["stdout"]))
    return found


def test_the_shipped_triage_collectors_declare_their_records() -> None:
    assert set(shipped_specs()) == {
        ("triage-volatile", "w3wp-modules", "loaded-dll"),
        ("triage-iis-config", "global-modules", "global-module"),
        ("triage-iis-config", "site-modules", "site-module"),
        ("triage-iis-config", "handlers", "handler"),
        ("triage-iis-config", "isapi", "isapi-filter"),
        ("triage-iis-config", "app-pools", "app-pool"),
        ("triage-files", "webroot", "webroot-file"),
        ("triage-persistence", "scheduled-tasks", "scheduled-task"),
        ("triage-persistence", "local-accounts", "local-admin"),
        ("triage-persistence", "local-accounts", "local-user"),
        ("triage-persistence", "services", "service"),
        ("triage-persistence", "autoruns", "autorun"),
        ("triage-persistence", "wmi-subscriptions", "wmi-subscription"),
    }


# The exercise abridges these outputs: its w3wp-modules JSON has no `loaded_files` list.
ABRIDGED = {("triage-volatile", "w3wp-modules")}


def test_every_exercise_output_of_a_record_collector_reads_cleanly() -> None:
    specs = shipped_specs()
    read_any: dict[str, int] = {}
    for host, step, item, stdout in scenario_outputs():
        if (step, item) in ABRIDGED:
            continue
        for (s_step, s_item, kind), spec in specs.items():
            if (s_step, s_item) != (step, item):
                continue
            read = read_records(stdout.encode(), spec, source=f"{host}:{step}/{item}")
            assert read.problems == [], (host, item, read.problems)
            read_any[kind] = read_any.get(kind, 0) + len(read.records)
    # The exercise's planted signals are records: the module, the task, the admin, the shell.
    assert {"global-module", "webroot-file", "scheduled-task", "local-admin", "service"} <= set(
        read_any
    )
    webroot = next(o for o in scenario_outputs() if o[2] == "webroot")
    spec = specs[("triage-files", "webroot", "webroot-file")]
    files = read_records(webroot[3].encode(), spec, source="w")
    assert any(r.show == "aspnet_client\\system_web\\4_0_30319\\errors.aspx" for r in files.records)


def test_the_webroot_ps3_variant_prints_a_json_list(tmp_path: Path) -> None:
    fragment = yaml.safe_load((ROOT / "runbooks/fragments/iis-triage.yaml").read_text())
    step = next(s for s in fragment["steps"] if s["id"] == "triage-files")
    webroot = next(c for c in step["commands"] if c["id"] == "webroot")
    forms = {v["id"]: v["command"] for v in webroot["variants"]}
    # Not compressed: one line per value, so that a finding names the line of its file.
    assert "ConvertTo-Json -InputObject @($rows) -Depth 3\n" in forms["ps3"] + "\n"
    assert "ConvertTo-Csv" not in forms["ps3"] and "ConvertTo-Csv" in forms["ps2"]


def test_each_powershell_2_table_names_its_rows_as_the_spec_reads_them() -> None:
    # A ps2 CSV of several tables keeps a spec's rows by their `kind` (the ps3 list's name,
    # singular): renaming one in the command would silently drop every record.
    fragment = yaml.safe_load((ROOT / "runbooks/fragments/iis-triage.yaml").read_text())
    checked = []
    for step in fragment["steps"]:
        for collector in step.get("commands") or []:
            specs = collector.get("records") or []
            ps2 = next(
                (v["command"] for v in collector.get("variants") or [] if v["id"] == "ps2"), ""
            )
            for spec in [specs] if isinstance(specs, dict) else specs:
                if not spec.get("path") or "kind = " not in ps2:
                    continue
                last = spec["path"].rsplit(".", 1)[-1]
                names = {last, last.removesuffix("s"), last.removesuffix("es")}
                assert any(f"'{n}'" in ps2 for n in names), (collector["id"], names)
                checked.append(collector["id"])
    assert sorted(checked) == [
        "autoruns", "isapi", "local-accounts", "local-accounts", "w3wp-modules",
        "wmi-subscriptions",
    ]  # fmt: skip
