"""Exports of an incident that unfolded (issue 16): the timeline in the order things happened,
corrections marked, times shown with their zone, and the post-mortem and json telling what
changed on the way: parameters, indicators, scope, steps started early, credentials not
rotated, the close over open items and what was written after it.

One live incident, recorded through the session and a runner on this machine (the local
transport), read back as `irtool export` reads it.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from irtool.engine.runner import Runner
from irtool.engine.session import IncidentSession
from irtool.evidence.store import EvidenceStore
from irtool.export.formats import FORMATS, exported
from irtool.export.recorded import read_incident
from irtool.journal.incidents import EVIDENCE_DIR, incident_dir
from irtool.model.context import load_context
from irtool.remote.local import LocalTransport
from tests.support.clock import Clock

T0 = datetime(2026, 12, 6, 19, 0, tzinfo=UTC)

RUNBOOK = """\
id: unfolding
title: Web shell on the shop
summary: The incident as it unfolds.
version: "1"
severity: high
applies_to: [iis]
triggers: [A web shell is found]
activation:
  may_activate: [security]
roles: [security]
parameters:
  attacker_ip: {type: ip, list: true, description: Where the attack comes from}
phases:
  - id: work
    title: Work
    steps:
      - {id: assess, type: manual, title: Record the trigger}
      - id: is-compromise
        type: decision
        title: Is it a compromise?
        question: Is the host compromised?
        options:
          - {id: confirmed, label: Confirmed}
          - {id: false-positive, label: False positive, next: lessons}
      - id: sweep
        type: collect
        title: Look for the attacker
        shell: sh
        timeout: 20
        targets: [group:fleet]
        command: "echo looking-on-{{ host.name }}"
      - id: rotate-creds
        type: rotate
        title: Rotate what the host held
        items:
          - {id: deploy, kind: deployment, title: Web Deploy publishing user}
          - {id: machine-key, kind: machine-key, title: ASP.NET machine key}
      - id: lessons
        type: postmortem
        title: Lessons learned
        questions: ["What happened, and when?", "What would we do differently?"]
