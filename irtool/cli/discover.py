"""`irtool discover RANGE...`: find web servers the inventory does not know (rogue servers).

Scans the ranges with nmap from this machine (or reads a scan saved with `nmap -oX`, as the
rogue-server runbook's `discover-scan` step keeps it) and compares what answers with the
inventory. Exit 0 when every web server that answered is in the inventory, 1 when a rogue
one answers, 2 on bad input (located as path:line:col when it is in a file) or when nmap
cannot run.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import click

from irtool.cli.common import IncidentId, fail
from irtool.cli.exits import Exit
from irtool.model.discovery import (
    DEFAULT_PORTS,
    Answer,
    BadWebPorts,
    Comparison,
    Scan,
    ScanProblem,
    compare,
    needs_resolving,
    parse_ports,
    parse_scan,
    parse_target,
    ports_text,
    web_ports,
)
from irtool.model.inventory import Inventory
from irtool.model.loader import load_inventory
from irtool.model.problems import InvalidFile, Mark, Problem
from irtool.model.untrusted import visible

RESOLVE_SECONDS = 10.0


def _read(source: str) -> tuple[bytes, str]:
    if source == "-":
        return sys.stdin.buffer.read(), "<stdin>"
    try:
        return Path(source).read_bytes(), source
    except OSError as failed:
        fail(f"--xml {source}: {failed.strerror or failed}")
        raise AssertionError from None  # fail() exits


def _parse(data: bytes, where: str) -> Scan:
    try:
        return parse_scan(data)
    except ScanProblem as bad:
        if bad.line is None:
            fail(f"{where}: {bad.message}")
        raise InvalidFile(
            [Problem(Mark(where, bad.line or 1, bad.col or 1), bad.message)]
        ) from None


def _from_incident(incident_id: str, step: str) -> tuple[bytes, str, Inventory | None]:
    """The scan output the incident's last run of `step` kept (every host of that run, one
    XML document after the other), each file checked against its SHA-256; and the
    incident's inventory."""
    from irtool.cli.incident import session
    from irtool.journal.incidents import EVIDENCE_DIR, incident_dir

    current = session(incident_id)
    try:
        state = current.state
    finally:
        current.close_journal()
    kept = [e for e in state.evidence if e.step == step and "stdout" in e.files]
    if not kept:
        fail(f"incident {state.id} has no output of step {step} yet: run it first")
    last_run = max(kept, key=lambda e: e.seq).run
    chosen = sorted((e for e in kept if e.run == last_run), key=lambda e: e.seq)
    data = b""
    for item in chosen:
        sha256 = str(item.files["stdout"].get("sha256") or "")
        path = incident_dir(state.id) / EVIDENCE_DIR / sha256
        try:
            content = path.read_bytes()
        except OSError as failed:
            fail(f"evidence {sha256} of event {item.seq}: {failed.strerror or failed}", Exit.FAILED)
            raise AssertionError from None  # fail() exits
        if hashlib.sha256(content).hexdigest() != sha256:
            fail(f"evidence {sha256} of event {item.seq} no longer matches its hash", Exit.FAILED)
        data += content
    seqs = ", ".join(str(e.seq) for e in chosen)
    return data, f"incident {state.id} step {step} (event {seqs})", state.inventory


def _inventory(path: Path | None) -> Inventory | None:
    if path is None:
        return None
    loaded = load_inventory(path)
    try:
        web_ports(loaded.model)
    except BadWebPorts as bad:
        mark = loaded.doc.mark(("hosts", bad.host, "vars", "web_ports"))
        raise InvalidFile([Problem(mark, bad.message)]) from None
    return loaded.model


def _checked(inventory: Inventory | None) -> Inventory | None:
    if inventory is not None:
        try:
            web_ports(inventory)
        except BadWebPorts as bad:
            fail(f"the incident's inventory: {bad.message}")
    return inventory


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _row(answer: Answer) -> list[str]:
    service = answer.service
    where = answer.why or ", ".join(answer.hosts)
    return [
        answer.verdict.upper(),
        answer.address,
        str(service.port),
        visible(service.service or "?"),
        visible(service.software or "-"),
        visible(service.server_header or "-"),
        visible(where or "-"),
    ]


def _report(result: Comparison, inventory: Inventory | None, scan: Scan) -> None:
    if result.answers:
        header = ["VERDICT", "ADDRESS", "PORT", "SERVICE", "SOFTWARE", "SERVER", "INVENTORY"]
        for line in _table([header, *(_row(a) for a in result.answers)]):
            click.echo(line)
    else:
        click.echo("No web server answered.")
    if result.other:
        click.echo("\nOpen, and recognised by nmap as something other than a web server:")
        for answer in result.other:
            click.echo("  " + "  ".join(_row(answer)[1:]))
    if result.silent:
        click.echo("\nInventory web servers that did not answer:")
        for silent in result.silent:
            click.echo(
                f"  {silent.host} ({visible(silent.address)}): port(s) "
                f"{ports_text(silent.ports)}: {silent.why}"
            )
    if result.unresolved:
        click.echo(
            "\nInventory names that did not resolve here (compared by name only): "
            + visible(", ".join(result.unresolved))
        )
    for error in scan.errors:
        click.echo(visible(f"\nThe scan ended in error: {error}"))
    rogue = len(result.rogue)
    known = len(result.answers) - rogue
    outside = f", {len(result.not_scanned)} outside the scan" if result.not_scanned else ""
    click.echo(
        f"\n{len(scan.hosts)} address(es) scanned; {len(result.answers)} web server(s) "
        f"answered: {known} known, {rogue} rogue; "
        f"{len(result.silent)} inventory web server(s) silent{outside}"
        + ("" if inventory else " (no --inventory: everything that answers is rogue)")
    )


