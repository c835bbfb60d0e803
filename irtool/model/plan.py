"""The plan: every step in order and, per target host, the exact command it would run."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from irtool.model.facts import UNKNOWN, HostFacts, When
from irtool.model.flow import following
from irtool.model.indicators import IOC_KINDS
from irtool.model.inventory import Inventory
from irtool.model.params import Value, parse_values
from irtool.model.runbook import Runbook
from irtool.model.steps import (
    ActionStep,
    CollectStep,
    CommandStep,
    DecisionStep,
    FetchSpec,
    RotateStep,
    Shell,
    StepBase,
    Variant,
    command_templates,
)
from irtool.model.templating import (
    BUILTIN_NAMES,
    TemplateProblem,
    Unquoted,
    Unset,
    names_used,
    render,
    render_text,
)

# What `incident.id` shows as in a plan made without an incident.
EXAMPLE_INCIDENT = "ir-00000000-000000-0000"
_INCIDENT_ID = re.compile(r"ir-\d{8}-\d{6}-[0-9a-f]{4}")
# `shell` of a fetch collector's rows: files brought back, no command sent as such.
FETCH_SHELL = "fetch"
# What a host needs for a fetch: Windows lists and copies files with PowerShell 2.0 scripts.
FETCH_NEEDS = {"windows": When(powershell="2.0")}


class PlanError(Exception):
    """Parameters or templates that keep a plan from being made; one message per problem."""

    def __init__(self, messages: list[str]) -> None:
        self.messages = messages
        super().__init__("\n".join(messages))


@dataclass(frozen=True)
class PlanRow:
    step: str
    phase: str
    kind: str
    title: str
    item: str | None = None
    host: str | None = None
    shell: str | None = None
    command: str | None = None
    rollback: str | None = None
    next: str | None = None  # where a decision's option leads
    variant: str | None = None  # which form of the command this host gets (by its facts)
    fits: str | None = None  # which hosts that form is for ("powershell >= 3.0")
    assumed: bool = False  # the host's facts are not known yet: the variant is a guess
    unfit: str | None = None  # no form fits this host: why (command is None then)
    fetch: FetchSpec | None = None  # a fetch collector: the files it brings back

    def as_dict(self) -> dict[str, Any]:
        found = asdict(self)
        found["fetch"] = self.fetch.model_dump(mode="json") if self.fetch else None
        return found


def resolve_parameters(
    runbook: Runbook, given: Mapping[str, str | list[str]], *, opening: bool = True
) -> dict[str, Value]:
    """Typed, validated parameter values; every refusal is collected before raising. A
    parameter not given stays unset (None) unless the runbook needs it `at_open`, or (not
    `opening`: a plan made without an incident) never."""
    messages: list[str] = []
    values: dict[str, Value] = {}
    for name in given:
        if name not in runbook.parameters:
            known = ", ".join(runbook.parameters) or "none"
            messages.append(
                f"parameter '{name}' is not declared by this runbook (declared: {known})"
            )
    for name, param in runbook.parameters.items():
        raw = given.get(name, param.default)
        if raw is None:
            if param.required and param.at_open and opening:
                messages.append(
                    f"parameter '{name}' ({param.type}) is required: {param.description}"
                )
            values[name] = None
            continue
        try:
            values[name] = parse_values(param, raw)
        except ValueError as bad:
            messages.append(f"parameter '{name}' ({param.type}): {bad}")
    if messages:
        raise PlanError(messages)
    return values


def step_sources(step: StepBase) -> list[tuple[str, Shell]]:
    """Every command template a step can send (collectors, variants, rollbacks, rotations)."""
    return [(source, shell) for _path, source, shell in command_templates(step)]


def choose(
    forms: list[Variant], facts: HostFacts | None, shell: Shell = Shell.POWERSHELL
) -> tuple[Variant | None, bool, str]:
    """The form a host gets: the first whose `when` its facts meet (a cmd form is for Windows
    only, whatever its `when`). Unknown facts: the first form, flagged as assumed (a run learns
    the facts before it sends anything). Returns the form (None: none fits), whether it is
    assumed, and why none fits."""
    if facts is None:
        return forms[0], len(forms) > 1 or forms[0].when is not None, ""
    for form in forms:
        if (form.shell or shell) is Shell.CMD and facts.os not in (None, "windows"):
            continue
        if facts.fits(form.when):
            return form, False, ""
    needs = "; ".join(f"{f.id} needs {f.when.text()}" for f in forms if f.when)
    return None, False, f"no form of this step fits {facts.summary()} ({needs})"


def incident_values(incident: str | None) -> dict[str, str]:
    """`incident.id` and `incident.tag` (the id with `_` for `-`, for nft names): inserted
    unquoted, which is safe because an incident id is only ever [a-z0-9-]."""
    ident = incident or EXAMPLE_INCIDENT
    if not _INCIDENT_ID.fullmatch(ident):
        raise PlanError([f"'{ident}' is not an incident id"])
    return {"id": Unquoted(ident), "tag": Unquoted(ident.replace("-", "_"))}


def fetch_paths(step: StepBase) -> list[str]:
    """The path templates of a step's fetch collectors."""
    if not isinstance(step, CollectStep):
        return []
    return [p for c in step.collectors() if c.fetch is not None for p in c.fetch.paths]


def parameters_used(step: StepBase) -> list[str]:
    """The names a step's commands read, in a stable order (built-ins left out)."""
    used: set[str] = set()
    for source in [s for s, _shell in step_sources(step)] + fetch_paths(step):
        try:
            used |= names_used(source)
        except TemplateProblem:
            continue  # lint reports it; a plan refuses it
    return sorted(used - BUILTIN_NAMES)


def template_values(
    params: Mapping[str, Value], iocs: Mapping[str, list[str]] | None = None
) -> dict[str, Any]:
    """What a template sees: parameters (an unset one shows as `<NAME: not set>`), and the
    incident's indicators as `iocs.KIND`, each a list (empty when there is none)."""
    values: dict[str, Any] = {
        name: Unset(name) if value is None else value for name, value in params.items()
    }
    values["iocs"] = {kind: list((iocs or {}).get(kind, [])) for kind in IOC_KINDS}
    return values


def host_facts(
    name: str, inventory: Inventory | None, learned: Mapping[str, HostFacts] | None
) -> HostFacts | None:
    """What is known of a host: what it said of itself, else what the inventory states."""
    if learned and name in learned:
        return learned[name]
    if inventory is not None and name in inventory.hosts:
        return inventory.hosts[name].facts
    return None


class _Placeholders(dict[str, str]):
    """Host variables when no inventory is given: each shows as <host.vars.NAME>."""

    def __missing__(self, key: str) -> str:
        return f"<host.vars.{key}>"


def _hosts(
    selectors: list[str],
    inventory: Inventory | None,
    learned: Mapping[str, HostFacts] | None = None,
) -> list[tuple[str, dict[str, Any], HostFacts | None]]:
    if inventory is None:
        return [
            (
                s,
                {
                    "name": s,
                    "address": s,
                    "user": f"<{s}: user>",
                    "groups": [],
                    "tags": [],
                    "vars": _Placeholders(),
                    "facts": UNKNOWN.template(),
                },
                None,
            )
            for s in selectors
        ]
    hosts = []
    for name in inventory.select(selectors):
        host = inventory.resolve(name)
        facts = host_facts(name, inventory, learned)
        context = {
            "name": name,
            "address": host.address,
            "user": host.user or "",
            "os": str(host.os),
            "groups": host.groups,
            "tags": host.tags,
            "vars": host.vars,
            "facts": (facts or UNKNOWN).template(),
        }
        hosts.append((name, context, facts))
    return hosts


def build_plan(
    runbook: Runbook,
    params: Mapping[str, Value],
    inventory: Inventory | None = None,
    iocs: Mapping[str, list[str]] | None = None,
    *,
    facts: Mapping[str, HostFacts] | None = None,
    incident: str | None = None,
    pinned: Mapping[tuple[str, str], str] | None = None,
) -> list[PlanRow]:
    """Every step in order and, per target host, the exact command it would run: the form
    of the command its facts choose, or the one `pinned` names for (step, host): an action's
    rollback is the one of the form that was applied, whatever the facts say now. Without an
    inventory every form is shown, each once."""
    rows: list[PlanRow] = []
    messages: list[str] = []
    after = following(runbook)
    # Every declared parameter is known to a template, set or not (unset: <NAME: not set>).
    context = template_values({**dict.fromkeys(runbook.parameters), **params}, iocs)
    context["incident"] = incident_values(incident)

    def rendered(step: StepBase, source: str | None, shell: Shell, host: dict[str, Any]) -> str:
        if source is None:
            return ""
        try:
            return render(source, shell, {**context, "host": host})
        except TemplateProblem as bad:
            messages.append(f"step '{step.id}' on {host['name']}: {bad}")
            return ""

    def fetched(step: StepBase, spec: FetchSpec, host: dict[str, Any]) -> FetchSpec:
        """The fetch with its paths rendered for `host` (plain text: the listing quotes them)."""
        paths = []
        for path in spec.paths:
            try:
                paths.append(render_text(path, {**context, "host": host}, refuse="*?"))
            except TemplateProblem as bad:
                messages.append(f"step '{step.id}' on {host['name']}: {bad}")
                paths.append(path)
        return spec.model_copy(update={"paths": paths})

    def command_rows(
        step: CommandStep, label: str | None, forms: list[Variant], base: dict[str, Any]
    ) -> None:
        for name, host, known in _hosts(step.targets, inventory, facts):
            chosen = forms if inventory is None and len(forms) > 1 else None
            if chosen is not None:  # no inventory: every form, for review
                for form in chosen:
                    rows.append(row(step, label, form, name, host, base, assumed=False))
                continue
            held = (pinned or {}).get((step.id, name))
            picked, assumed, unfit = next(
                ((f, False, "") for f in forms if f.id == held), None
            ) or choose(forms, known, step.shell)
            if picked is None:
                rows.append(PlanRow(**base, item=label, host=name, unfit=unfit))
            else:
                rows.append(row(step, label, picked, name, host, base, assumed=assumed))

    def row(
        step: CommandStep,
        label: str | None,
        form: Variant,
        name: str,
        host: dict[str, Any],
        base: dict[str, Any],
        assumed: bool,
    ) -> PlanRow:
        shell = form.shell or step.shell
        variant = form.id if form.id != (label or step.id) else None
        return PlanRow(
            **base,
            item=label,
            host=name,
            shell=str(shell),
            command=rendered(step, form.command, shell, host),
            rollback=rendered(step, form.rollback, shell, host) if form.rollback else None,
            variant=variant,
            fits=(form.when.text() if form.when else "any host") if variant else None,
            assumed=assumed and variant is not None,
        )

    for phase, step in runbook.steps():
        base: dict[str, Any] = {
            "step": step.id,
            "phase": phase.id,
            "kind": step.type,
            "title": step.title,
        }
        if isinstance(step, CollectStep):
            for collector in step.collectors():
                label = collector.id if collector.id != step.id else None
                if collector.fetch is not None:
                    for name, host, known in _hosts(step.targets, inventory, facts):
                        if known is not None and not known.fits(FETCH_NEEDS.get(known.os or "")):
                            rows.append(
                                PlanRow(
                                    **base,
                                    item=label,
                                    host=name,
                                    unfit=f"fetching files from {known.summary()} needs "
                                    "PowerShell 2.0 (its listing and copies are PowerShell)",
                                )
                            )
                            continue
                        spec = fetched(step, collector.fetch, host)
                        rows.append(
                            PlanRow(
                                **base,
                                item=label,
                                host=name,
                                shell=FETCH_SHELL,
                                command=spec.describe(),
                                fetch=spec,
                            )
                        )
                    continue
                forms = collector.variants or [
                    Variant(id=collector.id, command=collector.command or "")
                ]
                command_rows(step, label, forms, base)
        elif isinstance(step, ActionStep):
            command_rows(step, None, step.forms(), base)
        elif isinstance(step, RotateStep):
            for rotation in step.items:
                if rotation.command and rotation.targets:
                    for name, host, _known in _hosts(rotation.targets, inventory, facts):
                        rows.append(
                            PlanRow(
                                **base,
                                item=rotation.id,
                                host=name,
                                shell=str(rotation.shell),
                                command=rendered(step, rotation.command, rotation.shell, host),
                            )
                        )
                else:
                    rows.append(PlanRow(**base, item=rotation.id))
        elif isinstance(step, DecisionStep):
            rows.extend(
                PlanRow(**base, item=option.id, next=option.next or after[step.id])
                for option in step.options
            )
        else:
            rows.append(PlanRow(**base))
    if messages:
        raise PlanError(messages)
    return rows
