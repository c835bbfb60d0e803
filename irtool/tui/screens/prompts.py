"""Small modal forms for the engine's commands: a reason, a note, a choice, a secret, minutes.

Each returns what was entered through `dismiss`, or None when the responder
backs out with escape: nothing is written until a form is submitted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, SelectionList, Static
from textual.widgets.option_list import Option

from irtool.model.untrusted import visible
from irtool.model.when import parse_when

T = TypeVar("T")


class Prompt(ModalScreen[T | None], Generic[T]):
    """A titled form; `submit` builds the result or says (in red) what is missing."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="prompt.cancel"),
        Binding("ctrl+s", "submit", "OK", id="prompt.submit"),
    ]
    # The first field, not the scrolling form around it, takes the keys from the start.
    AUTO_FOCUS = "Input, OptionList, SelectionList"
    DEFAULT_CSS = """
    Prompt { align: center middle; }
    Prompt > Vertical {
        width: 76; max-width: 100%; height: auto; max-height: 100%;
        border: thick $accent; background: $surface; padding: 0 1;
    }
    Prompt .title { text-style: bold; width: 100%; }
    Prompt Label { width: 100%; }
    Prompt .problem { color: $error; height: auto; }
    Prompt Horizontal.buttons { height: 1; align-horizontal: right; }
    Prompt Input, Prompt OptionList, Prompt SelectionList { margin: 0 0 1 0; }
    Prompt OptionList, Prompt SelectionList { height: auto; max-height: 8; }
    """

    def __init__(self, title: str, ok: str = "OK") -> None:
        super().__init__()
        self.heading, self.ok = title, ok
        self.answered = False  # dismissed once: a second enter must not pop the screen below

    def fields(self) -> ComposeResult:
        yield from ()

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(visible(self.heading), classes="title", markup=False)
            with VerticalScroll(id="form"):
                yield from self.fields()
            yield Static("", id="problem", classes="problem", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button(self.ok, id="ok", variant="primary")

    def submit(self) -> T | str:
        """The result, or a string saying what is wrong."""
        raise NotImplementedError

    def problem(self, text: str) -> None:
        self.query_one("#problem", Static).update(visible(text, lines=True))

    def on_mount(self) -> None:
        # The form from its top: a long one (a post-mortem's questions) opens at its first
        # question, not scrolled to wherever the focused field sits.
        self.call_after_refresh(self.query_one("#form", VerticalScroll).scroll_home, animate=False)

    def take_stray(self, character: str) -> None:
        """A letter typed while this form was opening, which reached no field: into the
        focused field, or the first one, in the order it was typed."""
        if isinstance(self.focused, Input):
            field: Input = self.focused
        elif self.focused is None and self.focus_chain and isinstance(self.focus_chain[0], Input):
            field = self.focus_chain[0]  # where the focus is about to go
        else:
            return  # a list has (or gets) the focus: a letter there is not text for a field
        field.focus()
        field.insert_text_at_cursor(character)

    def action_submit(self) -> None:
        if self.answered:
            return
        result = self.submit()
        if isinstance(result, str):
            self.problem(result)
        else:
            self.answered = True
            self.dismiss(result)

    def action_cancel(self) -> None:
        if not self.answered:
            self.answered = True
            self.dismiss(None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "ok":
            self.action_submit()
        else:
            self.action_cancel()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        # Textual calls this handler of every class up the line, not only the nearest: a form
        # with its own handler has dealt with the enter already, and must not be submitted
        # again from here (that was a whole form sent from its first field, then dismissed
        # twice, taking the incident screen with it).
        if type(self).on_input_submitted is not Prompt.on_input_submitted:
            return
        self.entered(event.input)

    def entered(self, field: Input) -> None:
        """Enter in `field`: submits the form (a form of several fields moves on instead)."""
        self.action_submit()


@dataclass(frozen=True)
class Text:
    text: str


class TextPrompt(Prompt[Text]):
    """One line of text: a reason, a summary, a name."""

    def __init__(
        self,
        title: str,
        label: str,
        *,
        placeholder: str = "",
        required: bool = True,
        ok: str = "OK",
    ) -> None:
        super().__init__(title, ok)
        self.label, self.placeholder, self.required = label, placeholder, required

    def fields(self) -> ComposeResult:
        yield Label(visible(self.label, lines=True), markup=False)
        yield Input(placeholder=self.placeholder, id="text")

    def submit(self) -> Text | str:
        text = self.query_one("#text", Input).value.strip()
        if self.required and not text:
            return f"{self.label.rstrip(':')} is needed"
        return Text(text)


@dataclass(frozen=True)
class NoteEntry:
    text: str
    at: datetime | None  # None: now


class NotePrompt(Prompt[NoteEntry]):
    """A note for the timeline, back-dated when it records something seen earlier."""

    def __init__(
        self, title: str, ok: str = "OK", clock: Callable[[], datetime] | None = None
    ) -> None:
        super().__init__(title, ok)
        self.clock = clock or (lambda: datetime.now(UTC))

    def fields(self) -> ComposeResult:
        yield Label("Note:")
        yield Input(placeholder="what happened, what you saw", id="text")
        yield Label("When (blank for now; or 20m for 20 minutes ago, 19:30, 2026-11-21T02:10):")
        yield Input(placeholder="now", id="at")

    def submit(self) -> NoteEntry | str:
        text = self.query_one("#text", Input).value.strip()
        if not text:
            return "a note needs text"
        when = self.query_one("#at", Input).value.strip()
        if not when:
            return NoteEntry(text, None)
        try:
            # A span is how long ago it happened: a note records what was seen.
            return NoteEntry(text, parse_when(when, self.clock(), ahead=False))
        except ValueError as bad:
            return str(bad)


@dataclass(frozen=True)
class Choice:
    option: str
    note: str


class ChoicePrompt(Prompt[Choice]):
    """Answer a decision: one option, and a note saying why."""

    def __init__(
        self,
        title: str,
        question: str,
        options: list[tuple[str, str]],
        *,
        ok: str = "Decide",
        note_label: str = "Why (optional):",
    ) -> None:
        super().__init__(title, ok)
        self.question, self.options, self.note_label = question, options, note_label

    def fields(self) -> ComposeResult:
        yield Label(visible(self.question, lines=True), markup=False)
        options = (Option(Content(visible(label)), id=oid) for oid, label in self.options)
        yield OptionList(*options, id="options")
        yield Label(visible(self.note_label), markup=False)
        yield Input(id="note")

    def on_mount(self) -> None:
        # Nothing chosen until the responder chooses: ctrl+s alone must not record option 1.
        self.query_one("#options", OptionList).highlighted = None

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.query_one("#note", Input).focus()

    def submit(self) -> Choice | str:
        options = self.query_one("#options", OptionList)
        if options.highlighted is None:
            return "choose an option first (up and down, then enter)"
        chosen = options.get_option_at_index(options.highlighted)
        return Choice(chosen.id or "", self.query_one("#note", Input).value.strip())


@dataclass(frozen=True)
class Completion:
    checklist: list[str]
    note: str


class CompletePrompt(Prompt[Completion]):
    """Mark a step done: tick what was done of its checklist, add a note."""

    def __init__(self, title: str, checklist: list[str]) -> None:
        super().__init__(title, "Done")
        self.checklist = checklist

    def fields(self) -> ComposeResult:
        # The note first: enter in it completes the step; tab reaches the checklist.
        yield Label("Note (optional; enter or ctrl+s completes the step):")
        yield Input(id="note")
        if self.checklist:
            yield Label("Done of the checklist (tab here, space ticks):")
            yield SelectionList[str](*((item, item) for item in self.checklist), id="checklist")

    def submit(self) -> Completion | str:
        ticked: list[str] = []
        if self.checklist:
            ticked = list(self.query_one("#checklist", SelectionList).selected)
        return Completion(ticked, self.query_one("#note", Input).value.strip())


class SecretPrompt(Prompt[Text]):
    """A secret for this run only, when no keyring holds it: never shown, never written."""

    def __init__(self, message: str) -> None:
        super().__init__("Secret needed", "Use")
        self.message = message

    def fields(self) -> ComposeResult:
        yield Label(visible(self.message, lines=True), markup=False)
        yield Input(password=True, id="text")

    def submit(self) -> Text | str:
        secret = self.query_one("#text", Input).value
        return Text(secret) if secret else "type the secret, or escape to let this host fail"


@dataclass(frozen=True)
class Field:
    key: str
    label: str
    placeholder: str = ""
    required: bool = False


class FieldsPrompt(Prompt[dict[str, str]]):
    """Several lines of text, one per field: the answers to a post-mortem's questions, a
    meeting's outcome per topic, an action item. `check` says what is wrong, if anything."""

    def __init__(
        self,
        title: str,
        fields: list[Field],
        ok: str = "OK",
        check: Callable[[dict[str, str]], str | None] | None = None,
    ) -> None:
        super().__init__(title, ok)
        self.form, self.check = fields, check

    def fields(self) -> ComposeResult:
        for n, field in enumerate(self.form):
            yield Label(visible(field.label), markup=False)
            yield Input(placeholder=field.placeholder, id=f"field-{n}")

    def submit(self) -> dict[str, str] | str:
        values = {
            field.key: self.query_one(f"#field-{n}", Input).value.strip()
            for n, field in enumerate(self.form)
        }
        missing = [f.label.rstrip(":") for f in self.form if f.required and not values[f.key]]
        if missing:
            return f"{missing[0]} is needed"
        return (self.check(values) if self.check else None) or values

    def entered(self, field: Input) -> None:
        # Enter moves to the next field; on the last one it submits, as ctrl+s does anywhere.
        if field.id == f"field-{len(self.form) - 1}":
            self.action_submit()
        else:
            self.query_one(f"#field-{int(str(field.id).removeprefix('field-')) + 1}").focus()
