"""Headless Chromium driven over the DevTools protocol on a pipe (no port, no network).

The protocol reports every request a page makes, file:// included, apart from the browser's
own traffic (update checks, network time), which a proxy would see mixed in. It also takes a
full-page screenshot and prints to PDF, as a reader on screen or on paper would see the page.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

EXECUTABLE = shutil.which("chromium") or shutil.which("chromium-browser")


def _above_4(fd: int) -> int:
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


class Chromium:
    """One browser with one page; `open` loads a file and returns what the page requested."""

    def __init__(self, profile: Path, width: int = 1280, height: int = 900) -> None:
        assert EXECUTABLE, "chromium is not installed: scripts/test-all installs it"
        commands, self._to_browser = os.pipe()
        self._from_browser, replies = os.pipe()
        # Out of the way of 3 and 4, or moving one there could overwrite the other.
        commands, replies = _above_4(commands), _above_4(replies)

        # --remote-debugging-pipe reads fd 3 and writes fd 4; a small Python puts the pipes
        # there and execs the browser (not preexec_fn: unsafe with threads; not sh: dash takes
        # single-digit descriptors only).
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import os, sys; "
                f"os.dup2({commands}, 3); os.dup2({replies}, 4); "
                "os.execv(sys.argv[1], sys.argv[1:])",
                EXECUTABLE,
                "--headless",
                "--remote-debugging-pipe",
                "--no-sandbox",  # CI runs as root
                "--disable-gpu",
                "--hide-scrollbars",
                "--no-first-run",
                "--no-default-browser-check",
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            pass_fds=(commands, replies),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(commands)
        os.close(replies)
        self._next_id = 0
        self._buffer = b""
        self._events: list[dict[str, Any]] = []
        target = self._call("Target.createTarget", url="about:blank")["targetId"]
        self._session = self._call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        self._call("Page.enable", session=True)
        self._call("Network.enable", session=True)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        try:
            self._send("Browser.close")
            self._process.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self._process.kill()
            self._process.wait()
        finally:
            os.close(self._to_browser)
            os.close(self._from_browser)

    def open(self, path: Path) -> list[str]:
        """Load the file until its load event; the URLs of every request the page made."""
        self._events.clear()
        self._call("Page.navigate", session=True, url=path.as_uri())
        self._wait_for("Page.loadEventFired")
        # Anything the load event does not wait for has had its chance: ask the page once
        # more, so events queued before this answer are read too.
        self._call("Runtime.evaluate", session=True, expression="document.readyState")
        return [
            e["params"]["request"]["url"]
            for e in self._events
            if e["method"] == "Network.requestWillBeSent"
        ]

    def evaluate(self, expression: str) -> Any:
        """A JavaScript expression's value in the page (the page's own scripts cannot run)."""
        result = self._call(
            "Runtime.evaluate", session=True, expression=expression, returnByValue=True
        )
        return result["result"].get("value")

    def screenshot(self) -> bytes:
        """The whole page, top to bottom, as a PNG."""
        data = self._call(
            "Page.captureScreenshot", session=True, format="png", captureBeyondViewport=True
        )["data"]
        return base64.b64decode(data)

    def pdf(self) -> bytes:
        """The page printed (A4 by the page's own @page rule), without browser headers."""
        data = self._call(
            "Page.printToPDF",
            session=True,
            displayHeaderFooter=False,
            printBackground=True,
            preferCSSPageSize=True,
        )["data"]
        return base64.b64decode(data)

    def _send(self, method: str, session: bool = False, **params: Any) -> int:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self._session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        return self._next_id

    def _call(self, method: str, session: bool = False, **params: Any) -> dict[str, Any]:
        wanted = self._send(method, session, **params)
        while True:
            message = self._read()
            if message.get("id") == wanted:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message["result"]
                return result
            if "method" in message:
                self._events.append(message)

    def _wait_for(self, event: str) -> None:
        if any(e["method"] == event for e in self._events):
            return
        while True:
            message = self._read()
            if "method" in message:
                self._events.append(message)
                if message["method"] == event:
                    return

    def _read(self, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._from_browser], [], [], max(left, 0))
            if not ready:
                raise TimeoutError("chromium did not answer within its deadline")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise EOFError("chromium closed its DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        found: dict[str, Any] = json.loads(message)
        return found
