"""Team mode's journal on PostgreSQL beside the SQLite journal: durable appends per second with
one and with several writer processes and their latency, what signing every event costs, and
how soon another responder's incident state holds each append (notify-to-state).

Run (from the repository root; it starts its own PostgreSQL, Debian's, on 127.0.0.1, and one
ssh-agent per writer):

    .venv/bin/python bench/team.py [--writers 5] [--events 120] [--rounds 5] [--json] [--quick]

Every run has the same workload (each writer process appends `--events` notes, `note.added`, to
one shared incident opened as `irtool incident new` opens one: the shipped rogue-server runbook
and contacts.example.yaml) and the same durability (a durable commit per event: PostgreSQL
with fsync and synchronous_commit on, SQLite in WAL with synchronous=FULL).

Appends per second, with 1 and with `--writers` writer processes, nothing else running:

* bare: the prototype the issue measured (1,031 appends/s with four writers, p50 3.5 ms, on its
  machine): the advisory lock, the UNIQUE constraints and the NOTIFY around a bare INSERT of
  the same data, with no chain;
* sqlite: the SQLite journal (`Journal.append`), each writer its own process on the same file,
  as responders sharing one machine;
* pg: `PgJournal.append` (the lock, the head read, the server's clock, the hash chain, the
  INSERT, the NOTIFY);
* team: `TeamJournal.append`, what the engine writes through in team mode: `PgJournal` plus
  each writer's own SQLite copy on a "machine" of its own (its own IRTOOL_HOME), brought up to
  date under the incident's lock and again after the commit;
* team+signed: the same, each event signed as its writer by `AgentSigner` (the engine's
  signer), each writer with its own key in its own ssh-agent, the contacts file listing every
  key and requiring signatures. The signer is timed around each call: "sign ms" is one event's
  signature (two requests to the agent on a connection of their own: its keys, then the
  signature), made while the incident's lock is held.

appends/s counts all writers' appends from the moment every writer was ready (connected, its
copy pulled, its key found) to the last one's end, and is the median of `--rounds` rounds,
which interleave every row so that a slow spell of the machine is shared (the range of the
rounds is shown: this is a shared VM); p50/p99 are of one append, over every round. `x bare`
is a row's appends/s over bare's with as many writers, and every ratio is the median of the
rounds' own ratios: a round's runs share the machine's state of the moment, and on a shared
VM whole rounds run fast or slow together.

Notify-to-state, with `--writers` writers (pg's, the fastest, and team's, the engine's) and
one more process: a responder's screen on a machine of its own. It opens the incident as the
UI does (`IncidentSession.open`: a `TeamJournal` with its own copy, the state folded), and
`journal.watch`es it (a `Listener`); told of an event it does not hold yet, it does what the
UI's poll does, `session.refresh()`: `events(after=state.last_seq)` (which first copies the
new events into its SQLite copy, durably) and `state.apply` each, on the listener's thread.
An event's delay runs from its commit to the end of the fold of the batch that brought it in.
Nothing is drawn and there is no hop to a UI thread: this is notify-to-state, not
notify-to-screen; a repaint comes on top. Every process reads one clock (`time.time()`, one
machine), and the commit's moment is bracketed:

* notify p50/p95/p99 start at the writer's clock once `append` returned: the commit as the
  writer learns of it, a little late, so the delay comes out a little short (a notification
  handled before the writer runs again can even come out below zero);
* "from recorded_at" starts at the server's clock read under the lock before the INSERT (the
  event's `recorded_at`): early, so it counts the INSERT and the commit's fsync too; an upper
  bound.

bare's screen only LISTENs: its figure is the NOTIFY heard, nothing read, the floor. The
screen shares the two cores with the writers, so appends/s is shown again under it.

At the end of each run the chain is verified (the database's or the SQLite file's, every
writer's copy, the screen's copy), the screen's state must hold every note, and in signed runs
every signature must verify as its writer's key (`SignatureCheck`, as `irtool verify` does).
The exit status is 1 if any of that fails. `--json`: the figures as JSON on stdout, the table
on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from irtool.engine import kinds  # noqa: E402
from irtool.engine.session import IncidentSession, _source  # noqa: E402
from irtool.engine.signatures import AgentSigner, SignatureCheck  # noqa: E402
from irtool.journal import EventDraft, Journal  # noqa: E402
from irtool.journal.database import DATABASE_ENV, checked  # noqa: E402
from irtool.journal.events import Signer, parse_moment  # noqa: E402
from irtool.journal.incidents import create_incident_dir, journal_path  # noqa: E402
from irtool.journal.postgres import CHANNEL, PgJournal, install  # noqa: E402
from irtool.journal.team import TeamJournal  # noqa: E402
from irtool.model.loader import load_contacts, load_runbook  # noqa: E402
from tests.support.postgres import postgres_server  # noqa: E402
from tests.support.sshagent import ssh_agent  # noqa: E402

KINDS = ("bare", "sqlite", "pg", "team", "team+signed")
WATCHED = ("bare", "pg", "team")  # the writers' journals notify-to-state is measured under
PROTOTYPE = "the issue's prototype: 1,031 appends/s with 4 writers, p50 3.5 ms (its machine)"
GOAL_SIGNED = 500.0  # appends/s, signed, with 5 writers
GOAL_NOTIFY_MS = 100.0  # notify-to-state p95, with 5 writers
WAIT_S = 300.0

BARE = """
CREATE TABLE IF NOT EXISTS bare_events (
    incident TEXT NOT NULL, seq BIGINT NOT NULL, data TEXT NOT NULL, prev_hash TEXT NOT NULL,
    PRIMARY KEY (incident, seq), UNIQUE (incident, prev_hash)
)
"""

Queue = Any  # multiprocessing.Queue: not subscriptable at runtime on 3.11


@dataclass(frozen=True)
class Setup:
    """What every process of one run needs to know."""

    kind: str
    screen: bool  # a screen process folds every event into its state
    url: str  # the admin URL (trust authentication on 127.0.0.1)
    incident: str
    events: int  # per writer
    last: int  # the seq of the last event once every writer is done
    homes: Path  # every "machine"'s IRTOOL_HOME lives under here

    @property
    def team_url(self) -> str:
        return f"{self.url}?sslmode=disable"  # loopback: irtool allows it in clear


@dataclass
class Writer:
    actor: str
    agent: str | None  # its ssh-agent's socket
    key: str | None = None  # its public key line


# -- the writers -----------------------------------------------------------------------------


class TimedSigner:
    """The engine's signer, timed around each call."""

    def __init__(self, signer: Signer) -> None:
        self._signer, self.took = signer, list[float]()

    def __call__(self, actor: str, digest: str) -> str | None:
        start = time.perf_counter()
        signature = self._signer(actor, digest)
        self.took.append(time.perf_counter() - start)
        return signature


