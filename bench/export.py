"""Export speed and memory: an incident of 100,000 journal events (or 1,000,000), in every
export format, side by side, and beside the code before streaming.

Run (from the repository root):

    .venv/bin/python bench/export.py [--events 100000] [--repeat 3] [--quick] [--cli-only]
        [--before DIR]

Everything lives in one temporary directory under the working directory; IRTOOL_HOME points
into it.

The incident: first the live incident of the export tests (tests.support.recorded
``live_incident``: every live event kind, made by the real session and runner with the local
transport), then a second incident whose journal replays it and grows it to ``--events``
through the real journal (``Journal.transaction``, 1000 events a transaction, a clock moving
2 s an event, so about 55 hours for 100,000). It holds, in order: the live incident's events
but its closing one; then blocks drawn at random (fixed seed) until ``--events`` less one;
then the closing event. The blocks, each a copy of the live incident's own events with its
run and request numbers, times and actors brought up to date:

* collection runs of ``collect-state`` on both hosts (weight 12): run.started, two command.ran
  per host, run.finished; web02 unreachable in one run of ten (host.failed, in place of its
  two commands); a host.warning from web01 in one run of ten;
* notes (5): note.added, one in ten back-dated ten minutes, one in twenty an ``action:`` item;
* contact attempts (1), fetched files (1, file.fetched of the IIS log);
* the standing meeting (0.3): meeting.opened, meeting.closed with its outcomes and the next
  reconvene time;
* containment (0.1): action.requested, action.approved, the action's run, its rollback's run,
  action.rolled_back;
* corrections of the latest note (0.1); shift handovers (0.05).

That comes to about 56% command.ran and 1% file.fetched, 30% run.started and run.finished,
6% notes; the exact mix of the run is printed. Every command.ran and file.fetched names the
live incident's own evidence files (copied beside the new journal), so the evidence check
passes; as it hashes each distinct file once, it costs next to nothing here, unlike in an
incident whose every run collected new output. Before measuring, the incident is read
(``read_incident``: intact, ``--events`` events).

Then, ``--repeat`` times, interleaved: ``read_incident`` (verify the chain, fold the standing
state, check the evidence), timed; each format of ``irtool.export.formats.FORMATS`` (whatever
it holds when this runs) timed alone on the incident just read, written to a file; and
``irtool export ID --format F -o FILE`` as a process, its wall time from start to exit
(interpreter start, imports, read, format, the durable write) and its peak RSS (``os.wait4``
in a small wrapper process: see ``CLI_WRAPPER``). The CLI's file is compared with the bytes
the format function wrote; a difference is printed as a NOTE.

``--cli-only``: the format functions are not timed alone (their column shows ``-``); the CLI
runs are, and the files of the code now and before compared. At 1,000,000 events this saves a
third of the run.

``--before DIR``: the same CLI run is also made with ``PYTHONPATH=DIR``, a checkout of the tree
before exports streamed (``git worktree add DIR 9d8e20a``), right after the current one, one
at a time (the old code takes up to 7.5 GB at 1,000,000 events); its time, peak RSS and the
ratios are printed beside, and its file must hold the same bytes (else a NOTE). Both CLIs run
from the temporary directory, so ``python -m irtool`` finds no package in the working
directory before the one PYTHONPATH names; which tree each imports is checked first.

Medians are printed; MB is 10^6 bytes. The exit status is 0 when every export worked, 1 when
one failed.

``--quick``: 2,000 events, one repeat: a smoke test (tests/test_bench_export_smoke.py).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from irtool.engine import kinds  # noqa: E402
from irtool.export.formats import FORMATS  # noqa: E402
from irtool.export.recorded import Recorded, read_incident  # noqa: E402
from irtool.journal import Event, EventDraft, Journal  # noqa: E402
from irtool.journal.events import parse_moment, utc_text  # noqa: E402
from irtool.journal.incidents import (  # noqa: E402
    EVIDENCE_DIR,
    create_incident_dir,
    incident_dir,
    journal_path,
    new_incident_id,
)
from tests.support.recorded import live_incident  # noqa: E402

BATCH = 1000  # events per journal transaction while building
TICK = timedelta(seconds=2)  # the building clock's step: one event every 2 s
MB = 1_000_000
READ_LABEL = "read (verify + fold + evidence check)"
RESPONDERS = ["ann", "ben", "cy"]
NOTES = [
    "w3wp.exe children: cmd.exe, whoami.exe, net.exe",
    "outbound 443 to 203.0.113.7 seen in the proxy log",
    "no new local accounts on web01",
    "the upload handler accepts .aspx: confirmed with the vendor",
    "scheduled task 'UpdateCheck' created 01:57, removed",
    "firewall change ticket 8812 raised",
    "legal informed; no personal data in scope so far",
    "the backup of 20 Nov is clean (hashes match)",
]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class BenchError(RuntimeError):
    """A step did not work: its numbers would mean nothing."""


# -- building the incident --------------------------------------------------------------


class Tick:
    """The journal's clock while building: each event 2 s after the one before."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += TICK
        return self.now


