"""`irtool baseline`: a known-good host's records, captured into a file and compared later.

`irtool baseline capture ID --host H -o FILE` keeps the records incident ID collected from
host H (its collectors that declare `records:`) as a baseline file. `irtool baseline diff ID
--host H FILE` reads a baseline and names each user, service, task, module and application
pool identity the host has in incident ID that the baseline does not: read-only, nothing is
written to the incident. Exit 0: nothing new; 1: something new; 2: no records, or a file
that is not a baseline (located, path:line:col).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from irtool.cli.common import fail, incident_argument
from irtool.cli.exits import Exit
from irtool.model.problems import InvalidFile
from irtool.model.untrusted import visible

if TYPE_CHECKING:
    from irtool.engine.records import HostRecords
    from irtool.engine.state import IncidentState


def _say(text: str) -> None:
    click.echo(visible(text), err=True)


def _host_records(incident_id: str, host: str) -> tuple[IncidentState, list[HostRecords]]:
    """The incident (read, then closed) and the records host `host` has in it; exit 2 when
    it has none, saying which collectors emit them."""
    from irtool.cli.incident import session
    from irtool.engine.records import host_records, record_collectors
    from irtool.evidence.store import EvidenceStore
    from irtool.journal.incidents import EVIDENCE_DIR, incident_dir

    current = session(incident_id)
    try:
        state = current.state
    finally:
        current.close_journal()
    store = EvidenceStore(incident_dir(state.id) / EVIDENCE_DIR, create=False)
    found = host_records(state, store, hosts=[host]).get(host, [])
    for got in found:
        for problem in got.read.problems:
            _say(str(problem))
    if not any(got.records for got in found):
        emitting = record_collectors(state)
        which = ", ".join(emitting) if emitting else "none in its runbook"
        known = sorted({e.host for e in state.evidence})
        fail(
            f"incident {state.id} has no records from host '{host}' (collectors that emit "
            f"records: {which}; hosts with evidence: {', '.join(known) or 'none'})"
        )
    return state, found


@click.group()
def baseline() -> None:
    """Known-good baselines of a host's records (users, services, tasks, modules)."""


@baseline.command()
@incident_argument
@click.option("--host", "host", required=True, help="The known-good host.")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The baseline file to write.",
)
def capture(incident_id: str, host: str, output: Path) -> None:
    """Capture host H's records in incident ID as a baseline file."""
    from irtool.analysis.baseline import capture as capture_baseline
    from irtool.analysis.baseline import write_baseline

    state, found = _host_records(incident_id, host)
    kept = capture_baseline(
        host,
        [r for got in found for r in got.records],
        kinds={got.spec.kind for got in found if not got.read.problems},
        incident=state.id,
        runbook=f"{state.runbook.id}@{state.runbook.version}",
        evidence=[got.sha256 for got in found if got.sha256],
    )
    try:
        write_baseline(kept, output)
    except OSError as bad:
        fail(f"{output}: {bad.strerror}")
    counts = kept.counts()
    click.echo(
        visible(f"baseline of {host} from incident {state.id}: {sum(counts.values())} record(s)")
    )
    for kind, count in counts.items():
        click.echo(visible(f"  {kind:18} {count}"))
    click.echo(visible(f"written to {output}"))


@baseline.command()
@incident_argument
@click.option("--host", "host", required=True, help="The host to compare with its baseline.")
@click.argument("baseline_file", metavar="FILE", type=click.Path(path_type=Path))
def diff(incident_id: str, host: str, baseline_file: Path) -> None:
    """Name what host H has in incident ID that its baseline FILE does not."""
    from irtool.analysis.baseline import baseline_drafts, read_baseline

    try:
        known = read_baseline(baseline_file)
    except InvalidFile as invalid:
        for problem in invalid.problems:
            _say(str(problem))  # the file's own text may be in it: never a terminal control
        sys.exit(Exit.INVALID)
    _state, found = _host_records(incident_id, host)
    drafts = baseline_drafts(known, [r for got in found for r in got.records], host=host)
    _say(
        f"{host}: {sum(len(g.records) for g in found)} record(s) against the baseline of "
        f"{known.host} ({known.captured_at}); {len(drafts)} new"
    )
    for draft in drafts:
        click.echo(visible(f"{draft.severity.upper():8} {draft.hunt}: {draft.summary}"))
        for sha256, source, line in draft.refs[:3]:
            click.echo(visible(f"    {source}:{line}  (sha256 {sha256[:12]})"))
    sys.exit(Exit.FAILED if drafts else Exit.OK)
