"""`irtool evidence ID SHA256|SEQ [-o FILE]`: one evidence file, printed or saved, and checked.

The bytes are hashed as they are copied: a file whose content no longer matches its name
(altered on disk) ends the command with status 1 and one line saying so, and a file being
saved with `-o` is then not left behind. On a terminal the text is shown with its escape
sequences written out, so a hostile host's output cannot drive the responder's terminal;
piped or saved, the bytes are exactly those kept.
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import os
import re
import sys
from pathlib import Path
from typing import BinaryIO

import click

from irtool.cli.common import fail, incident_argument
from irtool.cli.exits import Exit
from irtool.engine.state import IncidentState
from irtool.journal import JournalError
from irtool.journal.incidents import EVIDENCE_DIR, incident_dir
from irtool.model.untrusted import visible

CHUNK = 1 << 20
_HEX = re.compile(r"[0-9a-f]{8,64}")
STREAMS = ("stdout", "stderr", "file")


def _by_seq(state: IncidentState, seq: int, stream: str | None) -> tuple[str, int] | None:
    item = next((e for e in state.evidence if e.seq == seq), None)
    if item is None:
        return None
    if stream is None:  # a fetch keeps a file, a command its stdout
        stream = "stdout" if "stdout" in item.files else next(iter(item.files), "stdout")
    record = item.files.get(stream) or {}
    if not record.get("sha256"):
        fail(f"event {seq} kept no {stream} (it kept: {', '.join(item.files) or 'nothing'})")
    return str(record["sha256"]), int(record.get("size") or 0)


def _by_hash(state: IncidentState, prefix: str) -> tuple[str, int] | None:
    kept: dict[str, int] = {}
    for item in state.evidence:
        for record in item.files.values():
            sha256 = str(record.get("sha256") or "")
            if sha256.startswith(prefix):
                kept[sha256] = int(record.get("size") or 0)
    if len(kept) > 1:
        fail(f"'{prefix}' is the start of {len(kept)} evidence files' SHA-256: give more of it")
    return next(iter(kept.items()), None)


def find(state: IncidentState, which: str, stream: str | None) -> tuple[str, int]:
    """(sha256, size the journal recorded) of the evidence `which` names: an event's seq, or
    a SHA-256 (its first 8 hex digits or more, when they are enough to tell)."""
    text = which.strip().lower()
    found = None
    if text.isdigit():
        found = _by_seq(state, int(text), stream)
    if found is None and _HEX.fullmatch(text):
        if stream is not None:
            fail("--stream goes with an event's seq, not with a SHA-256")
        found = _by_hash(state, text)
    if found is None:
        fail(
            f"incident {state.id} has no evidence '{which}': give the seq of a command.ran or "
            "file.fetched event, or 8 or more hex digits of a SHA-256 (irtool incident show)"
        )
        raise AssertionError  # unreachable
    return found


def copy(source: Path, sink: BinaryIO, terminal: bool) -> tuple[str, int]:
    """Copy `source` to `sink`, hashing as it goes: (sha256, bytes)."""
    digest, size = hashlib.sha256(), 0
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    with source.open("rb") as kept:
        while block := kept.read(CHUNK):
            digest.update(block)
            size += len(block)
            if terminal:
                sink.write(visible(decoder.decode(block), lines=True).encode("utf-8"))
            else:
                sink.write(block)
    if terminal:
        sink.write(visible(decoder.decode(b"", final=True), lines=True).encode("utf-8"))
    sink.flush()
    return digest.hexdigest(), size


@click.command("evidence")
@incident_argument
@click.argument("which", metavar="SHA256|SEQ")
@click.option(
    "--stream",
    type=click.Choice(STREAMS),
    help="With a SEQ: which output of that event (default: stdout, or a fetched file).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Save to this file instead of printing.",
)
def evidence(incident_id: str, which: str, stream: str | None, output: Path | None) -> None:
    """Print or save one evidence file, checked against its SHA-256 as it is copied."""
    from irtool.cli.incident import session

    current = session(incident_id)
    try:
        state = current.state
        sha256, recorded = find(state, which, stream)
        # Another responder's, on a team incident: fetched from the database, checked.
        current.journal.gather_evidence([sha256])
    except JournalError as exc:
        fail(str(exc), Exit.FAILED)
        raise AssertionError from exc  # unreachable
    finally:
        current.close_journal()
    source = incident_dir(state.id) / EVIDENCE_DIR / sha256
    if not source.is_file():
        fail(f"evidence {sha256} is missing from {source.parent}", Exit.FAILED)
    if output is None:
        stdout = sys.stdout.buffer
        digest, size = copy(source, stdout, terminal=stdout.isatty())
    else:
        partial = output.with_name(f".{output.name}.partial")
        try:
            with partial.open("wb") as saved:
                digest, size = copy(source, saved, terminal=False)
        except OSError as failed:
            partial.unlink(missing_ok=True)
            fail(f"cannot write {output}: {failed.strerror or failed}", Exit.FAILED)
            raise AssertionError from failed  # unreachable
    problem = None
    if digest != sha256:
        problem = f"evidence {sha256} was altered: its content now hashes to {digest}"
    elif size != recorded:
        problem = f"evidence {sha256} has {size} bytes, the journal recorded {recorded}"
    if output is not None:
        if problem:
            partial.unlink(missing_ok=True)
        else:
            os.replace(partial, output)
    if problem:
        with contextlib.suppress(OSError):
            sys.stdout.flush()
        fail(problem, Exit.FAILED)
    if output is not None:
        click.echo(f"saved {size} bytes of evidence {sha256} to {output}", err=True)
