"""The edges of the host comparisons that a review found: what a host or a file can send that
must be said, not hidden or crashed on, and findings that must not come back twice."""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

import pytest

from irtool.analysis.artifacts import read_directory
from irtool.analysis.comparison import compare
from irtool.analysis.evtx import read_evtx_paths
from irtool.analysis.listing import read_listing
from irtool.analysis.manifest import build_manifest
from irtool.analysis.records import read_records
from irtool.engine.findings import analyze_incident
from irtool.engine.refusal import Refused
from irtool.engine.sweep import plan_sweep
from irtool.model.problems import InvalidFile, Problem
from irtool.model.records import RecordSpec
from tests.support.webroot import planted_webroot
from tests.test_host_findings import HOSTS, _open

EVTX = Path(__file__).resolve().parent / "data" / "evtx"
SHA = "a" * 64
HEADER = '"relative_path","size","created_utc","modified_utc","attributes","sha256"\n'


def test_a_link_in_the_compared_folder_is_said_not_passed_as_clean(tmp_path: Path) -> None:
    planted = planted_webroot(tmp_path)
    manifest = build_manifest(planted.good)
    outside = tmp_path / "elsewhere.aspx"
    outside.write_text('<%@ Page Language="Jscript"%><%eval(Request.Item["z"],"unsafe");%>')
    site = tmp_path / "copy"
    shutil.copytree(planted.good, site)
    (site / "help.aspx").symlink_to(outside)
    compared = compare(manifest, site)
    assert any("help.aspx" in str(w) and "link" in str(w) for w in compared.warnings)


def test_a_fifo_is_not_opened(tmp_path: Path) -> None:
    root = tmp_path / "site"
    root.mkdir()
    (root / "a.aspx").write_text("x")
    os.mkfifo(root / "pipe")
    warnings: list[Problem] = []
    entries = list(read_directory(root, warnings))  # would wait forever on the FIFO
    assert [e.path for e in entries] == ["a.aspx"]
    assert any("not a regular file" in str(w) for w in warnings)


def test_a_listing_with_leading_backslashes_matches_its_files(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "bin").mkdir(parents=True)
    (site / "Default.aspx").write_text("page")
    (site / "bin" / "a.dll").write_bytes(b"dll")
    manifest = build_manifest(site)
    listing = tmp_path / "listing.csv"
    by_path = {f.path: f.sha256 for f in manifest.files}
    listing.write_text(
        HEADER
        + f'"\\Default.aspx","4","","","Archive","{by_path["Default.aspx"].upper()}"\n'
        + f'".\\bin\\a.dll","3","","","Archive","{by_path["bin/a.dll"]}"\n'
    )
    compared = compare(manifest, listing)
    assert compared.differences == () and compared.same == 2


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("superscript.csv", HEADER + f'"a.aspx","\u00b2","","","Archive","{SHA}"\n'),
        ("infinity.json", f'[{{"relative_path": "a.aspx", "size": Infinity, "sha256": "{SHA}"}}]'),
        ("deep.json", "[" * 100_000 + "]" * 100_000),
    ],
)
def test_a_hostile_listing_is_a_located_problem(tmp_path: Path, name: str, text: str) -> None:
    listing = tmp_path / name
    listing.write_text(text)
    with pytest.raises(InvalidFile) as bad:
        read_listing(listing)
    assert all(str(p).startswith(f"{listing}:") for p in bad.value.problems)


def test_records_nested_too_deep_are_a_problem_not_a_crash() -> None:
    spec = RecordSpec(kind="service", key=["name"])
    read = read_records(b"[" * 100_000 + b"]" * 100_000, spec, source="web01:x/services")
    assert read.records == [] and "nested too deep" in str(read.problems[0])


