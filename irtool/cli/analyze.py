"""`irtool analyze PATH...`: hunt the logs a responder was handed, offline; `irtool analyze ID`:
an incident's evidence.

Offline, the logs (IIS W3C logs and Windows event logs (.evtx): files, directories, .gz and
.zip archives of web logs) are read with their SHA-256 and line or record numbers, loaded into
a DuckDB store (a temporary one, or `--store FILE` to keep it and load more into it later: an
evidence file already in it is not read again), and every hunt and Sigma rule runs over them:
the shipped ones, and those of `--hunts DIR` and `--sigma DIR`. Each finding names the lines
(records) it stands on. Exit 0 when nothing was found, 1 when something was, 2 when nothing
could be read or a hunt file is broken (located, path:line:col).

For an incident, the analysis also compares its hosts' collector records (with each other,
with each host's baseline: `--baseline HOST=FILE` or irtool's baseline library) and their web
roots with the known-good manifest (`--manifest FILE`, kept as evidence; YARA, with the shipped
rules and those of `--yara DIR`, over the fetched files that differ).

The store is derived: delete it and analyze again, and the findings are the same.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from irtool.cli.common import fail
from irtool.cli.exits import Exit
from irtool.model.untrusted import visible

if TYPE_CHECKING:  # imported when it runs: pySigma costs every other command's start-up
    from irtool.analysis.sigma import RuleSet

# Per finding, the lines shown (the json carries all the references a hunt returns).
LINES_SHOWN = 3


def _say(text: str) -> None:
    click.echo(visible(text), err=True)


@contextmanager
def _store_path(given: Path | None) -> Iterator[Path]:
    if given is not None:
        yield given
        return
    with tempfile.TemporaryDirectory(prefix="irtool-analyze-") as folder:
        yield Path(folder) / "requests.duckdb"


def _parameters(pairs: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """`--param HUNT.NAME=VALUE` -> {hunt: {name: value}}."""
    found: dict[str, dict[str, str]] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        hunt, dot, name = key.partition(".")
        if not sep or not dot or not hunt or not name:
            raise click.BadParameter(f"'{pair}' is not HUNT.NAME=VALUE", param_hint="--param")
        found.setdefault(hunt, {})[name] = value
    return found


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--hunt", "only", multiple=True, metavar="ID", help="Run only this hunt (repeat).")
@click.option(
    "--rule", "rule_ids", multiple=True, metavar="ID", help="Run only this Sigma rule (repeat)."
)
@click.option(
    "--sigma",
    "sigma_dirs",
    multiple=True,
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="A folder of Sigma rules (repeat), e.g. a checkout of the Sigma rule repository: its "
    "webserver rules run beside the shipped ones.",
)
@click.option(
    "--step", default=None, metavar="STEP", help="With an incident: run its analyze step STEP."
)
@click.option(
    "--hunts",
    "hunt_dirs",
    multiple=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="A folder of your own hunt files (repeat); a hunt with a shipped id replaces it.",
)
@click.option(
    "--param", "params", multiple=True, metavar="HUNT.NAME=VALUE", help="A hunt's parameter."
)
@click.option(
    "--store",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Keep the DuckDB store in this file (default: a temporary one).",
)
@click.option(
    "--manifest",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="With an incident: the known-good manifest of the web root (irtool manifest build); "
    "kept as evidence and used by later analyses too.",
)
@click.option(
    "--baseline",
    "baselines",
    multiple=True,
    metavar="HOST=FILE",
    help="With an incident: HOST's known-good baseline (irtool baseline capture); default: "
    "irtool's baseline library.",
)
@click.option(
    "--yara",
    "yara_dirs",
    multiple=True,
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="With an incident: a folder of your own YARA rules (repeat), run beside the shipped "
    "ones over the fetched files that differ from known good.",
)
@click.option("--json", "as_json", is_flag=True, help="The findings as a JSON list.")
def analyze(
    paths: tuple[Path, ...],
    only: tuple[str, ...],
    hunt_dirs: tuple[Path, ...],
    params: tuple[str, ...],
    store: Path | None,
    as_json: bool,
    rule_ids: tuple[str, ...],
    sigma_dirs: tuple[Path, ...],
    step: str | None,
    manifest: Path | None,
    baselines: tuple[str, ...],
    yara_dirs: tuple[Path, ...],
) -> None:
    """Hunt web server logs (IIS W3C) and Windows event logs (EVTX) with the hunts and the
    Sigma rules: an incident's (ID), or logs handed to you (files, folders, .gz and .zip
    archives of web logs), offline.

    --hunt and --rule choose what runs: given either, only what they name runs."""
    # Imported here: DuckDB and the reader cost every other command's start-up.
    from irtool.analysis.evtx import EvtxStats, read_evtx_paths
    from irtool.analysis.hunts import HuntError, load_hunts, run_hunts
    from irtool.analysis.sigma import RuleError, load_rules, run_rules
    from irtool.analysis.store import RequestStore, StoreError
    from irtool.analysis.w3c import ReadStats, read_paths
    from irtool.engine.findings import chosen_rules

    overrides = _parameters(params)
    chosen = bool(only or rule_ids)
    hunts_wanted = list(only) if chosen else None
    rules_wanted = list(rule_ids) if chosen else None
    incident = _incident(paths)
    if incident is not None:
        _analyze_incident(
            incident, step, hunts_wanted, hunt_dirs, overrides, rules_wanted, sigma_dirs,
            as_json, manifest, _baselines(baselines), yara_dirs,
        )  # fmt: skip
        return
    if step is not None:
        fail("--step names an analyze step of an incident's runbook: give the incident's ID")
    if manifest or baselines or yara_dirs:
        fail(
            "--manifest, --baseline and --yara compare an incident's hosts: give the incident's "
            "ID (offline: irtool manifest compare, irtool baseline diff)"
        )
    web_paths, evtx_paths = _split(paths)
    try:
        # A broken hunt file: located problems, exit 2.
        hunts = [] if hunts_wanted == [] else load_hunts(hunt_dirs, only)
        rule_set = load_rules(sigma_dirs)
        rules = chosen_rules(rule_set.rules, rules_wanted)
    except ValueError as not_there:
        fail(str(not_there))
        return
    _rules_said(rule_set)
    known = {h.id for h in hunts}
    if unknown := sorted(set(overrides) - known):
        fail(f"no hunt {', '.join(unknown)} (hunts: {', '.join(sorted(known)) or 'none'})")
    stats, event_stats = ReadStats(), EvtxStats()
    try:
        with _store_path(store) as where, RequestStore(where) as requests:
            batches = read_paths(web_paths, on_warning=lambda w: _say(str(w)), stats=stats,
                                 skip=requests.loaded)  # fmt: skip
            loaded = requests.load(batches, on_warning=lambda w: _say(str(w)))
            records = read_evtx_paths(evtx_paths, on_warning=lambda w: _say(str(w)),
                                      stats=event_stats, skip=requests.loaded)  # fmt: skip
            events_loaded = requests.load_events(records, on_warning=lambda w: _say(str(w)))
            total = requests.query("SELECT count(*) AS n FROM requests")[0]["n"]
            events = requests.query("SELECT count(*) AS n FROM events")[0]["n"]
            if not total and not events:
                fail(
                    f"no request or event could be read from {len(paths)} path(s) "
                    f"({stats.lines} lines, {stats.invalid + stats.torn} invalid; "
                    f"{event_stats.records} event records)"
                )
            findings = run_hunts(requests, hunts, overrides)
            findings += run_rules(requests, rules) if rules else []
    except OSError as bad:
        fail(str(bad))
        return
    except StoreError as bad:
        fail(f"the store: {bad}")
        return
    except (HuntError, RuleError) as bad:
        fail(str(bad))
        return
    already = stats.skipped + len(loaded.skipped) + event_stats.skipped + len(events_loaded.skipped)
    _say(
        f"{total} request(s) and {events} event(s) in the store ({loaded.rows} and "
        f"{events_loaded.rows} read now, {already} file(s) already in it); {len(hunts)} hunt(s), "
        f"{len(rules)} Sigma rule(s), {len(findings)} finding(s)"
    )
    if as_json:
        click.echo(json.dumps([_as_dict(f) for f in findings], indent=1, sort_keys=True))
    else:
        for finding in findings:
            click.echo(visible(_line(finding)))
            for sha256, source, line in finding.refs[:LINES_SHOWN]:
                click.echo(visible(f"    {source}:{line}  (sha256 {sha256[:12]})"))
            if len(finding.refs) > LINES_SHOWN:
                click.echo(f"    ... and {len(finding.refs) - LINES_SHOWN} more line(s)")
    sys.exit(Exit.FAILED if findings else Exit.OK)


def _split(paths: tuple[Path, ...]) -> tuple[list[Path], list[Path]]:
    """(web-log paths, event-log paths): a file by its first bytes, a folder to both readers
    (each takes what is its own in it)."""
    from irtool.analysis.evtx import is_evtx

    web: list[Path] = []
    evtx: list[Path] = []
    for path in paths:
        if path.is_dir():
            web.append(path)
            evtx.append(path)
            continue
        try:
            with path.open("rb") as f:
                head = f.read(8)
        except OSError:
            head = b""  # the reader says why it cannot be read
        (evtx if is_evtx(head) or path.suffix.lower() == ".evtx" else web).append(path)
    return web, evtx


def _baselines(pairs: tuple[str, ...]) -> dict[str, Path]:
    """`--baseline HOST=FILE` -> {host: file}."""
    found: dict[str, Path] = {}
    for pair in pairs:
        host, sep, file = pair.partition("=")
        if not sep or not host or not file:
            raise click.BadParameter(f"'{pair}' is not HOST=FILE", param_hint="--baseline")
        if not Path(file).is_file():
            raise click.BadParameter(f"{file}: no such file", param_hint="--baseline")
        found[host] = Path(file)
    return found


def _rules_said(rule_set: RuleSet) -> None:
    """A rule that cannot run is named with why, never dropped silently."""
    for reason in rule_set.unconvertible:
        _say(f"{reason} (rule not run)")
    for note in rule_set.notes():
        _say(note)


def _incident(paths: tuple[Path, ...]) -> str | None:
    """`analyze ID`: one argument that is not a path but names an incident (or a prefix only
    one incident's id has)."""
    if len(paths) != 1 or paths[0].exists():
        return None
    from irtool.journal.incidents import resolve_id

    try:
        return resolve_id(str(paths[0]))
    except ValueError:
        return None


def _analyze_incident(
    incident: str,
    step: str | None,
    only: list[str] | None,
    hunt_dirs: tuple[Path, ...],
    overrides: dict[str, dict[str, str]],
    rules: list[str] | None,
    sigma_dirs: tuple[Path, ...],
    as_json: bool,
    manifest: Path | None = None,
    baselines: dict[str, Path] | None = None,
    yara_dirs: tuple[Path, ...] = (),
) -> None:
    """The incident's log evidence, loaded into its store, hunted, and its hosts compared;
    each new finding a `finding.raised` event (the same finding on the same evidence is never
    raised twice)."""
    from irtool.analysis.hunts import HuntError
    from irtool.analysis.sigma import RuleError
    from irtool.analysis.store import StoreError
    from irtool.cli.common import who
    from irtool.cli.incident import session
    from irtool.cli.remote import refusals_said
    from irtool.engine.findings import analyze_incident
    from irtool.evidence.store import EvidenceStore
    from irtool.journal.incidents import EVIDENCE_DIR, incident_dir

    current = session(incident)
    with refusals_said(current):
        store = EvidenceStore(incident_dir(incident) / EVIDENCE_DIR, create=False)
        try:
            done = analyze_incident(
                current, store, who(None), step=step, only=only, hunt_dirs=hunt_dirs,
                params=overrides, rules=rules, sigma_dirs=sigma_dirs, on_warning=_say,
                manifest=manifest, baselines=baselines, yara_dirs=yara_dirs,
            )  # fmt: skip
        except ValueError as unknown_hunt:
            fail(str(unknown_hunt))
            return
        except (StoreError, HuntError, RuleError) as bad:
            fail(str(bad))
            return
        findings = current.state.findings
    raised = done.raised
    _rules_said(done.rules)
    compared = done.compared
    hosts = f", records of {len(compared.hosts)} host(s)" if compared and compared.hosts else ""
    _say(
        f"{done.requests} request(s) and {done.events} event(s) analysed{hosts}; "
        f"{len(raised)} new finding(s)"
    )
    if as_json:
        click.echo(json.dumps([e.as_dict() for e in raised], indent=1, sort_keys=True))
    else:
        for event in raised:
            click.echo(visible(f"#{event.seq} " + _line(findings[event.seq])))
    sys.exit(Exit.FAILED if raised else Exit.OK)


@click.command()
@click.argument("incident_id", metavar="ID")
@click.option("--confirm", "confirm", type=int, metavar="SEQ", help="Confirm finding SEQ.")
@click.option("--dismiss", "dismiss", type=int, metavar="SEQ", help="Dismiss finding SEQ.")
@click.option("--reason", default="", help="Why it is confirmed or dismissed.")
@click.option("--as", "actor", default=None, help="Who says so.")
@click.option("--json", "as_json", is_flag=True, help="The findings as a JSON list.")
def findings(
    incident_id: str,
    confirm: int | None,
    dismiss: int | None,
    reason: str,
    actor: str | None,
    as_json: bool,
) -> None:
    """An incident's findings, most severe first; --confirm or --dismiss one, with a reason."""
    from irtool.cli.common import who
    from irtool.cli.incident import session
    from irtool.cli.remote import refusals_said
    from irtool.engine.findings import judge_finding, worst_first
    from irtool.journal.incidents import resolve_id

    try:
        incident = resolve_id(incident_id)
    except ValueError as bad:
        fail(str(bad))
        return
    if confirm is not None and dismiss is not None:
        fail("one at a time: --confirm or --dismiss")
    current = session(incident)
    with refusals_said(current):
        if confirm is not None or dismiss is not None:
            verdict = "confirmed" if confirm is not None else "dismissed"
            seq = confirm if confirm is not None else dismiss
            assert seq is not None
            judge_finding(current, seq, verdict, who(actor), reason)
        found = worst_first(current.state.findings.values())
    if as_json:
        click.echo(json.dumps([vars(f) for f in found], indent=1, sort_keys=True, default=str))
        return
    if not found:
        click.echo("no findings yet (irtool analyze ID runs the hunts over the web logs)")
    for f in found:
        verdict = "" if f.status == "open" else f" [{f.status.upper()} by {f.judged_by}]"
        click.echo(visible(f"#{f.seq} " + _line(f) + verdict))


def _line(finding: Any) -> str:
    when = finding.first_seen or "?"
    if finding.last_seen and finding.last_seen != finding.first_seen:
        when += f" .. {finding.last_seen}"
    return (
        f"{finding.severity.upper():8} {finding.hunt} ({finding.count} hit(s), {when}): "
        f"{finding.summary}"
    )


def _as_dict(finding: Any) -> dict[str, Any]:
    return {
        "hunt": finding.hunt,
        "version": finding.version,
        "severity": finding.severity,
        "title": finding.title,
        "summary": finding.summary,
        "hosts": list(finding.hosts),
        "first_seen": finding.first_seen,
        "last_seen": finding.last_seen,
        "count": finding.count,
        "key": finding.key,
        "refs": [{"sha256": s, "source": src, "line": n} for s, src, n in finding.refs],
        "indicators": [list(pair) for pair in finding.indicators],
    }
