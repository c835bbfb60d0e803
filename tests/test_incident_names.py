"""No shared state between incidents or runbooks: what irtool creates on a host is its own.

Every firewall rule, nft table, chain or set and configuration backup a shipped runbook
creates carries the incident id, so two incidents (of one runbook or of two) never name the
same thing, and a rollback, which finds things by the same names, removes only its own.
Read off the rendered plans of every shipped runbook, every variant, for two incidents.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from irtool.model.loader import load_runbook
from irtool.model.plan import PlanRow, build_plan, resolve_parameters
from tests.conftest import ROOT

RUNBOOKS = sorted((ROOT / "runbooks").glob("*.yaml"))
FIRST, SECOND = "ir-20261207-010000-aaaa", "ir-20261207-020000-bbbb"

# Names irtool gives what it creates: quoted or bare words that start with irtool (rules,
# backups, record folders), and every nft table/chain/set written after its keyword.
_IRTOOL_WORD = re.compile(r"""(?<![\w.\\/-])(irtool[-_][A-Za-z0-9_.*{}$()+'-]*)""")
_NFT_TABLE_ONLY = re.compile(r"\btable\s+(?:inet|ip|ip6)\s+([A-Za-z0-9_$\"{}-]+)")
# What creates a named thing on a host, whatever the name starts with: a firewall rule
# (NetSecurity or netsh), a configuration backup (WebAdministration or appcmd).
_CREATED = re.compile(
    r"New-NetFirewallRule\b[^\n]*?-(?:Display)?Name\s+('[^']*'|\"[^\"]*\"|\S+)"
    r"|advfirewall\s+firewall\s+add\s+rule\s+name=(\"[^\"]*\"|\S+)"
    r"|Backup-WebConfiguration\b[^\n]*?-Name\s+('[^']*'|\"[^\"]*\"|\S+)"
    r"|appcmd(?:\.exe)?\"?\s+add\s+backup\s+(\"[^\"]*\"|\S+)",
    re.IGNORECASE,
)


def _plan(path: Path, incident: str) -> list[PlanRow]:
    runbook = load_runbook(path).model
    examples = {n: p.example for n, p in runbook.parameters.items() if p.example is not None}
    return build_plan(runbook, resolve_parameters(runbook, examples), incident=incident)


def _created(rows: list[PlanRow], incident: str) -> dict[str, set[str]]:
    """step -> names that start with irtool or follow an nft table keyword, in the commands
    and rollbacks of its actions (what changes a host),
    and that do not carry `incident`, directly or through a variable the same script sets to
    a value that carries it (`$tag = 'ir-...'` then `"irtool-$tag-web"`)."""
    found: dict[str, set[str]] = {}
    for row in rows:
        if row.kind != "action":
            continue  # read-only: a collector may list every irtool rule, naming whose it is
        for text in (row.command or "", row.rollback or ""):
            names = _words(text)
            found.setdefault(row.step, set()).update(
                n for n in names if n and not _own(n, incident, text)
            )
    return found


def _own(name: str, incident: str, text: str) -> bool:
    tags = (incident, incident.replace("-", "_"))
    if any(tag in name for tag in tags):
        return True
    for variable in re.findall(r"\$\{?(\w+)", name):
        for value in re.findall(rf"(?m)^\s*\$?{variable}\s*=\s*(.+)$", text):
            if any(tag in value for tag in tags):
                return True
    return False


def _names(rows: list[PlanRow]) -> set[str]:
    """Every literal name a plan creates or looks for (no variables)."""
    names: set[str] = set()
    for row in rows:
        if row.kind == "action":
            for text in (row.command or "", row.rollback or ""):
                names |= _words(text)
    return names


def _words(text: str) -> set[str]:
    """The irtool names and nft tables in a script; a bare `irtool-` prefix (in a comment's
    `irtool-<incident>-web-in`) names nothing."""
    names = {m.rstrip("'.") for m in _IRTOOL_WORD.findall(text)}
    names |= set(_NFT_TABLE_ONLY.findall(text))
    created = {next(g for g in m if g).strip("'\"") for m in _CREATED.findall(text)}
    # A variable or an expression is checked where its literal text is; a plain word is
    # prose ("add backup failed"), not a name.
    names |= {n for n in created if not re.match(r"[$(]|[A-Za-z]+$", n)}
    return {n for n in names if n not in ("irtool-", "irtool_", "")}


@pytest.mark.parametrize("path", RUNBOOKS, ids=lambda p: p.stem)
def test_every_name_irtool_creates_on_a_host_carries_the_incident(path: Path) -> None:
    shared = {step: sorted(names) for step, names in _created(_plan(path, FIRST), FIRST).items()}
    assert not {s: n for s, n in shared.items() if n}, (
        "names without the incident id: two incidents would share them"
    )


def test_two_incidents_of_any_two_runbooks_never_name_the_same_thing() -> None:
    first = {p.stem: _names(_plan(p, FIRST)) for p in RUNBOOKS}
    second = {p.stem: _names(_plan(p, SECOND)) for p in RUNBOOKS}
    for (a, ours), (b, theirs) in itertools.product(first.items(), second.items()):
        clash = {n for n in ours & theirs if "$" not in n and "*" not in n}
        assert not clash, f"{a} ({FIRST}) and {b} ({SECOND}) both use {sorted(clash)}"
