"""Terminal UI speed: launch to first frame, and key-press latency under load.

Run (from the repository root):

    .venv/bin/python bench/tui.py [--launches 10] [--presses 200] [--events 50000]
                                  [--stream-seconds 40] [--big-events 1000000] [--big-opens 5]
                                  [--before DIR] [--only-big] [--quick]

Every program is started the same way and watched the same way: in a pseudo-terminal of
80x24 (TERM=xterm-256color), with what it writes fed into a terminal emulator (pyte). A
clock stops at the first screen that shows what a responder waits for. Nothing is
synchronised by sleeping: every wait is for a screen condition, with a deadline. All files
live in one temporary directory (IRTOOL_HOME, HOME and the keymap path point into it).

1. Launch to first frame, ``--launches`` times each, interleaved: ``.venv/bin/irtool open ID``
   of a fresh incident (done when the header shows the incident id and the step list is
   drawn), ``.venv/bin/python bench/minimal_app.py`` (a Textual app with a Header, a Label
   and a Footer; done when its label shows) and, for information, ``irtool open`` of the
   loaded incident of 2. Each is quit with ctrl+q once drawn (killed if not gone in 5 s).
   Then, to show where the difference goes, what each imports, timed alone.
2. Key latency: the time from writing a key's bytes to the pty to the first screen showing
   its effect, in one ``irtool open`` of an incident whose journal holds ``--events`` note
   events, in this order:
   a. the timeline (``t``; how long it takes to open is reported too), nothing running:
      ``home``, then ``down`` presses; the effect is the highlighted row showing the next
      event's number;
   b. the run screen (``r`` on the collect step ``stream``): two local hosts (the ``local``
      transport: ``sh`` on this machine) each print 5 MiB of lines naming the host, 10 MiB in
      all, in 64 KiB blocks paced over ``--stream-seconds`` (unpaced, the 10 MiB take about
      a second: too short for the presses). ``down`` and ``up`` in turn move the host
      table's cursor; the effect is the cursor on the other host *and* the output pane
      showing that host's lines (the time to the cursor alone is reported beside it). Only
      presses whose effect was seen while both hosts were still streaming count; the
      stream's rate is reported (its time from the journal: run.started to run.finished),
      and the evidence checked to hold the 10 MiB. Then the same
      presses once the run is over, to tell the stream's cost from the switch's own;
   c. the timeline again while the same step runs from another terminal (``irtool incident
      run ID stream``, the same 10 MiB, paced the same): ``down`` presses, counted while that
      run is going; the UI polls the journal meanwhile.

3. Opening a big incident: ``python -m irtool open ID`` of an incident of ``--big-events``
   events, launch to the step list drawn (as in 1), run from the temporary directory, so
   that ``PYTHONPATH`` chooses the tree: this one, and the one ``--before`` names if given
   (a checkout of the tree before checkpoints, ``git worktree add DIR 9d8e20a``; which
   package each imports is checked first). The incident is written through the real journal
   (``Journal.transaction``, 5,000 events a transaction; 1,000,000 in 90 s on a quiet 2-core
   machine): the hosts' first facts, then, drawn at random with a fixed seed, collection
   runs of the stream step on both hosts (run.started, two command.ran, run.finished; weight
   12), notes (5) and contact attempts (1), each a copy of what the CLI recorded in a small
   incident of the same runbook (``irtool incident run`` and ``reach``; its command quick),
   whose evidence is copied along: 89% runs, 9% notes, 2% contacts. The first open of this
   tree finds no checkpoint (it folds every event and writes one); then ``--big-opens``
   later opens, each tree in turn, timed the same way; whether a later open rewrote the
   checkpoint is watched. A tree whose open is not drawn in 120 s is not opened again ("over
   120 s"). In each later open of this tree, as soon as the steps are up (its records still
   being read in the background), ``down``/``up`` between the two steps, 10 times: key to
   the cursor on the other step and its detail shown; then ctrl+q, timed to the exit (killed
   after 60 s, when the next open starts). Then, for the breakdown: in one process with no
   screen, the session opened from the checkpoint, and its records read; and one more open,
   with ``t`` as soon as the steps are up: key to the timeline's rows, then ``down`` presses
   there.

The emulator's own CPU (this process) is reported per measurement: it shares the machine.
Targets (from the issue): irtool's launch median at most 1.5x the minimal app's; key latency
p95 under 100 ms while 10 MiB streams in with the journal's events in the timeline (2b is
the one named; 2c is the timeline's own figure under the same stream); the steps of a
1,000,000-event incident drawn within 2 s of launch (3, the median of the later opens of this
tree). Each is printed PASS or FAIL. The exit status is 0 when every step worked, whatever
the targets; 1 when one failed.

``--quick``: 2 launches each, 20 presses, 5,000 events, a 5 s stream; in 3, 20,000 events
and 2 later opens: a smoke test (tests/test_bench_tui_smoke.py). ``--only-big``: 3 alone;
``--big-events 0``: 1 and 2 alone.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import itertools
import json
import math
import os
import random
import re
import resource
import select
import shlex
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import pyte
import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.minimal_app import READY as MINIMAL_READY  # noqa: E402
from irtool.engine import kinds  # noqa: E402
from irtool.journal import Event, EventDraft, Journal  # noqa: E402
from irtool.journal.incidents import EVIDENCE_DIR, JOURNAL_FILE  # noqa: E402

MiB = 1024 * 1024
COLS, ROWS = 80, 24
VENV_BIN = Path(sys.executable).parent
STEP = "stream"
STEP_TITLE = "Stream output from two hosts"
HOSTS = ["local-a", "local-b"]
LINE = 128  # bytes per output line: a block is whole lines
BLOCK = 64 * 1024
STREAM_BYTES = 10 * MiB  # in all, split evenly between the hosts
BATCH = 1000  # events per journal transaction when loading

KEYS = {"down": b"\x1b[B", "up": b"\x1b[A", "home": b"\x1b[H", "escape": b"\x1b", "ctrl+q": b"\x11"}
QUIT_S = 5.0
SCREEN_S = 30.0  # the longest any screen may take to appear
KEY_S = 10.0  # the longest a key's effect may take before the run is called broken
RUN_TIMEOUT = 600.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class BenchError(RuntimeError):
    """A step did not work: its numbers would mean nothing."""


# -- a program in a pseudo-terminal ------------------------------------------------------


class Terminal:
    """A program in an 80x24 pty, what it writes fed into pyte as it arrives."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], cwd: Path | None = None) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
        self.started = time.perf_counter()
        self.program = " ".join(argv[:4])  # the program and its first arguments, for the log
        self.process = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd, start_new_session=True
        )
        os.close(slave)
        self.fd = master
        self.screen = pyte.Screen(COLS, ROWS)
        self.stream = pyte.ByteStream(self.screen)
        self.eof = False
        self.last_read = self.started

    def pump(self, timeout: float) -> None:
        """Feed pyte the next chunk the program writes, waiting at most `timeout` for it."""
        if self.eof or not select.select([self.fd], [], [], max(0.0, timeout))[0]:
            return
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: every writer closed the pty
            data = b""
        self.last_read = time.perf_counter()
        if not data:
            self.eof = True
            return
        self.stream.feed(data)

    def wait_for(self, condition: Callable[[], bool], what: str, timeout: float) -> float:
        """The moment the chunk that made `condition` true was read (now, if already true)."""
        return self.wait_each([condition], what, timeout)[0]

    def wait_each(
        self, conditions: Sequence[Callable[[], bool]], what: str, timeout: float
    ) -> list[float]:
        """For each condition, the moment the chunk that first made it true was read."""
        now = time.perf_counter()
        seen: list[float | None] = [now if met() else None for met in conditions]
        deadline = now + timeout
        while None in seen:
            left = deadline - time.perf_counter()
            if left <= 0 or self.eof:
                why = "the program ended" if self.eof else f"nothing after {timeout:.0f} s"
                raise BenchError(f"waiting for {what}: {why}; the screen:\n{self.text()}")
            self.pump(left)
            seen = [
                at if at is not None or not met() else self.last_read
                for at, met in zip(seen, conditions, strict=True)
            ]
        return [at for at in seen if at is not None]

    def press(self, key: str) -> float:
        sent = time.perf_counter()
        os.write(self.fd, KEYS.get(key, key.encode()))
        return sent

    def quit(self, patience: float = QUIT_S) -> float | None:
        """ctrl+q, then wait for the exit (reading on, so it never blocks on a full pty); the
        seconds from ctrl+q to the exit, None when it had to be killed after `patience`."""
        sent = self.press("ctrl+q") if self.process.poll() is None else time.perf_counter()
        deadline = sent + patience
        while self.process.poll() is None and time.perf_counter() < deadline:
            self.pump(0.05)
        took: float | None = time.perf_counter() - sent
        if self.process.poll() is None:
            log(f"  {self.program} did not quit in {patience:.0f} s: killed")
            self.process.kill()
            took = None
        self.process.wait()
        os.close(self.fd)
        return took

    # -- reading the screen --------------------------------------------------------

    def lines(self) -> list[str]:
        return list(self.screen.display)

    def text(self) -> str:
        return "\n".join(line.rstrip() for line in self.lines())

    def shows(self, *texts: str) -> bool:
        screen = self.text()
        return all(text in screen for text in texts)

    def background(self, x: int, y: int) -> str:
        return str(self.screen.buffer[y][x].bg)


