"""Evidence a responder provides: a file that comes from outside the incident's hosts, kept
with the same custody as a fetched one.

A known-good manifest of the web root (built from the deployment artifact), a host's baseline
captured at its admission, an event log exported by hand: when an analysis uses one, it is
copied into the evidence store and recorded (`file.fetched`, purpose `provided`, with where it
was read, who provided it and why), so that a finding it leads to names evidence the incident
keeps, and the post-mortem can say what the comparison was made against.
"""

from __future__ import annotations

from pathlib import Path

from irtool.engine import kinds
from irtool.engine.refusal import Refused
from irtool.engine.session import IncidentSession
from irtool.engine.state import Evidence, IncidentState
from irtool.evidence.store import EvidenceStore
from irtool.journal import EventDraft

PROVIDED = "provided"
KNOWN_GOOD_MANIFEST = "known-good-manifest"
BASELINE = "baseline"
_CHUNK = 1 << 20


def keep_provided(
    session: IncidentSession,
    evidence: EvidenceStore,
    path: Path,
    *,
    item: str,
    actor: str,
    reason: str,
    host: str = "",
) -> str:
    """Copy `path` into the evidence store and record its custody; its SHA-256. The same file
    provided again for the same purpose (and host) is recorded once."""
    writer = evidence.writer()
    try:
        with path.open("rb") as source:
            while block := source.read(_CHUNK):
                writer.write(block)
    except OSError as failed:
        writer.discard()
        raise Refused(f"cannot read {path}: {failed.strerror or failed}") from None
    kept = writer.commit()
    if kept.incomplete or kept.sha256 is None:
        raise Refused(f"{path} could not be kept as evidence: {kept.error}")
    known = latest_provided(session.state, item, host)
    if known is not None and known.files["file"].get("sha256") == kept.sha256:
        return kept.sha256
    data = {
        "purpose": PROVIDED,
        "item": item,
        "path": str(path),
        "reason": reason,
        "file": kept.as_dict(),
    }
    session._write(lambda _state: EventDraft(kinds.FILE_FETCHED, actor, data, host=host or None))
    return kept.sha256


def latest_provided(state: IncidentState, item: str, host: str = "") -> Evidence | None:
    """The file last provided for `item` (and `host`), or None."""
    found = None
    for kept in state.evidence:
        mine = kept.purpose == PROVIDED and kept.item == item and kept.host == host
        if mine and kept.files.get("file", {}).get("sha256"):
            found = kept
    return found
