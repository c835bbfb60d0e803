"""Manifests of known-good web roots and the comparison of a server's web root with them:
built from each artifact kind, compared with a directory and with a host's hash listings,
zip bombs and traversal refused, broken manifests and listings located."""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

import pytest

from irtool.analysis.artifacts import ZipLimits
from irtool.analysis.comparison import Comparison, compare, comparison_drafts
from irtool.analysis.manifest import (
    DEFAULT_VOLATILE,
    Manifest,
    Volatile,
    build_manifest,
    normalised,
    read_manifest,
)
from irtool.model.problems import InvalidFile
from tests.support.webroot import SHELL_TEXT, Planted, planted_webroot


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Planted:
    return planted_webroot(tmp_path_factory.mktemp("webroot"))


@pytest.fixture(scope="module")
def known(planted: Planted) -> Manifest:
    return build_manifest(planted.good)


def _paths(comparison: Comparison, kind: str) -> list[str]:
    return [d.path.replace("\\", "/") for d in comparison.of_kind(kind)]


def _problems(raised: pytest.ExceptionInfo[InvalidFile]) -> list[str]:
    return [str(p) for p in raised.value.problems]


# -- building ---------------------------------------------------------------------------------


def test_every_artifact_kind_gives_the_same_manifest(planted: Planted, known: Manifest) -> None:
    built = {
        "zip": build_manifest(planted.zip),
        "webdeploy": build_manifest(planted.webdeploy),
        "git": build_manifest(planted.repo, commit=planted.commit, root=planted.repo_root),
    }
    assert len(known.files) == planted.files and known.bytes == planted.bytes
    assert planted.dll in {f.path for f in known.files}
    for kind, manifest in built.items():
        assert manifest.source["kind"] == kind
        assert manifest.files == known.files, kind
    assert built["git"].source["commit"] == planted.commit
    assert built["webdeploy"].source["application"].endswith("/Package/PackageTmp")
    # the zip's own hash is its source's: a responder can show which file it was
    assert len(built["zip"].source["sha256"]) == 64
    # HEAD is a later commit: building there instead would not be the known-good release
    at_head = build_manifest(planted.repo, commit="HEAD", root=planted.repo_root)
    assert at_head.files != known.files


def test_the_manifest_file_reads_back_as_written(planted: Planted, tmp_path: Path) -> None:
    built = build_manifest(planted.zip, volatile=(*DEFAULT_VOLATILE, "cache/**"))
    built.write(tmp_path / "m.json")
    document = json.loads((tmp_path / "m.json").read_text())
    assert document["format"] == "irtool-manifest" and document["version"] == 1
    assert document["source"]["kind"] == "zip" and "cache/**" in document["volatile"]
    assert {"path", "size", "sha256"} == set(document["files"][0])
    again = read_manifest(tmp_path / "m.json")
    assert again.files == built.files and again.volatile == built.volatile
    assert again.source == built.source


# -- comparing --------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["server", "listing_csv", "listing_json"])
def test_the_server_differs_by_exactly_what_was_planted(
    planted: Planted, known: Manifest, target: str
) -> None:
    comparison = compare(known, getattr(planted, target))
    assert _paths(comparison, "added") == list(planted.added)
    assert _paths(comparison, "changed") == list(planted.changed)
    assert _paths(comparison, "missing") == list(planted.missing)
    assert comparison.unhashed == []
    # the upload folder and App_Data changed too, and stay quiet: counted, not compared (the
    # planted ones, and uploads/README.txt that did not change)
    assert comparison.volatile == len(planted.volatile) + 1
    assert comparison.same == planted.files - 2 - 2  # not the changed, the missing, 2 volatile
    found = comparison.added[0].found
    assert found is not None and found.sha256 == planted.sha256[planted.shell]


@pytest.mark.parametrize("target", ["listing_csv", "listing_json"])
def test_a_listing_difference_cites_its_line(
    planted: Planted, known: Manifest, target: str
) -> None:
    listing: Path = getattr(planted, target)
    comparison = compare(known, listing)
    lines = listing.read_text(encoding="utf-8-sig").splitlines()
    for difference in comparison.added + comparison.changed:
        assert difference.source == str(listing)
        # the row's line (CSV) or the line its object starts on (JSON)
        cited = "\n".join(lines[difference.line - 1 : difference.line + 1])
        assert difference.path.replace("\\", "\\\\" if target == "listing_json" else "\\") in cited


