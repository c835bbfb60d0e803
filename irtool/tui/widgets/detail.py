"""The selected step: instructions, checklist, owner, and for commands the exact text per host."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.markdown import Markdown
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from irtool.engine.findings import worst_first
from irtool.engine.state import IncidentState, Status
from irtool.model.plan import PlanRow
from irtool.model.steps import (
    ActionStep,
    AgendaStep,
    AnalyzeStep,
    CollectStep,
    DecisionStep,
    ManualStep,
    NotifyStep,
    PostmortemStep,
    RotateStep,
)
from irtool.model.untrusted import visible
from irtool.model.when import shown, span

# More hosts than this and the commands of the rest are summarised: the confirmation and the
# run screen show them all.
HOSTS_SHOWN = 8


EXERCISE_ACTION = "EXERCISE: simulated hosts; the action is acknowledged, not performed"
EXERCISE_ROTATE = "EXERCISE: say how each credential would be rotated; none is changed"


def _status(state: IncidentState, step_id: str) -> Text:
    step = state.steps[step_id]
    if step.status is Status.DONE:
        chosen = f" ({step.option})" if step.option else ""
        note = f": {step.note}" if step.note else ""
        done = f"done{chosen} by {step.by} at {shown(step.at)}{note}"
        return Text(visible(done, lines=True), "green")
    if step.status is Status.SKIPPED:
        return Text(visible(f"skipped by {step.by}: {step.reason}", lines=True), style="dim")
    if step.status is Status.ROLLED_BACK:
        return Text(
            visible(f"rolled back by {step.by} at {shown(step.at)}: apply it again with a reason"),
            style="magenta",
        )
    if step_id in state.available():
        return Text("next: this step is open now", style="bold yellow")
    return Text("not reached yet", style="dim")


def _analysis(state: IncidentState, spec: AnalyzeStep) -> list[Text]:
    """What the step reads and runs, what its last analysis read, and what it found."""
    hunts = ", ".join(spec.hunts) if spec.hunts is not None else "every hunt"
    rules = ", ".join(spec.rules) if spec.rules is not None else "every shipped Sigma rule"
    parts = [
        Text(
            f"reads the logs and records of: {', '.join(spec.sources)}"
            + (" (keeps each host's baseline)" if spec.baseline == "capture" else "")
        ),
        Text(f"runs: {hunts or 'no hunt'}; {rules or 'no Sigma rule'}", style="dim"),
    ]
    ran = [a for a in state.analyses if a.step == spec.id]
    if not ran:
        parts.append(Text("r runs the analysis over what was collected", style="dim"))
        return parts
    last = ran[-1]
    parts.append(
        Text(
            visible(
                f"analysed by {last.actor} at {shown(last.at)}: {last.requests} request(s) and "
                f"{last.events} event(s) from {len(last.evidence)} log(s), records of "
                f"{len(last.records_from)} host(s); r again once more evidence is in"
            )
        )
    )
    for reason in last.unconvertible:
        parts.append(Text(visible(f"rule not run: {reason}"), style="yellow"))
    found = worst_first(f for f in state.findings.values() if f.step == spec.id)
    parts.append(Text(f"Findings ({len(found)}): F opens them", style="bold underline"))
    for f in found:
        verdict = "" if f.status == "open" else f" [{f.status}]"
        style = "bold red" if f.severity in ("critical", "high") and f.status == "open" else ""
        parts.append(
            Text(visible(f"#{f.seq} {f.severity.upper()} {f.summary}{verdict}"), style=style)
        )
    return parts


def _commands(
    spec: CollectStep | ActionStep, rows: dict[str, list[PlanRow]], problem: str
) -> list[Text]:
    parts: list[Text] = []
    if problem:
        parts.append(Text(visible(f"cannot render the commands: {problem}"), style="bold red"))
    elif not rows:
        parts.append(Text("no host of this incident's inventory is targeted", style="yellow"))
    for index, (host, host_rows) in enumerate(rows.items()):
        if index == HOSTS_SHOWN:
            parts.append(Text(f"… and {len(rows) - HOSTS_SHOWN} more host(s)", style="dim"))
            break
        # Commands hold parameters and inventory names: shown written out, line breaks kept.
        first = host_rows[0]
        form = f", variant {first.variant}" if first.variant else ""
        guess = " (assumed: its facts are not known yet)" if first.assumed else ""
        parts.append(Text(visible(f"on {host} ({first.shell}{form}){guess}:"), style="bold"))
        for row in host_rows:
            if row.item:
                parts.append(Text(visible(f"  # {row.item}"), style="dim"))
            if row.unfit:
                parts.append(Text(visible(f"  not run: {row.unfit}"), style="yellow"))
                continue
            parts.append(Text(visible(f"  {row.command}", lines=True)))
        if isinstance(spec, ActionStep) and host_rows[0].rollback:
            rollback = visible(f"  rollback: {host_rows[0].rollback}", lines=True)
            parts.append(Text(rollback, style="dim"))
    return parts


def _kind_parts(
    state: IncidentState, step_id: str, rows: dict[str, list[PlanRow]], problem: str
) -> list[Text]:
    spec = state.runbook.step(step_id)
    step = state.steps[step_id]
    parts: list[Text] = []
    if isinstance(spec, ManualStep) and spec.checklist:
        parts.append(Text("Checklist", style="bold underline"))
        for item in spec.checklist:
            parts.append(Text(f"{'☑' if item in step.checklist else '☐'} {item}"))
    elif isinstance(spec, DecisionStep):
        parts.append(Text(spec.question, style="bold"))
        for option in spec.options:
            mark = "●" if step.option == option.id else "○"
            target = f" → {option.next}" if option.next else ""
            parts.append(Text(f"{mark} {option.label}{target}"))
    elif isinstance(spec, NotifyStep):
        if spec.message.strip():  # what to tell each person reached, word for word
            parts.append(Text("Message", style="bold underline"))
            parts.append(Text(visible(spec.message.strip(), lines=True)))
        for role in spec.roles:
            tree = state.calls.get(role)
            if tree is None:
                parts.append(Text(f"{role}: not in the contacts"))
            elif tree.reached:
                parts.append(Text(f"✓ {role}: {tree.reached} reached", style="green"))
            else:
                parts.append(Text(f"☎ {role}: call {tree.next_person or 'no one left'}"))
    elif isinstance(spec, AgendaStep):
        for topic in spec.topics:
            parts.append(Text(f"• {topic.title}", style="bold"))
            if topic.prompt:
                parts.append(Text(f"  {topic.prompt}", style="dim"))
        parts.append(Text(f"reconvene every {span(spec.reconvene_every)}"))
        if state.meeting == step_id:
            parts.append(Text("meeting open: m adjourns it with its outcomes", style="bold"))
        else:
            parts.append(Text("m opens the meeting", style="dim"))
    elif isinstance(spec, RotateStep):
        if state.exercise:
            parts.append(Text(EXERCISE_ROTATE, style="bold black on yellow"))
        for rotation in spec.items:
            parts.append(Text(f"• {rotation.title} ({rotation.kind}, {rotation.method})"))
            if rotation.id in step.rotations:  # what the team said became of it
                done, said = step.rotations[rotation.id]
                mark, style = ("✓ rotated", "green") if done else ("✗ NOT rotated", "bold red")
                line = f"  {mark}{': ' + said if said else ''}"
                parts.append(Text(visible(line, lines=True), style=style))
    elif isinstance(spec, AnalyzeStep):
        parts += _analysis(state, spec)
    elif isinstance(spec, PostmortemStep):
        for n, question in enumerate(spec.questions, start=1):
            parts.append(Text(f"{n}. {question}", style="bold"))
            if question in step.answers:
                parts.append(Text(visible(f"   {step.answers[question]}", lines=True)))
        parts.append(Text("c records the team's answers; i adds an action item", style="dim"))
        for agreed in state.action_items:
            due = f", due {agreed.due}" if agreed.due else ""
            parts.append(Text(visible(f"→ {agreed.text} ({agreed.owner}{due})", lines=True)))
    elif isinstance(spec, CollectStep | ActionStep):
        if isinstance(spec, ActionStep):
            action = state.actions.get(step_id)
            need = "two people" if spec.approvals == 2 else "one responder"
            line = f"containment ({need}, confirm: {spec.confirm})"
            if action and not action.rolled_back:
                line += f"; requested by {action.requested_by}"
                if action.approvals:
                    line += f", approved by {', '.join(action.approvals)}"
            applied = state.applied.get(step_id)
            if applied:
                line += f"; applied on {', '.join(applied)}"
            parts.append(Text(visible(line), style="magenta"))
            if state.exercise:
                parts.append(Text(EXERCISE_ACTION, style="bold black on yellow"))
        parts.extend(_commands(spec, rows, problem))
    return parts


def render_step(
    state: IncidentState, step_id: str, rows: dict[str, list[PlanRow]], problem: str = ""
) -> RenderableType:
    spec = state.runbook.step(step_id)
    if spec is None:
        return Text(f"no step {step_id}")
    head = Text.assemble((spec.title, "bold"), f"  [{spec.type}]")
    if spec.owner:
        head.append(f"  owner: {spec.owner}")
    parts: list[RenderableType] = [head, _status(state, step_id)]
    if spec.instructions.strip():
        parts.append(Markdown(visible(spec.instructions, lines=True)))
    parts.extend(_kind_parts(state, step_id, rows, problem))
    return Group(*parts)


class StepDetail(VerticalScroll):
    DEFAULT_CSS = """
    StepDetail { width: 1fr; height: 1fr; padding: 0 1; }
    StepDetail > Static { width: 100%; }
    """

    def compose(self):  # type: ignore[no-untyped-def]
        yield Static(id="step-text")

    def show(
        self, state: IncidentState, step_id: str, rows: dict[str, list[PlanRow]], problem: str = ""
    ) -> None:
        self.query_one("#step-text", Static).update(render_step(state, step_id, rows, problem))
