"""Keeping secrets out of what is written: every value handed out is replaced by [redacted].

Matching ignores case (a host may echo a password upper- or lower-cased, and a fetch lowers
what a host says its hash is), and `Stream` matches across the chunks of a stream, holding
back the few characters that could be the start of a secret until the next chunk or the end.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

from irtool.model.untrusted import visible

REDACTED = "[redacted]"


def _spellings(value: str) -> set[str]:
    """The ways a host may hand `value` back: as given, and in either case (full case mapping,
    so 'ß' upper-cased as 'SS' is caught too)."""
    return {value, value.lower(), value.upper(), value.casefold()}


class Redactor:
    """Replaces every secret value handed out with [redacted], in text and in nested data."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._longest = 0
        self._folded: tuple[str, ...] = ()
        self._lock = threading.Lock()

    def add(self, value: str) -> None:
        if not value:
            return
        with self._lock:
            if value in self._values:
                return
            self._values.add(value)
            spellings = {s for v in self._values for s in _spellings(v) if s}
            # Longest first: where two secrets overlap, the whole of the longer one goes.
            ordered = sorted(spellings, key=len, reverse=True)
            self._pattern = re.compile("|".join(map(re.escape, ordered)), re.IGNORECASE)
            self._longest = len(ordered[0])
            self._folded = tuple({s.casefold() for s in spellings})

    def _current(self) -> tuple[re.Pattern[str] | None, int, tuple[str, ...]]:
        with self._lock:
            return self._pattern, self._longest, self._folded

    def text(self, text: str) -> str:
        pattern, _, _ = self._current()
        return pattern.sub(REDACTED, text) if pattern else text

    def data(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(k): self.data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        return value

    def stream(self) -> Stream:
        """A redactor for one stream of text that arrives in chunks (a host's stdout)."""
        return Stream(self)


class Stream:
    """Redacts a stream chunk by chunk, a secret split across chunks included.

    `feed` returns what is safe to show now: of its last characters (one fewer than the
    longest secret's length), it holds back those that could begin a secret, until the next
    chunk shows whether they do; `end` returns what is still held, redacted. Not thread-safe:
    one stream, one writer (or the caller's lock).
    """

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self.held = ""

    def feed(self, text: str) -> str:
        pattern, longest, folded = self.redactor._current()
        text = self.held + text
        if pattern is None:
            self.held = ""
            return text
        # Held back: the end of the text from where it could be the start of a secret.
        cut = next(
            (
                at
                for at in range(max(0, len(text) - (longest - 1)), len(text))
                if any(secret.startswith(text[at:].casefold()) for secret in folded)
            ),
            len(text),
        )
        shown: list[str] = []
        at = 0
        for match in pattern.finditer(text):
            if match.start() >= cut:
                break  # may yet grow into a longer secret: decided with the next chunk
            shown += [text[at : match.start()], REDACTED]
            at = match.end()
            cut = max(cut, at)
        shown.append(text[at:cut])
        self.held = text[cut:]
        return "".join(shown)

    def end(self) -> str:
        """What is held back, redacted: the stream is over (or paused for good)."""
        held, self.held = self.held, ""
        return self.redactor.text(held)


class RedactingFilter(logging.Filter):
    """Keeps secrets out of log records, whoever logs them (paramiko included), and shows the
    controls a host's banner or error may carry written out: `cat` on the log must not play
    a host's escape sequences on the responder's terminal."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = visible(self.redactor.text(record.getMessage()), lines=True)
        record.args = None
        if record.exc_info and not record.exc_text:
            # A traceback quotes exception messages: format it here, and redact it.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = visible(self.redactor.text(record.exc_text), lines=True)
        if record.stack_info:
            record.stack_info = visible(self.redactor.text(record.stack_info), lines=True)
        return True
