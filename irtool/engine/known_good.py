"""Each host against what it should be: its peers, its own baseline, its deployment.

What an analysis reads of the collectors' structured records (see `irtool.engine.records`):

- **its peers** (stacking): a record (a module, a service, a task, an administrator) that
  fewer of the hosts have than the analyze step's `rare_below` is a finding to review;
- **its baseline**: a host's records against those it had when it was known good (captured
  by an analyze step with `baseline: capture` at its admission, or `irtool baseline capture`,
  kept in irtool's baseline library `baselines/HOST.json` under its data folder; a file given
  for the host takes precedence). What is new is a finding. The baseline used is kept as
  evidence of the incident;
- **its deployment**: each host's web-root listing (the `webroot-file` records) against the
  known-good manifest the incident was given (kept as evidence), each difference a finding;
  the added and changed files that were fetched as evidence are scanned with YARA here, never
  on the host, and each hit is a finding.

A source that is missing is a note, not an error: no manifest yet, fewer than three hosts to
stack, no baseline for a host.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from irtool.analysis.baseline import baseline_drafts, capture, read_baseline, write_baseline
from irtool.analysis.comparison import compare, comparison_drafts
from irtool.analysis.hunts import FindingDraft
from irtool.analysis.manifest import normalised, read_manifest
from irtool.analysis.stacking import rare_drafts, stack
from irtool.analysis.yarascan import YaraHit, hits_drafts, load_yara, scan_files
from irtool.engine.provided import BASELINE, KNOWN_GOOD_MANIFEST, keep_provided, latest_provided
from irtool.engine.records import HostRecords, by_host, host_records, hosts_per_kind
from irtool.engine.session import IncidentSession
from irtool.evidence.store import EvidenceStore
from irtool.journal.incidents import home
from irtool.model.problems import InvalidFile
from irtool.model.steps import AnalyzeStep

WEBROOT = "webroot-file"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass
class Compared:
    """What the comparisons of one analysis read and found."""

    drafts: list[FindingDraft] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)  # hosts whose records were read
    baselines: dict[str, str] = field(default_factory=dict)  # host -> baseline sha256 used/kept
    manifest: str | None = None  # the known-good manifest's sha256
    scanned: int = 0  # files scanned with YARA
    captured: bool = False  # the baselines were kept (an admission), not compared


def baseline_library() -> Path:
    """Where captured baselines are kept between incidents: one file per host."""
    return home() / "baselines"


def library_path(host: str) -> Path:
    return baseline_library() / f"{_UNSAFE.sub('_', host)}.json"


def compare_hosts(
    session: IncidentSession,
    evidence: EvidenceStore,
    actor: str,
    *,
    step: AnalyzeStep | None = None,
    manifest: Path | None = None,
    baselines: Mapping[str, Path] | None = None,
    yara_dirs: Sequence[Path] = (),
) -> Compared:
    """Stacking, baselines and the known-good web root over the records the step's sources
    (every collector, without a step) kept. With a step whose `baseline` is `capture`, the
    records are kept as each host's baseline instead, and nothing is raised."""
    state = session.state
    found = host_records(state, evidence, reads=step.reads if step else None)
    done = Compared(hosts=sorted(found))
    for outputs in found.values():
        for got in outputs:
            done.notes += [str(p) for p in got.read.problems]
    if step is not None and step.baseline == "capture":
        _capture(session, evidence, actor, step, found, done)
        done.captured = True
        return done
    # The web root is compared with its deployment, not stacked: each host's own logs,
    # uploads and caches would each be "rare".
    stacked = {h: [r for r in rs if r.kind != WEBROOT] for h, rs in by_host(found).items()}
    rare = rare_drafts(
        stack(stacked), hosts_total=hosts_per_kind(found), threshold=step.rare_below if step else 2
    )
    done.drafts += rare.drafts
    if rare.note and found:
        done.notes.append(rare.note)
    _against_baselines(session, evidence, actor, found, baselines or {}, done)
    _against_manifest(session, evidence, actor, found, manifest, yara_dirs, done)
    return done


def _capture(
    session: IncidentSession,
    evidence: EvidenceStore,
    actor: str,
    step: AnalyzeStep,
    found: Mapping[str, list[HostRecords]],
    done: Compared,
) -> None:
    state = session.state
    library = baseline_library()
    library.mkdir(parents=True, exist_ok=True)
    for host, outputs in found.items():
        readable = [got for got in outputs if got.readable]
        if not readable:
            done.notes.append(f"{host}: no records could be read: no baseline kept")
            continue
        baseline = capture(
            host,
            [r for got in readable for r in got.records],
            kinds=[got.spec.kind for got in readable],
            incident=state.id,
            runbook=state.runbook.id,
            evidence=[got.sha256 for got in readable if got.sha256],
        )
        path = library_path(host)
        write_baseline(baseline, path)
        done.baselines[host] = keep_provided(
            session, evidence, path, item=BASELINE, actor=actor, host=host,
            reason=f"captured by step {step.id}: the host's known-good records",
        )  # fmt: skip


