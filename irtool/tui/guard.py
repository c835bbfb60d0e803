"""Errors become notifications a responder can read: nothing kills the screen with a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from textual.app import App

from irtool.model.untrusted import visible


def explain(error: BaseException) -> tuple[str, str]:
    """(title, message) for a notification."""
    # Imported here: the app's first frame is drawn before the engine and models are loaded.
    from irtool.engine.session import Refused
    from irtool.journal import JournalError
    from irtool.journal.store import JournalBusy
    from irtool.model.plan import PlanError
    from irtool.model.problems import InvalidFile
    from irtool.remote.base import HostFailure
    from irtool.secrets.run import SecretUnavailable
    from irtool.secrets.store import NoKeyring

    if isinstance(error, JournalBusy):
        return "Journal busy", f"{error} Try again in a moment; nothing was written."
    if isinstance(error, Refused):
        return "Not done", str(error)
    if isinstance(error, PlanError):
        return "Cannot plan", "\n".join(error.messages)
    if isinstance(error, InvalidFile):
        return "Invalid file", "\n".join(str(p) for p in error.problems[:8])
    if isinstance(error, JournalError):
        return "Journal", str(error)
    if isinstance(error, HostFailure | SecretUnavailable | NoKeyring):
        return "Cannot reach", str(error)
    if isinstance(error, OSError):
        return "System", f"{error.filename or ''} {error.strerror or error}".strip()
    if isinstance(error, ValueError):
        return "Not done", str(error)
    return "Internal error", f"{type(error).__name__}: {error} (please report it)"


def notify_error(app: App[Any], error: BaseException) -> None:
    title, message = explain(error)
    # A failure's words may be a host's or a file's: shown written out, never as markup.
    app.notify(
        visible(message, lines=True), title=title, severity="error", timeout=10, markup=False
    )


@contextmanager
def guarded(app: App[Any]) -> Iterator[None]:
    """Run a responder's command; if it is refused or fails, say so and carry on."""
    try:
        yield
    except Exception as error:
        notify_error(app, error)
