"""`irtool evidence ID SHA256|SEQ`: one evidence file printed or saved, and checked by its hash."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Any

import pytest

from irtool.cli.evidence import copy
from irtool.engine.runner import Runner
from irtool.evidence.store import EvidenceStore
from irtool.journal.incidents import EVIDENCE_DIR, incident_dir
from irtool.remote.local import LocalTransport
from tests.support.cli import irtool
from tests.support.runbooks import open_collect_incident

# Bytes that are not UTF-8, an escape sequence, and a second stream: all kept as they came.
COMMAND = r"printf 'w3wp.exe \033[31mred\033[0m\n\377\376 raw\n'; echo 'a warning' >&2"


@pytest.fixture
def collected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    hosts = {"web01": {"address": "127.0.0.1", "transport": "local"}}
    session = open_collect_incident(tmp_path, monkeypatch, hosts, COMMAND)
    store = EvidenceStore(incident_dir(session.state.id) / EVIDENCE_DIR)
    Runner(session, {"local": LocalTransport()}, store, "ann").run("collect")
    (item,) = session.state.evidence
    session.close_journal()
    env = {**os.environ, "IRTOOL_HOME": str(tmp_path / "home"), "IRTOOL_RESPONDER": "ann"}
    return {"id": session.state.id, "item": item, "env": env, "store": store}


def test_prints_the_bytes_kept_by_seq_or_hash_prefix(collected: dict[str, Any]) -> None:
    env, item = collected["env"], collected["item"]
    stdout = item.files["stdout"]["sha256"]
    kept = (collected["store"].directory / stdout).read_bytes()
    assert kept.startswith(b"w3wp.exe \x1b[31m") and b"\xff\xfe raw" in kept
    # Piped: exactly the bytes kept, escape and invalid UTF-8 included.
    assert irtool_bytes(env, "evidence", collected["id"], str(item.seq)) == kept
    assert irtool_bytes(env, "evidence", collected["id"], stdout[:8]) == kept
    stderr = irtool(env, "evidence", collected["id"], str(item.seq), "--stream", "stderr")
    assert stderr.returncode == 0 and stderr.stdout == "a warning\n"


def test_saves_to_a_file(collected: dict[str, Any], tmp_path: Path) -> None:
    env, item = collected["env"], collected["item"]
    target = tmp_path / "out.txt"
    saved = irtool(env, "evidence", collected["id"], str(item.seq), "-o", str(target))
    assert saved.returncode == 0, saved.stderr
    assert (
        target.read_bytes()
        == (collected["store"].directory / item.files["stdout"]["sha256"]).read_bytes()
    )
    assert "saved" in saved.stderr


def test_an_altered_file_fails_in_one_line_and_is_not_saved(
    collected: dict[str, Any], tmp_path: Path
) -> None:
    env, item = collected["env"], collected["item"]
    kept = collected["store"].directory / item.files["stdout"]["sha256"]
    kept.chmod(0o644)
    kept.write_bytes(b"nothing to see here\n")
    target = tmp_path / "out.txt"
    checked = irtool(env, "evidence", collected["id"], str(item.seq), "-o", str(target))
    assert checked.returncode == 1
    assert checked.stderr.count("\n") == 1 and "was altered" in checked.stderr
    assert not target.exists() and not list(tmp_path.glob(".out.txt*"))
    printed = irtool(env, "evidence", collected["id"], str(item.seq))
    assert printed.returncode == 1 and "was altered" in printed.stderr


def test_bad_names_are_refused(collected: dict[str, Any]) -> None:
    env, item = collected["env"], collected["item"]
    for which in ("999", "deadbeef", "zz"):
        refused = irtool(env, "evidence", collected["id"], which)
        assert refused.returncode == 2, (which, refused.stderr)
        assert refused.stderr.startswith("irtool: ") and refused.stderr.count("\n") == 1
    empty = irtool(env, "evidence", collected["id"], str(item.seq), "--stream", "file")
    assert empty.returncode == 2 and "kept no file" in empty.stderr
    unknown = irtool(env, "evidence", "ir-20000101-000000-0000", str(item.seq))
    assert unknown.returncode == 2


def test_on_a_terminal_escapes_are_written_out(tmp_path: Path) -> None:
    source = tmp_path / "kept"
    source.write_bytes(b"\x1b]52;c;bWFsd2FyZQ==\x07 \xff ok\n")
    shown = io.BytesIO()
    digest, size = copy(source, shown, terminal=True)
    assert shown.getvalue() == b"\\x1b]52;c;bWFsd2FyZQ==\\x07 \xef\xbf\xbd ok\n"
    assert digest == hashlib.sha256(source.read_bytes()).hexdigest() and size == 26


def irtool_bytes(env: dict[str, str], *args: str) -> bytes:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "irtool", *args],
        capture_output=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout
