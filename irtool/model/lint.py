"""Checks beyond the schema: what a valid-looking runbook, contacts or inventory gets wrong."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import yaml

from irtool.model.contacts import Contacts
from irtool.model.flow import reachable
from irtool.model.inventory import SSH_AUTH, WINRM_AUTH, Auth, Inventory, Scheme, Transport
from irtool.model.problems import Mark, Problem, Severity
from irtool.model.psfeatures import version_problems
from irtool.model.runbook import Runbook
from irtool.model.shellscan import unsafe_substitutions
from irtool.model.steps import (
    ActionStep,
    AnalyzeStep,
    CollectStep,
    CommandStep,
    DecisionStep,
    NotifyStep,
    RotateStep,
    Shell,
    StepBase,
    command_templates,
    variant_sources,
)
from irtool.model.templating import BUILTIN_NAMES, TemplateProblem, names_used, raw_insertions
from irtool.model.yamlsource import Document, NodePath

WARNING = Severity.WARNING


def _step_paths(runbook: Runbook) -> Iterator[tuple[NodePath, StepBase]]:
    for p, phase in enumerate(runbook.phases):
        for s, step in enumerate(phase.steps):
            yield ("phases", p, "steps", s), step


def lint_runbook(
    runbook: Runbook,
    doc: Document,
    contacts: Contacts | None = None,
    inventory: Inventory | None = None,
) -> list[Problem]:
    problems: list[Problem] = []

    def add(at: NodePath, message: str, severity: Severity = Severity.ERROR) -> None:
        problems.append(Problem(doc.mark(at), message, severity))

    # Ids and routes.
    seen_phases: set[str] = set()
    for p, phase in enumerate(runbook.phases):
        if phase.id in seen_phases:
            add(("phases", p, "id"), f"duplicate phase id '{phase.id}'")
        seen_phases.add(phase.id)
    seen_steps: dict[str, NodePath] = {}
    for at, step in _step_paths(runbook):
        if step.id in seen_steps:
            first = doc.mark((*seen_steps[step.id], "id"))
            add((*at, "id"), f"duplicate step id '{step.id}' (first at {first})")
        else:
            seen_steps[step.id] = at
    for at, step in _step_paths(runbook):
        if step.next is not None and step.next not in seen_steps:
            add((*at, "next"), f"'next' leads to step '{step.next}', which does not exist")
        if isinstance(step, DecisionStep):
            for o, option in enumerate(step.options):
                if option.next is not None and option.next not in seen_steps:
                    add(
                        (*at, "options", o, "next"),
                        f"option '{option.id}' leads to step '{option.next}', which does not exist",
                    )
            ids = [o.id for o in step.options]
            for o, option_id in enumerate(ids):
                if option_id in ids[:o]:
                    add((*at, "options", o, "id"), f"duplicate option id '{option_id}'")
    reached = reachable(runbook)
    for at, step in _step_paths(runbook):
        if step.id not in reached and seen_steps.get(step.id) == at:
            add((*at, "id"), f"step '{step.id}' is never reached: no step or decision leads to it")

    problems += _lint_roles(runbook, doc, contacts)
    problems += _lint_templates(runbook, doc)
    problems += _lint_versions(runbook, doc)
    problems += _lint_actions(runbook, doc)
    problems += _lint_analyses(runbook, doc)
    if inventory is not None:
        problems += _lint_targets(runbook, doc, inventory)
    return problems


def _lint_roles(runbook: Runbook, doc: Document, contacts: Contacts | None) -> list[Problem]:
    problems: list[Problem] = []
    declared = set(runbook.roles)

    def check(at: NodePath, role: str) -> None:
        if role not in declared:
            problems.append(
                Problem(doc.mark(at), f"role '{role}' is not among this runbook's roles")
            )

    for i, role in enumerate(runbook.activation.may_activate):
        check(("activation", "may_activate", i), role)
    for at, step in _step_paths(runbook):
        if step.owner:
            check((*at, "owner"), step.owner)
        if isinstance(step, NotifyStep):
            for i, role in enumerate(step.roles):
                check((*at, "roles", i), role)
        if isinstance(step, RotateStep):
            for i, item in enumerate(step.items):
                if item.owner:
                    check((*at, "items", i, "owner"), item.owner)
    if contacts is not None:
        for i, role in enumerate(runbook.roles):
            if role not in contacts.roles:
                problems.append(
                    Problem(
                        doc.mark(("roles", i)),
                        f"role '{role}' is not in the contacts file: nobody would be called",
                    )
                )
    return problems


def _lint_templates(runbook: Runbook, doc: Document) -> list[Problem]:
    problems: list[Problem] = []
    declared = set(runbook.parameters)
    used: set[str] = set()
    for name in declared & BUILTIN_NAMES:
        problems.append(
            Problem(
                doc.mark(("parameters", name), key=True),
                f"parameter name '{name}' is reserved for the target host",
            )
        )
    for at, step in _step_paths(runbook):
        for inner, source, shell in command_templates(step):
            where = doc.mark((*at, *inner))
            try:
                names = names_used(source)
                raw_lines = raw_insertions(source)
            except TemplateProblem as bad:
                problems.append(Problem(where, str(bad)))
                continue
            for problem in _cmd_problems(source, shell, where):
                problems.append(problem)
            for unsafe in unsafe_substitutions(source, shell):
                if _SAFE_ANYWHERE.fullmatch(unsafe.expression):
                    continue  # an incident id is [a-z0-9-] and goes in unquoted
                problems.append(
                    Problem(
                        _substitution_mark(doc, where, unsafe.ordinal),
                        f"{unsafe.expression} stands {unsafe.context}, where the quotes every "
                        "substituted value gets cannot protect it (the value could run as "
                        f"{shell} code): put it where it is a word of its own, outside quotes, "
                        "comments, heredocs and here-strings; it is quoted for you",
                    )
                )
            used |= names
            for name in sorted(names - declared - BUILTIN_NAMES):
                problems.append(Problem(where, f"template uses undeclared parameter '{name}'"))
            for line in raw_lines:
                problems.append(
                    Problem(
                        where,
                        f"template line {line} inserts a value unquoted ('unquoted' filter): "
                        "make sure it cannot carry shell syntax",
                        WARNING,
                    )
                )
    for at, step in _step_paths(runbook):
        for c, collector in enumerate(getattr(step, "commands", None) or []):
            for i, path in enumerate(collector.fetch.paths if collector.fetch else []):
                where = doc.mark((*at, "commands", c, "fetch", "paths", i))
                try:
                    names = names_used(path)
                except TemplateProblem as bad:
                    problems.append(Problem(where, str(bad)))
                    continue
                used |= names
                for name in sorted(names - declared - BUILTIN_NAMES):
                    problems.append(Problem(where, f"path uses undeclared parameter '{name}'"))
    for name in sorted(used & declared):
        param = runbook.parameters[name]
        if not param.required and param.default is None:
            problems.append(
                Problem(
                    doc.mark(("parameters", name), key=True),
                    f"optional parameter '{name}' has no default: commands get '' when it is "
                    "not given; give a default or make it required",
                    WARNING,
                )
            )
    for name in sorted(declared - used):
        problems.append(
            Problem(
                doc.mark(("parameters", name), key=True),
                f"parameter '{name}' is declared but no command uses it",
                WARNING,
            )
        )
    return problems


# `incident.id` and `incident.tag` only ever hold [a-z0-9_-]: safe inside quotes too.
_SAFE_ANYWHERE = re.compile(r"\{\{-?\s*incident\.(?:id|tag)\s*-?\}\}")
# What a cmd.exe line may hold once joined with the others (CMD_LINE_LIMIT on the wire).
CMD_TEMPLATE_LIMIT = 7000


def _cmd_problems(source: str, shell: Shell, where: Mark) -> list[Problem]:
    """cmd scripts go as one line, each line a command: no block may span lines."""
    if shell is not Shell.CMD:
        return []
    found = []
    for n, line in enumerate(source.splitlines(), 1):
        text = line.rstrip()
        if text.endswith(("(", "^")):
            found.append(
                Problem(
                    where,
                    f"cmd line {n} ends in '{text[-1]}': each line is one command (the lines "
                    "are joined with ' & '), so a block cannot span lines",
                )
            )
        if "%%" in text:
            found.append(
                Problem(
                    where,
                    f"cmd line {n} has '%%': commands run on cmd's command line, where a "
                    "for variable is written %i",
                    WARNING,
                )
            )
    if len(source) > CMD_TEMPLATE_LIMIT:
        found.append(
            Problem(
                where,
                f"cmd script of {len(source)} characters: joined into one cmd.exe line it "
                "would pass the 8191-character limit",
            )
        )
    return found


def _lint_versions(runbook: Runbook, doc: Document) -> list[Problem]:
    """A PowerShell form that uses what the PowerShell it can be sent to lacks (its `when`,
    else 2.0), and a cmd form that is PowerShell after all: warnings, located."""
    problems: list[Problem] = []
    for at, step in _step_paths(runbook):
        for inner, variant, source, shell in variant_sources(step):
            where = doc.mark((*at, *inner))
            when = variant.when if variant else None
            for _line, message in version_problems(source, str(shell), when):
                problems.append(Problem(where, message, WARNING))
    return problems


def _substitution_mark(doc: Document, node: Mark, ordinal: int) -> Mark:
    """Where the `ordinal`-th `{{` of the scalar that starts at `node` stands in its file;
    the scalar itself when that cannot be told (an escape in a double-quoted scalar)."""
    text = next(
        (raw.decode("utf-8-sig", "replace") for path, raw in doc.sources if path == node.path),
        None,
    )
    if text is None:
        return node
    span = _scalar_spans(text).get((node.line, node.col))
    if span is None:
        return node
    start, end = span
    if text[start : start + 1] in ("|", ">"):  # a block scalar's header may hold a comment
        start = text.find("\n", start, end)
    found = text.find("{{", start, end) if start != -1 else -1
    for _ in range(ordinal):
        found = text.find("{{", found + 2, end) if found != -1 else -1
    if found == -1:
        return node
    line_start = text.rfind("\n", 0, found) + 1
    return Mark(node.path, text.count("\n", 0, found) + 1, found - line_start + 1)


@lru_cache(maxsize=8)
def _scalar_spans(text: str) -> dict[tuple[int, int], tuple[int, int]]:
    """The start and end index of every scalar of a YAML text, by its line and column."""
    line_starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]

    def index(mark: Any) -> int:
        return min(
            line_starts[min(int(mark.line), len(line_starts) - 1)] + int(mark.column), len(text)
        )

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        root = yaml.compose(text, Loader=loader)
    except yaml.YAMLError:
        return {}
    spans: dict[tuple[int, int], tuple[int, int]] = {}
    seen: set[int] = set()
    todo = [root] if root is not None else []
    while todo:
        node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            key = (node.start_mark.line + 1, node.start_mark.column + 1)
            spans[key] = (index(node.start_mark), index(node.end_mark))
        elif isinstance(node, yaml.SequenceNode):
            todo += node.value
        elif isinstance(node, yaml.MappingNode):
            todo += [part for pair in node.value for part in pair]
    return spans


_INBOUND_BLOCK = re.compile(
    r"New-NetFirewallRule\b(?=[^\n]*-Direction\s+'?Inbound)(?=[^\n]*-Action\s+'?Block)[^\n]*",
    re.IGNORECASE,
)
_NETSH_INBOUND_BLOCK = re.compile(
    r"netsh\s+advfirewall\s+firewall\s+add\s+rule\b(?=[^\n]*\bdir=in\b)(?=[^\n]*\baction=block\b)[^\n]*",
    re.IGNORECASE,
)
_SCOPED = re.compile(r"-(LocalPort|RemoteAddress)\b|\b(localport|remoteip)=", re.IGNORECASE)


def portless_inbound_blocks(script: str) -> list[str]:
    """Inbound block rules that name neither a local port nor a remote address.

    Written out literally only: a rule built from a splatted hashtable or
    variables is not seen here.
    """
    joined = re.sub(r"`\r?\n\s*", " ", script)  # PowerShell line continuations
    rules = _INBOUND_BLOCK.findall(joined) + _NETSH_INBOUND_BLOCK.findall(joined)
    return [rule for rule in rules if not _SCOPED.search(rule)]


def _lint_actions(runbook: Runbook, doc: Document) -> list[Problem]:
    problems: list[Problem] = []
    for at, step in _step_paths(runbook):
        if not isinstance(step, ActionStep):
            continue
        forms = step.forms()
        where = (*at, "variants") if step.variants is not None else (*at, "command")
        if step.irreversible is None:
            for i, each in enumerate(forms):
                if each.rollback is None:
                    named = f"variant '{each.id}' of " if step.variants is not None else ""
                    spot = (*at, "variants", i) if step.variants is not None else where
                    problems.append(
                        Problem(
                            doc.mark(spot),
                            f"{named}action '{step.id}' has neither 'rollback' nor "
                            "'irreversible: <reason>'",
                        )
                    )
        if step.reversible and step.irreversible is not None:
            problems.append(
                Problem(
                    doc.mark((*at, "irreversible"), key=True),
                    f"action '{step.id}' has a rollback, so it is not irreversible",
                )
            )
        if step.rollback_puts_back is not None and not step.reversible:
            problems.append(
                Problem(
                    doc.mark((*at, "rollback_puts_back"), key=True),
                    f"action '{step.id}' has no rollback: nothing to put back",
                )
            )
        for path, _form, script, shell in variant_sources(step):
            if shell is not Shell.POWERSHELL:
                continue
            if portless_inbound_blocks(script):
                problems.append(
                    Problem(
                        doc.mark((*at, *path)),
                        "inbound block rule with neither a local port nor a remote address: "
                        "it would cut the WinRM/SSH session needed to undo it",
                    )
                )
    return problems


def _lint_analyses(runbook: Runbook, doc: Document) -> list[Problem]:
    """An analyze step reads the evidence of collect steps of this runbook, and only once
    they have run: a source that names no collector, or comes after the step, reads nothing."""
    problems: list[Problem] = []
    order = [step.id for _phase, step in runbook.steps()]
    collectors = {
        step.id: {c.id for c in step.collectors()}
        for _phase, step in runbook.steps()
        if isinstance(step, CollectStep)
    }
    for at, step in _step_paths(runbook):
        if not isinstance(step, AnalyzeStep):
            continue
        for i, source in enumerate(step.sources):
            name, _, collector = source.partition("/")
            if name not in collectors:
                known = ", ".join(sorted(collectors)) or "none in this runbook"
                problems.append(
                    Problem(
                        doc.mark((*at, "sources", i)),
                        f"'{name}' is not a collect step (collect steps: {known})",
                    )
                )
            elif collector and collector not in collectors[name]:
                known = ", ".join(sorted(collectors[name]))
                problems.append(
                    Problem(
                        doc.mark((*at, "sources", i)),
                        f"step '{name}' has no collector '{collector}' (it has: {known})",
                    )
                )
            elif order.index(name) > order.index(step.id):
                problems.append(
                    Problem(
                        doc.mark((*at, "sources", i)),
                        f"'{name}' comes after this step: its evidence is not there yet",
                        WARNING,
                    )
                )
    return problems


def _lint_targets(runbook: Runbook, doc: Document, inventory: Inventory) -> list[Problem]:
    problems: list[Problem] = []
    groups, tags = inventory.all_groups(), inventory.all_tags()

    def check(at: NodePath, selectors: list[str], shells: set[Shell]) -> None:
        for i, selector in enumerate(selectors):
            kind, _, name = selector.partition(":")
            if kind == "group" and name not in groups:
                problems.append(Problem(doc.mark((*at, i)), f"no group '{name}' in the inventory"))
            elif kind == "host" and name not in inventory.hosts:
                problems.append(Problem(doc.mark((*at, i)), f"no host '{name}' in the inventory"))
            elif kind == "tag" and name not in tags:
                problems.append(Problem(doc.mark((*at, i)), f"no host is tagged '{name}'", WARNING))
        for host in inventory.select(selectors):
            resolved = inventory.resolve(host)
            # A Windows host running PowerShell runs cmd.exe too.
            runs = resolved.shell in shells or (
                resolved.shell is Shell.POWERSHELL and Shell.CMD in shells
            )
            if not runs:
                written = " or ".join(sorted(s.value for s in shells))
                problems.append(
                    Problem(
                        doc.mark(at),
                        f"commands are written for {written} but host '{host}' runs "
                        f"{resolved.shell}",
                        WARNING,
                    )
                )

    for at, step in _step_paths(runbook):
        if isinstance(step, CommandStep):
            # With variants, the host must run the shell of one of its forms.
            shells = {shell for _, _, _, shell in variant_sources(step)} or {step.shell}
            check((*at, "targets"), step.targets, shells)
        if isinstance(step, RotateStep):
            for i, item in enumerate(step.items):
                if item.targets:
                    check((*at, "items", i, "targets"), item.targets, {item.shell})
    return problems


def lint_contacts(contacts: Contacts, doc: Document) -> list[Problem]:
    problems: list[Problem] = []
    people = contacts.people

    def person(at: NodePath, who: str) -> None:
        if who not in people:
            problems.append(Problem(doc.mark(at), f"no person '{who}' under 'people'"))

    for i, who in enumerate(contacts.may_activate):
        person(("may_activate", i), who)
    for name, role in contacts.roles.items():
        at: NodePath = ("roles", name)
        person((*at, "primary"), role.primary)
        for i, who in enumerate(role.backups):
            person((*at, "backups", i), who)
            if who == role.primary or who in role.backups[:i]:
                problems.append(
                    Problem(
                        doc.mark((*at, "backups", i)),
                        f"'{who}' appears twice in the call tree of '{name}'",
                        WARNING,
                    )
                )
        if not role.backups:
            problems.append(
                Problem(
                    doc.mark(at, key=True),
                    f"role '{name}' has no backup: nobody to call if {role.primary} is unreachable",
                    WARNING,
                )
            )
    return problems


def lint_inventory(inventory: Inventory, doc: Document) -> list[Problem]:
    problems: list[Problem] = []
    for group, members in inventory.groups.items():
        for i, member in enumerate(members):
            if member not in inventory.hosts:
                problems.append(
                    Problem(
                        doc.mark(("groups", group, i)), f"group '{group}' names no host '{member}'"
                    )
                )
    for name in inventory.hosts:
        problems += _lint_host(inventory, doc, name)
    return problems


def _host_field(doc: Document, name: str, field: str) -> NodePath:
    """Where a host's setting was written: on the host, in defaults, or (unset) the host itself."""
    raw: Any = doc.data["hosts"][name]
    if isinstance(raw, dict) and field in raw:
        return ("hosts", name, field)
    if field in (doc.data.get("defaults") or {}):
        return ("defaults", field)
    return ("hosts", name)


