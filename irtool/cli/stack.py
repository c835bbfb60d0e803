"""`irtool stack ID`: what the hosts' collectors found, least frequent first.

Stacking is how a responder reads twenty hosts' module lists at once: every record (a global
module, a handler, a scheduled task, a service, an autorun, a local administrator, a loaded
DLL, an app-pool identity) is counted across the chosen hosts, and the ones the fewest hosts
have come first: what one host of a farm has and the others do not is where to look. The
analysis raises the rarest as findings; this is the whole list, to read. Read-only.
"""

from __future__ import annotations

import json
from typing import Any

import click

from irtool.cli.common import fail, incident_argument
from irtool.model.untrusted import visible


@click.command()
@incident_argument
@click.option(
    "--hosts",
    "targets",
    multiple=True,
    metavar="SELECTOR",
    help="The group to stack: a host, group:G, tag:T or all (repeat; default: every host "
    "with records).",
)
@click.option("--kind", "kinds", multiple=True, metavar="KIND", help="Only this kind (repeat).")
@click.option(
    "--limit", default=50, show_default=True, help="Records shown per kind (0: all of them)."
)
@click.option("--json", "as_json", is_flag=True, help="Every record as a JSON list.")
def stack(
    incident_id: str, targets: tuple[str, ...], kinds: tuple[str, ...], limit: int, as_json: bool
) -> None:
    """The records of incident ID's hosts, per kind, the fewest hosts first."""
    from irtool.analysis.stacking import stack as stacked
    from irtool.cli.incident import session
    from irtool.engine.records import by_host, host_records, hosts_per_kind
    from irtool.engine.refusal import Refused
    from irtool.engine.sweep import sweep_hosts
    from irtool.evidence.store import EvidenceStore
    from irtool.journal.incidents import EVIDENCE_DIR, incident_dir

    current = session(incident_id)
    try:
        state = current.state
    finally:
        current.close_journal()
    try:
        hosts = sweep_hosts(state, targets) if targets else None
    except Refused as why:
        fail(str(why))
        return
    store = EvidenceStore(incident_dir(state.id) / EVIDENCE_DIR, create=False)
    found = host_records(state, store, hosts=hosts)
    if kinds:
        found = {
            host: [got for got in outputs if got.spec.kind in kinds]
            for host, outputs in found.items()
        }
    totals = hosts_per_kind(found)
    # Kind by kind, and within a kind the fewest hosts first.
    stacks = sorted(stacked(by_host(found)), key=lambda s: (s.kind, s.count, s.identity))
    if as_json:
        click.echo(json.dumps([_as_dict(s, totals) for s in stacks], indent=1))
        return
    if not stacks:
        fail(f"incident {state.id} has no records from those hosts to stack")
    shown: dict[str, int] = {}
    for one in stacks:
        if one.kind not in shown:
            click.echo(f"\n{one.kind} ({totals.get(one.kind, 0)} host(s) read)")
        shown[one.kind] = shown.get(one.kind, 0) + 1
        if limit and shown[one.kind] > limit:
            continue
        of = f"{one.count:3}/{totals.get(one.kind, 0):<3}"
        click.echo(visible(f"  {of} {one.records[0].show}  [{', '.join(one.hosts)}]"))
    for kind, count in shown.items():
        if limit and count > limit:
            click.echo(f"({kind}: {count - limit} more, commoner; --limit 0 shows all)")


def _as_dict(one: Any, totals: dict[str, int]) -> dict[str, Any]:
    return {
        "kind": one.kind,
        "identity": one.identity,
        "hosts": list(one.hosts),
        "of": totals.get(one.kind, 0),
        "shown": one.records[0].show,
        "refs": [{"sha256": r.sha256, "source": r.source, "line": r.line} for r in one.records],
    }