"""


def record(folder: Path) -> str:
    hosts = {
        "web01": {"address": "127.0.0.1", "transport": "local", "groups": ["fleet"]},
        "web02": {"address": "127.0.0.1", "transport": "local", "groups": ["fleet"]},
    }
    (folder / "unfolding.yaml").write_text(RUNBOOK)
    (folder / "hosts.yaml").write_text(yaml.safe_dump({"hosts": hosts}))
    context, _ = load_context(folder / "unfolding.yaml", inventory=folder / "hosts.yaml")
    clock = Clock(T0)
    session = IncidentSession.new(
        context.runbook, {}, actor="ann", inventory=context.inventory, clock=clock
    )
    store = EvidenceStore(incident_dir(session.state.id) / EVIDENCE_DIR)
    runner = Runner(
        session, {"local": LocalTransport()}, store, "ann", clock=clock, pool=1, process=(1, "x")
    )
    note: list[int] = []

    def back_dated() -> None:
        event = session.note("first POST to the web shell", "ben", T0 - timedelta(minutes=30))
        note.append(event.seq)

    script = [
        lambda: session.complete("assess", "ann", "help desk ticket 4711"),
        back_dated,
        lambda: session.correct(note[0], "ben", "it was the second POST", text="second POST"),
        lambda: session.set_parameter("attacker_ip", ["203.0.113.7"], "cy", "in the IIS log"),
        lambda: session.set_parameter(
            "attacker_ip", ["203.0.113.7", "198.51.100.4"], "cy", "the firewall log has another"
        ),
        lambda: session.change_ioc("add", "ip", "203.0.113.7", "cy", "POSTs to the shell"),
        lambda: session.change_ioc("add", "domain", "cdn-update.example", "cy", "beacon"),
        lambda: session.change_ioc("remove", "domain", "cdn-update.example", "cy", "sinkhole"),
        lambda: session.change_scope(
            "web03",
            "fleet",
            True,
            "ann",
            "shares the app pool",
            new_host={"address": "127.0.0.1", "transport": "local", "port": 2222},
        ),
        lambda: session.change_scope("web02", "fleet", False, "ann", "rebuilt last week"),
        lambda: session.start_early("sweep", "ann", "the attacker is active: look now"),
        lambda: runner.run("sweep"),
        lambda: runner.collect_ad_hoc(["web01"], "echo w3wp-children", reason="what w3wp ran"),
        lambda: session.decide("is-compromise", "confirmed", "cy", "shell found"),
        lambda: session.complete(
            "rotate-creds",
            "ben",
            "machine key pending",
            rotations={"deploy": (True, ""), "machine-key": (False, "pending the farm restart")},
        ),
        lambda: session.close("ann", "Shell removed.", over="the review is in two weeks"),
        lambda: session.note("the hoster confirmed the second address", "ben"),
        lambda: session.assign_action_item("patch the upload handler", "ben", "ann"),
        lambda: session.complete(
            "lessons", "cy", answers={"1": "shell uploaded 18:25, found 19:00"}
        ),
    ]
    for minute, step in enumerate(script, start=1):
        clock.now = T0 + timedelta(minutes=minute)
        step()
    session.close_journal()
    return session.state.id


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("unfolding")
    patch = pytest.MonkeyPatch()
    patch.setenv("IRTOOL_HOME", str(folder / "home"))
    patch.setenv("IRTOOL_TZ", "Europe/Paris")  # the responder's zone: CET in December
    try:
        with read_incident(record(folder)) as recorded:
            return {form: exported(recorded, form) for form in FORMATS}
    finally:
        patch.undo()


def timeline_rows(markdown: str) -> list[list[str]]:
    section = markdown.split("## Timeline", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| <a id=")]
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in rows]


def test_the_post_mortem_timeline_is_in_time_order_with_the_zone(exports: dict[str, Any]) -> None:
    rows = timeline_rows(exports["markdown"])
    occurred = [row[1] for row in rows]
    # The note back-dated to 18:30 UTC (19:30 in Paris), written after the opening, is first.
    assert "note: first POST to the web shell" in rows[0][6]
    assert occurred[0] == "2026-12-06 19:30:00 CET"
    assert occurred[1] == "2026-12-06 20:00:00 CET"  # the opening
    assert rows[0][2] == "2026-12-06 20:02:00 CET"  # recorded two minutes after opening
    assert occurred == sorted(occurred)
    assert all(re.fullmatch(r"2026-12-06 \d\d:\d\d:\d\d CET", at) for at in occurred)


def test_a_corrected_row_is_marked_in_every_timeline(exports: dict[str, Any]) -> None:
    rows = timeline_rows(exports["markdown"])
    note = rows[0]
    correction = next(r for r in rows if "corrects event" in r[6])
    seq = correction[0].split("</a>")[1]
    assert f"**corrected by** [event {seq}](#event-{seq})" in note[6]
    assert "corrected by" in exports["html"] and f'href="#event-{seq}"' in exports["html"]
    table = list(csv.DictReader(io.StringIO(exports["csv"])))
    marked = {r["seq"]: r["corrected_by"] for r in table if r["corrected_by"]}
    assert marked == {note[0].split("</a>")[1]: seq}
    lines = [json.loads(line) for line in exports["timesketch"].splitlines()]
    assert [r["seq"] for r in lines if r["corrected_by"]] == [int(note[0].split("</a>")[1])]


def test_machine_timelines_are_in_time_order_in_iso_utc(exports: dict[str, Any]) -> None:
    table = list(csv.DictReader(io.StringIO(exports["csv"])))
    assert table[0]["message"] == "[LIVE] note: first POST to the web shell"
    assert table[0]["datetime"] == "2026-12-06T18:30:00.000000+00:00"
    assert [r["datetime"] for r in table] == sorted(r["datetime"] for r in table)
    lines = [json.loads(line) for line in exports["timesketch"].splitlines()]
    assert [r["seq"] for r in lines] == [int(r["seq"]) for r in table]
    document = json.loads(exports["json"])
    # The events stay in the journal's order, so the chain can be checked from the file; the
    # timeline gives the order things happened.
    assert [e["seq"] for e in document["events"]] == sorted(e["seq"] for e in document["events"])
    timeline = document["timeline"]
    assert [t["seq"] for t in timeline] == [r["seq"] for r in lines]
    assert timeline[0]["occurred_at"].endswith("Z") and timeline[0]["corrected_by"]


def test_the_post_mortem_tells_how_the_incident_unfolded(exports: dict[str, Any]) -> None:
    text = exports["markdown"]
    assert "| Parameter `attacker_ip` | 203.0.113.7, 198.51.100.4 |" in text
    assert (
        "| unset | 203.0.113.7 | cy | in the IIS log |" in text
        and "| 203.0.113.7 | 203.0.113.7, 198.51.100.4 | cy | the firewall log has another |"
        in text
    )
    # Indicators: held at the end, and every addition and withdrawal with its reason.
    assert "| ip | `203.0.113.7` |" in text
    assert "| removed | domain | `cdn-update.example` | cy | sinkhole |" in text
    assert "| added | domain | `cdn-update.example` | cy | beacon |" in text
    # Scope: the new host with how it is reached, a host taken out.
    assert "| web03 | fleet | added to the group | yes (local, 127.0.0.1:2222) | ann |" in text
    assert "| web02 | fleet | removed | no | ann | rebuilt last week |" in text
    assert "| `sweep` | is-compromise | ann | the attacker is active: look now |" in text


def test_the_close_and_what_followed_it_are_said(exports: dict[str, Any]) -> None:
    text = exports["markdown"]
    assert "**Closed over open items** by ann at 2026-12-06 20:16:00 CET: the review is" in text
    assert "- 2 post-mortem question(s) of 'lessons' unanswered" in text
    rows = timeline_rows(text)
    late = [r[6] for r in rows if "**written after closing**" in r[6]]
    assert len(late) == 3 and "note: the hoster confirmed the second address" in late[0]
    assert "| patch the upload handler | ben | – | [2026-12-06 20:18:00 CET by ann]" in text
    assert "(#event-" in text and "(written after closing) |" in text
    assert "| 1 | What happened, and when? | shell uploaded 18:25, found 19:00 (written" in text
    unfolding = json.loads(exports["json"])["unfolding"]
    assert unfolding["closed"]["over"] == "the review is in two weeks"
    assert len(unfolding["written_after_close"]) == 3
    assert unfolding["indicators"] == {"ip": ["203.0.113.7"]}
    assert [c["change"] for c in unfolding["indicator_changes"]] == ["add", "add", "remove"]
    assert [(c["host"], c["change"]) for c in unfolding["scope_changes"]] == [
        ("web03", "add"),
        ("web02", "remove"),
    ]
    assert unfolding["parameter_changes"][-1]["value"] == ["203.0.113.7", "198.51.100.4"]
    assert unfolding["started_early"][0]["step"] == "sweep"


def test_each_credential_is_said_as_the_team_said_it(exports: dict[str, Any]) -> None:
    text = exports["markdown"]
    assert "| Web Deploy publishing user | deployment | attest | rotated (step done by ben" in text
    assert "| ASP.NET machine key | machine-key | attest | NOT rotated: pending the farm" in text
    rotations = json.loads(exports["json"])["unfolding"]["rotations"]
    assert rotations["rotate-creds"]["machine-key"] == {
        "rotated": False,
        "note": "pending the farm restart",
    }


def test_an_empty_stderr_does_not_double_the_manifest(exports: dict[str, Any]) -> None:
    section = exports["markdown"].split("## Evidence manifest", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| [")]
    assert len(rows) == 3  # the sweep on web01 and web03, the ad-hoc command: one row each
    assert all("| stdout (stderr empty) |" in row for row in rows)
    assert "| web01 | ad hoc: echo w3wp-children | collect | 0 |" in rows[2]
    document = json.loads(exports["json"])
    ad_hoc = document["unfolding"]["ad_hoc"]
    kept = [e for e in document["state"]["evidence"] if e["seq"] in ad_hoc]
    assert [e["command"] for e in kept] == ["echo w3wp-children"]
    assert "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" not in section


def test_the_html_manifest_shows_each_hash_on_one_line(
    exports: dict[str, Any], tmp_path: Path
) -> None:
    """Read in a real browser at a laptop's width: a SHA-256 used to wrap onto four lines."""
    from tests.support.chromium import Chromium

    page = tmp_path / "report.html"
    page.write_text(exports["html"], encoding="utf-8")
    with Chromium(tmp_path / "profile", width=1100) as browser:
        assert browser.open(page) == [page.as_uri()]
        lines = browser.evaluate(
            "Array.from(document.querySelectorAll('table.evidence td:nth-child(8) code'))"
            ".map(c => c.getClientRects().length)"
        )
    assert lines == [1, 1, 1]
