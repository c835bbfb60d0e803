"""The irtool terminal UI: home, opening an incident, and the incident itself.

Started by `irtool` (home), `irtool start RUNBOOK` and `irtool open ID`. The
app holds what every screen shares: who is at the keyboard, how hosts are
reached (live transports, or an exercise's simulated ones) and the clock.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import traceback
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import events
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.dom import DOMNode
from textual.notifications import SeverityLevel
from textual.screen import Screen

from irtool.journal.incidents import home
from irtool.model.untrusted import visible
from irtool.secrets.redact import Redactor
from irtool.secrets.run import SecretUnavailable
from irtool.tui.guard import guarded
from irtool.tui.keymap import keymap_path, load_keymap

if TYPE_CHECKING:
    from irtool.engine.session import IncidentSession
    from irtool.exercise.setup import ExerciseContext
    from irtool.model.context import RunbookContext
    from irtool.remote.base import Transport
    from irtool.tui.screens.run import Transports
    from irtool.tui.screens.start import Values


# Where the screens with bindings live: a keymap may name any of their binding ids.
SCREEN_MODULES = (
    "calltree",
    "confirm",
    "evidence",
    "facilitator",
    "findings",
    "home",
    "incident",
    "keys",
    "prompts",
    "run",
    "start",
    "timeline",
)


class IrtoolApp(App[None]):
    TITLE = "irtool"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True),
        Binding("question_mark", "keys", "Keys", id="app.keys", key_display="?"),
    ]
    # Compact fields and buttons: an 80x24 terminal has no room for boxed ones.
    CSS = """
    .title { height: 1; background: $panel; text-style: bold; width: 100%; }
    Input { border: none; height: 1; padding: 0 1; background: $boost; }
    Input:focus { background: $primary 30%; }
    Button { border: none; height: 1; min-width: 10; margin: 0 0 0 1; }
    """

    def __init__(
        self,
        *,
        actor: str,
        incident: str | None = None,
        context: RunbookContext | None = None,
        exercise: ExerciseContext | None = None,
        params: Mapping[str, str] | None = None,
        runbook_dirs: Iterable[Path] = (),
        contacts: Path | None = None,
        inventory: Path | None = None,
        transports: Transports | None = None,
        clock: Callable[[], datetime] | None = None,
        keymap_file: Path | None = None,
    ) -> None:
        super().__init__()
        self.actor = actor
        self.launch_incident, self.launch_context = incident, context
        self.launch_exercise = exercise
        self.params = dict(params or {})
        self.runbook_dirs = list(runbook_dirs)
        self.contacts, self.inventory = contacts, inventory
        self.transports: Transports = transports or self.live_transports
        self.clock = clock or (lambda: datetime.now(UTC))
        self.keymap_file = keymap_file or keymap_path()

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """A notification, always plain text: what it says often came from a host or a file
        (a failure reason, a warning, an inject), so it is never read as markup and what could
        drive the terminal is shown written out. Callers pass host text through `visible`
        first (one line); line breaks the responder or facilitator wrote stay. `markup` is
        there for Textual's signature only: it is never honoured."""
        super().notify(
            visible(message, lines=True),
            title=visible(title),
            severity=severity,
            timeout=timeout,
            markup=False,
        )

    # -- launch --------------------------------------------------------------------

    def on_mount(self) -> None:
        self.apply_keymap()
        if self.launch_incident:
            self.open_incident(self.launch_incident, home_below=False)
        elif self.launch_exercise:
            exercise = self.launch_exercise
            self.ask_parameters(exercise.context, exercise.parameters(self.params), exercise)
        elif self.launch_context:
            self.ask_parameters(self.launch_context, self.params)
        else:
            self.show_home()

    def apply_keymap(self) -> None:
        if not self.keymap_file.exists():
            return  # most responders keep the default keys: load no screen early for them
        from importlib import import_module

        screens = [import_module(f"irtool.tui.screens.{name}") for name in SCREEN_MODULES]
        known = {
            b.id
            for module in screens
            for cls in vars(module).values()
            if isinstance(cls, type) and issubclass(cls, Screen)
            for b in getattr(cls, "BINDINGS", [])
            if isinstance(b, Binding) and b.id
        } | {b.id for b in self.BINDINGS if isinstance(b, Binding) and b.id}
        keymap, problems = load_keymap(self.keymap_file, known)
        if keymap:
            self.set_keymap(keymap)
        for problem in problems:
            self.notify(problem, title="Keymap", severity="warning", timeout=10)

    def show_home(self) -> None:
        from irtool.tui.screens.home import HomeScreen

        self.push_screen(HomeScreen(self.runbook_dirs))

    def open_incident(self, incident: str, home_below: bool = True) -> None:
        """Its identity on screen at once; the incident screen once the journal is folded."""
        from irtool.tui.screens.opening import OpeningScreen, identity

        shown = False
        with guarded(self):  # a refusal is shown as a notification, over the home screen
            line, count = identity(incident)
            self.push_screen(OpeningScreen(incident, line, count, self.opened))
            shown = True
        if not shown and not home_below:
            self.show_home()

    def opened(self, session: IncidentSession) -> None:
        from irtool.tui.screens.incident import IncidentScreen

        # What was just loaded lives as long as the incident is open: keep the garbage
        # collector from walking it again and again (its pauses showed as slow keys).
        gc.freeze()
        self.switch_screen(
            IncidentScreen(session, self.actor, self.transports_of(session), self.clock)
        )

    def start_runbook(self, path: Path, exercise: bool = False) -> None:
        """From the home screen: load and check the runbook (and, for an exercise, its
        scenario), then ask for its parameters."""
        from irtool.exercise.setup import load_exercise
        from irtool.model.context import load_context

        with guarded(self):
            if exercise:
                played, warnings = load_exercise(path, None, self.contacts, self.inventory)
            else:
                context, warnings = load_context(path, self.contacts, self.inventory)
            for problem in warnings[:5]:
                self.notify(str(problem), title="Warning", severity="warning", timeout=8)
            if exercise:
                self.ask_parameters(played.context, played.parameters({}), played)
            else:
                self.ask_parameters(context, {})

    def ask_parameters(
        self,
        context: RunbookContext,
        given: Mapping[str, str],
        exercise: ExerciseContext | None = None,
    ) -> None:
        from irtool.model.plan import PlanError, resolve_parameters
        from irtool.tui.screens.start import StartScreen

        try:
            values: Values = resolve_parameters(context.runbook.model, given)
        except PlanError:
            mode = "exercise" if exercise else "live"
            begin = partial(self.begin, context, exercise=exercise)
            self.push_screen(StartScreen(context, dict(given), begin, mode))
            return
        self.begin(context, values, exercise)

    def begin(
        self, context: RunbookContext, values: Values, exercise: ExerciseContext | None = None
    ) -> None:
        from irtool.engine.session import IncidentSession
        from irtool.exercise.setup import open_exercise
        from irtool.tui.screens.incident import IncidentScreen
        from irtool.tui.screens.start import StartScreen

        with guarded(self):
            if exercise:
                session = open_exercise(exercise, values, self.actor, self.clock)
            else:
                session = IncidentSession.new(
                    context.runbook,
                    values,
                    actor=self.actor,
                    contacts=context.contacts,
                    inventory=context.inventory,
                    clock=self.clock,
                )
            screen = IncidentScreen(session, self.actor, self.transports_of(session), self.clock)
            if isinstance(self.screen, StartScreen):
                self.switch_screen(screen)
            else:
                self.push_screen(screen)

    # -- reaching hosts ---------------------------------------------------------------

    def transports_of(self, session: IncidentSession) -> Transports:
        """An exercise gets simulated hosts, whatever this app was started with."""
        from irtool.exercise.transports import transports_for

        def transports(redactor: Redactor) -> Mapping[str, Transport]:
            return transports_for(session.state, lambda: self.transports(redactor))

        return transports

    def live_transports(self, redactor: Redactor) -> Mapping[str, Transport]:
        # Imported here: paramiko and pywinrm cost the first frame ~0.3 s otherwise.
        from irtool.remote.registry import live_transports
        from irtool.secrets.run import RunSecrets

        # paramiko logs a failed handshake with a traceback; the host's failure already says it,
        # and a stray line on stderr would tear the screen.
        quiet = logging.getLogger("paramiko")
        quiet.addHandler(logging.NullHandler())
        quiet.propagate = False
        return live_transports(RunSecrets(prompt=self.ask_secret_from_thread, redactor=redactor))

    def ask_secret_from_thread(self, message: str) -> str:
        """With no keyring, a host thread asks the responder here; escape lets the host fail."""
        answer: str | None = self.call_from_thread(self.ask_secret, message)  # type: ignore[arg-type]
        if answer is None:
            raise SecretUnavailable("no secret given: the host was not contacted")
        return answer

    async def ask_secret(self, message: str) -> str | None:
        from irtool.tui.screens.prompts import SecretPrompt, Text

        answered: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()

        def given(result: Text | None) -> None:
            answered.set_result(result.text if result else None)

        self.push_screen(SecretPrompt(message), given)
        return await answered

    # -- keys ------------------------------------------------------------------------------

    def action_keys(self) -> None:
        """Every key of the screen in front, as it stands now."""
        from irtool.tui.screens.keys import KeysScreen

        if not isinstance(self.screen, KeysScreen):
            self.push_screen(KeysScreen(self.screen))

    def on_key(self, event: events.Key) -> None:
        """A letter that reached the app, not a field, while a form is in front was typed as
        the form opened (the keys were already on their way to the screen below): it goes
        into the form, not lost, and never a command of the screen below."""
        from irtool.tui.screens.prompts import Prompt

        screen = self.screen
        if isinstance(screen, Prompt) and event.is_printable and event.character:
            screen.take_stray(event.character)

    # -- bugs ------------------------------------------------------------------------------

    async def _dispatch_action(self, namespace: DOMNode, action_name: str, params: Any) -> bool:
        """A bug behind one key must not take the screen, and the responder's place in the
        incident, with it (Textual stops a widget for good after an exception in it): say so,
        keep the traceback in a file, carry on. The journal is written only by complete
        commands, so nothing half-done is left behind. IRTOOL_DEBUG=1 (the test suite sets
        it) stops at the first bug instead."""
        try:
            return await super()._dispatch_action(namespace, action_name, params)
        except Exception as error:
            if os.environ.get("IRTOOL_DEBUG"):
                raise
            self.report_bug(error)
            return True

    def report_bug(self, error: Exception) -> None:
        log = home().parent / "errors.log"
        try:
            log.parent.mkdir(parents=True, exist_ok=True)
            with log.open("a", encoding="utf-8") as out:
                out.write(f"--- {datetime.now(UTC).isoformat()}\n")
                out.write("".join(traceback.format_exception(error)))
            where = f"details in {log}"
        except OSError:
            where = "the details could not be written"
        self.notify(
            f"{type(error).__name__}: {error}. Nothing half-done was written; {where}. "
            "Please report it.",
            title="Internal error",
            severity="error",
            timeout=30,
        )

    # -- the command palette ---------------------------------------------------------------

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """Every key of the screen that applies now is also a command, named as in the footer."""
        for key, active in screen.active_bindings.items():
            binding = active.binding
            if not active.enabled or not binding.description or active.node is not screen:
                continue
            name = binding.action.partition("(")[0]
            if screen.check_action(name, ()) is False:
                continue
            help_text = f"key {binding.key_display or key}" + (
                f"  ·  {binding.id}" if binding.id else ""
            )
            yield SystemCommand(
                binding.tooltip or binding.description,
                help_text,
                partial(screen.run_action, binding.action),
            )
        yield from super().get_system_commands(screen)
