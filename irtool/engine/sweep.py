"""An indicator sweep: what a finding names (a hash, a file name, a task, a service, a module,
an address) looked for on other hosts, read-only, and each hit raised as a finding.

The sweep is an ad-hoc collection like any other (`Runner.collect_ad_hoc`): one run per shell
across the chosen hosts, the generated script recorded as its command, each host's output
kept as evidence under `ad-hoc-SEQ`. Its hits are `finding.raised` events (hunt
`sweep:<kind>`) whose references are the lines of that evidence. A host that fails, or whose
script stops before its summary line, is named; the others finish.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from irtool.analysis.hunts import FindingDraft
from irtool.engine.adhoc import ad_hoc_run
from irtool.engine.findings import raise_findings
from irtool.engine.refusal import Refused
from irtool.engine.runner import Runner
from irtool.engine.runreport import RunReport
from irtool.engine.session import IncidentSession
from irtool.engine.state import AD_HOC, IncidentState
from irtool.evidence.store import EvidenceStore
from irtool.journal import Event
from irtool.model.indicators import IOC_KINDS, ioc_kind, ioc_value
from irtool.model.inventory import OsFamily
from irtool.model.steps import Shell
from irtool.model.sweep import (
    HIGH_KINDS,
    SweepHit,
    checked,
    read_sweep_output,
    sweep_script,
    unchecked,
)
from irtool.model.untrusted import visible

SWEEP_VERSION = "1"
_DIGEST = re.compile(r"\bsha256 ([0-9a-f]{64})\b")


@dataclass(frozen=True)
class SweepPlan:
    """What a sweep sends: per shell, its hosts and the exact script."""

    finding: int
    indicators: list[tuple[str, str]]
    scripts: dict[Shell, tuple[list[str], str]]
    unchecked: dict[Shell, list[tuple[str, str, str]]]  # (kind, value, why) per shell
    invalid: list[tuple[str, str, str]]  # indicators that are not what their kind says


@dataclass
class SweepResult:
    """What a sweep did: its runs (shell -> ad-hoc-SEQ), per host the hits and warnings, the
    hosts that failed (and why), and the findings it raised (new ones only)."""

    plan: SweepPlan
    runs: dict[Shell, str] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)
    warnings: dict[str, list[str]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    drafts: list[FindingDraft] = field(default_factory=list)
    raised: list[Event] = field(default_factory=list)


def sweep_indicators(
    state: IncidentState,
    finding_seq: int,
    kinds: Sequence[str] | None = None,
    with_iocs: bool = False,
) -> tuple[list[tuple[str, str]], list[tuple[str, str, str]]]:
    """The indicators a sweep of finding `finding_seq` looks for (with the incident's own,
    `with_iocs`), only those of `kinds` if given: (valid ones, (kind, value, why) of the rest)."""
    finding = state.findings.get(finding_seq)
    if finding is None:
        known = ", ".join(str(s) for s in state.findings) or "none yet"
        raise Refused(f"no finding {finding_seq} in incident {state.id} (findings: {known})")
    try:
        wanted = {ioc_kind(k) for k in kinds} if kinds else set(IOC_KINDS)
    except ValueError as bad:
        raise Refused(str(bad)) from None
    pairs = list(finding.indicators)
    if with_iocs:
        pairs += [(k, v) for k, values in state.iocs.items() for v in values]
    valid: list[tuple[str, str]] = []
    invalid: list[tuple[str, str, str]] = []
    for kind, value in dict.fromkeys(pairs):
        if kind not in wanted:
            continue
        try:
            valid.append((kind, ioc_value(kind, value)) if kind in IOC_KINDS else (kind, value))
        except ValueError as bad:
            invalid.append((kind, value, str(bad)))
    valid = list(dict.fromkeys(valid))
    if not valid:
        what = f" of kind {', '.join(sorted(wanted))}" if kinds else ""
        raise Refused(f"finding {finding_seq} names no indicator{what} to sweep for")
    return valid, invalid


def sweep_hosts(state: IncidentState, targets: Sequence[str]) -> list[str]:
    """The hosts `targets` name: host names, or selectors (all, host:H, group:G, tag:T)."""
    inventory = state.inventory
    if inventory is None:
        raise Refused(f"incident {state.id} was opened without an inventory: no host to sweep")
    if not targets:
        raise Refused("which hosts? (--targets: a host, group:G, tag:T or all)")
    chosen: list[str] = []
    for target in targets:
        if target in inventory.hosts:
            found = [target]
        elif target == "all" or ":" in target:
            found = inventory.select([target])
        else:
            found = []
        if not found:
            raise Refused(
                f"'{target}' selects no host of this incident ({', '.join(inventory.hosts)})"
            )
        chosen += found
    return list(dict.fromkeys(chosen))


def plan_sweep(
    state: IncidentState,
    finding_seq: int,
    targets: Sequence[str],
    *,
    kinds: Sequence[str] | None = None,
    with_iocs: bool = False,
    webroot: str | None = None,
    also: Sequence[str] | None = None,
    log_days: int = 7,
) -> SweepPlan:
    """The scripts a sweep sends, per shell (Linux hosts: sh, Windows hosts: PowerShell)."""
    indicators, invalid = sweep_indicators(state, finding_seq, kinds, with_iocs)
    hosts = sweep_hosts(state, targets)
    assert state.inventory is not None  # sweep_hosts refused otherwise
    by_shell: dict[Shell, list[str]] = {}
    for host in hosts:
        linux = state.inventory.resolve(host).os is OsFamily.LINUX
        by_shell.setdefault(Shell.SH if linux else Shell.POWERSHELL, []).append(host)
    scripts: dict[Shell, tuple[list[str], str]] = {}
    skipped: dict[Shell, list[tuple[str, str, str]]] = {}
    for shell, members in by_shell.items():
        skipped[shell] = unchecked(indicators, shell)
        if not checked(indicators, shell):
            continue  # nothing this shell can look for: no host of it is contacted
        try:
            script = sweep_script(indicators, shell, webroot=webroot, also=also, log_days=log_days)
        except ValueError as bad:  # a folder that cannot be quoted for the shell (not UTF-8)
            raise Refused(f"cannot sweep the {shell} hosts: {visible(str(bad))}") from None
        scripts[shell] = (members, script)
    if not scripts:
        said = "; ".join(
            f"{shell} hosts: {', '.join(f'{k} {v!r}' for k, v, _ in items)} not checked"
            for shell, items in skipped.items()
        )
        raise Refused(f"nothing to look for on the chosen hosts ({said})")
    return SweepPlan(finding_seq, indicators, scripts, skipped, invalid)


def sweep_finding(runner: Runner, plan: SweepPlan, reason: str = "") -> SweepResult:
    """Run a planned sweep (`plan_sweep`): one read-only ad-hoc run per shell, its hits
    raised as findings by `runner.actor`."""
    why = reason.strip() or sweep_reason(plan)
    reports = {
        shell: runner.collect_ad_hoc(hosts, script, str(shell), why)
        for shell, (hosts, script) in plan.scripts.items()
    }
    return sweep_results(runner.session, runner.evidence, plan, reports, runner.actor)


def sweep_reason(plan: SweepPlan) -> str:
    """What a sweep's runs say they are for."""
    return f"indicator sweep of finding {plan.finding}"