@dataclass
class Seed:
    """The live incident's events, which the blocks copy."""

    events: list[Event]

    def first(self, kind: str, **data: Any) -> Event:
        for event in self.events:
            if event.kind == kind and all(event.data.get(k) == v for k, v in data.items()):
                return event
        raise BenchError(f"the live incident has no {kind} {data or ''}")

    def all(self, kind: str, **data: Any) -> list[Event]:
        return [
            e
            for e in self.events
            if e.kind == kind and all(e.data.get(k) == v for k, v in data.items())
        ]

    def between(self, first: str, last: str) -> list[Event]:
        """The events from the first `first` through the first `last` after it."""
        start = self.events.index(self.first(first))
        end = next(i for i, e in enumerate(self.events) if i > start and e.kind == last)
        return self.events[start : end + 1]


def draft(event: Event, *, actor: str | None = None, **data: Any) -> EventDraft:
    """A copy of a recorded event to append again, with some of its data changed."""
    return EventDraft(
        event.kind, actor or event.actor, {**event.data, **data}, event.step, event.host
    )


@dataclass
class Blocks:
    """The blocks the journal grows by; each returns the drafts to append from `seq` on."""

    seed: Seed
    rng: random.Random
    tick: Tick
    note_seq: int = 0
    commander: str = "ann"
    made: list[tuple[Callable[[int], list[EventDraft]], float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.made = [
            (self.collect_run, 12),
            (self.note, 5),
            (self.contact, 1),
            (self.fetch, 1),
            (self.meeting, 0.3),
            (self.containment, 0.1),
            (self.correction, 0.1),
            (self.handover, 0.05),
        ]

    def choose(self) -> Callable[[int], list[EventDraft]]:
        blocks = [block for block, _ in self.made]
        return self.rng.choices(blocks, [weight for _, weight in self.made])[0]

    def moment(self, ahead: int = 0) -> str:
        return utc_text(self.tick.now + TICK * (ahead + 1))

    def collect_run(self, seq: int) -> list[EventDraft]:
        started = self.seed.first(kinds.RUN_STARTED, purpose="collect")
        finished = self.seed.first(kinds.RUN_FINISHED, purpose="collect")
        warning = self.seed.first(kinds.HOST_WARNING)
        failed = self.seed.first(kinds.HOST_FAILED)
        on_web01 = self.seed.all(kinds.COMMAND_RAN, purpose="collect")
        reachable = self.rng.random() >= 0.1
        at = self.moment(1)
        drafts = [draft(started, hosts=["web01", "web02"])]
        if self.rng.random() < 0.1:
            drafts.append(draft(warning, run=seq))
        for command in on_web01:
            drafts.append(draft(command, run=seq, started_at=at, ended_at=at))
        if reachable:
            for command in on_web01:
                drafts.append(
                    EventDraft(
                        command.kind,
                        command.actor,
                        {
                            **command.data,
                            "run": seq,
                            "address": "192.0.2.12",
                            "command": command.data["command"].replace("web01", "web02"),
                            "identity": "ssh-ed25519 SHA256:web02-host-key",
                            "transport": "ssh",
                            "port": 22,
                            "started_at": at,
                            "ended_at": at,
                        },
                        command.step,
                        "web02",
                    )
                )
            drafts.append(draft(finished, run=seq, ok=["web01", "web02"], failed={}))
        else:
            drafts.append(draft(failed, run=seq))
            drafts.append(draft(finished, run=seq))
        return drafts

    def note(self, seq: int) -> list[EventDraft]:
        self.note_seq = seq
        text = self.rng.choice(NOTES)
        if self.rng.random() < 0.05:
            text = f"action: {text}"
        back = self.tick.now - timedelta(minutes=10) if self.rng.random() < 0.1 else None
        actor = self.rng.choice(RESPONDERS)
        return [EventDraft(kinds.NOTE_ADDED, actor, {"text": text}, occurred_at=back)]

    def contact(self, seq: int) -> list[EventDraft]:
        return [draft(self.rng.choice(self.seed.all(kinds.CONTACT_ATTEMPTED)))]

    def fetch(self, seq: int) -> list[EventDraft]:
        at = self.moment()
        return [draft(self.seed.first(kinds.FILE_FETCHED), started_at=at, ended_at=at)]

    def meeting(self, seq: int) -> list[EventDraft]:
        opened = self.seed.first(kinds.MEETING_OPENED)
        closed = self.seed.first(kinds.MEETING_CLOSED)
        reconvene = utc_text(self.tick.now + timedelta(hours=2))
        return [
            draft(opened, actor=self.commander),
            draft(closed, actor=self.commander, reconvene_at=reconvene),
        ]

    def containment(self, seq: int) -> list[EventDraft]:
        drafts = []
        run = seq
        for i, event in enumerate(
            self.seed.between(kinds.ACTION_REQUESTED, kinds.ACTION_ROLLED_BACK)
        ):
            if event.kind == kinds.RUN_STARTED:
                run = seq + i
            if event.kind == kinds.ACTION_APPROVED:
                drafts.append(draft(event, request=seq))
            elif "run" in event.data:
                at = self.moment(i)
                changes = {"started_at": at, "ended_at": at} if "started_at" in event.data else {}
                drafts.append(draft(event, run=run, **changes))
            else:
                drafts.append(draft(event))
        return drafts

    def correction(self, seq: int) -> list[EventDraft]:
        if not self.note_seq:
            return self.note(seq)
        template = self.seed.first(kinds.EVENT_CORRECTED)
        return [
            draft(
                template,
                corrects=self.note_seq,
                reason="wrong host named",
                replacement={"text": "the same, on web02"},
            )
        ]

    def handover(self, seq: int) -> list[EventDraft]:
        after = RESPONDERS[(RESPONDERS.index(self.commander) + 1) % len(RESPONDERS)]
        template = self.seed.first(kinds.COMMAND_HANDED_OVER)
        before, self.commander = self.commander, after
        return [draft(template, actor=before, **{"from": before, "to": after})]


def again(event: Event) -> EventDraft:
    """A seed event as it was, back-dated if it was."""
    occurred = parse_moment(event.occurred_at) if event.occurred_at != event.recorded_at else None
    return EventDraft(event.kind, event.actor, event.data, event.step, event.host, occurred)


def build(work: Path, events: int) -> str:
    """The live incident, grown to `events` events; returns its id."""
    seed_folder = work / "seed"
    seed_folder.mkdir()
    with contextlib.chdir(seed_folder):
        seed_id = live_incident(Path("."))
    with Journal(journal_path(seed_id), seed_id) as journal:
        recorded = list(journal.events())
    # Up to its closing: what the team wrote after closing (a late answer) is not drawn again.
    closed = [i for i, e in enumerate(recorded) if e.kind == kinds.INCIDENT_CLOSED]
    seed = Seed(recorded[: closed[-1] + 1] if closed else recorded)
    closing = seed.events[-1]
    if closing.kind != kinds.INCIDENT_CLOSED:
        raise BenchError(f"the live incident ends with {closing.kind}, not its closing")
    opened = parse_moment(seed.events[0].occurred_at)
    incident = new_incident_id(opened + timedelta(seconds=1))
    create_incident_dir(incident)
    shutil.copytree(
        incident_dir(seed_id) / EVIDENCE_DIR,
        incident_dir(incident) / EVIDENCE_DIR,
        dirs_exist_ok=True,
    )
    tick = Tick(opened - TICK)
    blocks = Blocks(seed, random.Random(20261121), tick)
    head = [again(e) for e in seed.events[:-1]]
    if events <= len(head):
        raise BenchError(
            f"--events must be over {len(head)}: the live incident has {len(head) + 1}"
        )

    def todo() -> Iterator[EventDraft]:
        """Built as they are appended, so each block reads the clock where the journal is."""
        yield from head
        seq = len(head) + 1
        while seq < events:
            drafts = blocks.choose()(seq)
            if seq + len(drafts) > events - 1:  # only the closing event comes after
                drafts = blocks.note(seq)
            yield from drafts
            seq += len(drafts)
        yield again(closing)

    pending, done = todo(), False
    with Journal(journal_path(incident), incident, create=True, clock=tick) as journal:
        while not done:
            with journal.transaction() as tx:
                for _ in range(BATCH):
                    one = next(pending, None)
                    if one is None:
                        done = True
                        break
                    tx.append(one)
    return incident


# -- measuring ------------------------------------------------------------------------------


@dataclass
class Measured:
    """One format: the function alone, and the CLI around it (now, and before if asked)."""

    name: str
    format_s: list[float] = field(default_factory=list)
    cli_s: list[float] = field(default_factory=list)
    cli_rss: list[int] = field(default_factory=list)  # bytes
    before_s: list[float] = field(default_factory=list)
    before_rss: list[int] = field(default_factory=list)  # bytes
    size: int = 0  # bytes of the output
    differed: int = 0  # runs whose CLI file was not the format function's output
    before_differed: int = 0  # runs whose file from the code before held other bytes


def irtool_argv() -> list[str]:
    # `-m`: the same entry for the code now and before (PYTHONPATH chooses the tree).
    return [sys.executable, "-m", "irtool"]


# Run from a small wrapper process, which reports its one child's rusage: on Linux a child's
# ru_maxrss starts at the peak RSS of the process it was forked from (exec records the old
# address space's high-water mark, and subprocess forks with vfork), and this process holds
# the whole incident and its exports.
CLI_WRAPPER = """\
import os, subprocess, sys, time
start = time.perf_counter()
child = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(child.pid, 0)
print(time.perf_counter() - start, os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""


def tree_env(before: Path | None) -> dict[str, str]:
    """The environment of a CLI run: the code now, or the tree `before` ahead of it."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if before is not None:
        env["PYTHONPATH"] = str(before)
    return env


def imported_from(work: Path, before: Path | None) -> Path:
    """The irtool package a CLI run imports, from where it runs."""
    done = subprocess.run(
        [sys.executable, "-c", "import irtool; print(irtool.__file__)"],
        cwd=work,
        env=tree_env(before),
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(done.stdout.strip()).parent


def cli_export(
    incident: str, form: str, output: Path, work: Path, before: Path | None = None
) -> tuple[float, int]:
    """`irtool export ID --format F -o FILE` as a process: (wall seconds, peak RSS in bytes)."""
    errors = work / "cli.stderr"  # a file: a full pipe would stall the export
    argv = [*irtool_argv(), "export", incident, "--format", form, "-o", str(output)]
    with errors.open("w") as stderr:
        wrapper = subprocess.run(
            [sys.executable, "-c", CLI_WRAPPER, *argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            check=False,
            cwd=work,
            env=tree_env(before),
        )
    try:
        seconds, status, maxrss = wrapper.stdout.split()
    except ValueError:
        raise BenchError(
            f"the wrapper around {shlex.join(argv)} said: {wrapper.stdout!r}\n{errors.read_text()}"
        ) from None
    if int(status) != 0:
        raise BenchError(f"{shlex.join(argv)}: exit {status}\n{errors.read_text()}")
    # ru_maxrss: kilobytes on Linux, bytes on macOS
    rss = int(maxrss) if sys.platform == "darwin" else int(maxrss) * 1024
    return float(seconds), rss


def digest(path: Path) -> str:
    """The file's SHA-256, read a megabyte at a time (a 1M-event json is over a gigabyte)."""
    found = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            found.update(chunk)
    return found.hexdigest()


def timed_read(incident: str, events: int) -> tuple[float, Recorded]:
    start = time.perf_counter()
    recorded = read_incident(incident)
    seconds = time.perf_counter() - start
    if not recorded.intact or recorded.events_read != events:
        problems = "; ".join(recorded.broken()) or "intact"
        recorded.close()
        raise BenchError(f"read {recorded.events_read} events of {events}: {problems}")
    return seconds, recorded


def write_format(recorded: Recorded, name: str, path: Path) -> float:
    """The format function alone, writing to a file as the CLI does: its seconds."""
    start = time.perf_counter()
    with path.open("w", encoding="utf-8", newline="") as out:
        FORMATS[name](recorded, out)
    return time.perf_counter() - start


def measure(
    incident: str, events: int, repeat: int, work: Path, before: Path | None, cli_only: bool
) -> tuple[list[float], list[Measured]]:
    reads: list[float] = []
    measured = [Measured(name) for name in FORMATS]
    ours, output = work / "format.out", work / "export.out"
    for round_ in range(1, repeat + 1):
        seconds, recorded = timed_read(incident, events)
        reads.append(seconds)
        with recorded:
            for m in measured:
                expected = None
                if not cli_only:
                    m.format_s.append(write_format(recorded, m.name, ours))
                    expected = digest(ours)
                    ours.unlink()
                seconds, rss = cli_export(incident, m.name, output, work)
                m.cli_s.append(seconds)
                m.cli_rss.append(rss)
                m.size = output.stat().st_size
                if not m.size:
                    raise BenchError(f"the {m.name} export is empty")
                if expected is not None and digest(output) != expected:
                    m.differed += 1
                    log(f"  {m.name}: the CLI's file differs from the format function's output")
                expected = expected or digest(output)
                output.unlink()
                if before is None:
                    continue
                seconds, rss = cli_export(incident, m.name, output, work, before)
                m.before_s.append(seconds)
                m.before_rss.append(rss)
                if digest(output) != expected:
                    m.before_differed += 1
                    log(f"  {m.name}: the code before wrote other bytes")
                output.unlink()
                log(
                    f"    {m.name}: cli {m.cli_s[-1]:.2f} s {m.cli_rss[-1] / MB:.0f} MB; "
                    f"before {m.before_s[-1]:.2f} s {m.before_rss[-1] / MB:.0f} MB"
                )
        each = ", ".join(
            f"{m.name} {m.format_s[-1] if m.format_s else float('nan'):.2f}/{m.cli_s[-1]:.2f} s"
            for m in measured
        )
        log(f"  round {round_} of {repeat}: read {reads[-1]:.2f} s; format/cli {each}")
    return reads, measured


# -- reporting ------------------------------------------------------------------------------


def mix(recorded: Recorded) -> str:
    counts: Counter[str] = recorded.counts
    total = recorded.events_read
    return ", ".join(
        f"{kind} {count / total:.1%}" if count / total >= 0.001 else f"{kind} {count}"
        for kind, count in counts.most_common()
    )


def report(
    args: argparse.Namespace,
    built_s: float,
    kinds_mix: str,
    reads: list[float],
    measured: list[Measured],
) -> None:
    command = shlex.join([os.path.relpath(sys.executable), *sys.argv])
    print(f"command: {command}")
    print(
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; "
        f"Python {sys.version.split()[0]}"
    )
    print(f"incident of {args.events:,} events, built in {built_s:.1f} s; its events:")
    print(f"  {kinds_mix}")
    print(f"median of {args.repeat} run(s):")
    read = statistics.median(reads)
    print(f"  {READ_LABEL}  {read:.3f} s  {args.events / read:,.0f} events/s")
    width = max(len(m.name) for m in measured)
    for m in measured:
        cli, rss = statistics.median(m.cli_s), statistics.median(m.cli_rss) / MB
        if m.format_s:
            fmt = statistics.median(m.format_s)
            alone = f"format {fmt:7.3f} s"
            rate = f"{args.events / fmt:>11,.0f} events/s"
        else:  # --cli-only
            alone, rate = "format       - s", f"{'-':>11} events/s"
        print(
            f"  {m.name:<{width}}  {alone}  cli {cli:7.3f} s  "
            f"{m.size / MB:8.1f} MB  {rate}  peak RSS {rss:6.0f} MB"
        )
    if args.before:
        print(f"the code before ({args.before}), the same CLI run, median of {args.repeat}:")
        for m in measured:
            was_s, was_rss = statistics.median(m.before_s), statistics.median(m.before_rss)
            now_s, now_rss = statistics.median(m.cli_s), statistics.median(m.cli_rss)
            print(
                f"  {m.name:<{width}}  before cli {was_s:7.3f} s  peak RSS {was_rss / MB:6.0f} MB"
                f"  |  now/before: time {now_s / was_s:4.2f}x  peak RSS {now_rss / was_rss:4.2f}x"
                f"  |  RSS per event before {was_rss / args.events / 1000:5.2f} KB,"
                f" now {now_rss / args.events / 1000:5.2f} KB"
            )
    print(
        "  (format: the format function alone, on the incident already read, to a file;"
        " events/s: of the format alone;\n   cli: `irtool export ID --format F -o FILE` as a"
        " process, start to exit: interpreter, imports,\n   read, format, durable write; peak"
        " RSS: of that process; MB: 10^6 bytes; KB: 10^3 bytes)"
    )
    for m in measured:
        if m.differed:
            print(
                f"  NOTE: {m.name}: in {m.differed} of {args.repeat} run(s) the CLI wrote other"
                " bytes than the format function gave (irtool/ edited during the run?)"
            )
        if m.before_differed:
            print(
                f"  NOTE: {m.name}: in {m.before_differed} of {args.repeat} run(s) the code before"
                " wrote other bytes than the code now"
            )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=100_000, help="events in the journal")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement")
    parser.add_argument("--quick", action="store_true", help="2,000 events, one repeat")
    parser.add_argument(
        "--cli-only",
        action="store_true",
        help="time only the CLI runs, not each format function alone (saves time at 1M)",
    )
    parser.add_argument(
        "--before",
        type=Path,
        help="a checkout of the tree before exports streamed: its CLI is measured beside",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.events, args.repeat = 2000, 1
    with tempfile.TemporaryDirectory(prefix="irtool-bench-export-", dir=Path.cwd()) as tmp:
        work = Path(tmp)
        os.environ["IRTOOL_HOME"] = str(work / "home")
        log(f"building an incident of {args.events:,} events ...")
        start = time.perf_counter()
        incident = build(work, args.events)
        built_s = time.perf_counter() - start
        if args.before is not None:
            args.before = args.before.resolve()
            for tree, expected in ((None, ROOT), (args.before, args.before)):
                found = imported_from(work, tree)
                if found != expected / "irtool":
                    raise BenchError(f"the CLI imports {found}, not {expected / 'irtool'}")
        _, recorded = timed_read(incident, args.events)
        with recorded:
            kinds_mix = mix(recorded)
        log(f"  built in {built_s:.1f} s; measuring, {args.repeat} round(s) ...")
        reads, measured = measure(
            incident, args.events, args.repeat, work, args.before, args.cli_only
        )
    report(args, built_s, kinds_mix, reads, measured)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as failed:
        print(f"bench/export.py: FAILED: {failed}", file=sys.stderr)
        sys.exit(1)