def _note(actor: str, n: int) -> EventDraft:
    return EventDraft(kinds.NOTE_ADDED, actor, {"text": f"{actor}: note {n} from the bench"})


def _bare_append(db: psycopg.Connection[Any], incident: str, actor: str, n: int) -> int:
    with db.transaction():
        db.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (incident,))
        head = db.execute(
            "SELECT seq FROM bare_events WHERE incident = %s ORDER BY seq DESC LIMIT 1",
            (incident,),
        ).fetchone()
        seq = (head[0] if head else 0) + 1
        db.execute(
            "INSERT INTO bare_events VALUES (%s, %s, %s, %s)",
            (incident, seq, json.dumps({"text": f"{actor}: note {n} from the bench"}),
             f"{incident}-{seq}"),
        )  # fmt: skip
        db.execute("SELECT pg_notify(%s, %s)", (CHANNEL, f"{incident} {seq}"))
    return int(seq)


def write(
    setup: Setup, index: int, who: Writer, contacts: Any, ready: Queue, go: Any, out: Queue
) -> None:
    """One writer process: get ready, wait for the word, append `setup.events` notes."""
    try:
        out.put(("writer", _write(setup, index, who, contacts, ready, go)))
    except BaseException:
        ready.put("failed")
        out.put(("failed", f"writer {who.actor}: {traceback.format_exc()}"))