def test_a_script_in_the_upload_folder_is_not_volatile(planted: Planted, tmp_path: Path) -> None:
    server = tmp_path / "server"
    _copy(planted.server, server)
    (server / "uploads" / "2026" / "12" / "avatar.aspx").write_text(SHELL_TEXT)
    (server / "uploads" / "2026" / "12" / "photo.jpg").write_bytes(b"\xff\xd8\xff")
    comparison = compare(build_manifest(planted.good), server)
    added = _paths(comparison, "added")
    assert "uploads/2026/12/avatar.aspx" in added
    assert "uploads/2026/12/photo.jpg" not in added


def _listing(tmp_path: Path, rows: list[tuple[str, int, str]], *, header: str = "") -> Path:
    lines = [header] if header else []
    lines.append('"relative_path","size","created_utc","modified_utc","attributes","sha256"')
    for path, size, sha in rows:
        lines.append(f'"{path}","{size}","2026-01-01T00:00:00Z","","Archive","{sha}"')
    listing = tmp_path / "listing.csv"
    listing.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    return listing


def _rows(known: Manifest) -> list[tuple[str, int, str]]:
    """The known-good files as a host would list them: backslashes, another case, upper-case
    hashes."""
    return [(f.path.replace("/", "\\").upper(), f.size, f.sha256.upper()) for f in known.files]


def test_paths_and_hashes_compare_as_iis_sees_them(known: Manifest, tmp_path: Path) -> None:
    comparison = compare(known, _listing(tmp_path, _rows(known), header="#TYPE Selected"))
    assert comparison.differences == ()
    assert comparison.same + comparison.volatile == len(known.files)


def test_a_file_the_host_could_not_hash_is_a_difference(known: Manifest, tmp_path: Path) -> None:
    rows = _rows(known)
    at = next(i for i, row in enumerate(rows) if row[0] == "WEB.CONFIG")
    rows[at] = (rows[at][0], rows[at][1], "error: The process cannot access the file")
    locked = next(f for f in known.files if f.path == "web.config")
    comparison = compare(known, _listing(tmp_path, rows))
    [difference] = comparison.differences
    assert difference.kind == "unhashed" and difference.line == at + 2  # after the header
    assert difference.expected == locked
    assert "could not be hashed" in difference.why and "cannot access" in difference.why


@pytest.mark.parametrize("shape", ["wrapped", "lines", "utf16"])
def test_listing_shapes_powershell_writes(
    planted: Planted, known: Manifest, tmp_path: Path, shape: str
) -> None:
    rows = json.loads(planted.listing_json.read_text())
    listing = tmp_path / "listing"
    if shape == "wrapped":  # ConvertTo-Json of a pipeline: {"value": [...], "Count": n}
        listing.write_text(json.dumps({"value": rows, "Count": len(rows)}, indent=2))
    elif shape == "lines":
        listing.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    else:  # Windows PowerShell's Out-File: UTF-16 with a BOM
        csv = planted.listing_csv.read_text(encoding="utf-8-sig")
        listing.write_bytes(csv.encode("utf-16"))
    comparison = compare(known, listing)
    assert _paths(comparison, "added") == list(planted.added)
    assert _paths(comparison, "changed") == list(planted.changed)
    assert _paths(comparison, "missing") == list(planted.missing)


def test_a_broken_listing_is_located(known: Manifest, tmp_path: Path) -> None:
    rows = _rows(known)
    rows[3] = (rows[3][0], rows[3][1], "not-a-hash")
    with pytest.raises(InvalidFile) as raised:
        compare(known, _listing(tmp_path, rows))
    assert _problems(raised) == [
        f"{tmp_path / 'listing.csv'}:5:1: sha256: not 64 hex digits nor an error"
    ]
    cmd = tmp_path / "dir.csv"  # the cmd variant: sizes and times, no hashes
    cmd.write_text('"relative_path","size"\n"a.aspx","3"\n')
    with pytest.raises(InvalidFile) as raised:
        compare(known, cmd)
    assert "no sha256 column" in _problems(raised)[0] and _problems(raised)[0].startswith(
        f"{cmd}:1:1:"
    )
    broken = tmp_path / "broken.json"
    broken.write_text(
        '[\n  {"relative_path": "a", "size": 1, "sha256": "x"},\n  {"relative_path": \n'
    )
    with pytest.raises(InvalidFile) as raised:
        compare(known, broken)
    assert _problems(raised)[0].startswith(f"{broken}:")


