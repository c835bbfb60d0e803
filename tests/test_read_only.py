"""An incident directory on read-only media (an archive handed over, a write-protected disk)
can be verified, shown and exported; a write is refused in one line. Each test makes the
directory truly read-only for a real `irtool` process: a read-only bind mount (root), the same
inside a user namespace (no root needed where user namespaces are allowed), or permissions
(not root)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.cli import irtool

RUNBOOK = """\
id: ro-drill
title: Read-only drill
summary: Test fixture.
version: "1"
severity: low
applies_to: [iis]
triggers: [A web shell is found]
activation:
  may_activate: [security]
roles: [security]
phases:
  - id: triage
    title: Triage
    steps:
      - id: collect-state
        type: collect
        title: Processes
        shell: sh
        timeout: 20
        targets: [group:fleet]
        command: "echo collected-on-{{ host.name }}"
      - id: wrap-up
        type: manual
        title: Wrap up
"""
FORMATS = ("markdown", "html", "json", "csv", "timesketch")
Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def recorded(tmp_path: Path) -> tuple[dict[str, str], str]:
    """An exercise with evidence (a collect run on a simulated host) and a note, written
    where it is writable; the tests then read it from where it is not."""
    runbook = tmp_path / "drill.yaml"
    runbook.write_text(RUNBOOK)
    env = {**os.environ, "IRTOOL_HOME": str(tmp_path / "home"), "IRTOOL_RESPONDER": "ann"}
    opened = irtool(env, "incident", "new", str(runbook), "--exercise")
    assert opened.returncode == 0, opened.stderr
    incident = opened.stdout.strip()
    for args in (("run", incident, "collect-state"), ("note", incident, "archived")):
        done = irtool(env, "incident", *args)
        assert done.returncode == 0, done.stderr
    return env, incident


def readable(run: Run, incident: str, out: Path) -> None:
    """What a reader of the archive does: every one succeeds; a write is refused in one line."""
    verified = run("verify", incident)
    assert verified.returncode == 0, verified.stderr
    # Opening, what the host said it is on first contact, the run, its command, the note.
    assert verified.stdout.startswith("journal intact: 7 events")
    # The command's output and its empty stderr, and what the host answered the facts probe.
    assert "evidence intact: 3 file(s)" in verified.stdout
    shown = run("incident", "show", incident, "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["events"] == 7
    listed = run("incident", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [row["id"] for row in json.loads(listed.stdout)] == [incident]
    for form in FORMATS:
        exported = run("export", incident, "--format", form)
        assert exported.returncode == 0, (form, exported.stderr)
        assert exported.stdout and not exported.stderr
    written = run("export", incident, "--format", "json", "-o", str(out))
    assert written.returncode == 0, written.stderr
    assert json.loads(out.read_text())["verification"]["intact"] is True
    refused = run("incident", "note", incident, "one more")
    assert refused.returncode != 0
    assert refused.stderr.startswith("irtool: the incident directory is read-only: ")
    assert refused.stderr.count("\n") == 1, refused.stderr


@contextmanager
def read_only_bind(source: Path, target: Path) -> Iterator[None]:
    if os.geteuid() != 0:
        pytest.skip("a read-only bind mount needs root (CI runs the tests as root)")
    target.mkdir(parents=True)
    bound = subprocess.run(["mount", "--bind", source, target], capture_output=True, text=True)
    if bound.returncode != 0:
        pytest.skip(f"mount --bind is not permitted here: {bound.stderr.strip()}")
    try:
        ro = subprocess.run(
            ["mount", "-o", "remount,bind,ro", target], capture_output=True, text=True
        )
        if ro.returncode != 0:
            pytest.skip(f"a read-only remount is not permitted here: {ro.stderr.strip()}")
        yield
    finally:
        subprocess.run(["umount", target], check=True)


def test_an_incident_on_a_read_only_mount_is_verified_shown_and_exported(
    recorded: tuple[dict[str, str], str], tmp_path: Path
) -> None:
    env, incident = recorded
    source = Path(env["IRTOOL_HOME"]) / "incidents" / incident
    archive = tmp_path / "archive"
    target = archive / "incidents" / incident
    with read_only_bind(source, target):
        with pytest.raises(OSError, match="Read-only file system"):
            (target / "probe").touch()
        assert sorted(p.name for p in target.glob("journal.sqlite*")) == ["journal.sqlite"]
        reader = {**env, "IRTOOL_HOME": str(archive)}
        readable(lambda *args: irtool(reader, *args), incident, tmp_path / "report.json")


UNSHARE = shutil.which("unshare")
# Inside a new user and mount namespace the caller is root there, may bind-mount, and the
# mount vanishes with the namespace when the command ends: nothing to unmount after.
MOUNT_THEN_RUN = 'mount --bind "$1" "$2" && mount -o remount,bind,ro "$2" && shift 2 && exec "$@"'


@pytest.mark.skipif(UNSHARE is None, reason="needs unshare (util-linux)")
def test_the_same_read_only_mount_made_without_root_in_a_user_namespace(
    recorded: tuple[dict[str, str], str], tmp_path: Path
) -> None:
    env, incident = recorded
    source = Path(env["IRTOOL_HOME"]) / "incidents" / incident
    archive = tmp_path / "archive"
    target = archive / "incidents" / incident
    target.mkdir(parents=True)
    reader = {**env, "IRTOOL_HOME": str(archive)}

    namespace = [str(UNSHARE), "--user", "--map-root-user", "--mount"]

    def run(*command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*namespace, "sh", "-c", MOUNT_THEN_RUN, "sh", str(source), str(target), *command],
            capture_output=True,
            text=True,
            env=reader,
            timeout=60,
        )

    probe = run("touch", str(target / "probe"))
    if "Read-only file system" not in probe.stderr:
        pytest.skip(f"user namespaces cannot mount here: {probe.stderr.strip()}")
    readable(lambda *args: run(sys.executable, "-m", "irtool", *args), incident, tmp_path / "r")


@pytest.mark.skipif(
    os.geteuid() == 0,
    reason="root ignores file permissions: the mount tests above cover read-only media for root",
)
def test_an_incident_directory_without_write_permission_is_read_the_same(
    recorded: tuple[dict[str, str], str], tmp_path: Path
) -> None:
    env, incident = recorded
    directory = Path(env["IRTOOL_HOME"]) / "incidents" / incident
    paths = [directory, *directory.rglob("*")]
    modes = {p: p.stat().st_mode for p in paths}
    try:
        for path in paths:
            path.chmod(modes[path] & ~0o222)
        readable(lambda *args: irtool(env, *args), incident, tmp_path / "report.json")
    finally:
        for path in reversed(paths):
            path.chmod(modes[path])