def _write(
    setup: Setup, index: int, who: Writer, contacts: Any, ready: Queue, go: Any
) -> dict[str, Any]:
    kind, incident = setup.kind, setup.incident
    if kind == "sqlite":  # every writer on one machine, one file
        os.environ["IRTOOL_HOME"] = str(setup.homes / "shared")
    else:  # every writer on a machine of its own
        os.environ["IRTOOL_HOME"] = str(setup.homes / f"writer-{index}")
    if who.agent:
        os.environ["SSH_AUTH_SOCK"] = who.agent
    timed: TimedSigner | None = None
    with contextlib.ExitStack() as stack:
        local: Journal | None = None
        if kind == "bare":
            db = stack.enter_context(psycopg.connect(setup.url, autocommit=True))

            def append(n: int) -> int:
                return _bare_append(db, incident, who.actor, n)
        else:
            journal: Journal | PgJournal | TeamJournal
            if kind == "sqlite":
                journal = Journal(journal_path(incident), incident)
            elif kind == "pg":
                journal = PgJournal(setup.url, incident)
            else:
                journal = TeamJournal(checked(setup.team_url), incident)
                local = journal.local
            stack.callback(journal.close)
            if kind == "team+signed":
                signer = AgentSigner(contacts)
                unable = signer.unable(who.actor)  # and the agent's keys are listed once, now
                if unable:
                    raise RuntimeError(unable)
                timed = TimedSigner(signer)
                journal.signer = timed

            def append(n: int) -> int:
                return journal.append(_note(who.actor, n)).seq

        ready.put("ready")
        go.wait()
        times = []
        for n in range(setup.events):
            start = time.perf_counter()
            seq = append(n)
            took = time.perf_counter() - start
            times.append((took, time.time(), seq))
        end = time.time()
        copy = local.verify() if local is not None else None
    return {
        "times": times,
        "end": end,
        "signs": timed.took if timed else [],
        "copy_ok": copy is None or copy.ok,
    }


# -- the screen ------------------------------------------------------------------------------


def screen(setup: Setup, ready: Queue, out: Queue) -> None:
    """A responder's screen on a machine of its own: the incident's state, kept up to date as
    the UI keeps it; when each event was folded in."""
    try:
        out.put(("screen", _screen(setup, ready)))
    except BaseException:
        ready.put("failed")
        out.put(("failed", f"screen: {traceback.format_exc()}"))


def _screen(setup: Setup, ready: Queue) -> dict[str, Any]:
    os.environ["IRTOOL_HOME"] = str(setup.homes / "screen")
    os.environ[DATABASE_ENV] = setup.team_url
    if setup.kind == "bare":
        return _heard(setup, ready)
    folded: dict[int, float] = {}
    recorded: dict[int, float] = {}
    done = threading.Event()
    session = IncidentSession.open(setup.incident)  # a TeamJournal, its copy, the state
    journal = session.journal
    assert isinstance(journal, TeamJournal)
    try:

        def heard(seq: int) -> None:
            # What the UI's `heard` and `poll` do, minus the hop to its thread and the drawing.
            if seq and seq <= session.state.last_seq:
                return  # read already, with an earlier batch
            batch = session.refresh()
            now = time.time()
            for event in batch:
                folded[event.seq] = now
                recorded[event.seq] = parse_moment(event.recorded_at).timestamp()
            if session.state.last_seq >= setup.last:
                done.set()

        listener = journal.watch(heard, lambda up, why: None)
        if listener is None:
            raise RuntimeError(f"the screen cannot watch: {journal.offline_reason}")
        try:
            deadline = time.monotonic() + 60
            while not listener.connected and time.monotonic() < deadline:
                time.sleep(0.01)
            ready.put("ready")
            done.wait(WAIT_S)
        finally:
            listener.stop()
        copy = journal.local.verify()
        return {
            "folded": folded,
            "recorded": recorded,
            "notes": len(session.state.notes),
            "copy_ok": copy.ok and copy.count == setup.last,
        }
    finally:
        session.close_journal()


