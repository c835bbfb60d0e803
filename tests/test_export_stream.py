"""Exports stream from the journal: the memory an export takes does not grow with the incident,
a break in the middle of a long journal is still named, and an export reports the journal as
it stood when it began, though a scribe appends meanwhile.

The byte-for-byte sameness of the streamed exports is the golden files' (tests/test_export.py).
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import sqlite3
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from irtool.engine import kinds
from irtool.export.formats import FORMATS, exported
from irtool.export.recorded import read_incident
from irtool.journal import EventDraft, Journal
from irtool.journal.incidents import journal_path
from irtool.journal.reading import JournalSnapshot
from tests.support.cli import irtool

# Memory an export may take beyond a small incident's when the incident is four times larger.
# The code before streaming held every event and every row: 3.8 KB an event here (csv) to
# 5.2 KB (markdown), so 3,600 more events took 14 to 19 MB more. Streamed, the peak is the
# same 1.5 MB at both sizes.
GROWTH_BOUND = 1_000_000


class Discard:
    """A text stream that keeps nothing: what is measured is the export, not its output."""

    def __init__(self) -> None:
        self.written = 0

    def write(self, text: str) -> int:
        self.written += len(text)
        return len(text)


def grown(recorded: dict[str, Any], home: Path, more: int) -> str:
    """A copy of the live incident under `home`, with `more` events appended: commands run
    (on the incident's own evidence files) and notes, two to one, as a long incident holds."""
    incident = recorded["live"]
    shutil.copytree(recorded["home"] / "incidents" / incident, home / "incidents" / incident)
    path = home / "incidents" / incident / "journal.sqlite"
    with Journal(path, incident) as journal:
        ran = next(e for e in journal.events() if e.kind == kinds.COMMAND_RAN)
        noted = next(e for e in journal.events() if e.kind == kinds.NOTE_ADDED)
        with journal.transaction() as tx:
            for n in range(more):
                model = ran if n % 3 else noted
                tx.append(EventDraft(model.kind, model.actor, model.data, model.step, model.host))
    return incident


def peak_bytes(incident: str, form: str) -> int:
    """The most Python memory held at once while reading the incident and exporting it."""
    tracemalloc.start()
    try:
        with read_incident(incident) as recorded:
            FORMATS[form](recorded, Discard())  # type: ignore[arg-type]
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="module")
def sizes(recorded: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """Two homes: the live incident grown by 1,200 events, and by 4,800."""
    found = {}
    for more in (1200, 4800):
        home = tmp_path_factory.mktemp(f"grown{more}") / "home"
        grown(recorded, home, more)
        found[more] = home
    return found


@pytest.mark.parametrize("form", list(FORMATS))
def test_an_export_takes_the_same_memory_at_four_times_the_events(
    recorded: dict[str, Any],
    sizes: dict[int, Path],
    form: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    peaks = {}
    for more, home in sizes.items():
        monkeypatch.setenv("IRTOOL_HOME", str(home))
        peaks[more] = peak_bytes(recorded["live"], form)
    assert peaks[4800] - peaks[1200] < GROWTH_BOUND, peaks


def test_a_break_in_the_middle_of_a_long_journal_is_named_by_every_export(
    recorded: dict[str, Any], tmp_path: Path
) -> None:
    home = tmp_path / "home"
    incident = grown(recorded, home, 2000)
    path = home / "incidents" / incident / "journal.sqlite"
    db = sqlite3.connect(path)
    middle = db.execute("SELECT max(seq) / 2 FROM events").fetchone()[0]
    with db:  # an attacker with the file: the append-only trigger is no obstacle
        db.execute("DROP TRIGGER events_are_never_updated")
        db.execute("UPDATE events SET actor = 'mallory' WHERE seq = ?", (middle,))
    db.close()
    env = {**recorded["env"], "IRTOOL_HOME": str(home), "IRTOOL_TZ": "UTC"}
    said = f"journal chain BROKEN at event {middle}: event {middle} was altered"
    done = {form: irtool(env, "export", incident, "--format", form) for form in FORMATS}
    for form, result in done.items():
        assert result.returncode == 1, (form, result.stderr)
        assert said in result.stderr, (form, result.stderr)
    assert done["markdown"].stdout.splitlines()[2].startswith(f"> **{said}")
    assert f"<strong>{said}" in done["html"].stdout
    verification = json.loads(done["json"].stdout)["verification"]
    assert (verification["chain_ok"], verification["first_bad_seq"]) == (False, middle)
    assert verification["events"] == middle - 1  # the chain holds up to the event before
    rows = list(csv.DictReader(io.StringIO(done["csv"].stdout)))
    broken = f"UNVERIFIED: the chain is broken at event {middle}"
    assert {r["chain"] for r in rows if int(r["seq"]) < middle} == {"verified"}
    assert {r["chain"] for r in rows if int(r["seq"]) >= middle} == {broken}
    assert len({r["seq"] for r in rows}) > 2000  # every row, past the break too
    lines = [json.loads(line) for line in done["timesketch"].stdout.splitlines()]
    assert next(r for r in lines if r["seq"] == middle)["actor"] == "mallory"


def test_an_export_reports_the_journal_as_it_stood_when_it_began(
    recorded: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scribe's note written while the export runs is in the next export, not this one:
    every section of one export reads the same snapshot."""
    home = tmp_path / "home"
    incident = grown(recorded, home, 300)
    monkeypatch.setenv("IRTOOL_HOME", str(home))
    monkeypatch.setenv("IRTOOL_TZ", "UTC")
    with read_incident(incident) as during:
        with Journal(journal_path(incident), incident) as scribe:  # another connection
            late = scribe.append(EventDraft(kinds.NOTE_ADDED, "ben", {"text": "written late"}))
        document = json.loads(exported(during, "json"))
        markdown = exported(during, "markdown")
    assert document["verification"]["events"] == late.seq - 1
    assert [e["seq"] for e in document["events"]][-1] == late.seq - 1
    assert "written late" not in json.dumps(document) and "written late" not in markdown
    with read_incident(incident) as after:
        assert "written late" in exported(after, "markdown")


def test_the_time_order_is_when_things_happened_then_the_journal_order(tmp_path: Path) -> None:
    """Back-dated notes land among the events written before them, a tie keeps the journal's
    order, and a journal written in order (merged) reads as one SQLite sorts whole."""
    start = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
    ticks = iter(start + timedelta(seconds=n) for n in range(1000))
    path = tmp_path / "journal.sqlite"
    with Journal(path, "ir-x", create=True, clock=lambda: next(ticks)) as journal:
        for n in range(60):
            back = start + timedelta(seconds=n // 3) if n % 7 == 0 else None  # ties, too
            journal.append(EventDraft(kinds.NOTE_ADDED, "ann", {"n": n}, occurred_at=back))
    with JournalSnapshot(path, "ir-x") as snapshot:
        merged = [
            (e.occurred_at, e.seq) for e in snapshot.events(order="time", written_in_order=True)
        ]
        sorted_whole = [(e.occurred_at, e.seq) for e in snapshot.events(order="time")]
        written = [(e.occurred_at, e.seq) for e in snapshot.events()]
    assert merged == sorted_whole == sorted(written)
    assert merged != written  # some were back-dated
    assert len(merged) == 60