def _against_baselines(
    session: IncidentSession,
    evidence: EvidenceStore,
    actor: str,
    found: Mapping[str, list[HostRecords]],
    given: Mapping[str, Path],
    done: Compared,
) -> None:
    for host, outputs in found.items():
        path = given.get(host) or library_path(host)
        if not path.is_file():
            continue
        try:
            baseline = read_baseline(path)
        except InvalidFile as bad:
            done.notes += [f"{p} (baseline of {host} not used)" for p in bad.problems]
            continue
        if baseline.host != host:
            done.notes.append(f"{path}: the baseline of {baseline.host}, not of {host}: not used")
            continue
        done.baselines[host] = keep_provided(
            session, evidence, path, item=BASELINE, actor=actor, host=host,
            reason=f"the baseline {host}'s records were compared with",
        )  # fmt: skip
        records = [r for got in outputs for r in got.records]
        done.drafts += baseline_drafts(baseline, records, host=host)


def _manifest_path(
    session: IncidentSession, evidence: EvidenceStore, actor: str, given: Path | None
) -> tuple[Path, str] | None:
    """The known-good manifest: the one given now (kept as evidence), else the one the
    incident was last given."""
    if given is not None:
        read_manifest(given)  # a file that is not a manifest is refused, located, not kept
        sha = keep_provided(
            session, evidence, given, item=KNOWN_GOOD_MANIFEST, actor=actor,
            reason="the known-good manifest of the web root",
        )  # fmt: skip
        return evidence.path(sha), sha
    kept = latest_provided(session.state, KNOWN_GOOD_MANIFEST)
    if kept is None:
        return None
    sha = str(kept.files["file"]["sha256"])
    return evidence.path(sha), sha


def _against_manifest(
    session: IncidentSession,
    evidence: EvidenceStore,
    actor: str,
    found: Mapping[str, list[HostRecords]],
    given: Path | None,
    yara_dirs: Sequence[Path],
    done: Compared,
) -> None:
    listings = {
        host: got
        for host, outputs in found.items()
        for got in outputs
        if got.spec.kind == WEBROOT and got.readable and got.sha256
    }
    chosen = _manifest_path(session, evidence, actor, given)
    if chosen is None:
        if listings:
            done.notes.append(
                "no known-good manifest: web roots not compared (irtool manifest build, then "
                "irtool analyze ID --manifest FILE)"
            )
        return
    path, done.manifest = chosen
    try:
        manifest = read_manifest(path)
    except InvalidFile as bad:
        done.notes += [str(p) for p in bad.problems]
        return
    differing: dict[str, set[str]] = {}
    for host, got in sorted(listings.items()):
        try:
            comparison = compare(manifest, evidence.path(got.sha256))
        except InvalidFile as bad:
            done.notes += [f"{p} ({host}'s web root not compared)" for p in bad.problems]
            continue
        except (OSError, ValueError) as bad:  # one host's output never stops the others
            done.notes.append(f"{got.source}: {bad} ({host}'s web root not compared)")
            continue
        done.notes += [str(p) for p in comparison.warnings]
        done.drafts += comparison_drafts(
            comparison, host=host, evidence_sha256=got.sha256, source=got.source
        )
        differing[host] = {
            normalised(d.path) for d in (*comparison.added, *comparison.changed)
        }  # fmt: skip
    _scan_fetched(session, evidence, differing, yara_dirs, done)


def _scan_fetched(
    session: IncidentSession,
    evidence: EvidenceStore,
    differing: Mapping[str, set[str]],
    yara_dirs: Sequence[Path],
    done: Compared,
) -> None:
    """YARA over the fetched copies of the added and changed files: a fetched file is one of
    them when its path on the host ends with the file's path in the web root."""
    wanted: list[tuple[str, str, str]] = []  # (host, host path, evidence sha256)
    for kept in session.state.evidence:
        paths = differing.get(kept.host)
        sha = str(kept.files.get("file", {}).get("sha256") or "")
        if kept.purpose != "fetch" or not paths or not sha:
            continue
        on_host = normalised(kept.command)
        if any(on_host == p or on_host.endswith("/" + p) for p in paths):
            wanted.append((kept.host, kept.command, sha))
    if not wanted:
        if any(differing.values()):
            done.notes.append(
                "the added and changed files were not fetched: YARA did not scan them "
                "(fetch them, then analyze again)"
            )
        return
    rules = load_yara(yara_dirs)
    done.notes += [str(p) for p in rules.problems]
    # The store is content-addressed: the same file fetched from two hosts is one file,
    # scanned once, and a hit for each host that had it.
    files = list(dict.fromkeys(evidence.path(sha) for _, _, sha in wanted))
    scanned, problems = scan_files(rules, files)
    done.notes += [str(p) for p in problems]
    done.scanned = len(scanned)
    results = {result.path: result for result in scanned}
    hits = []
    for host, path, sha in wanted:
        result = results.get(evidence.path(sha))
        for match in result.matches if result is not None else ():
            hits.append(
                YaraHit.of(
                    match,
                    host=host,
                    path=path,
                    sha256=result.sha256,  # type: ignore[union-attr]
                    evidence_sha256=sha,
                    source=f"{host}:{path}",
                )
            )
    done.drafts += hits_drafts(hits)