def test_a_webdeploy_package_with_a_broken_archive_xml_is_located(tmp_path: Path) -> None:
    package = tmp_path / "package.zip"
    with zipfile.ZipFile(package, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("archive.xml", "<sitemanifest>" + "x" * 5000 + "</sitemanifest>")
        z.writestr("Content/C_C/site/Default.aspx", "page")
    data = bytearray(package.read_bytes())
    at = data.index(b"archive.xml") + len("archive.xml") + 10  # inside its deflated bytes
    data[at : at + 20] = b"\x00" * 20
    package.write_bytes(bytes(data))
    with pytest.raises(InvalidFile) as bad:
        build_manifest(package)
    assert any(str(p).startswith(f"{package}") for p in bad.value.problems)


def test_code_iis_runs_under_an_upload_folder_is_compared(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "uploads").mkdir(parents=True)
    (site / "Default.aspx").write_text("page")
    manifest = build_manifest(site)
    (site / "uploads" / "x.xamlx").write_text("<shell/>")
    (site / "uploads" / "photo.jpg").write_bytes(b"jpg")
    compared = compare(manifest, site)
    assert [d.path for d in compared.added] == ["uploads/x.xamlx"]
    assert compared.volatile == 1


def test_a_cut_short_event_log_says_what_it_lost(tmp_path: Path) -> None:
    cut = tmp_path / "cut.evtx"
    cut.write_bytes((EVTX / "system.evtx").read_bytes()[: 0x1000 + 2 * 0x10000 + 30_000])
    said: list[str] = []
    records = sum(
        len(b.lines) for b in read_evtx_paths([cut], on_warning=lambda w: said.append(str(w)))
    )
    assert records > 0
    assert any("chunk 2 at offset 0x21000" in line and "lost" in line for line in said), said


def test_host_findings_are_not_raised_again_from_a_new_collection_and_a_shared_shell_is_each_hosts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, runner = _open(tmp_path, monkeypatch)
    planted = planted_webroot(tmp_path / "site")
    shutil.copy(planted.listing_csv, tmp_path / "listing.csv")
    manifest = tmp_path / "known-good.json"
    build_manifest(planted.good).write(manifest)
    assert not runner.run("records", list(HOSTS)).failed
    assert not runner.run("files", ["web01", "web02"]).failed
    shell = planted.server / planted.shell
    runner.fetch("web01", str(shell))
    runner.fetch("web02", str(shell))  # the same bytes: one file in the evidence store
    first = analyze_incident(session, runner.evidence, "ann", step="review", manifest=manifest)
    yara = sorted(e.data["hosts"][0] for e in first.raised if e.data["hunt"].startswith("yara:"))
    assert yara == ["web01", "web02"]
    webroot = [e for e in first.raised if e.data["hunt"].startswith("webroot:")]
    assert webroot
    # The next triage lists the same web root with other times: nothing new is raised.
    listing = (tmp_path / "listing.csv").read_text()
    (tmp_path / "listing.csv").write_text(listing.replace("T", "t", 1) + "\n")
    assert not runner.run("records", list(HOSTS)).failed
    assert not runner.run("files", ["web01", "web02"]).failed
    again = analyze_incident(session, runner.evidence, "ann", step="review")
    assert [e.data["hunt"] for e in again.raised] == []


def test_a_broken_manifest_is_refused_before_anything_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, runner = _open(tmp_path, monkeypatch)
    bad = tmp_path / "manifest.json"
    bad.write_text('{"format": "irtool-manifest", "files": [')
    with pytest.raises(InvalidFile) as refused:
        analyze_incident(session, runner.evidence, "ann", manifest=bad)
    assert str(refused.value.problems[0]).startswith(f"{bad}:")
    assert not [e for e in session.state.evidence if e.purpose == "provided"]
    assert session.state.analyses == []


def test_a_sweep_folder_that_is_not_text_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from irtool.analysis.hunts import FindingDraft
    from irtool.engine.findings import raise_findings

    session, _runner = _open(tmp_path, monkeypatch)
    draft = FindingDraft(
        "yara:x", "1", "high", "t", "s", ("web01",), None, None, 1, (), "k",
        indicators=(("file", "x.aspx"),),
    )  # fmt: skip
    (event,) = raise_findings(session, "ann", [draft])
    with pytest.raises(Refused, match="cannot sweep"):
        plan_sweep(session.state, event.seq, ["web02"], webroot="/var/www/\udcff")