def _heard(setup: Setup, ready: Queue) -> dict[str, Any]:
    """bare's screen: a LISTENing connection, nothing read."""
    heard: dict[int, float] = {}
    with psycopg.connect(setup.url, autocommit=True) as db:
        db.execute(f"LISTEN {CHANNEL}")
        ready.put("ready")
        wanted = setup.last - 1  # no opening event: the notes alone
        for note in db.notifies(timeout=WAIT_S):
            name, seq = note.payload.rsplit(" ", 1)
            if name == setup.incident:
                heard[int(seq)] = time.time()
                if len(heard) >= wanted:
                    break
    return {"folded": heard, "recorded": {}, "notes": len(heard), "copy_ok": True}


# -- one run ---------------------------------------------------------------------------------


@dataclass
class Run:
    rate: float
    latencies: list[float]
    delays: list[float]  # commit (the writer's clock) to folded
    upper: list[float]  # recorded_at to folded
    signs: list[float]
    problems: list[str] = field(default_factory=list)


def opening(runbook: dict[str, Any], contacts: dict[str, Any], actor: str) -> EventDraft:
    """An incident opened as `irtool incident new` opens one."""
    return EventDraft(
        kinds.INCIDENT_OPENED,
        actor,
        {
            "title": runbook["model"]["title"],
            "mode": "live",
            "runbook": runbook,
            "parameters": {"rogue_ip": "192.0.2.80", "scan_ranges": ["192.0.2.0/24"]},
            "contacts": contacts,
            "inventory": None,
            "scenario": None,
            "commander": actor,
        },
    )


def open_incident(setup: Setup, draft: EventDraft, signer: Signer | None) -> None:
    if setup.kind == "bare":
        return
    if setup.kind == "sqlite":
        os.environ["IRTOOL_HOME"] = str(setup.homes / "shared")
        create_incident_dir(setup.incident)
        with Journal(journal_path(setup.incident), setup.incident, create=True) as journal:
            journal.append(draft)
        return
    with PgJournal(setup.url, setup.incident, create=True) as pg:
        pg.signer = signer
        pg.append(draft)


def run(setup: Setup, crew: list[Writer], contacts: Any, draft: EventDraft) -> Run:
    """One run: open the incident, start the screen (if any), then the writers; let them all
    go at once; gather and check."""
    signed = setup.kind == "team+signed"
    signer: Signer | None = None
    if signed:  # the commander (the first writer) signs the opening, with their own key
        os.environ["SSH_AUTH_SOCK"] = crew[0].agent or ""
        signer = AgentSigner(contacts)
    open_incident(setup, draft, signer)
    ctx = multiprocessing.get_context("fork")
    ready, out, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs: list[Any] = []
    # Daemons: a run that fails leaves none behind.
    if setup.screen:
        procs.append(ctx.Process(target=screen, args=(setup, ready, out), daemon=True))
    for index, who in enumerate(crew):
        procs.append(ctx.Process(
            target=write,
            args=(setup, index, who, contacts if signed else None, ready, go, out),
            daemon=True,
        ))  # fmt: skip
    try:
        for proc in procs:  # the screen first: listening before anyone writes
            proc.start()
            if setup.screen and proc is procs[0] and ready.get(timeout=WAIT_S) != "ready":
                raise RuntimeError(out.get(timeout=5)[1])
        for _ in crew:
            if ready.get(timeout=WAIT_S) != "ready":
                raise RuntimeError(out.get(timeout=5)[1])
        start = time.time()
        go.set()
        writers, seen = [], None
        for _ in procs:
            what, got = out.get(timeout=WAIT_S)
            if what == "failed":
                raise RuntimeError(got)
            if what == "screen":
                seen = got
            else:
                writers.append(got)
        for proc in procs:
            proc.join(timeout=60)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=10)
    wall = max(w["end"] for w in writers) - start
    times = [t for w in writers for t in w["times"]]
    problems = check(setup, len(crew), seen, contacts if signed else None)
    if not all(w["copy_ok"] for w in writers):
        problems.append("a writer's copy does not verify")
    delays, upper = [], []
    if seen is not None:
        folded, recorded = seen["folded"], seen["recorded"]
        delays = [folded[seq] - done for _, done, seq in times if seq in folded]
        upper = [folded[seq] - recorded[seq] for seq in recorded if seq > 1]
    return Run(
        len(times) / wall,
        [t for t, _, _ in times],
        delays,
        upper,
        [s for w in writers for s in w["signs"]],
        problems,
    )