def test_each_difference_is_a_finding_draft(planted: Planted, known: Manifest) -> None:
    comparison = compare(known, planted.listing_csv)
    drafts = comparison_drafts(
        comparison, host="web01", evidence_sha256="e" * 64, source="web01/webroot.csv"
    )
    by_hunt = {d.hunt: d for d in drafts}
    assert set(by_hunt) == {"webroot:added", "webroot:changed", "webroot:missing"}
    shell, config, dll = (
        by_hunt["webroot:added"],
        by_hunt["webroot:changed"],
        by_hunt["webroot:missing"],
    )
    assert (shell.severity, config.severity, dll.severity) == ("high", "high", "medium")
    sha = planted.sha256[planted.shell]
    assert shell.key == f"webroot:web01:{planted.shell}:{sha}"
    assert shell.indicators == (("sha256", sha), ("file", "errors.aspx"))
    assert shell.refs == (("e" * 64, "web01/webroot.csv", comparison.added[0].line),)
    assert shell.hosts == ("web01",) and shell.count == 1
    # a missing file has no listing line: the ref names the path
    assert dll.refs == (("e" * 64, planted.dll, 0),)
    assert dll.indicators == (("file", "Contoso.Data.dll"),)
    # the same difference again is the same finding
    again = comparison_drafts(comparison, host="web01", evidence_sha256="e" * 64, source="x")
    assert [d.key for d in again] == [d.key for d in drafts]


# -- refusing ---------------------------------------------------------------------------------


def _zip(path: Path, members: dict[str, bytes], *, mode: int | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            if mode is not None and name.endswith("link"):
                info.create_system, info.external_attr = 3, mode << 16
            archive.writestr(info, data)
    return path


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("../../inetpub/wwwroot/x.aspx", "leaves the archive's root"),
        ("site/..\\..\\x.aspx", "leaves the archive's root"),
        ("/etc/cron.d/x", "an absolute path"),
        ("C:/Windows/x.dll", "an absolute path"),
        ("a/" * 70 + "x.aspx", "nested deeper than 64 folders"),
    ],
)
def test_a_zip_that_escapes_its_root_is_refused(tmp_path: Path, name: str, why: str) -> None:
    bad = _zip(tmp_path / "bad.zip", {"web.config": b"<configuration/>", name: b"x"})
    with pytest.raises(InvalidFile) as raised:
        build_manifest(bad)
    [problem] = _problems(raised)
    assert problem.startswith(f"{bad}:1:1: member '{name}': ") and why in problem


def test_links_and_encrypted_members_are_refused(tmp_path: Path) -> None:
    bad = _zip(tmp_path / "link.zip", {"ok.txt": b"x", "bin/link": b"/etc/passwd"}, mode=0o120777)
    with pytest.raises(InvalidFile) as raised:
        build_manifest(bad)
    assert _problems(raised) == [f"{bad}:1:1: member 'bin/link': a symbolic link"]
    encrypted = _zip(tmp_path / "encrypted.zip", {"web.config": b"ciphertext"})
    data = bytearray(encrypted.read_bytes())  # zipfile does not write encrypted members:
    for signature, at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # set the flag by hand
        data[data.index(signature) + at] |= 0x1
    encrypted.write_bytes(bytes(data))
    with pytest.raises(InvalidFile) as raised:
        build_manifest(encrypted)
    assert _problems(raised) == [f"{encrypted}:1:1: member 'web.config': encrypted"]


def test_a_zip_bomb_is_refused_as_it_inflates(tmp_path: Path) -> None:
    bomb = _zip(tmp_path / "bomb.zip", {"index.html": b"<html/>", "big.bin": bytes(4 << 20)})
    assert bomb.stat().st_size < 20_000
    with pytest.raises(InvalidFile) as raised:
        build_manifest(bomb, limits=ZipLimits(total=1 << 20))
    [problem] = _problems(raised)
    assert problem.startswith(f"{bomb}:1:1: ") and "cap of 1048576" in problem
    with pytest.raises(InvalidFile) as raised:
        build_manifest(bomb, limits=ZipLimits(ratio=100, ratio_floor=1 << 20))
    assert "more than 100 times its compressed size" in _problems(raised)[0]
    assert len(build_manifest(bomb).files) == 2  # under the default limits, a 4 MiB file


def test_a_member_larger_than_it_declares_is_refused(tmp_path: Path) -> None:
    """The headers say 100 bytes; the deflate stream holds 4 MiB: the bytes are counted."""
    liar = _zip(tmp_path / "liar.zip", {"big.bin": bytes(4 << 20)})
    data = bytearray(liar.read_bytes())
    for signature, at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = data.index(signature)
        data[start + at : start + at + 4] = struct.pack("<I", 100)
    liar.write_bytes(bytes(data))
    assert zipfile.ZipFile(liar).getinfo("big.bin").file_size == 100
    with pytest.raises(InvalidFile) as raised:
        build_manifest(liar)
    assert _problems(raised) == [
        f"{liar}:1:1: member 'big.bin': inflates past its declared size of 100 bytes"
    ]


