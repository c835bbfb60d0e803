"""What a run's host threads report, held for the screen to read at its own pace.

Host threads write here as output arrives; the run screen drains it a few
times a second. However fast fifty hosts print, the event loop sees one
bounded batch per host per tick, never a message per chunk, so megabytes of
output cannot freeze the screen. Everything is in the evidence store anyway:
this is only what the responder watches.
"""

from __future__ import annotations

import codecs
import threading
from dataclasses import dataclass, field

from irtool.engine.runner import Progress
from irtool.model.untrusted import visible
from irtool.secrets.redact import Redactor, Stream

# Text a host may queue between two ticks; beyond it the oldest is dropped (and said so).
# 16 KiB ten times a second is more than anyone reads, and little enough to draw at once.
PENDING_LIMIT = 16 * 1024
# What is kept per host to show when the responder switches to it.
TAIL_LIMIT = 32 * 1024


@dataclass
class HostFeed:
    host: str
    status: str = "queued"
    item: str | None = None
    bytes: int = 0  # over every command of the run
    detail: str = ""
    per_item: dict[str | None, int] = field(default_factory=dict)
    pending: list[str] = field(default_factory=list)
    pending_size: int = 0
    dropped: int = 0
    tail: list[str] = field(default_factory=list)
    tail_size: int = 0
    decoders: dict[str, codecs.IncrementalDecoder] = field(default_factory=dict)
    # Per stream: a secret printed in two chunks is caught whole (the end of a chunk that
    # may begin a secret waits for the next chunk, or for the command's end).
    redacting: dict[str, Stream] = field(default_factory=dict)
    at_line_start: bool = True  # the last text shown ended a line

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed")


class RunFeed:
    """Thread-safe: `progress` and `output` from host threads, `drain` from the screen."""

    def __init__(
        self, hosts: list[str], redactor: Redactor | None = None, step: str | None = None
    ) -> None:
        self.hosts = {host: HostFeed(host) for host in hosts}
        self.step = step
        self.redactor = redactor or Redactor()
        self.changed: set[str] = set(hosts)
        self._lock = threading.Lock()

    def progress(self, progress: Progress) -> None:
        with self._lock:
            feed = self.hosts.setdefault(progress.host, HostFeed(progress.host))
            if progress.status != "running" or progress.bytes == 0:
                # A command ended (the next one starts, or the host is done): what each of
                # its streams held back is shown now.
                for stream in feed.redacting.values():
                    self._append(feed, stream.end())
            if progress.status == "running" and progress.item not in feed.per_item:
                # A command starts: its output gets a header of its own, so several
                # collectors' output never runs together.
                self._append(feed, ("" if feed.at_line_start else "\n") + self._header(progress))
            feed.status, feed.item = progress.status, progress.item or feed.item
            if progress.status == "running":
                # Progress counts bytes per command; a host's total is over all of them.
                feed.per_item[progress.item] = progress.bytes
                feed.bytes = sum(feed.per_item.values())
            if progress.detail:
                feed.detail = self.redactor.text(progress.detail)
            self.changed.add(progress.host)

    def output(self, host: str, stream: str, data: bytes) -> None:
        with self._lock:
            feed = self.hosts.setdefault(host, HostFeed(host))
            decoder = feed.decoders.setdefault(
                stream, codecs.getincrementaldecoder("utf-8")(errors="replace")
            )
            text = decoder.decode(data).replace("\r\n", "\n")
            redacting = feed.redacting.get(stream) or feed.redacting.setdefault(
                stream, self.redactor.stream()
            )
            self._append(feed, redacting.feed(text))
            self.changed.add(host)

    def _header(self, progress: Progress) -> str:
        what = " / ".join(p for p in (self.step, progress.item) if p) or "command"
        return f"── {what} on {progress.host} ──\n"

    def _append(self, feed: HostFeed, text: str) -> None:
        """Redacted text, onto what the screen shows next and the host's tail (lock held)."""
        if text:
            # A compromised host's output must not drive the responder's terminal: escapes
            # and other controls are shown written out (the evidence keeps the bytes).
            text = visible(text, lines=True)
            feed.at_line_start = text.endswith("\n")
            feed.pending.append(text)
            feed.pending_size += len(text)
            if feed.pending_size > 2 * PENDING_LIMIT:
                feed.dropped += _keep_last(feed.pending, PENDING_LIMIT)
                feed.pending_size = len(feed.pending[0])
            feed.tail.append(text)
            feed.tail_size += len(text)
            if feed.tail_size > 2 * TAIL_LIMIT:
                _keep_last(feed.tail, TAIL_LIMIT)
                feed.tail_size = len(feed.tail[0])
            self.changed.add(feed.host)

    def take_changed(self) -> set[str]:
        with self._lock:
            changed, self.changed = self.changed, set()
            return changed

    def drain(self, host: str) -> str:
        """The text that arrived for `host` since the last drain (a notice if some was skipped)."""
        with self._lock:
            feed = self.hosts[host]
            feed.dropped += _keep_last(feed.pending, PENDING_LIMIT)
            text = "".join(feed.pending)
            if feed.dropped:
                text = (
                    f"[... {feed.dropped} characters not shown here; all kept in evidence]\n" + text
                )
            feed.pending, feed.pending_size, feed.dropped = [], 0, 0
            return text

    def history(self, host: str) -> str:
        """The last output of `host`, for when the responder switches to it."""
        with self._lock:
            feed = self.hosts[host]
            feed.pending, feed.pending_size, feed.dropped = [], 0, 0
            _keep_last(feed.tail, TAIL_LIMIT)
            return "".join(feed.tail)

    def counts(self) -> tuple[int, int]:
        """(finished hosts, all hosts), for the progress bar."""
        with self._lock:
            return sum(f.finished for f in self.hosts.values()), len(self.hosts)


def _keep_last(pieces: list[str], limit: int) -> int:
    """Cut `pieces` in place to its last `limit` characters, from a line start; returns how
    many characters were dropped."""
    text = "".join(pieces)
    if len(text) <= limit:
        return 0
    kept = text[-limit:]
    newline = kept.find("\n")
    if 0 <= newline < len(kept) - 1:
        kept = kept[newline + 1 :]
    pieces[:] = [kept]
    return len(text) - len(kept)
