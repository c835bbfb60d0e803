"""`irtool export`: golden files of every format on two recorded incidents that hold every event
kind, the same bytes twice, Timesketch's import rules, and a broken chain said out loud.

Update the golden files with IRTOOL_UPDATE_GOLDEN=1 and read the diff before committing it.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

from irtool.engine import kinds
from irtool.export.report import TARGET
from irtool.journal import GENESIS, event_hash
from tests.support.cli import irtool
from tests.support.recorded import HOSTILE_NOTE

GOLDEN = Path(__file__).resolve().parent / "golden" / "export"
SUFFIX = {"markdown": "md", "html": "html", "json": "json", "csv": "csv", "timesketch": "jsonl"}
EVERY_KIND = {v for k, v in vars(kinds).items() if k.isupper() and isinstance(v, str)}


def export(recorded: dict[str, Any], which: str, form: str) -> str:
    # The post-mortem shows times in the responder's zone: the golden files are in UTC.
    env = {**recorded["env"], "IRTOOL_TZ": "UTC"}
    done = irtool(env, "export", recorded[which], "--format", form)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_recorded_incidents_hold_every_event_kind(recorded: dict[str, Any]) -> None:
    seen = set()
    for which in ("live", "exercise"):
        seen |= {e["kind"] for e in json.loads(export(recorded, which, "json"))["events"]}
    assert seen == EVERY_KIND


@pytest.mark.parametrize("which", ["live", "exercise"])
def test_the_json_holds_every_event_as_the_journal_does(
    recorded: dict[str, Any], which: str
) -> None:
    """The chain can be checked from the file: every event's hash is that of its content and
    links to the one before. (The opening event's parameters were once shown amended by
    what was learned later, as the fold had changed them in place: its hash no longer held.)"""
    events = json.loads(export(recorded, which, "json"))["events"]
    previous = GENESIS
    for event in events:
        content = {key: value for key, value in event.items() if key != "hash"}
        assert event_hash(content) == event["hash"], event["seq"]
        assert event["prev_hash"] == previous, event["seq"]
        previous = event["hash"]


@pytest.mark.parametrize("which", ["live", "exercise"])
@pytest.mark.parametrize("form", list(SUFFIX))
def test_every_format_matches_its_golden_file_and_is_the_same_twice(
    recorded: dict[str, Any], which: str, form: str
) -> None:
    first = export(recorded, which, form)
    assert export(recorded, which, form) == first  # deterministic: same journal, same bytes
    golden = GOLDEN / f"{which}.{SUFFIX[form]}"
    if os.environ.get("IRTOOL_UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(first, encoding="utf-8")
    assert first == golden.read_text(encoding="utf-8"), f"{golden} differs"


def test_the_post_mortem_says_what_a_team_circulates(recorded: dict[str, Any]) -> None:
    live = export(recorded, "live", "markdown")
    for needed in (
        "| Runbook SHA-256 |",
        "Web shell on web01 removed; no data taken.",
        "| security | cy |",
        "ann handed over to cy",
        "- **Threat and vulnerabilities identified**: web shell on web01 \\| via upload",
        "| Is the host compromised? | Confirmed | cy | shell found |",
        # Done with a note, not a word per credential: not taken to mean each was rotated.
        "| Web Deploy publishing user | deployment | attest | not attested per credential "
        "(step done by ben at 2026-11-21 02:29:00 UTC: both rotated) |",
        "| patch the upload handler | ben | 2026-11-28 | [2026-11-21 02:31:00 UTC by ann](#event-",
        # Amended after the incident closed, and marked so.
        "| 2 | What would we do differently? | patch the upload handler faster; watch the upload "
        "folder (written after closing) |",
        '<a id="event-1"></a>1',
        "Verified: the hash chain is intact",
    ):
        assert needed in live, needed
    assert "EXERCISE" not in live
    exercise = export(recorded, "exercise", "markdown")
    assert "> **EXERCISE.**" in exercise
    assert "## After-action review (exercise)" in exercise
    assert "| First evidence | 0:15:00 | 0:02:30 |" in exercise


def tokens(text: str) -> list[Token]:
    """Every token a CommonMark viewer (with html and tables on) makes of the text."""
    parser = MarkdownIt("commonmark", {"html": True}).enable("table")
    found = []
    for token in parser.parse(text):
        found += [token, *(token.children or [])]
    return found


@pytest.mark.parametrize("which", ["live", "exercise"])
def test_the_markdown_shows_markup_as_text_and_links_only_inside(
    recorded: dict[str, Any], which: str
) -> None:
    """A viewer renders the report: what a note or a host wrote loads nothing and links
    nowhere; the only html is the event anchors, the only links go inside or to evidence."""
    seen = tokens(export(recorded, which, "markdown"))
    raw = [t.content for t in seen if t.type in ("html_inline", "html_block")]
    assert raw and all(re.fullmatch(r'<a id="event-\d+">|</a>', h) for h in raw), raw
    assert not [t for t in seen if t.type == "image"]
    hrefs = [str(t.attrs["href"]) for t in seen if t.type == "link_open"]
    assert hrefs and all(TARGET.fullmatch(h) for h in hrefs), hrefs
    if which == "live":  # the note, as its writer typed it, in the timeline's cell
        assert f"note: {HOSTILE_NOTE}" in [t.content for t in seen if t.type == "text"]


def test_timesketch_imports_every_row(recorded: dict[str, Any]) -> None:
    """Timesketch's JSONL rules: one JSON object per line, `message`, `datetime` (ISO 8601
    with an offset), `timestamp` (microseconds since the epoch, matching the datetime) and
    `timestamp_desc` on every line; our own fields too."""
    for which in ("live", "exercise"):
        lines = export(recorded, which, "timesketch").splitlines()
        events = json.loads(export(recorded, which, "json"))["events"]
        # A row per event, and a second per finding at its first matching request.
        first_seen = [e for e in events if e["kind"] == "finding.raised"]
        assert len(lines) == len(events) + len(first_seen)
        by_seq = {event["seq"]: event for event in events}
        for line in lines:
            row = json.loads(line)
            event = by_seq[row["seq"]]
            assert isinstance(row, dict)
            assert row["message"] and row["timestamp_desc"]
            moment = datetime.fromisoformat(row["datetime"])
            assert moment.utcoffset() is not None, row["datetime"]
            assert row["timestamp"] == round(moment.timestamp() * 1_000_000)
            for field in ("incident", "seq", "kind", "actor", "step", "host", "hash"):
                assert field in row
            assert row["seq"] == event["seq"] and row["hash"] == event["hash"]
            assert row["message"].startswith(f"[{which.upper()}] ")
        rows = list(csv.DictReader(io.StringIO(export(recorded, which, "csv"))))
        # Both in the order things happened, each event once (a finding twice).
        assert [r["hash"] for r in rows] == [json.loads(line)["hash"] for line in lines]
        assert [r["timestamp"] for r in map(json.loads, lines)] == sorted(
            r["timestamp"] for r in map(json.loads, lines)
        )
        assert sorted(r["hash"] for r in rows if r["timestamp_desc"] != "First seen") == sorted(
            e["hash"] for e in events
        )
        assert sorted(r["hash"] for r in rows if r["timestamp_desc"] == "First seen") == sorted(
            e["hash"] for e in first_seen
        )
    ran = [
        json.loads(line)
        for line in export(recorded, "live", "timesketch").splitlines()
        if '"command.ran"' in line
    ]
    assert all(len(r["evidence_sha256"].split()) == 2 for r in ran)  # stdout and stderr


def test_a_broken_chain_is_stated_in_the_export_and_on_stderr(
    recorded: dict[str, Any], tmp_path: Path
) -> None:
    source = recorded["home"] / "incidents" / recorded["live"]
    copy_home = tmp_path / "home"
    (copy_home / "incidents").mkdir(parents=True)
    shutil.copytree(source, copy_home / "incidents" / recorded["live"])
    db = sqlite3.connect(copy_home / "incidents" / recorded["live"] / "journal.sqlite")
    with db:  # an attacker with the file: the append-only trigger is no obstacle
        db.execute("DROP TRIGGER events_are_never_updated")
        db.execute(
            "UPDATE events SET data = replace(data, 'help desk ticket 4711', 'nothing') "
            "WHERE seq = 2"
        )
    db.close()
    env = {**recorded["env"], "IRTOOL_HOME": str(copy_home)}
    out = tmp_path / "report.md"
    done = irtool(env, "export", recorded["live"], "-o", str(out))
    assert done.returncode == 1
    assert "journal chain BROKEN at event 2" in done.stderr
    report = out.read_text()
    assert report.splitlines()[2].startswith("> **journal chain BROKEN at event 2")
    rows = irtool(env, "export", recorded["live"], "--format", "csv")
    assert rows.returncode == 1
    # Rows are in time order (a back-dated note comes first): the break is by journal order.
    chain = {int(r["seq"]): r["chain"] for r in csv.DictReader(io.StringIO(rows.stdout))}
    assert chain.pop(1) == "verified" and set(chain.values()) == {
        "UNVERIFIED: the chain is broken at event 2"
    }


def test_an_incident_whose_opening_event_cannot_be_read_is_refused_in_one_line(
    recorded: dict[str, Any], tmp_path: Path
) -> None:
    copy_home = tmp_path / "home"
    shutil.copytree(
        recorded["home"] / "incidents" / recorded["live"],
        copy_home / "incidents" / recorded["live"],
    )
    db = sqlite3.connect(copy_home / "incidents" / recorded["live"] / "journal.sqlite")
    with db:
        db.execute("DROP TRIGGER events_are_never_updated")
        db.execute("UPDATE events SET data = 'null' WHERE seq = 1")
    db.close()
    done = irtool({**recorded["env"], "IRTOOL_HOME": str(copy_home)}, "export", recorded["live"])
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (
        f"irtool: incident {recorded['live']} cannot be read: its opening event is missing or "
        "unreadable (event 1 holds unreadable data)\n"
    )
