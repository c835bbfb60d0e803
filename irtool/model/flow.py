"""How a runbook flows from step to step: document order, `next` jumps and decision routes."""

from __future__ import annotations

from irtool.model.runbook import Runbook
from irtool.model.steps import DecisionStep


def following(runbook: Runbook) -> dict[str, str | None]:
    """For every step, the step after it in document order (None for the last)."""
    ordered = [step for _, step in runbook.steps()]
    return {
        step.id: (ordered[i + 1].id if i + 1 < len(ordered) else None)
        for i, step in enumerate(ordered)
    }


def successors(runbook: Runbook) -> dict[str, list[str]]:
    """For every step, the steps that may come right after it (routes to unknown ids kept)."""
    ordered = [step for _, step in runbook.steps()]
    following_ = following(runbook)
    result: dict[str, list[str]] = {}
    for step in ordered:
        if isinstance(step, DecisionStep):
            targets = [option.next or following_[step.id] for option in step.options]
        else:
            targets = [step.next or following_[step.id]]
        result.setdefault(step.id, [])
        for target in targets:
            if target is not None and target not in result[step.id]:
                result[step.id].append(target)
    return result


def reachable(runbook: Runbook) -> set[str]:
    """Step ids some path from the first step leads to."""
    graph = successors(runbook)
    first = next(iter(graph), None)
    seen: set[str] = set()
    todo = [first] if first else []
    while todo:
        current = todo.pop()
        if current in seen or current not in graph:
            continue
        seen.add(current)
        todo.extend(graph[current])
    return seen