def check(setup: Setup, writers: int, seen: dict[str, Any] | None, contacts: Any) -> list[str]:
    """What does not hold at the end of a run: the chain, the screen's copy and state, the
    signatures."""
    problems = []
    notes = writers * setup.events
    if seen is not None:
        if seen["notes"] != notes:
            problems.append(f"the screen has {seen['notes']} of {notes} notes")
        if not seen["copy_ok"]:
            problems.append("the screen's copy does not verify")
    if setup.kind == "bare":
        return problems
    if setup.kind == "sqlite":
        os.environ["IRTOOL_HOME"] = str(setup.homes / "shared")
        with Journal(journal_path(setup.incident), setup.incident) as journal:
            found = journal.verify()
    else:
        with PgJournal(setup.url, setup.incident) as pg:
            found = pg.verify()
            if contacts is not None:
                signatures = SignatureCheck()
                for event in pg.events():
                    signatures.see(event)
                problems += signatures.problems[:3]
                if sum(signatures.signed.values()) != setup.last:
                    problems.append(signatures.summary())
    if not found.ok or found.count != setup.last:
        problems.append(f"chain: {found.problem or 'broken'}, {found.count} events")
    return problems


# -- the figures -----------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile; NaN of nothing."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def paired(ours: list[float], theirs: list[float]) -> float:
    """The median of the rounds' ratios: two rows' runs of one round shared the machine's
    state of the moment (on a shared VM, whole rounds run fast or slow together)."""
    return statistics.median(a / b for a, b in zip(ours, theirs, strict=True))


def figures(kind: str, writers: int, runs: list[Run], bare: list[Run]) -> dict[str, Any]:
    """One row: the median rate of the rounds, the percentiles of everything pooled."""
    ms = 1000.0

    def pooled(name: str) -> list[float]:
        return [value for one in runs for value in getattr(one, name)]

    rates = [one.rate for one in runs]
    lat, delays, upper, signs = (pooled(n) for n in ("latencies", "delays", "upper", "signs"))
    return {
        "journal": kind,
        "writers": writers,
        "appends_per_s": statistics.median(rates),
        "appends_per_s_rounds": rates,
        "vs_bare": paired(rates, [one.rate for one in bare]),
        "p50_ms": percentile(lat, 0.5) * ms,
        "p99_ms": percentile(lat, 0.99) * ms,
        "sign_p50_ms": percentile(signs, 0.5) * ms,
        "sign_p99_ms": percentile(signs, 0.99) * ms,
        "notify_p50_ms": percentile(delays, 0.5) * ms,
        "notify_p95_ms": percentile(delays, 0.95) * ms,
        "notify_p99_ms": percentile(delays, 0.99) * ms,
        "notify_from_recorded_p50_ms": percentile(upper, 0.5) * ms,
        "notify_from_recorded_p95_ms": percentile(upper, 0.95) * ms,
        "appends": len(lat),
        "folded": len(delays),
        "verified": not any(one.problems for one in runs),
        "problems": [p for one in runs for p in one.problems],
    }