def _lint_host(inventory: Inventory, doc: Document, name: str) -> list[Problem]:
    problems: list[Problem] = []
    host = inventory.resolve(name)

    def add(field: str, message: str, severity: Severity = Severity.ERROR) -> None:
        at = _host_field(doc, name, field)
        if severity is WARNING and at[0] == "defaults":
            return  # a default that does not apply to this host's transport is fine
        problems.append(Problem(doc.mark(at, key=len(at) == 2), f"{name}: {message}", severity))

    if host.transport is Transport.WINRM:
        if host.auth in SSH_AUTH:
            add("auth", f"auth '{host.auth}' is for SSH; WinRM takes ntlm, kerberos, credssp")
        if host.auth is Auth.BASIC and not host.insecure:
            add(
                "auth",
                "Basic auth sends the password in the clear and WinRM cannot encrypt it: "
                "refused unless the host is marked 'insecure: true'",
            )
        if host.scheme is Scheme.HTTP and not host.insecure:
            add(
                "scheme", "WinRM over plain HTTP refused unless the host is marked 'insecure: true'"
            )
        if host.host_key:
            add("host_key", "host_key is for SSH; WinRM pins a certificate under tls", WARNING)
        if host.auth in (Auth.NTLM, Auth.CREDSSP, Auth.BASIC) and not host.credential:
            add("credential", f"{host.auth} auth needs a 'credential' (a keyring entry)")
        if host.insecure:
            add(
                "insecure",
                "marked insecure: credentials or commands may cross the network unprotected",
                WARNING,
            )
    elif host.transport is Transport.SSH:
        if host.auth in WINRM_AUTH:
            add("auth", f"auth '{host.auth}' is for WinRM; SSH takes key, agent, password")
        if host.auth is Auth.PASSWORD and not host.credential:
            add("credential", "password auth needs a 'credential' (a keyring entry)")
        if host.insecure:
            add(
                "insecure",
                "'insecure' only applies to WinRM; SSH host keys are always checked",
                WARNING,
            )
        if host.tls:
            add("tls", "tls is for WinRM; SSH pins a host_key", WARNING)
    if host.transport is not Transport.WINRM and host.scheme is not None:
        add("scheme", "'scheme' only applies to WinRM", WARNING)
    return problems
