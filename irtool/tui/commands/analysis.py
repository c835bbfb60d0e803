"""An analyze step (r): the hunts and Sigma rules over the web logs its sources collected.

The analysis runs in a thread with its own session on the journal (a large log takes a while
to load; the incident screen stays live meanwhile), then what it wrote is folded in and the
responder is told what it found. The findings themselves are read on the findings screen."""

from __future__ import annotations

from irtool.engine.findings import Analyzed, analyze_incident
from irtool.engine.session import IncidentSession
from irtool.evidence.store import EvidenceStore
from irtool.journal.incidents import EVIDENCE_DIR, incident_dir
from irtool.model.steps import AnalyzeStep
from irtool.model.untrusted import visible
from irtool.tui.commands.command import Incident
from irtool.tui.guard import notify_error

GROUP = "analysis"


def analyze(hub: Incident, spec: AnalyzeStep) -> None:
    """Start the step's analysis, unless one is running already."""
    app = hub.app
    if any(w.group == GROUP and not w.is_finished for w in app.workers):
        app.notify("an analysis is running already", severity="warning")
        return
    incident, actor, clock = hub.state.id, hub.actor, hub.clock
    warnings: list[str] = []

    def work() -> None:
        try:
            session = IncidentSession.open(incident, clock=clock)
            try:
                evidence = EvidenceStore(incident_dir(incident) / EVIDENCE_DIR, create=False)
                result = analyze_incident(
                    session, evidence, actor, step=spec.id, on_warning=warnings.append
                )
            finally:
                session.close_journal()
        except Exception as error:  # said to the responder, like any refusal
            app.call_from_thread(failed, error)
            return
        app.call_from_thread(finished, result)

    def failed(error: Exception) -> None:
        hub.poll()
        notify_error(app, error)

    def finished(result: Analyzed) -> None:
        hub.poll()
        # The logs' words may reach the summary: written out, never read as markup.
        app.notify(
            visible(_summary(result, len(warnings))),
            severity="warning" if result.raised else "information",
            markup=False,
        )

    app.notify(f"analysing: {spec.title}")
    app.run_worker(work, thread=True, group=GROUP, exit_on_error=False)


def _summary(result: Analyzed, warnings: int) -> str:
    text = f"analysis: {result.requests} request(s), {result.events} event(s)"
    if result.compared and result.compared.hosts:
        text += f", records of {len(result.compared.hosts)} host(s)"
    if result.compared and result.compared.captured:
        text += f", baselines kept for {len(result.compared.baselines)} host(s)"
    text += f", {len(result.raised)} new finding(s)"
    if warnings:
        text += f", {warnings} unreadable line(s) or value(s)"
    if result.rules.unconvertible:
        text += f", {len(result.rules.unconvertible)} rule(s) could not run"
    return text + (" (F: findings)" if result.raised else "")
