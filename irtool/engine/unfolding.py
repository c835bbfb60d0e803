"""What the team learns as the incident unfolds: parameters, indicators, scope, an early start.

A runbook is written before the incident; the incident is not. The attacker's address is
found by triage, a second address an hour later, a fourth web server turns out to share the
compromised app pool. Each is one event, checked as a file would be, so the plan re-renders
from the journal and every command keeps in its custody the values it ran with.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from irtool.engine import kinds
from irtool.engine.refusal import Refused, no_step
from irtool.engine.state import IncidentState, Status
from irtool.journal import Event, EventDraft
from irtool.model.indicators import ioc_kind, ioc_value

Decide = Callable[[IncidentState], EventDraft]


def _reason(reason: str, what: str) -> str:
    if not reason.strip():
        raise Refused(f"{what} needs a reason (--reason)")
    return reason.strip()


def check_new_host(name: str, group: str, entry: dict[str, Any]) -> dict[str, Any]:
    """A host entry as inventory.yaml holds it, checked by the same model; the problems in
    one line, each named as the file would name it (`hosts.NAME.port: ...`)."""
    from irtool.model.inventory import Host, new_host_problems

    found = new_host_problems(name, group, entry)
    if found:
        raise Refused(
            "; ".join(f"hosts.{name}{'.' + key if key else ''}: {said}" for key, said in found)
        )
    return Host.model_validate(entry).model_dump(mode="json", exclude_defaults=True)


def answers_by_question(spec: object, step: str, given: dict[str, str]) -> dict[str, str]:
    """A post-mortem's answers keyed by question text, in the runbook's order."""
    from irtool.model.steps import PostmortemStep

    if not isinstance(spec, PostmortemStep):
        raise Refused(f"step '{step}' asks no questions: only a post-mortem step does")
    by_question: dict[str, str] = {}
    for key, answer in given.items():
        question = spec.question(key)
        if question is None:
            raise Refused(f"step '{step}' has no question '{key}' (1-{len(spec.questions)})")
        if question in by_question:
            raise Refused(f"question {spec.questions.index(question) + 1} is answered twice")
        by_question[question] = answer
    return {q: by_question[q] for q in spec.questions if q in by_question}


class UnfoldingCommands:
    """Commands of IncidentSession that change what the plan is made of."""

    def _write(self, decide: Decide, *, after_close: bool = False) -> Event:
        raise NotImplementedError  # IncidentSession's

    def set_parameter(self, name: str, values: list[str], actor: str, reason: str) -> Event:
        """Set or amend a parameter; a `list: true` parameter takes several values."""

        def decide(state: IncidentState) -> EventDraft:
            from irtool.model.params import parse_values, value_text

            param = state.runbook.parameters.get(name)
            if param is None:
                known = ", ".join(state.runbook.parameters) or "none"
                raise Refused(f"runbook {state.runbook.id} has no parameter '{name}' ({known})")
            why = _reason(reason, f"setting '{name}'")
            try:
                value = parse_values(param, values)
            except ValueError as bad:
                raise Refused(f"parameter '{name}' ({param.type}): {bad}") from None
            previous = state.parameters.get(name)
            if value == previous:
                raise Refused(f"parameter '{name}' already is {value_text(value)}")
            return EventDraft(
                kinds.PARAMETER_SET,
                actor,
                {"name": name, "value": value, "previous": previous, "reason": why},
            )

        return self._write(decide)

    def change_ioc(self, change: str, kind: str, value: str, actor: str, reason: str) -> Event:
        """Add or remove one indicator of compromise."""

        def decide(state: IncidentState) -> EventDraft:
            if change not in ("add", "remove"):
                raise Refused(f"'{change}': an indicator is added or removed")
            try:
                which = ioc_kind(kind)
                canonical = ioc_value(which, value)
            except ValueError as bad:
                raise Refused(str(bad)) from None
            why = _reason(reason, f"{'adding' if change == 'add' else 'removing'} an indicator")
            held = state.iocs.get(which, [])
            if change == "add" and canonical in held:
                raise Refused(f"{which} {canonical} is already an indicator")
            if change == "remove" and canonical not in held:
                raise Refused(f"{which} {canonical} is not an indicator of this incident")
            return EventDraft(
                kinds.IOC_ADDED if change == "add" else kinds.IOC_REMOVED,
                actor,
                {"kind": which, "value": canonical, "reason": why},
            )

        return self._write(decide)

    def change_scope(
        self,
        host: str,
        group: str,
        add: bool,
        actor: str,
        reason: str,
        new_host: dict[str, Any] | None = None,
    ) -> Event:
        """Put a host in a group (`affected`, say) or take it out; a host the inventory does
        not know comes with its entry: transport, address, port, credential reference."""

        def decide(state: IncidentState) -> EventDraft:
            from irtool.model.inventory import group_problem

            why = _reason(reason, "changing the scope")
            if not group.strip():
                raise Refused("which group?")
            # Checked here, as the inventory file checks it: the fold rebuilds the inventory
            # from this event, and a name it refuses would break every later reading.
            problem = group_problem(group.strip())
            if problem:
                raise Refused(f"group: {problem}")
            inventory = state.inventory
            known = inventory is not None and host in inventory.hosts
            entry = None
            if not known:
                if not add:
                    raise Refused(f"no host '{host}' in this incident's inventory")
                if new_host is None:
                    raise Refused(
                        f"host '{host}' is not in the inventory: give its address and "
                        "transport (--address, --transport) to add it"
                    )
                entry = check_new_host(host, group.strip(), new_host)
            elif new_host is not None:
                raise Refused(f"host '{host}' is already in the inventory")
            elif inventory is not None:
                member = group in inventory.groups_of(host)
                if add and member:
                    raise Refused(f"{host} is already in group '{group}'")
                if not add and not member:
                    raise Refused(f"{host} is not in group '{group}'")
            return EventDraft(
                kinds.SCOPE_CHANGED,
                actor,
                {
                    "host": host,
                    "group": group.strip(),
                    "change": "add" if add else "remove",
                    "reason": why,
                    "new_host": entry,
                },
                host=host,
            )

        return self._write(decide)

    def start_early(self, step: str, actor: str, reason: str) -> Event:
        """Work a step before the steps ahead of it are done (answer "is this a compromise?"
        while two collectors still run); the timeline keeps why."""

        def decide(state: IncidentState) -> EventDraft:
            if step not in state.steps:
                raise no_step(state, step)
            current = state.steps[step]
            if current.status is not Status.PENDING:
                raise Refused(f"step '{step}' is already {current.status}")
            available = state.available()
            if step in available:
                raise Refused(f"step '{step}' is reachable already: no need to start it early")
            spec = state.runbook.step(step)
            if spec is not None and spec.strict:
                raise Refused(
                    f"step '{step}' is strict: it waits until the steps ahead of it are done "
                    f"(next: {', '.join(available) or 'none'})"
                )
            why = _reason(reason, f"starting '{step}' early")
            order = list(state.steps)
            ahead = [
                s for s in order[: order.index(step)] if state.steps[s].status is Status.PENDING
            ]
            return EventDraft(
                kinds.STEP_STARTED_EARLY, actor, {"reason": why, "ahead": ahead}, step=step
            )

        return self._write(decide)

    def answer(self, step: str, answers: dict[str, str], actor: str) -> Event:
        """Answer post-mortem questions of a step already done, or after the incident closed
        (the review is within two weeks of closing)."""

        def decide(state: IncidentState) -> EventDraft:
            from irtool.model.steps import PostmortemStep

            spec = state.runbook.step(step)
            if not isinstance(spec, PostmortemStep):
                raise Refused(f"step '{step}' asks no questions: only a post-mortem step does")
            given = {k: a.strip() for k, a in answers.items() if a.strip()}
            if not given:
                raise Refused("no answer given")
            keyed: dict[str, str] = {}
            for key, text in given.items():
                question = spec.question(key)
                if question is None:
                    raise Refused(
                        f"step '{step}' has no question '{key}' (1-{len(spec.questions)})"
                    )
                keyed[question] = text
            return EventDraft(kinds.POSTMORTEM_ANSWERED, actor, {"answers": keyed}, step=step)

        return self._write(decide, after_close=True)
