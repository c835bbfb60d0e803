"""The post-mortem's record of custody: every evidence file with its hash, and each credential
the runbook rotates, as the team attested it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from irtool.engine import kinds
from irtool.engine.state import Evidence, IncidentState, Status, evidence_of
from irtool.export.links import event_link, evidence_link, moment
from irtool.export.recorded import Recorded
from irtool.export.report import Block, Code, Heading, Para, Row, Table
from irtool.export.unfolded import Unfolded
from irtool.model.steps import RotateStep


def rotation(state: IncidentState, found: Unfolded) -> Iterator[Block]:
    yield Heading(2, "Credentials rotated", "credentials")
    rows = []
    for _, spec in state.runbook.steps():
        if isinstance(spec, RotateStep):
            step = state.steps[spec.id]
            said = found.rotations.get(spec.id, {})
            for item in spec.items:
                done = _rotated(step, said, item.id)
                rows.append(Row(((item.title,), (item.kind,), (item.method,), (done,))))
    if not rows:
        yield Para(("The runbook rotates no credential.",))
        return
    yield Para(("Which credentials, when and by whom; never a secret.",))
    yield Table(("Credential", "Kind", "How", "Rotated"), rows)


def _rotated(step: Any, said: dict[str, tuple[bool, str]], item: str) -> str:
    """What the team said of this credential. A step done without a word per credential is
    not taken to mean every one was rotated: "machine key pending" in its note says otherwise."""
    if step.status is Status.PENDING:
        return "not done"
    who = f"{step.status.value} by {step.by} at {moment(step.at)}"
    if step.status is Status.SKIPPED:
        return who + (f": {step.reason}" if step.reason else "")
    if item in said:
        rotated, note = said[item]
        return (
            ("rotated" if rotated else "NOT rotated")
            + (f": {note}" if note else "")
            + (f" (step {who})")
        )
    note = f": {step.note}" if step.note else ""
    return f"not attested per credential (step {who}{note})"


def evidence(recorded: Recorded) -> Iterator[Block]:
    yield Heading(2, "Evidence manifest", "evidence")
    if not recorded.any(kinds.COMMAND_RAN, kinds.FILE_FETCHED):
        yield Para(("No evidence was collected.",))
        return
    yield Para(
        (
            "Files are under the incident's ",
            Code("evidence/"),
            " directory, named by their SHA-256. An empty stream is said in the row of the "
            "command's other output, not given a row of its own.",
        )
    )
    kept = (evidence_of(e) for e in recorded.events(kinds.COMMAND_RAN, kinds.FILE_FETCHED))
    yield Table(
        ("Event", "Host", "Step / item", "Purpose", "Exit", "File", "Bytes", "SHA-256", "By"),
        _rows(kept, recorded.found),
        "evidence",
    )


def _rows(kept: Iterable[Evidence], found: Unfolded) -> Iterator[Row]:
    """Each piece of evidence's rows, as it is read."""
    for e in kept:
        if e.seq in found.ad_hoc:
            what = f"ad hoc: {e.command}"
        else:
            what = f"{e.step or ''} / {e.item or e.command}" if e.step else e.command
        exit_status = str(e.exit_status) if e.exit_status is not None else e.failure or "–"
        for stream, item in _streams(e):
            sha256 = item.get("sha256") or ""  # none: nothing of the stream could be kept
            yield Row(
                (
                    (event_link(e.seq, str(e.seq)),),
                    (e.host,),
                    (what,),
                    (e.purpose,),
                    (exit_status,),
                    (stream,),
                    (_kept(item),),
                    (evidence_link(sha256, Code(sha256)),),
                    (e.by,),
                )
            )


def _empty(item: dict[str, Any]) -> bool:
    """Kept whole and empty: nothing to read, and the same hash as every empty file."""
    return bool(item.get("sha256")) and not item.get("size") and not item.get("incomplete")


def _streams(e: Evidence) -> list[tuple[str, dict[str, Any]]]:
    """The rows of one command: each stream with content; the empty ones named in the first
    row (`stdout (stderr empty)`), or one row for them all when nothing was written."""
    full = [(name, item) for name, item in e.files.items() if not _empty(item)]
    empty = [name for name, item in e.files.items() if _empty(item)]
    if not full:
        if not empty:
            return []
        return [(" and ".join(empty) + " (empty)", e.files[empty[0]])]
    if empty:
        name, item = full[0]
        full[0] = (f"{name} ({' and '.join(empty)} empty)", item)
    return full


def _kept(item: dict[str, Any]) -> str:
    """The bytes kept; a stream the disk could not take whole says so."""
    size = str(item.get("size", 0))
    if item.get("incomplete"):
        return f"{size} of {item.get('received')} (incomplete: {item.get('error')})"
    return size
