"""The one exception a refused command raises: its message is the responder's one line."""

from __future__ import annotations

from typing import TYPE_CHECKING

from irtool.model.names import responder_problem

if TYPE_CHECKING:
    from irtool.engine.state import IncidentState


class Refused(Exception):
    """A command the incident's state does not allow; nothing was written."""


def no_step(state: IncidentState, step: str) -> Refused:
    """A step id nobody wrote: the refusal says what was probably meant."""
    import difflib  # only to refuse: a command that is not refused starts without it

    close = difflib.get_close_matches(step, list(state.steps), n=1, cutoff=0.6)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return Refused(f"no step '{step}' in runbook {state.runbook.id}{hint}")


def check_responder(*names: str) -> None:
    """Refuse a name that cannot stand for a responder (the UI's typed names come here too)."""
    for name in names:
        problem = responder_problem(name)
        if problem:
            raise Refused(problem)