def _plain(value: Any) -> Any:
    """`value` with NaN (no such figure) as null: JSON has no NaN."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _cell(value: float, width: int, digits: int = 1) -> str:
    return f"{'-':>{width}}" if math.isnan(value) else f"{value:{width}.{digits}f}"


def _paired(ours: dict[str, Any], theirs: dict[str, Any]) -> float:
    return paired(ours["appends_per_s_rounds"], theirs["appends_per_s_rounds"])


def _range(row: dict[str, Any]) -> str:
    rates = row["appends_per_s_rounds"]
    return f"{min(rates):.0f}-{max(rates):.0f}"


def _verified(row: dict[str, Any]) -> str:
    return f"{'yes' if row['verified'] else 'NO'} ({row['appends']} appends)"


def table(
    speed: list[dict[str, Any]],
    notify: list[dict[str, Any]],
    args: argparse.Namespace,
    pg: str,
    load: float,
) -> str:
    most = args.writers
    lines = [
        f"PostgreSQL {pg} on 127.0.0.1 (fsync on, synchronous_commit on), SQLite WAL "
        f"synchronous=FULL: a durable commit per event; {args.events} appends per writer, "
        f"{args.rounds} round(s); {os.cpu_count()} CPUs, load average {load:.2f} at the start",
        PROTOTYPE,
        "",
        "appends per second (median of the rounds) and one append's latency (every round);",
        "x bare and every ratio below: the median of the rounds' own ratios",
        f"{'journal':<12} {'writers':>7} {'appends/s':>9} {'x bare':>6} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'sign ms':>7} {'rounds/s':>11}  verified",
    ]
    for row in speed:
        lines.append(
            f"{row['journal']:<12} {row['writers']:>7} {_cell(row['appends_per_s'], 9)} "
            f"{_cell(row['vs_bare'], 6, 2)} {_cell(row['p50_ms'], 7)} {_cell(row['p99_ms'], 7)} "
            f"{_cell(row['sign_p50_ms'], 7, 2)} {_range(row):>11}  {_verified(row)}"
        )
    lines += [
        "",
        f"notify-to-state with {most} writers and one screen process (ms; nothing drawn)",
        f"{'writers on':<12} {'appends/s':>9} {'p50':>7} {'p95':>7} {'p99':>7} "
        f"{'recorded_at p50':>15} {'p95':>7}  verified",
    ]
    for row in notify:
        label = f"{row['journal']}{' heard' if row['journal'] == 'bare' else ''}"
        lines.append(
            f"{label:<12} {_cell(row['appends_per_s'], 9)} {_cell(row['notify_p50_ms'], 7)} "
            f"{_cell(row['notify_p95_ms'], 7)} {_cell(row['notify_p99_ms'], 7)} "
            f"{_cell(row['notify_from_recorded_p50_ms'], 15)} "
            f"{_cell(row['notify_from_recorded_p95_ms'], 7)}  {_verified(row)}"
        )
    lines += [
        "  p50/p95/p99: from the writer's clock once append returned (a lower bound) to the",
        "  screen's IncidentState holding the event; recorded_at: from the server's clock",
        "  before the INSERT (an upper bound); bare heard: the NOTIFY heard, nothing read",
        "",
    ]
    by = {(r["journal"], r["writers"]): r for r in speed}
    for row in notify:
        if row["journal"] != "bare":
            p95 = row["notify_p95_ms"]
            lines.append(
                f"goal: notify p95 < {GOAL_NOTIFY_MS:.0f} ms with {most} writers on "
                f"{row['journal']}: {p95:.1f} ms (at most {row['notify_from_recorded_p95_ms']:.1f})"
                f": {'met' if p95 < GOAL_NOTIFY_MS else 'NOT met'}"
            )
    signed, unsigned = by.get(("team+signed", most)), by.get(("team", most))
    if signed and unsigned:
        rate = signed["appends_per_s"]
        lines.append(
            f"goal: >= {GOAL_SIGNED:.0f} signed appends/s with {most} writers: {rate:.1f}/s: "
            f"{'met' if rate >= GOAL_SIGNED else 'NOT met'}"
        )
        lines.append(
            f"signing, {most} writers: {_paired(signed, unsigned):.2f}x unsigned "
            f"({unsigned['appends_per_s']:.1f}/s); one signature p50 "
            f"{signed['sign_p50_ms']:.2f} ms, p99 {signed['sign_p99_ms']:.2f} ms"
        )
    for writers in sorted({1, most}):
        team, pgj, sqlite = (by.get((k, writers)) for k in ("team", "pg", "sqlite"))
        if team and pgj and sqlite:
            lines.append(
                f"ratios, {writers} writer(s): pg/sqlite "
                f"{_paired(pgj, sqlite):.2f}, team/sqlite {_paired(team, sqlite):.2f}, team/pg "
                f"{_paired(team, pgj):.2f}"
            )
    rows = speed + notify
    verified = sum(r["verified"] for r in rows)
    lines.append(
        f"chains: {'all verified' if verified == len(rows) else 'BROKEN'} ({verified} of "
        f"{len(rows)} rows)"
    )
    lines.append(
        "  the database's or the SQLite file's chain, every copy, every note in the screen's "
        "state, every signature"
    )
    for row in rows:
        for problem in row["problems"][:3]:
            lines.append(f"  {row['journal']} x{row['writers']}: {problem}")
    return "\n".join(lines)


# -- main ------------------------------------------------------------------------------------


@contextlib.contextmanager
def agents(folder: Path, names: list[str]) -> Iterator[list[Writer]]:
    """A writer per name, each with its own ssh-agent holding its own new key."""
    with contextlib.ExitStack() as stack:
        crew = []
        for name in names:
            agent = stack.enter_context(ssh_agent(folder / f"agent-{name}"))
            key = agent.make_key(name)
            crew.append(Writer(name, str(agent.socket), key))
        yield crew


def plan(writers: int) -> list[tuple[str, int, bool]]:
    """One round's runs: (kind, writers, screen), appends/s first, then notify-to-state."""
    speed = [(kind, n, False) for n in sorted({1, writers}) for kind in KINDS]
    return speed + [(kind, writers, True) for kind in WATCHED]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--writers", type=int, default=5, help="the most writers (and 1)")
    parser.add_argument("--events", type=int, default=120, help="appends per writer")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="JSON on stdout, the table on stderr")
    parser.add_argument("--quick", action="store_true", help="2 writers x 20, 1 round: smoke")
    args = parser.parse_args(argv)
    if args.quick:
        args.writers, args.events, args.rounds = 2, 20, 1
    runbook = _source(load_runbook(ROOT / "runbooks/rogue-server.yaml"))
    plain = _source(load_contacts(ROOT / "contacts.example.yaml"))
    people = list(plain["model"]["people"])
    if not 1 <= args.writers <= len(people):
        parser.error(f"--writers: 1 to {len(people)} (one per person of contacts.example.yaml)")
    before = os.getloadavg()[0]  # a shared machine's other work shows in every figure
    homes = Path(tempfile.mkdtemp(prefix="irtool-bench-team-"))
    saved = {name: os.environ.get(name) for name in ("IRTOOL_HOME", "SSH_AUTH_SOCK")}
    try:
        with agents(homes / "agents", people[: args.writers]) as crew, postgres_server() as pg:
            signed = json.loads(json.dumps(plain))
            for who in crew:
                signed["model"]["people"][who.actor]["keys"] = [who.key]
            signed["model"]["signed_events"] = "required"
            url = pg.url()
            install(url)
            with psycopg.connect(url, autocommit=True) as db:
                db.execute(BARE)
                version = db.execute("SHOW server_version").fetchone()
            done: dict[tuple[str, int, bool], list[Run]] = {}
            counter = 0
            for round_ in range(args.rounds):
                for kind, writers, watched in plan(args.writers):
                    counter += 1
                    setup = Setup(
                        kind,
                        watched,
                        url,
                        f"ir-20261207-{counter:06d}-{counter:04x}",
                        args.events,
                        1 + writers * args.events,
                        homes,
                    )
                    contacts = signed if kind == "team+signed" else plain
                    draft = opening(runbook, contacts, crew[0].actor)
                    one = run(setup, crew[:writers], contacts["model"], draft)
                    done.setdefault((kind, writers, watched), []).append(one)
                    print(f"round {round_ + 1}/{args.rounds}: {kind} x{writers}"
                          f"{' with a screen' if watched else ''}: {one.rate:.1f} appends/s"
                          f"{'' if not one.problems else ' NOT VERIFIED'}",
                          file=sys.stderr, flush=True)  # fmt: skip

        def row(kind: str, writers: int, watched: bool) -> dict[str, Any]:
            bare = done[("bare", writers, watched)]
            return figures(kind, writers, done[(kind, writers, watched)], bare)

        speed = [row(*which) for which in plan(args.writers) if not which[2]]
        notify = [row(*which) for which in plan(args.writers) if which[2]]
        said = table(speed, notify, args, version[0] if version else "?", before)
        print(said, file=sys.stderr if args.json else sys.stdout, flush=True)
        if args.json:
            found = {"args": vars(args), "load_average": before, "appends": speed, "notify": notify}
            print(json.dumps(_plain(found), indent=2))
        return 0 if all(r["verified"] for r in speed + notify) else 1
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(homes, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
