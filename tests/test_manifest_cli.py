"""`irtool manifest build|compare` as a responder runs them: real processes, real artifacts
(a zip, a WebDeploy package, a git repository), the shipped YARA rules; exit statuses 0 (as
the manifest says), 1 (differences, YARA hits), 2 (bad input, located, never a traceback)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from irtool.cli import COMMANDS
from tests.support.webroot import Planted, planted_webroot

# Through `irtool manifest` once the command is registered; until then, the group itself.
_REGISTERED = "manifest" in COMMANDS
_DIRECT = "import sys; from irtool.cli.manifest import manifest; manifest(sys.argv[1:])"


def irtool_manifest(*args: str | Path) -> subprocess.CompletedProcess[str]:
    argv = ["-m", "irtool", "manifest"] if _REGISTERED else ["-c", _DIRECT]
    result = subprocess.run(
        [sys.executable, *argv, *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "IRTOOL_DEBUG": ""},
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Planted:
    return planted_webroot(tmp_path_factory.mktemp("webroot"))


@pytest.fixture(scope="module")
def manifest_file(planted: Planted, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("manifest") / "known-good.json"
    done = irtool_manifest("build", planted.webdeploy, "-o", path)
    assert done.returncode == 0, done.stderr
    return path


def test_build_from_each_artifact_says_what_it_read(planted: Planted, tmp_path: Path) -> None:
    written = {}
    artifacts: dict[str, list[str | Path]] = {
        "directory": [planted.good],
        "zip": [planted.zip],
        "webdeploy": [planted.webdeploy],
        "git": [planted.repo, "--commit", planted.commit, "--root", planted.repo_root],
    }
    for name, args in artifacts.items():
        out = tmp_path / f"{name}.json"
        done = irtool_manifest("build", *args, "-o", out)
        assert done.returncode == 0, done.stderr
        assert f"{planted.files} files, {planted.bytes:,} bytes from {name}" in done.stdout
        assert "volatile: App_Data/**" in done.stdout
        written[name] = json.loads(out.read_text())["files"]
    assert all(files == written["zip"] for files in written.values())


def test_build_volatile_patterns(planted: Planted, tmp_path: Path) -> None:
    out = tmp_path / "m.json"
    done = irtool_manifest(
        "build", planted.zip, "-o", out, "--no-default-volatile", "--volatile", "cache/**"
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text())["volatile"] == ["cache/**"]
    assert "volatile: cache/**" in done.stdout


def test_build_has_no_way_to_a_host() -> None:
    done = irtool_manifest("build", "--help")
    assert "never from the server" in done.stdout
    assert "--host" not in done.stdout


def test_compare_a_server_copy_scans_what_was_added(planted: Planted, manifest_file: Path) -> None:
    done = irtool_manifest("compare", manifest_file, planted.server)
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"added     {planted.shell}  sha256 {planted.sha256[planted.shell]}")
    assert lines[1].startswith(f"changed   {planted.config}  sha256 ")
    assert lines[2].startswith(f"missing   {planted.dll}  expected sha256 ")
    # the shipped web-shell rules see the one-line shell; nothing in the upload folder shows
    assert any(line.startswith(f"yara      {planted.shell}  rule ") for line in lines)
    assert "uploads/" not in done.stdout and "App_Data" not in done.stdout
    assert "1 added, 1 changed, 1 missing, 0 unhashed" in lines[-1]
    assert "5 volatile, not compared" in lines[-1]


def test_compare_a_hash_listing(planted: Planted, manifest_file: Path) -> None:
    done = irtool_manifest("compare", manifest_file, planted.listing_csv, "--json")
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    kinds = [(d["kind"], d["path"].replace("\\", "/")) for d in report["differences"]]
    assert kinds == [
        ("added", planted.shell),
        ("changed", planted.config),
        ("missing", planted.dll),
    ]
    added = report["differences"][0]
    assert added["found"]["sha256"] == planted.sha256[planted.shell] and added["line"] > 1
    assert report["yara"] == []  # a listing holds no content to scan: it says so
    assert "fetch the 2 added and changed files" in done.stderr


def test_compare_the_known_good_itself_is_quiet(planted: Planted, manifest_file: Path) -> None:
    done = irtool_manifest("compare", manifest_file, planted.good)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 added, 0 changed, 0 missing, 0 unhashed, 0 YARA hits" in done.stdout


def test_a_broken_rule_file_is_reported_and_the_rest_run(
    planted: Planted, manifest_file: Path, tmp_path: Path
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "broken.yar").write_text("rule broken {\n  condition: no_such_thing\n}\n")
    (rules / "config.yar").write_text(
        'rule handler_added {\n  strings: $a = "ImageHandler"\n  condition: $a\n}\n'
    )
    done = irtool_manifest("compare", manifest_file, planted.server, "--yara", rules)
    assert done.returncode == 1
    assert f"{rules / 'broken.yar'}:2:" in done.stderr
    assert f"yara      {planted.config}  rule handler_added" in done.stdout
    assert f"yara      {planted.shell}  rule " in done.stdout  # the shipped rules still run
    quiet = irtool_manifest("compare", manifest_file, planted.server, "--no-yara")
    assert quiet.returncode == 1 and "yara " not in quiet.stdout


def test_bad_input_is_located_exit_2(planted: Planted, manifest_file: Path, tmp_path: Path) -> None:
    not_json = tmp_path / "m.json"
    not_json.write_text('{"format": "irtool-manifest",\n  "files": [,]}\n')
    done = irtool_manifest("compare", not_json, planted.server)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"{not_json}:2:13: not JSON: Expecting value"]

    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("x/../../evil.aspx", b"x")
    done = irtool_manifest("build", bomb, "-o", tmp_path / "out.json")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"{bomb}:1:1: member 'x/../../evil.aspx': a path that leaves the archive's root (..)"
    ]
    assert not (tmp_path / "out.json").exists()

    listing = tmp_path / "webroot.csv"
    listing.write_text('"relative_path","size","sha256"\n"a.aspx","x","' + "0" * 64 + '"\n')
    done = irtool_manifest("compare", manifest_file, listing)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"{listing}:2:1: size: not a number"]

    done = irtool_manifest("build", planted.repo, "--commit", "--upload-pack=x", "-o", "o.json")
    assert done.returncode == 2 and "is not a revision" in done.stderr
