"""The least a Textual app can be: a header, one label and a footer.

bench/tui.py starts it the way it starts `irtool open ID` (in a pseudo-terminal, by the
venv's python) and times it to its first frame: what Textual itself costs to get a screen
up, against which irtool's launch is judged. Run it by hand with
``.venv/bin/python bench/minimal_app.py``; ctrl+q quits.
"""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import Footer, Header, Label

READY = "minimal textual app ready"
"""The label's text: bench/tui.py stops its clock when the terminal shows it."""


class MinimalApp(App[None]):
    TITLE = "minimal"

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label(READY)
        yield Footer()


if __name__ == "__main__":
    MinimalApp().run()
