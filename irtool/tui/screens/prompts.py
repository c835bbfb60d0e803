"""Small modal forms for the engine's commands: a reason, a note, a choice, a secret, minutes.

Each returns what was entered through `dismiss`, or None when the responder
backs out with escape: nothing is written until a form is submitted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, SelectionList, Static
from textual.widgets.option_list import Option

from irtool.journal.events import parse_moment
from irtool.model.untrusted import visible

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
    Prompt .problem { color: $error; height: auto; }
    Prompt Horizontal.buttons { height: 1; align-horizontal: right; }
    Prompt Input, Prompt OptionList, Prompt SelectionList { margin: 0 0 1 0; }
    Prompt OptionList, Prompt SelectionList { height: auto; max-height: 8; }
    """

    def __init__(self, title: str, ok: str = "OK") -> None:
        super().__init__()
        self.heading, self.ok = title, ok

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

    def action_submit(self) -> None:
        result = self.submit()
        if isinstance(result, str):
            self.problem(result)
        else:
            self.dismiss(result)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "ok":
            self.action_submit()
        else:
            self.action_cancel()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
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

    def fields(self) -> ComposeResult:
        yield Label("Note:")
        yield Input(placeholder="what happened, what you saw", id="text")
        yield Label("When (blank for now; else like 2026-11-21T02:10 UTC or with +01:00):")
        yield Input(placeholder="now", id="at")

    def submit(self) -> NoteEntry | str:
        text = self.query_one("#text", Input).value.strip()
        if not text:
            return "a note needs text"
        when = self.query_one("#at", Input).value.strip()
        if not when:
            return NoteEntry(text, None)
        try:
            return NoteEntry(text, parse_moment(when))
        except ValueError:
            return f"'{when}' is not a time like 2026-11-21T02:10 or 2026-11-21T03:10+01:00"


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

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.query_one("#note", Input).focus()

    def submit(self) -> Choice | str:
        options = self.query_one("#options", OptionList)
        if options.highlighted is None:
            return "choose an option"
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

    def on_input_submitted(self, event: Input.Submitted) -> None:
        # Enter moves to the next field; on the last one it submits, as ctrl+s does anywhere.
        event.stop()
        if event.input.id == f"field-{len(self.form) - 1}":
            self.action_submit()
        else:
            self.focus_next()