def test_a_webdeploy_package_without_its_path_uses_the_common_root(
    planted: Planted, known: Manifest, tmp_path: Path
) -> None:
    package = tmp_path / "package.zip"
    with zipfile.ZipFile(planted.webdeploy) as source, zipfile.ZipFile(package, "w") as copy:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "archive.xml":
                data = b"<sitemanifest><iisApp path='D:\\elsewhere' /></sitemanifest>"
            copy.writestr(info, data)
    assert build_manifest(package).files == known.files
    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(broken, "w") as archive:
        archive.writestr("archive.xml", "<sitemanifest>\n  <iisApp path='C:\\a'>\n</sitemanifest>")
        archive.writestr("Content/C_C/a/x.aspx", "x")
    with pytest.raises(InvalidFile) as raised:
        build_manifest(broken)
    assert _problems(raised)[0].startswith(f"{broken}:archive.xml:3:")


def test_git_revisions_are_checked(planted: Planted) -> None:
    for revision, why in (
        ("no-such-branch", "is not a commit here"),
        ("--output=x", "not a revision"),
    ):
        with pytest.raises(InvalidFile) as raised:
            build_manifest(planted.repo, commit=revision)
        assert why in _problems(raised)[0]
    with pytest.raises(InvalidFile) as raised:
        build_manifest(planted.repo, commit=planted.commit, root="no/such/folder")
    assert "no files under 'no/such/folder'" in _problems(raised)[0]


# -- manifests that are not ------------------------------------------------------------------


def test_a_manifest_that_is_not_json_is_located(tmp_path: Path) -> None:
    bad = tmp_path / "m.json"
    bad.write_text('{\n  "format": "irtool-manifest",\n  "files": [\n    {"path": "a", }\n')
    with pytest.raises(InvalidFile) as raised:
        read_manifest(bad)
    assert _problems(raised) == [
        f"{bad}:4:19: not JSON: Expecting property name enclosed in double quotes"
    ]
    other = tmp_path / "other.json"
    other.write_text('{"hosts": []}')
    with pytest.raises(InvalidFile) as raised:
        read_manifest(other)
    assert "not an irtool-manifest file" in _problems(raised)[0]


def test_a_bad_entry_is_located_at_its_line(known: Manifest, tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    known.write(path)
    lines = path.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if '"path": "web.config"' in line)
    lines[at] = lines[at].replace('"sha256": "', '"sha256": "zz')
    path.write_text("\n".join(lines))
    with pytest.raises(InvalidFile) as raised:
        read_manifest(path)
    index = next(i for i, f in enumerate(known.files) if f.path == "web.config")
    assert _problems(raised) == [f"{path}:{at + 1}:5: files[{index}]: sha256: not 64 hex digits"]


def _copy(source: Path, target: Path) -> None:
    import shutil

    shutil.copytree(source, target)


def test_two_files_iis_cannot_tell_apart(known: Manifest, tmp_path: Path) -> None:
    """On a case-sensitive copy both can exist; IIS serves one: the other is reported."""
    rows = [*_rows(known), ("Web.Config", 5, "AB" * 32)]
    comparison = compare(known, _listing(tmp_path, rows))
    assert [(d.kind, d.path) for d in comparison.differences] == [("added", "Web.Config")]


@pytest.mark.parametrize(
    ("path", "quiet"),
    [
        ("App_Data/Contoso.mdf", True),
        ("uploads/2026/a.JPG", True),
        ("Areas/Shop/Uploads/b.png", True),
        ("logs/2026/app.txt", True),
        ("bin/trace.log", True),
        ("uploads/2026/cmd.aspx", False),  # code IIS runs is never volatile
        ("App_Data/x.dll", False),
        ("Scripts/uploads.js", False),
        ("bin/App_Data.dll", False),
    ],
)
def test_default_volatile_patterns(path: str, quiet: bool) -> None:
    volatile = Volatile(DEFAULT_VOLATILE)
    assert volatile(normalised(path)) is quiet
    assert (normalised(path) in volatile.among([normalised(path), "web.config"])) is quiet


def test_a_link_in_a_directory_is_not_followed(tmp_path: Path) -> None:
    root = tmp_path / "site"
    (root / "bin").mkdir(parents=True)
    (root / "web.config").write_text("<configuration/>")
    (root / "bin" / "secrets.txt").symlink_to("/etc/passwd")
    (root / "shared").symlink_to("/etc", target_is_directory=True)
    built = build_manifest(root)
    assert [f.path for f in built.files] == ["web.config"]
    assert sorted(str(w) for w in built.warnings) == [
        f"{root / 'bin' / 'secrets.txt'}:1:1: warning: a link, not followed",
        f"{root / 'shared'}:1:1: warning: a link, not followed",
    ]
