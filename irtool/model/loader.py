"""Files to models: detect what a file is, splice its includes, validate, and locate every error."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

from pydantic import BaseModel, ValidationError

from irtool.model.contacts import Contacts
from irtool.model.hunt import Hunt
from irtool.model.inventory import Inventory
from irtool.model.problems import InvalidFile, Mark, Problem
from irtool.model.runbook import Fragment, Runbook
from irtool.model.scenario import Scenario
from irtool.model.steps import STEP_KINDS
from irtool.model.yamlsource import Document, NodePath, read

M = TypeVar("M", bound=BaseModel)


class Kind(StrEnum):
    RUNBOOK = "runbook"
    FRAGMENT = "fragment"
    CONTACTS = "contacts"
    INVENTORY = "inventory"
    SCENARIO = "scenario"
    HUNT = "hunt"


MODELS: dict[Kind, type[BaseModel]] = {
    Kind.RUNBOOK: Runbook,
    Kind.FRAGMENT: Fragment,
    Kind.CONTACTS: Contacts,
    Kind.INVENTORY: Inventory,
    Kind.SCENARIO: Scenario,
    Kind.HUNT: Hunt,
}

MAX_INCLUDE_DEPTH = 8


@dataclass(frozen=True)
class Loaded(Generic[M]):
    """A valid model with the document it came from, so later checks can locate problems."""

    kind: Kind
    model: M
    doc: Document


def detect_kind(doc: Document) -> Kind:
    data = doc.data
    if not isinstance(data, dict):
        raise InvalidFile(
            [
                Problem(
                    doc.mark(()), f"expected a mapping (key: value) at the top, found {_kind(data)}"
                )
            ]
        )
    if "phases" in data:
        return Kind.RUNBOOK
    if "runbook" in data:  # before 'hosts': a scenario may have simulated hosts
        return Kind.SCENARIO
    if "people" in data:
        return Kind.CONTACTS
    if "hosts" in data:
        return Kind.INVENTORY
    if "steps" in data:
        return Kind.FRAGMENT
    if "query" in data and "attack" in data:
        return Kind.HUNT
    raise InvalidFile(
        [
            Problem(
                doc.mark(()),
                "cannot tell what this file is: a runbook has 'phases', contacts have 'people', "
                "an inventory has 'hosts', a fragment has 'steps', a scenario names its 'runbook'",
            )
        ]
    )


def load(path: Path | str, kind: Kind | None = None) -> Loaded[BaseModel]:
    """Read, include, validate; raises InvalidFile with every problem of the file."""
    doc = read(path)
    kind = kind or detect_kind(doc)
    problems = _expand_includes(doc, kind, (Path(path).resolve(),))
    try:
        model = validate(doc, MODELS[kind])
    except InvalidFile as invalid:
        raise InvalidFile(problems + invalid.problems) from None
    if problems:
        raise InvalidFile(problems)
    return Loaded(kind, model, doc)


def load_runbook(path: Path | str) -> Loaded[Runbook]:
    return cast(Loaded[Runbook], load(path, Kind.RUNBOOK))


def load_contacts(path: Path | str) -> Loaded[Contacts]:
    return cast(Loaded[Contacts], load(path, Kind.CONTACTS))


def load_inventory(path: Path | str) -> Loaded[Inventory]:
    return cast(Loaded[Inventory], load(path, Kind.INVENTORY))


def load_scenario(path: Path | str) -> Loaded[Scenario]:
    return cast(Loaded[Scenario], load(path, Kind.SCENARIO))


def validate(doc: Document, model: type[M]) -> M:
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        raise InvalidFile(_problems(exc, doc, model)) from None


# -- includes -----------------------------------------------------------------


def _is_include(item: Any) -> bool:
    return isinstance(item, dict) and set(item) == {"include"}


def _expand_includes(doc: Document, kind: Kind, stack: tuple[Path, ...]) -> list[Problem]:
    """Replace every `- include: FILE` in a steps list by the steps of that fragment file, and
    every `- include: FILE#STEP/COLLECTOR` in a collect step's `commands` by that one collector
    of the fragment (a runbook reuses a fragment's collector, e.g. the triage's services
    listing at a host's admission, without copying it)."""
    data = doc.data
    if not isinstance(data, dict):
        return []
    lists: list[NodePath] = []
    if kind is Kind.RUNBOOK and isinstance(data.get("phases"), list):
        lists = [
            ("phases", i, "steps")
            for i, phase in enumerate(data["phases"])
            if isinstance(phase, dict) and isinstance(phase.get("steps"), list)
        ]
    elif kind is Kind.FRAGMENT and isinstance(data.get("steps"), list):
        lists = [("steps",)]
    problems: list[Problem] = []
    for at in lists:
        problems += _splice(doc, at, stack)
    for at in lists:
        container: Any = data
        for element in at:
            container = container[element]
        for j, step in enumerate(container):
            if isinstance(step, dict) and isinstance(step.get("commands"), list):
                problems += _splice(doc, (*at, j, "commands"), stack, collectors=True)
    return problems


def _picked(
    fragment: Document, selector: str, where: Mark, target: str
) -> tuple[list[NodePath], list[Problem]]:
    """The node paths in `fragment` that an include brings: every step, or (`STEP/COLLECTOR`
    after the `#`) that one collector."""
    steps = fragment.data["steps"]
    if not selector:
        return [("steps", j) for j in range(len(steps))], []
    step_id, _, collector_id = selector.partition("/")
    for j, step in enumerate(steps):
        if isinstance(step, dict) and step.get("id") == step_id:
            for k, collector in enumerate(step.get("commands") or []):
                if isinstance(collector, dict) and collector.get("id") == collector_id:
                    return [("steps", j, "commands", k)], []
    return [], [Problem(where, f"cannot include '{target}': {selector} is not a collector there")]


def _splice(
    doc: Document, at: NodePath, stack: tuple[Path, ...], *, collectors: bool = False
) -> list[Problem]:
    container: Any = doc.data
    for element in at[:-1]:
        container = container[element]
    items: list[Any] = container[at[-1]]
    if not any(_is_include(item) for item in items):
        return []
    before = Document(doc.path, doc.data, dict(doc.marks), dict(doc.key_marks), doc.sources)
    moves: list[tuple[Document, NodePath, int]] = []
    spliced: list[Any] = []
    problems: list[Problem] = []
    for i, item in enumerate(items):
        if not _is_include(item):
            moves.append((before, (*at, i), len(spliced)))
            spliced.append(item)
            continue
        where = before.mark((*at, i, "include"))
        target = item["include"]
        if not isinstance(target, str):
            problems.append(Problem(where, "include takes a file path"))
            continue
        file_part, _, selector = target.partition("#")
        if collectors != bool(selector) or (selector and "/" not in selector):
            wanted = "FILE#STEP/COLLECTOR" if collectors else "FILE (a fragment's steps)"
            problems.append(Problem(where, f"include '{target}': here it takes {wanted}"))
            continue
        fragment_path = (stack[-1].parent / file_part).resolve()
        if fragment_path in stack:
            problems.append(Problem(where, f"include cycle: {target} includes itself"))
            continue
        if len(stack) > MAX_INCLUDE_DEPTH:
            problems.append(Problem(where, f"includes nested deeper than {MAX_INCLUDE_DEPTH}"))
            continue
        if not fragment_path.is_file():
            problems.append(Problem(where, f"cannot include '{target}': no such file"))
            continue
        try:
            fragment = read(fragment_path)
            if not isinstance(fragment.data, dict) or "steps" not in fragment.data:
                raise InvalidFile(
                    [Problem(fragment.mark(()), "an included file is a fragment: it needs 'steps'")]
                )
            nested = _expand_includes(fragment, Kind.FRAGMENT, (*stack, fragment_path))
            if nested:
                raise InvalidFile(nested)
            validate(fragment, Fragment)
        except InvalidFile as invalid:
            problems += invalid.problems
            continue
        picked, missing = _picked(fragment, selector, where, target)
        problems += missing
        doc.sources += [s for s in fragment.sources if s[0] not in {p for p, _ in doc.sources}]
        for node in picked:
            value: Any = fragment.data
            for element in node:
                value = value[element]
            moves.append((fragment, node, len(spliced)))
            spliced.append(value)
    # Indices after an include shift: re-key the marks of the whole list.
    n = len(at)
    for table in (doc.marks, doc.key_marks):
        for path in [p for p in table if len(p) > n and p[:n] == at]:
            del table[path]
    for source, source_at, index in moves:
        doc.graft(source, source_at, (*at, index))
    container[at[-1]] = spliced
    return problems


# -- validation errors ---------------------------------------------------------

_TYPE_NAMES = {
    "dict_type": "a mapping (key: value)",
    "model_type": "a mapping (key: value)",
    "model_attributes_type": "a mapping (key: value)",
    "list_type": "a list",
    "string_type": "text",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
}


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    return f"'{value}'" if len(str(value)) < 60 else "text"


@lru_cache(maxsize=8)
def _known_keys(model: type[BaseModel]) -> tuple[str, ...]:
    keys: set[str] = set()

    def collect(schema: Any) -> None:
        if isinstance(schema, dict):
            props = schema.get("properties")
            if isinstance(props, dict):
                keys.update(props)
            for value in schema.values():
                collect(value)
        elif isinstance(schema, list):
            for value in schema:
                collect(value)

    collect(model.model_json_schema())
    return tuple(sorted(keys))


Schema = dict[str, Any]


def _resolve(schema: Schema, node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        node = schema.get("$defs", {}).get(str(node["$ref"]).rsplit("/", 1)[-1], {})
    return node


def _options(schema: Schema, node: Any) -> list[Schema]:
    """A node and, for a union (an optional value, a kind of step), each of its choices."""
    node = _resolve(schema, node)
    if not isinstance(node, dict):
        return []
    choices = node.get("anyOf") or node.get("oneOf") or []
    return [node] + [o for c in choices for o in _options(schema, c)]


def _siblings(model: type[BaseModel], loc: tuple[Any, ...]) -> set[str] | None:
    """The keys allowed where `loc` ends (the mapping holding loc[-1]); None when the walk is
    lost (a loc that the schema does not spell, such as a validator's own)."""
    schema = model.model_json_schema()
    nodes: list[Schema] = _options(schema, schema)
    for part in loc[:-1]:
        found: list[Schema] = []
        for node in nodes:
            mapping = node.get("discriminator", {}).get("mapping", {})
            if isinstance(part, str) and part in mapping:  # a step's loc names its type
                found += _options(schema, {"$ref": mapping[part]})
            elif isinstance(part, int) and "items" in node:
                found += _options(schema, node["items"])
            elif isinstance(part, str) and part in node.get("properties", {}):
                found += _options(schema, node["properties"][part])
            elif isinstance(part, str) and isinstance(node.get("additionalProperties"), dict):
                found += _options(schema, node["additionalProperties"])
        if not found:
            return None
        nodes = found
    keys = {key for node in nodes for key in node.get("properties", {})}
    return keys or None


@lru_cache(maxsize=8)
def _homes(model: type[BaseModel]) -> dict[str, tuple[str, ...]]:
    """Where each key may be written, as a responder would write the path: `hosts.NAME`."""
    schema = model.model_json_schema()
    homes: dict[str, list[str]] = {}

    def walk(node: Any, path: str, seen: frozenset[str]) -> None:
        ref = node.get("$ref") if isinstance(node, dict) else None
        if ref in seen:
            return
        for option in _options(schema, node):
            for key, value in option.get("properties", {}).items():
                homes.setdefault(key, [])
                if path not in homes[key]:
                    homes[key].append(path)
                walk(value, f"{path}.{key}" if path else key, seen | {ref or ""})
            if isinstance(option.get("additionalProperties"), dict):
                walk(option["additionalProperties"], f"{path}.NAME", seen | {ref or ""})
            if "items" in option:
                walk(option["items"], f"{path}[n]", seen | {ref or ""})

    walk(schema, "", frozenset())
    return {key: tuple(paths) for key, paths in homes.items()}


def _unknown_key(model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    """`unknown key 'rolback' (did you mean 'rollback'?)`: a near key allowed where it was
    written, never the key itself. A key valid elsewhere (an `address` under `defaults`, which
    only a host has) is told where it belongs."""
    key = str(loc[-1])
    allowed = _siblings(model, loc)
    under = next((str(p) for p in reversed(loc[:-1]) if isinstance(p, str)), "")
    where = f" under '{under}'" if under else ""
    if allowed is not None and key not in allowed:
        homes = [h or "the top level" for h in _homes(model).get(key, ())]
        if homes:
            return f"unknown key '{key}'{where}: it belongs under {' or '.join(homes[:2])}"
    candidates = sorted(allowed) if allowed is not None else _known_keys(model)
    hint = difflib.get_close_matches(key, [k for k in candidates if k != key], n=1)
    return f"unknown key '{key}'" + (f" (did you mean '{hint[0]}'?)" if hint else "")


def _problems(exc: ValidationError, doc: Document, model: type[BaseModel]) -> list[Problem]:
    problems: list[Problem] = []
    for error in exc.errors(include_url=False):
        loc, kind, message = tuple(error["loc"]), error["type"], error["msg"]
        problems.append(_problem(doc, model, loc, kind, message, error.get("input"), error))
    unique = {(p.mark, p.message): p for p in problems}
    return list(unique.values())


def _problem(
    doc: Document,
    model: type[BaseModel],
    loc: tuple[Any, ...],
    kind: str,
    message: str,
    value: Any,
    error: Any,
) -> Problem:
    name = next((str(e) for e in reversed(loc) if isinstance(e, str) and e != "[key]"), "")
    if kind == "extra_forbidden":
        return Problem(doc.mark(loc, key=True), _unknown_key(model, loc))
    if kind == "missing":
        return Problem(doc.mark(loc), f"missing required key '{loc[-1]}'")
    if kind == "union_tag_invalid":
        tag = error.get("ctx", {}).get("tag", "?")
        return Problem(
            doc.mark((*loc, "type")),
            f"unknown step type '{tag}': expected one of {', '.join(STEP_KINDS)}",
        )
    if kind == "union_tag_not_found":
        return Problem(
            doc.mark(loc), f"step has no 'type': expected one of {', '.join(STEP_KINDS)}"
        )
    at: Mark = doc.mark(loc, key=bool(loc) and loc[-1] == "[key]")
    if kind in _TYPE_NAMES:
        message = f"expected {_TYPE_NAMES[kind]}, found {_kind(value)}"
    else:
        for prefix in ("Value error, ", "Assertion failed, "):
            message = message.removeprefix(prefix)
    return Problem(at, f"{name}: {message}" if name else message)