def sweep_results(
    session: IncidentSession,
    evidence: EvidenceStore,
    plan: SweepPlan,
    reports: Mapping[Shell, RunReport],
    actor: str,
) -> SweepResult:
    """What the sweep's runs (one per shell, however they were run: here, or by the terminal
    UI's run screen) found: each host's hits read from its kept output, raised as findings."""
    session.refresh()  # the runs may have been written through another session
    result = SweepResult(plan)
    for shell, report in reports.items():
        result.runs[shell] = report.step
        run = ad_hoc_run(report.step)
        for host, outcome in report.results.items():
            if outcome.failure is not None:
                result.failed[host] = outcome.why()
            _read_host(session, evidence, result, host, run)
    seen: dict[str, FindingDraft] = {}
    for draft in result.drafts:
        seen.setdefault(draft.key, draft)
    result.drafts = list(seen.values())
    result.raised = raise_findings(session, actor, result.drafts)
    return result


def _read_host(
    session: IncidentSession,
    evidence: EvidenceStore,
    result: SweepResult,
    host: str,
    run: int | None,
) -> None:
    """The hits in what `host` sent back in run `run` (what arrived, even from a host that
    failed: a hit before a timeout is still a hit)."""
    kept = [
        e
        for e in session.state.evidence
        if e.run == run and e.host == host and e.files.get("stdout")
    ]
    if not kept:
        result.failed.setdefault(host, "no output was kept")
        return
    output_kept = kept[-1]
    sha256 = str(output_kept.files["stdout"]["sha256"])
    try:
        with evidence.path(sha256).open("rb") as stream:
            output = read_sweep_output(stream.read(), result.plan.indicators)
    except OSError as lost:
        result.failed.setdefault(host, f"its output is not in the evidence store: {lost}")
        return
    if not output.done:
        result.failed.setdefault(
            host, "the sweep stopped before its summary line: what it did not reach is unknown"
        )
    result.warnings[host] = output.warnings + [
        f"output line {n} is not a sweep line" for n in output.garbled
    ]
    result.hits[host] = len(output.hits)
    source = f"{host}:{AD_HOC}-{run}"
    for hit in output.hits:
        result.drafts.append(_draft(result.plan.finding, host, hit, sha256, source, output_kept.at))


def _draft(
    finding: int, host: str, hit: SweepHit, sha256: str, source: str, at: str
) -> FindingDraft:
    """A hit as a finding: on its host, standing on its line of the sweep's output."""
    indicators = [(hit.kind, hit.value)]
    digest = _DIGEST.search(hit.detail)
    if hit.kind == "file" and digest:
        indicators.append(("sha256", digest.group(1)))  # what the named file holds here
    where = visible(hit.where)
    detail = f" ({visible(hit.detail)})" if hit.detail else ""
    return FindingDraft(
        hunt=f"sweep:{hit.kind}",
        version=SWEEP_VERSION,
        severity="high" if hit.kind in HIGH_KINDS else "medium",
        title=f"An indicator of finding {finding} is on {host}",
        summary=f"{host}: {hit.kind} {visible(hit.value)!r} at {where}{detail}",
        hosts=(host,),
        first_seen=at,
        last_seen=at,
        count=1,
        refs=((sha256, source, hit.line),),
        key=f"sweep:{host}:{hit.kind}:{hit.value}:{hit.where}",
        indicators=tuple(indicators),
        same_by_key=True,
    )