def pty_env(work: Path) -> dict[str, str]:
    """The same environment for every program: a terminal, and nothing of the user's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEXTUAL", "COLORTERM"))}
    env.pop("NO_COLOR", None)
    return {
        **env,
        "TERM": "xterm-256color",
        "HOME": str(work / "home"),
        "XDG_CONFIG_HOME": str(work / "config"),
        "IRTOOL_HOME": str(work / "irtool"),
        "IRTOOL_KEYMAP": str(work / "no-keymap.yaml"),
        "IRTOOL_RESPONDER": "bench",
    }


# -- the incidents -------------------------------------------------------------------------


def stream_command(per_host: int, seconds: float) -> str:
    """sh that prints `per_host` bytes of 128-byte lines naming the host, paced over `seconds`."""
    blocks = per_host // BLOCK
    pause = seconds / blocks
    line = f"$(printf '%-{LINE - 1}s' {{{{ host.name }}}}' streams this line')"
    return (
        f'line="{line}"; i=0; while [ $i -lt {blocks} ]; do '
        f'yes "$line" | head -c {BLOCK}; sleep {pause:.4f}; i=$((i + 1)); done'
    )


def write_files(work: Path, seconds: float) -> tuple[Path, Path]:
    per_host = STREAM_BYTES // len(HOSTS)
    runbook = {
        "id": "bench-tui",
        "title": "TUI benchmark",
        "summary": "One collect step whose hosts stream 10 MiB, for bench/tui.py.",
        "version": "1",
        "severity": "high",
        "triggers": ["A benchmark run."],
        "activation": {"may_activate": ["security"]},
        "roles": ["security"],
        "phases": [
            {
                "id": "collect",
                "title": "Collect",
                "steps": [
                    {
                        "id": STEP,
                        "type": "collect",
                        "title": STEP_TITLE,
                        "shell": "sh",
                        "timeout": 600,
                        "targets": ["group:bench"],
                        "command": stream_command(per_host, seconds),
                    },
                    {
                        "id": "wrap-up",
                        "type": "manual",
                        "title": "Wrap up",
                        "instructions": "Nothing to do: the benchmark is over.",
                    },
                ],
            }
        ],
    }
    inventory = {
        "hosts": {
            name: {"address": "localhost", "transport": "local", "groups": ["bench"]}
            for name in HOSTS
        }
    }
    book, hosts = work / "runbook.yaml", work / "inventory.yaml"
    book.write_text(yaml.safe_dump(runbook, sort_keys=False))
    hosts.write_text(yaml.safe_dump(inventory, sort_keys=False))
    return book, hosts


@dataclass
class Stream:
    """How the 10 MiB came in: over how long, so at what rate."""

    seconds: float

    @property
    def mib_per_s(self) -> float:
        return STREAM_BYTES / MiB / self.seconds


class Irtool:
    """The CLI, for setting up: new incidents, their journals, checks."""

    def __init__(self, work: Path, env: dict[str, str], book: Path, inventory: Path) -> None:
        self.work, self.env, self.book, self.inventory = work, env, book, inventory
        self.bin = str(VENV_BIN / "irtool")

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.bin, *args],
            capture_output=True,
            text=True,
            env=self.env,
            stdin=subprocess.DEVNULL,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise BenchError(f"irtool {' '.join(args)}: exit {result.returncode}\n{result.stderr}")
        return result

    def new(self, book: Path | None = None, contacts: Path | None = None) -> str:
        """A new incident of `book` (the benchmark's runbook if None) on the inventory."""
        args = ["incident", "new", str(book or self.book), "--inventory", str(self.inventory)]
        if contacts is not None:
            args += ["--contacts", str(contacts)]
        result = self.cli(*args, "--json")
        return str(json.loads(result.stdout)["id"])

    def folder(self, incident: str) -> Path:
        return Path(self.env["IRTOOL_HOME"]) / "incidents" / incident

    def load(self, incident: str, events: int) -> None:
        """Append `events` notes, a thousand per transaction (a durable commit each)."""
        with Journal(self.folder(incident) / JOURNAL_FILE, incident) as journal:
            for batch in range(0, events, BATCH):
                with journal.transaction() as tx:
                    for i in range(batch, min(events, batch + BATCH)):
                        tx.append(EventDraft("note.added", "bench", {"text": f"bench note {i}"}))

    def last_run(self, incident: str) -> Stream:
        """The latest run's time from its journal: run.started to run.finished."""
        with Journal(self.folder(incident) / JOURNAL_FILE, incident) as journal:
            runs = [
                e for e in journal.events() if e.kind in (kinds.RUN_STARTED, kinds.RUN_FINISHED)
            ]
        if len(runs) < 2 or [e.kind for e in runs[-2:]] != [kinds.RUN_STARTED, kinds.RUN_FINISHED]:
            raise BenchError(f"no finished run in the journal of {incident}")
        began, ended = (datetime.fromisoformat(e.occurred_at) for e in runs[-2:])
        return Stream((ended - began).total_seconds())

    def evidence_bytes(self, incident: str) -> int:
        """The bytes the commands brought back (not what each host said it is on first
        contact, which is evidence too)."""
        with Journal(self.folder(incident) / JOURNAL_FILE, incident) as journal:
            probes = {
                e.data.get("output", {}).get("sha256")
                for e in journal.events()
                if e.kind == kinds.HOST_FACTS
            }
        folder = self.folder(incident) / EVIDENCE_DIR
        named = [
            p
            for p in folder.iterdir()
            if re.fullmatch(r"[0-9a-f]{64}", p.name) and p.name not in probes
        ]
        return sum(p.stat().st_size for p in named)

    def no_bugs(self) -> None:
        """The UI keeps going after a bug in a key's action, but writes it down: none may be."""
        bugs = Path(self.env["IRTOOL_HOME"]) / "errors.log"
        if bugs.exists():
            raise BenchError(f"the UI hit a bug on the way ({bugs}):\n{bugs.read_text()}")

    def open_argv(self, incident: str) -> list[str]:
        return [self.bin, "open", incident]


# -- 1. launch to first frame --------------------------------------------------------------


@dataclass
class Launch:
    label: str
    argv: list[str]
    ready: Callable[[Terminal], bool]
    times: list[float] = field(default_factory=list)


def identity_drawn(incident: str) -> Callable[[Terminal], bool]:
    """The first frame of `irtool open`: LIVE, the title and the incident id in the header
    (the incident screen follows once the journal is folded in a worker)."""
    return lambda term: term.shows(incident) and term.shows(" LIVE ")


def incident_drawn(incident: str) -> Callable[[Terminal], bool]:
    """The header names the incident and the step list shows the first step."""
    step = f"▶ {STEP_TITLE[:20]}"
    return lambda term: term.shows(incident) and any(line.startswith(step) for line in term.lines())


def the_launches(irtool: Irtool, fresh: str, loaded: str, events: int) -> list[Launch]:
    """The minimal app first: the others' ratios are against it."""
    return [
        Launch(
            "minimal Textual app (Header, Label, Footer)",
            [sys.executable, str(ROOT / "bench" / "minimal_app.py")],
            lambda term: term.shows(MINIMAL_READY),
        ),
        Launch(
            "irtool open ID, first frame (LIVE, title, id)",
            irtool.open_argv(fresh),
            identity_drawn(fresh),
        ),
        Launch(
            "irtool open ID, steps drawn (usable)", irtool.open_argv(fresh), incident_drawn(fresh)
        ),
        Launch(
            f"irtool open ID, {events:,} events, steps drawn",
            irtool.open_argv(loaded),
            incident_drawn(loaded),
        ),
    ]


def first_frame(launch: Launch, env: dict[str, str]) -> float:
    term = Terminal(launch.argv, env)
    try:
        seen = term.wait_for(lambda: launch.ready(term), f"{launch.label} drawn", SCREEN_S)
    finally:
        term.quit()
    return seen - term.started


def measure_launches(launches: list[Launch], env: dict[str, str], repeat: int) -> None:
    for round_ in range(1, repeat + 1):
        for launch in launches:
            launch.times.append(first_frame(launch, env))
        each = ", ".join(f"{launch.label} {launch.times[-1] * 1e3:.0f} ms" for launch in launches)
        log(f"  launch {round_} of {repeat}: {each}")


# What the two launches import, timed alone in a fresh interpreter: where the gap comes from.
IMPORTS = {
    "textual + the minimal app's widgets": (
        "from textual.app import App; from textual.widgets import Footer, Header, Label"
    ),
    "irtool.cli (every subcommand)": "import irtool.cli",
    "irtool.cli + irtool.tui.app + the incident screen": (
        "import irtool.cli, irtool.tui.app, irtool.tui.screens.incident"
    ),
}
IMPORT_TIMER = "import time; t = time.perf_counter(); {}; print(time.perf_counter() - t)"


def import_seconds(statement: str, env: dict[str, str], repeat: int = 3) -> float:
    runs = []
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-c", IMPORT_TIMER.format(statement)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        runs.append(float(out.stdout))
    return statistics.median(runs)


# -- 2. key latency ------------------------------------------------------------------------


@dataclass
class Presses:
    """Key presses on one screen: seconds from the key's bytes to the whole effect shown,
    and to its first sign (the cursor moved; the same on the timeline, where that is all)."""

    label: str
    wanted: int
    times: list[float] = field(default_factory=list)
    cursor: list[float] = field(default_factory=list)
    bench_cpu: float = 0.0  # share of one core this process (pyte, mostly) used meanwhile


class OwnCpu:
    """The CPU this process spends, against the wall time: the emulator is a load too."""

    def __init__(self) -> None:
        self.cpu, self.wall = self.used(), time.perf_counter()

    @staticmethod
    def used() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    def share(self) -> float:
        return (self.used() - self.cpu) / (time.perf_counter() - self.wall)


def incident_screen(term: Terminal, incident: str) -> float:
    return term.wait_for(
        lambda: term.shows(incident, "r Run", "t Timeline"), "the incident screen", SCREEN_S
    )


# The timeline: one row per event, "HH:MM:SS  #SEQ actor kind ..." at 80 columns.
SEQ = re.compile(r"^\S+\s+#(\d+) ")
COUNT = re.compile(r"(\d+) of (\d+) events")


def highlighted_event(term: Terminal) -> int | None:
    """The event number on the timeline row whose background differs from every other row's."""
    rows = [
        (int(found[1]), term.background(0, y))
        for y, line in enumerate(term.lines())
        if (found := SEQ.match(line))
    ]
    backgrounds = [bg for _, bg in rows]
    odd = [seq for seq, bg in rows if backgrounds.count(bg) == 1]
    return odd[0] if len(rows) >= 3 and len(odd) == 1 else None


def timeline_count(term: Terminal) -> int | None:
    found = COUNT.search(term.text())
    return int(found[2]) if found else None


def open_timeline(term: Terminal) -> float:
    """`t`; the seconds until the timeline shows its rows and its count of events."""
    sent = term.press("t")
    seen = term.wait_for(
        lambda: timeline_count(term) is not None and highlighted_event(term) is not None,
        "the timeline",
        SCREEN_S,
    )
    return seen - sent


def timeline_presses(term: Terminal, presses: Presses, going: Callable[[], bool]) -> None:
    """From the first event, `down` until enough presses landed while `going()`."""
    term.press("home")
    term.wait_for(lambda: highlighted_event(term) == 1, "home on the timeline", KEY_S)
    seq, own = 1, OwnCpu()
    while len(presses.times) < presses.wanted:
        sent = term.press("down")
        seen = term.wait_for(
            lambda want=seq + 1: highlighted_event(term) == want, f"down to event {seq + 1}", KEY_S
        )
        if not going():
            break
        presses.times.append(seen - sent)
        presses.cursor.append(seen - sent)
        seq += 1
    presses.bench_cpu = own.share()


# The run screen: the host table on the left (36 columns), the output pane right of it.
TABLE_WIDTH = 36


def host_rows(term: Terminal) -> dict[str, tuple[int, list[str]]]:
    """host -> (screen row, cells: symbol, host, status, ...), for rows of the host table."""
    rows = {}
    for y, line in enumerate(term.lines()):
        cells = line[:TABLE_WIDTH].split()
        if len(cells) >= 3 and cells[1] in HOSTS:
            rows[cells[1]] = (y, cells)
    return rows


def statuses(term: Terminal) -> set[str]:
    rows = host_rows(term)
    return {cells[2] for _, cells in rows.values()} if len(rows) == len(HOSTS) else set()


def output_hosts(term: Terminal) -> set[str]:
    """The hosts whose lines the output pane shows (each line starts with its host)."""
    words = (line[TABLE_WIDTH + 1 :].split()[:1] for line in term.lines()[2:-2])
    return {word[0] for word in words if word and word[0] in HOSTS}


class HostCursor:
    """The host table's cursor: its colour is learnt on the first host, where it starts."""

    def __init__(self, term: Terminal) -> None:
        self.term, self.host = term, HOSTS[0]
        self.colour = self.colour_of(HOSTS[0])
        if self.colour_of(HOSTS[1]) == self.colour:
            raise BenchError(f"no cursor row in the host table:\n{term.text()}")

    def colour_of(self, host: str) -> str | None:
        row = host_rows(self.term).get(host)
        if row is None:
            return None
        y, _ = row
        return self.term.background(self.term.lines()[y].index(host), y)

    def on(self, host: str) -> bool:
        return self.colour_of(host) == self.colour

    def switch(self) -> tuple[float, float]:
        """down (or up) to the other host: seconds to the cursor there, and to its output shown."""
        target = HOSTS[1] if self.host == HOSTS[0] else HOSTS[0]
        key = "down" if target == HOSTS[1] else "up"
        sent = self.term.press(key)
        moved, shown = self.term.wait_each(
            [lambda: self.on(target), lambda: output_hosts(self.term) == {target}],
            f"{key} to {target}",
            KEY_S,
        )
        self.host = target
        return moved - sent, max(moved, shown) - sent


def switch_hosts(cursor: HostCursor, presses: Presses, going: Callable[[], bool]) -> None:
    """Switch hosts until enough switches were seen while `going()`."""
    own = OwnCpu()
    while len(presses.times) < presses.wanted:
        moved, shown = cursor.switch()
        if not going():
            break
        presses.cursor.append(moved)
        presses.times.append(shown)
    presses.bench_cpu = own.share()


def run_screen_presses(term: Terminal, streaming: Presses, after: Presses, stream_s: float) -> None:
    """`r` on the stream step; switch hosts while both stream, then again once they are done."""
    term.press("r")
    term.wait_for(lambda: statuses(term) == {"running"}, "both hosts running", SCREEN_S)
    term.wait_for(lambda: output_hosts(term) == {HOSTS[0]}, f"{HOSTS[0]}'s output", SCREEN_S)
    cursor = HostCursor(term)
    switch_hosts(cursor, streaming, lambda: statuses(term) == {"running"})
    term.wait_for(
        lambda: bool(statuses(term)) and statuses(term) <= {"done", "failed"},
        "the end of the run",
        stream_s * 4 + 60,
    )
    if statuses(term) != {"done"}:
        raise BenchError(f"the run did not succeed on every host:\n{term.text()}")
    switch_hosts(cursor, after, lambda: True)


def cli_stream(term: Terminal, irtool: Irtool, incident: str, presses: Presses) -> None:
    """Timeline presses while `irtool incident run` streams the 10 MiB from another process."""
    before = timeline_count(term) or 0
    errors = irtool.work / "cli-run.stderr"  # a file: a full pipe would stall the run
    with errors.open("w") as stderr:
        run = subprocess.Popen(
            [irtool.bin, "incident", "run", incident, STEP, "--json"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env=irtool.env,
        )
    try:
        # The run's first event, polled in by the UI: the hosts are being started.
        term.wait_for(
            lambda: (timeline_count(term) or 0) > before, "the run's first event", SCREEN_S
        )
        timeline_presses(term, presses, lambda: run.poll() is None)
        run.wait(timeout=RUN_TIMEOUT)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    if run.returncode != 0:
        raise BenchError(
            f"irtool incident run {incident} {STEP}: exit {run.returncode}\n{errors.read_text()}"
        )


@dataclass
class Load:
    """What the loaded incident's session measured."""

    timeline_open_s: float
    idle: Presses
    run: Presses
    run_stream: Stream
    run_over: Presses
    cli: Presses
    cli_stream: Stream


def under_load(irtool: Irtool, incident: str, presses: int, stream_s: float) -> Load:
    term = Terminal(irtool.open_argv(incident), irtool.env)
    try:
        incident_screen(term, incident)
        log("  timeline, nothing running ...")
        opened = open_timeline(term)
        idle = Presses("timeline: down, nothing running", wanted=presses)
        timeline_presses(term, idle, lambda: True)
        term.press("escape")
        incident_screen(term, incident)
        log("  run screen, 10 MiB streaming ...")
        run = Presses("run screen: down/up between 2 hosts, 10 MiB streaming", wanted=presses)
        done = Presses("run screen: the same, once the run is over", wanted=presses)
        run_screen_presses(term, run, done, stream_s)
        run_stream = irtool.last_run(incident)
        collected = irtool.evidence_bytes(incident)
        if collected != STREAM_BYTES:
            raise BenchError(f"the evidence holds {collected} bytes, not {STREAM_BYTES}")
        term.press("escape")
        incident_screen(term, incident)
        log("  timeline, 10 MiB streaming from `irtool incident run` ...")
        open_timeline(term)
        cli = Presses("timeline: down, 10 MiB streaming from another terminal", wanted=presses)
        cli_stream(term, irtool, incident, cli)
        streamed = irtool.last_run(incident)
    finally:
        term.quit()
    return Load(opened, idle, run, run_stream, done, cli, streamed)


# -- 3. opening a big incident ---------------------------------------------------------------

BIG_BATCH = 5000  # events per journal transaction while building the big incident
BIG_DEADLINE_S = 120.0  # the longest an open of the big incident is waited for
BIG_QUIT_S = 60.0  # how long ctrl+q may take to end an open of the big incident
BIG_PRESSES = 10  # step-list presses right after the steps appear
TIMELINE_PRESSES = 5
CONTACTS = {
    "team": "Bench",
    "people": {
        "ann": {"name": "Ann", "timezone": "UTC", "phone": "+1 555 0100"},
        "ben": {"name": "Ben", "timezone": "UTC", "email": "ben@example.org"},
    },
    "roles": {"security": {"title": "Security", "primary": "ann", "backups": ["ben"]}},
}
NOTES = [
    "w3wp.exe children: cmd.exe, whoami.exe, net.exe",
    "outbound 443 to 203.0.113.7 seen in the proxy log",
    "no new local accounts on local-a",
    "scheduled task 'UpdateCheck' created 01:57, removed",
    "firewall change ticket 8812 raised",
    "legal informed; no personal data in scope so far",
]
WRAP_UP = "Wrap up"


@dataclass
class Seed:
    """A real run of the collect step and two real contact attempts, made by the CLI in a
    small incident of the same runbook (its command quick): what the big one repeats."""

    facts: list[EventDraft]
    run: list[EventDraft]  # run.started, a command.ran per host, run.finished
    contacts: list[EventDraft]
    evidence: Path


def copied(event: Event) -> EventDraft:
    return EventDraft(event.kind, event.actor, dict(event.data), event.step, event.host)


def make_seed(irtool: Irtool) -> Seed:
    runbook = yaml.safe_load(irtool.book.read_text())
    runbook["phases"][0]["steps"][0]["command"] = "echo {{ host.name }} has nothing to hide"
    book, contacts = irtool.work / "seed-runbook.yaml", irtool.work / "contacts.yaml"
    book.write_text(yaml.safe_dump(runbook, sort_keys=False))
    contacts.write_text(yaml.safe_dump(CONTACTS, sort_keys=False))
    seed = irtool.new(book, contacts)
    irtool.cli("incident", "run", seed, STEP)
    irtool.cli("incident", "reach", seed, "security", "--person", "ann", "--outcome", "no-answer")
    irtool.cli("incident", "reach", seed, "security", "--person", "ben", "--outcome", "reached")
    with Journal(irtool.folder(seed) / JOURNAL_FILE, seed) as journal:
        events = list(journal.events())

    def of(*wanted: str) -> list[EventDraft]:
        return [copied(e) for e in events if e.kind in wanted]

    found = Seed(
        of(kinds.HOST_FACTS),
        of(kinds.RUN_STARTED, kinds.COMMAND_RAN, kinds.RUN_FINISHED),
        of(kinds.CONTACT_ATTEMPTED),
        irtool.folder(seed) / EVIDENCE_DIR,
    )
    if len(found.run) != 2 + len(HOSTS) or len(found.contacts) != 2:
        raise BenchError(f"the seed incident {seed} holds another run or other contacts")
    return found


def grow(irtool: Irtool, incident: str, seed: Seed, events: int) -> None:
    """Append to `incident` until it holds `events` events, BIG_BATCH per transaction (a
    durable commit each): the hosts' first facts, then blocks drawn at random (fixed seed)."""
    shutil.copytree(seed.evidence, irtool.folder(incident) / EVIDENCE_DIR, dirs_exist_ok=True)
    with Journal(irtool.folder(incident) / JOURNAL_FILE, incident) as journal:
        drafts = to_append(seed, random.Random(20), journal.head()[0] + 1, events)
        while batch := list(itertools.islice(drafts, BIG_BATCH)):
            with journal.transaction() as tx:
                for draft in batch:
                    tx.append(draft)
        if journal.head()[0] != events:
            raise BenchError(f"{incident} holds {journal.head()[0]} events, not {events}")


def to_append(seed: Seed, rng: random.Random, first: int, last: int) -> Iterator[EventDraft]:
    """The events `first` to `last`: collection runs of the stream step (weight 12: run.started,
    a command.ran per host, run.finished), notes (5) and contact attempts (1); a block that
    would not end by `last` is a note instead, so that every run is finished."""
    seq, pending = first, list(seed.facts)
    while seq <= last:
        drafts, pending = pending or block(seed, rng), []
        if seq + len(drafts) - 1 > last:
            drafts = [note(rng)]
        run = seq  # a run is known by the seq of its run.started
        for draft in drafts:
            yield replace(draft, data={**draft.data, "run": run}) if "run" in draft.data else draft
            seq += 1


def block(seed: Seed, rng: random.Random) -> list[EventDraft]:
    chosen = rng.choices(["run", "note", "contact"], [12, 5, 1])[0]
    if chosen == "run":
        return list(seed.run)
    if chosen == "contact":
        return [rng.choice(seed.contacts)]
    return [note(rng)]


def note(rng: random.Random) -> EventDraft:
    return EventDraft(kinds.NOTE_ADDED, rng.choice(["ann", "ben"]), {"text": rng.choice(NOTES)})


class StepCursor:
    """The step list's cursor, between the two steps: its colour is learnt on the first step,
    where it starts; the step's detail beside the list follows it."""

    def __init__(self, term: Terminal) -> None:
        self.term, self.step = term, STEP_TITLE
        self.colour = self.colour_of(STEP_TITLE)
        if self.colour is None or self.colour_of(WRAP_UP) == self.colour:
            raise BenchError(f"no cursor in the step list:\n{term.text()}")

    def row(self, title: str) -> int | None:
        for y, line in enumerate(self.term.lines()):
            if line[:TABLE_WIDTH].strip()[2:].startswith(title[:20]):
                return y
        return None

    def colour_of(self, title: str) -> str | None:
        y = self.row(title)
        return None if y is None else self.term.background(0, y)

    def detail_of(self, title: str) -> bool:
        return any(line[TABLE_WIDTH + 1 :].startswith(f"{title}  [") for line in self.term.lines())

    def switch(self) -> tuple[float, float]:
        """down (or up) to the other step: seconds to the cursor there, and to its detail."""
        target = WRAP_UP if self.step == STEP_TITLE else STEP_TITLE
        key = "down" if target == WRAP_UP else "up"
        sent = self.term.press(key)
        moved, shown = self.term.wait_each(
            [lambda: self.colour_of(target) == self.colour, lambda: self.detail_of(target)],
            f"{key} to {target}",
            KEY_S,
        )
        self.step = target
        return moved - sent, max(moved, shown) - sent


@dataclass
class Tree:
    """One tree of irtool's code, run as ``python -m irtool open ID`` from the temporary
    directory, and how long each of its opens of the big incident took to draw the steps."""

    label: str
    env: dict[str, str]
    opens: list[float | None] = field(default_factory=list)  # None: not by the deadline

    def package(self, work: Path) -> Path:
        """The irtool package this tree's runs import."""
        found = subprocess.run(
            [sys.executable, "-c", "import irtool; print(irtool.__file__)"],
            cwd=work,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        return Path(found.stdout.strip()).parent

    def start(self, incident: str, work: Path) -> Terminal:
        return Terminal([sys.executable, "-m", "irtool", "open", incident], self.env, cwd=work)

    @property
    def gave_up(self) -> bool:
        return None in self.opens


def the_trees(work: Path, env: dict[str, str], before: Path | None) -> list[Tree]:
    """This tree, and the one `before` if given: each checked to import its own code."""
    env = {k: v for k, v in env.items() if k != "PYTHONPATH"}
    trees = [Tree("after (this tree)", env)]
    if before is not None:
        trees.append(Tree(f"before ({before})", {**env, "PYTHONPATH": str(before.resolve())}))
    for tree, root in zip(trees, [ROOT, before], strict=False):
        found = tree.package(work)
        if root is None or found != (root / "irtool").resolve():
            raise BenchError(f"{tree.label} imports {found}, not {root}/irtool")
    return trees


@dataclass
class Big:
    """What the opens of the big incident measured."""

    events: int
    build_s: float
    trees: list[Tree]
    checkpoint_bytes: int = 0  # as the first open wrote it
    rebuilt: list[int] = field(default_factory=list)  # later opens (1-based) that rewrote it
    # the step list, at once after the steps appeared (this tree's later opens)
    presses: Presses = field(
        default_factory=lambda: Presses(
            "step list: down/up right after the steps appear", wanted=BIG_PRESSES
        )
    )
    pressed_within: list[float] = field(default_factory=list)  # steps drawn to the last effect
    quits: list[float | None] = field(default_factory=list)  # ctrl+q to the exit, after those
    alone: tuple[float, float, int] = (math.nan, math.nan, 0)  # one process: open, records read
    alone_rebuilt: bool = False  # that open found the checkpoint stale and wrote another
    timeline_s: float | None = None  # t to the timeline's rows, at once after the steps
    timeline: Presses = field(
        default_factory=lambda: Presses(
            "timeline: down, once its rows are shown", wanted=TIMELINE_PRESSES
        )
    )

    def with_checkpoint(self, tree: Tree) -> list[float | None]:
        """The tree's later opens, but those of this tree that rewrote the checkpoint."""
        later = tree.opens[1:]
        if tree is not self.trees[0]:
            return later
        return [t for i, t in enumerate(later, start=1) if i not in self.rebuilt]


def drawn(term: Terminal, incident: str, deadline: float) -> float | None:
    """Launch to the step list drawn; None if not by `deadline` seconds."""
    try:
        seen = term.wait_for(lambda: incident_drawn(incident)(term), "the steps", deadline)
    except BenchError:
        if term.eof:
            raise
        return None
    return seen - term.started


def checkpoint_of(irtool: Irtool, incident: str) -> os.stat_result | None:
    """The checkpoint this tree keeps of the incident's standing state, if any."""
    path = Path(irtool.env["IRTOOL_HOME"]) / "checkpoints" / f"{incident}.state"
    with contextlib.suppress(FileNotFoundError):
        return path.stat()
    return None


def one_open(
    tree: Tree, irtool: Irtool, incident: str, deadline: float, presses: Presses | None
) -> tuple[float | None, float | None, float]:
    """Launch to the steps drawn (None: not by `deadline`); with `presses`, the step list's
    down/up at once; then ctrl+q. (drawn, ctrl+q to the exit, steps drawn to the last key's
    effect.)"""
    term = tree.start(incident, irtool.work)
    within = 0.0
    try:
        took = drawn(term, incident, deadline)
        if took is not None and presses is not None:
            own, cursor = OwnCpu(), StepCursor(term)
            for _ in range(BIG_PRESSES):
                moved, shown = cursor.switch()
                presses.cursor.append(moved)
                presses.times.append(shown)
            presses.bench_cpu = max(presses.bench_cpu, own.share())
            log("    step list, ms: " + " ".join(ms(t) for t in presses.times[-BIG_PRESSES:]))
            within = term.last_read - term.started - took
    finally:
        quit_s = term.quit(BIG_QUIT_S)
    return took, quit_s, within


def same(kept: os.stat_result | None, now: os.stat_result | None) -> bool:
    return kept is not None and now is not None and kept.st_mtime_ns == now.st_mtime_ns


RECORDS_TIMER = """\
import sys, time
from irtool.engine.session import IncidentSession
t = time.perf_counter()
session = IncidentSession.open(sys.argv[1], records=False)
opened = time.perf_counter() - t
records = session.state.records()
print(opened, time.perf_counter() - t - opened, len(records.evidence) + len(records.notes))
"""


def alone(tree: Tree, irtool: Irtool, incident: str) -> tuple[float, float, int]:
    """In one process, no screen: the session opened from the checkpoint, then its records
    read (what the TUI reads in the background once the steps are up)."""
    done = subprocess.run(
        [sys.executable, "-c", RECORDS_TIMER, incident],
        cwd=irtool.work,
        env=tree.env,
        capture_output=True,
        text=True,
        check=True,
    )
    opened, read, count = done.stdout.split()
    return float(opened), float(read), int(count)


def timeline_at_once(tree: Tree, irtool: Irtool, incident: str, big: Big) -> None:
    """Open; as soon as the steps are up, t, and down presses on the timeline."""
    term = tree.start(incident, irtool.work)
    try:
        if drawn(term, incident, BIG_DEADLINE_S) is None:
            return
        sent = term.press("t")
        try:
            seen = term.wait_for(
                lambda: timeline_count(term) is not None and highlighted_event(term) is not None,
                "the timeline",
                BIG_DEADLINE_S,
            )
        except BenchError:
            if term.eof:
                raise
            return
        big.timeline_s = seen - sent
        timeline_presses(term, big.timeline, lambda: True)
    finally:
        term.quit()


def open_big(irtool: Irtool, events: int, opens: int, before: Path | None, deadline: float) -> Big:
    log(f"writing a {events:,}-event incident ...")
    began = time.perf_counter()
    seed = make_seed(irtool)
    incident = irtool.new(contacts=irtool.work / "contacts.yaml")
    grow(irtool, incident, seed, events)
    big = Big(events, time.perf_counter() - began, the_trees(irtool.work, irtool.env, before))
    log(f"  {events:,} events in {big.build_s:.0f} s; opening it, first with no checkpoint:")
    if checkpoint_of(irtool, incident) is not None:
        raise BenchError(f"a checkpoint of {incident} before its first open")
    the_opens(big, irtool, incident, opens, deadline)
    log("  records read alone, and the timeline right after the steps appear ...")
    kept = checkpoint_of(irtool, incident)
    big.alone = alone(big.trees[0], irtool, incident)
    big.alone_rebuilt = not same(kept, checkpoint_of(irtool, incident))
    timeline_at_once(big.trees[0], irtool, incident, big)
    irtool.no_bugs()
    return big


def the_opens(big: Big, irtool: Irtool, incident: str, opens: int, deadline: float) -> None:
    """The first open, then `opens` more, each tree in turn; whether each later open of this
    tree left the checkpoint as it was is watched."""
    ours = big.trees[0]
    for round_ in range(opens + 1):
        for tree in big.trees:
            if tree.gave_up:
                continue
            later = tree is ours and round_ > 0  # this tree, with its checkpoint
            kept = checkpoint_of(irtool, incident)
            took, quit_s, within = one_open(
                tree, irtool, incident, deadline, big.presses if later else None
            )
            tree.opens.append(took)
            log(
                f"  {tree.label}: "
                + (f"over {deadline:.0f} s" if took is None else f"{ms(took)} ms")
            )
            if later:
                big.quits.append(quit_s)
                big.pressed_within.append(within)
                if not same(kept, checkpoint_of(irtool, incident)):
                    big.rebuilt.append(round_)
        if round_ == 0:
            found = checkpoint_of(irtool, incident)
            big.checkpoint_bytes = found.st_size if found else 0


# -- running and reporting -------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """Linear between the closest ranks (numpy's default); NaN for none."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1e3:.0f}"


def header(loadavg: tuple[tuple[float, ...], tuple[float, ...]]) -> None:
    import textual

    command = shlex.join([os.path.relpath(sys.executable), *sys.argv])
    print(f"command: {command}")
    print(
        f"{os.cpu_count()} cores, load average before {loadavg[0][0]:.2f}, after "
        f"{loadavg[1][0]:.2f}; Python {sys.version.split()[0]}, Textual {textual.__version__}; "
        f"{COLS}x{ROWS} pty, TERM=xterm-256color, screen read with pyte {pyte_version()}"
    )


def report(
    args: argparse.Namespace, launches: list[Launch], imports: dict[str, float], load: Load
) -> list[str]:
    """Parts 1 and 2 printed; their target lines returned."""
    minimal = statistics.median(launches[0].times)
    print(f"launch to first frame, {args.launches} runs each, interleaved:")
    print(f"  {'program':<52} {'median ms':>9} {'p90 ms':>7} {'ratio':>6}   each run (ms)")
    for launch in launches:
        median = statistics.median(launch.times)
        each = " ".join(ms(t) for t in launch.times)
        print(
            f"  {launch.label:<52} {ms(median):>9} {ms(percentile(launch.times, 90)):>7} "
            f"{median / minimal:5.2f}x   {each}"
        )
    print(
        "  imports alone, fresh interpreter, median of 3: "
        + "; ".join(f"{label} {ms(seconds)} ms" for label, seconds in imports.items())
    )
    print(
        f"key latency, key written to the pty -> its effect on screen; {args.events:,} note "
        f"events in the journal; timeline opened with t in {ms(load.timeline_open_s)} ms:"
    )
    print(
        f"  {'screen: keys, load':<56} {'presses':>7} {'p50':>5} {'p95':>5} {'max':>5}"
        f" {'cursor p50':>10} {'p95':>5} {'bench cpu':>9}   stream"
    )
    for presses, stream in (
        (load.idle, None),
        (load.run, load.run_stream),
        (load.run_over, None),
        (load.cli, load.cli_stream),
    ):
        times, cursor = presses.times, presses.cursor
        rate = f"{stream.mib_per_s:.2f} MiB/s over {stream.seconds:.1f} s" if stream else "-"
        print(
            f"  {presses.label:<56} {len(times):>7} {ms(percentile(times, 50)):>5} "
            f"{ms(percentile(times, 95)):>5} {ms(percentile(times, 100)):>5} "
            f"{ms(percentile(cursor, 50)):>10} {ms(percentile(cursor, 95)):>5} "
            f"{presses.bench_cpu:>9.0%}   {rate}"
        )
        if len(times) < presses.wanted:
            print(f"    only {len(times)} of {presses.wanted} presses landed while it streamed")
    print(
        "  (in ms. p50/p95/max: until the whole effect shows; cursor: until the highlighted row"
        " moves. On the run screen the whole effect is the cursor on the other host and the"
        " output pane showing that host's lines. bench cpu: this process, mostly pyte, in"
        " shares of one core, taken from the machine the app runs on.)"
    )
    targets = []
    ours = statistics.median(launches[1].times)
    usable = statistics.median(launches[2].times)
    ratio = ours / minimal
    targets.append(
        f"  launch: irtool open first frame / minimal app = {ms(ours)} / {ms(minimal)} ms = "
        f"{ratio:.2f}x (target <= 1.5x): {verdict(ratio <= 1.5)}; steps drawn "
        f"{ms(usable)} ms = {usable / minimal:.2f}x (not a target)"
    )
    for presses in (load.run, load.cli):
        p95 = percentile(presses.times, 95)
        targets.append(
            f"  key latency p95, {presses.label} = {ms(p95)} ms (target < 100 ms): "
            f"{verdict(p95 < 0.1)}"
        )
    return targets


def over(values: Sequence[float | None], deadline: float) -> str:
    """The median in ms, where an open not drawn by the deadline counts as longer than any."""
    if not values:
        return "-"
    ordered = sorted(values, key=lambda v: math.inf if v is None else v)
    middle = ordered[(len(ordered) - 1) // 2 : len(ordered) // 2 + 1]
    if None in middle:
        return f"over {deadline:.0f} s"
    return ms(statistics.mean(v for v in middle if v is not None))


def report_big(big: Big, deadline: float) -> list[str]:
    """Part 3 printed; its target line returned."""
    print(
        f"opening a {big.events:,}-event incident (written in {big.build_s:.0f} s): "
        f"python -m irtool open ID, launch to the step list drawn (deadline {deadline:.0f} s):"
    )
    print(f"  {'tree':<44} {'first open':>11} {'later opens':>12}   each later open (ms)")
    for tree in big.trees:
        first, later = tree.opens[:1], big.with_checkpoint(tree)
        each = " ".join(
            ("over" if t is None else ms(t))
            + ("*" if tree is big.trees[0] and i in big.rebuilt else "")
            for i, t in enumerate(tree.opens[1:], start=1)
        )
        print(
            f"  {tree.label:<44} {over(first, deadline):>11} {over(later, deadline):>12}   {each}"
        )
    print(
        "  (ms; later opens: their median. The first open of this tree finds no checkpoint,"
        " folds every event and writes one; the later ones fold only the events since."
        " The tree before has none: every open of it folds every event.)"
    )
    rebuilt = (
        "rewritten by the later open(s) marked *, not counted in the median: the fold's code"
        " changed during the run (any edit under irtool/engine, model or journal), or the"
        " checkpoint did not hold"
        if big.rebuilt
        else "left as it was by every later open"
    )
    written = (
        f"{big.checkpoint_bytes / 1e3:.0f} kB, written by the first open"
        if big.checkpoint_bytes
        else "none written by the first open"
    )
    print(f"  checkpoint: {written}; {rebuilt}")
    opened, read, count = big.alone
    how = (
        "found the checkpoint stale (the fold's code changed during the run), folded every"
        " event and wrote another"
        if big.alone_rebuilt
        else "opened from the checkpoint"
    )
    print(
        f"  this tree in one process, no screen: the session {how} in {ms(opened)} ms, then its"
        f" records ({count:,} notes and evidence) read in {ms(read)} ms: what the TUI reads in"
        " the background once the steps are up"
    )
    within = max(big.pressed_within, default=math.nan)
    print(
        f"  keys at once after the steps appear (this tree; the last effect seen"
        f" {within:.1f} s after the steps at most):"
    )
    print(
        f"  {'screen: keys':<56} {'presses':>7} {'p50':>5} {'p95':>5} {'max':>5}"
        f" {'cursor p50':>10} {'p95':>5} {'bench cpu':>9}"
    )
    for presses in (big.presses, big.timeline):
        times, cursor = presses.times, presses.cursor
        print(
            f"  {presses.label:<56} {len(times):>7} {ms(percentile(times, 50)):>5} "
            f"{ms(percentile(times, 95)):>5} {ms(percentile(times, 100)):>5} "
            f"{ms(percentile(cursor, 50)):>10} {ms(percentile(cursor, 95)):>5} "
            f"{presses.bench_cpu:>9.0%}"
        )
    shown = "not shown" if big.timeline_s is None else f"{ms(big.timeline_s)} ms"
    quits = " ".join("killed" if q is None else ms(q) for q in big.quits)
    print(
        f"  (ms. step list: until the cursor is on the other step and its detail shows. t to"
        f" the timeline's rows and count: {shown}, then home and down. ctrl+q to the exit,"
        f" right after the step-list presses: {quits})"
    )
    after = big.with_checkpoint(big.trees[0])
    median = over(after, deadline)
    drawn_s = [t for t in after if t is not None]
    ok = bool(after) and len(drawn_s) == len(after) and statistics.median(drawn_s) <= 2.0
    return [
        f"  steps drawn at {big.events:,} events, this tree's later opens, median = {median}"
        f" ms (target <= 2000 ms): {verdict(ok)}"
    ]


def pyte_version() -> str:
    from importlib.metadata import version

    return version("pyte")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--launches", type=int, default=10, help="first frames timed per program")
    parser.add_argument("--presses", type=int, default=200, help="key presses per screen")
    parser.add_argument("--events", type=int, default=50_000, help="events in the journal")
    parser.add_argument(
        "--stream-seconds", type=float, default=40.0, help="how long the 10 MiB take to arrive"
    )
    parser.add_argument(
        "--big-events", type=int, default=1_000_000, help="events of 3.'s incident (0: no 3.)"
    )
    parser.add_argument("--big-opens", type=int, default=5, help="3.: opens after the first")
    parser.add_argument(
        "--before", type=Path, help="3.: also open with this tree (git worktree add DIR 9d8e20a)"
    )
    parser.add_argument("--only-big", action="store_true", help="3. alone")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="2 launches, 20 presses, 5,000 events, 5 s stream; 20,000 events and 2 opens in 3.",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.launches, args.presses, args.events, args.stream_seconds = 2, 20, 5000, 5.0
        args.big_events, args.big_opens = 20_000, 2
    before = os.getloadavg()
    targets: list[str] = []
    with tempfile.TemporaryDirectory(prefix="irtool-bench-tui-") as tmp:
        work = Path(tmp)
        env = pty_env(work)
        book, inventory = write_files(work, args.stream_seconds)
        irtool = Irtool(work, env, book, inventory)
        irtool.cli("validate", str(book), str(inventory))
        if not args.only_big:
            fresh, loaded = irtool.new(), irtool.new()
            log(f"writing {args.events:,} events into {loaded} ...")
            irtool.load(loaded, args.events)
            launches = the_launches(irtool, fresh, loaded, args.events)
            log(f"launch to first frame, {args.launches} times each ...")
            measure_launches(launches, env, args.launches)
            log("imports alone ...")
            imports = {label: import_seconds(code, env) for label, code in IMPORTS.items()}
            log(f"key latency, {args.presses} presses per screen ...")
            load = under_load(irtool, loaded, args.presses, args.stream_seconds)
            irtool.no_bugs()
        big = None
        if args.big_events:
            big = open_big(irtool, args.big_events, args.big_opens, args.before, BIG_DEADLINE_S)
    header((before, os.getloadavg()))
    if not args.only_big:
        targets += report(args, launches, imports, load)
    if big is not None:
        targets += report_big(big, BIG_DEADLINE_S)
    print("targets:")
    for line in targets:
        print(line)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as failed:
        print(f"bench/tui.py: FAILED: {failed}", file=sys.stderr)
        sys.exit(1)