def _as_json(result: Comparison) -> dict[str, Any]:
    def answer(a: Answer) -> dict[str, Any]:
        s = a.service
        return {
            "verdict": str(a.verdict),
            "address": a.address,
            "port": s.port,
            "service": s.service,
            "product": s.product,
            "version": s.version,
            "extrainfo": s.extrainfo,
            "server_header": s.server_header,
            "header_source": s.header_source,
            "hosts": list(a.hosts),
            "hostnames": list(a.hostnames),
            "mac": a.mac,
            "vendor": a.vendor,
            "why": a.why,
        }

    return {
        "answers": [answer(a) for a in result.answers],
        "other": [answer(a) for a in result.other],
        "silent": [
            {"host": s.host, "address": s.address, "ports": list(s.ports), "why": s.why}
            for s in result.silent
        ],
        "not_scanned": list(result.not_scanned),
        "unresolved": list(result.unresolved),
        "rogue": len(result.rogue),
    }


@click.command()
@click.argument("ranges", nargs=-1, metavar="RANGE...")
@click.option(
    "--inventory",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The inventory to compare with; without it everything that answers is rogue.",
)
@click.option(
    "--ports",
    default=ports_text(DEFAULT_PORTS),
    metavar="PORTS",
    show_default=True,
    help="TCP ports to scan: 80,443,8000-8010.",
)
@click.option(
    "--xml",
    "xml_source",
    metavar="FILE",
    help="Read a saved scan (nmap -oX; '-' for stdin) instead of scanning.",
)
@click.option(
    "--save", type=click.Path(path_type=Path, dir_okay=False), help="Keep the scan's XML here."
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    metavar="SECONDS",
    default=900.0,
    show_default=True,
    help="Seconds the whole scan may take.",
)
@click.option(
    "--incident",
    "incident_id",
    type=IncidentId(),
    help="Read the scan an incident's step kept (see --step), and compare it with the "
    "incident's inventory unless --inventory is given.",
)
@click.option(
    "--step",
    default="discover-scan",
    metavar="STEP",
    show_default=True,
    help="With --incident: the step whose output is the scan.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def discover(
    ranges: tuple[str, ...],
    inventory: Path | None,
    ports: str,
    xml_source: str | None,
    save: Path | None,
    timeout: float,
    incident_id: str | None,
    step: str,
    as_json: bool,
) -> None:
    """Find web servers in RANGE... (addresses, CIDR blocks, nmap ranges, names) that the
    inventory does not know, with what each answers: port, service, product and version,
    and its HTTP `Server` header.

    An inventory host is a web server on the ports its `vars.web_ports` lists ("80,443"),
    or on 80 and 443 when it is a Windows host; a web server anywhere else is rogue.
    Exit 0 when every web server that answered is known, 1 when a rogue one answers, 2 on
    bad input or when nmap cannot run.
    """
    known = _inventory(inventory)
    warnings: list[str] = []
    if sum(bool(x) for x in (ranges, xml_source is not None, incident_id)) > 1:
        fail("give one of RANGE... to scan, --xml or --incident to read a saved scan")
    if xml_source is not None:
        data, where = _read(xml_source)
        scan = _parse(data, where)
    elif incident_id is not None:
        data, where, theirs = _from_incident(incident_id, step)
        if known is None:
            known = _checked(theirs)
        scan = _parse(data, where)
    else:
        if not ranges:
            fail("give the address ranges to scan (RANGE...), or --xml or --incident")
        try:
            targets = [parse_target(r) for r in ranges]
            port_list = parse_ports(ports)
        except ScanProblem as bad:
            fail(bad.message)
            return
        from irtool.remote.nmap import NmapError
        from irtool.remote.nmap import scan as run_scan

        try:
            runs = run_scan(targets, port_list, timeout)
        except NmapError as failed:
            fail(str(failed))
            return
        data = b"".join(run.xml for run in runs)
        if save is not None:
            save.write_bytes(data)
        warnings = [line for run in runs for line in run.warnings]
        scan = _parse(data, "nmap's output")
    if not scan.hosts:
        for line in warnings:
            click.echo(visible(f"nmap: {line}"), err=True)
        fail("the scan covered no address: nothing was compared (see what nmap said)")
    resolved: dict[str, list[str]] = {}
    if known is not None:
        from irtool.remote.nmap import resolve

        resolved = resolve(needs_resolving(known), RESOLVE_SECONDS)
    result = compare(scan, known, resolved)
    for line in warnings:
        click.echo(visible(f"nmap: {line}"), err=True)
    if as_json:
        click.echo(json.dumps(_as_json(result), indent=2))
    else:
        _report(result, known, scan)
    raise SystemExit(Exit.FAILED if result.rogue else Exit.OK)
