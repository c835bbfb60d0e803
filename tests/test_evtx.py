"""The EVTX reader on real Windows logs (tests/data/evtx), corrupt copies of them and files that
are not EVTX at all; and the store's `events` table they load into."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from irtool.analysis import store as store_module
from irtool.analysis.evtx import (
    EventBatch,
    EvtxStats,
    ReadWarning,
    is_evtx,
    read_evtx_paths,
    read_evtx_stream,
)
from irtool.analysis.store import RequestStore, StoreError
from irtool.model.problems import InvalidFile
from tests.support.evtx import DATA, SECURITY, Events

ROOT = Path(__file__).resolve().parent.parent
SECURITY_EVTX = DATA / "security.evtx"
SYSTEM_EVTX = DATA / "system.evtx"
POST_EVTX = DATA / "post-Security.evtx"


def read_all(*paths: Path, **kwargs: object) -> list[dict[str, object]]:
    return [row for batch in read_evtx_paths(paths, **kwargs) for row in batch.rows()]  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def security() -> list[dict[str, object]]:
    return read_all(SECURITY_EVTX)


@pytest.fixture(scope="module")
def system() -> list[dict[str, object]]:
    return read_all(SYSTEM_EVTX)


@pytest.fixture
def st() -> Iterator[RequestStore]:
    store = RequestStore(":memory:")
    try:
        yield store
    finally:
        store.close()


def ids(rows: list[dict[str, object]]) -> Counter[tuple[object, object, object]]:
    return Counter((r["channel"], r["provider"], r["event_id"]) for r in rows)


# -- reading the real logs --------------------------------------------------------------------


def test_the_real_logs_hold_the_events_their_readme_lists(
    security: list[dict[str, object]], system: list[dict[str, object]]
) -> None:
    post = read_all(POST_EVTX)
    assert (len(security), len(post), len(system)) == (2261, 126, 1881)
    audit = ("Security", "Microsoft-Windows-Security-Auditing")
    assert ids(security)[(*audit, 4720)] == 2
    assert ids(security)[(*audit, 4732)] == 6
    assert ids(security)[(*audit, 4728)] == 2
    assert ids(security)[(*audit, 4624)] == 583
    assert ids(post)[(*audit, 4720)] == 1
    assert ids(post)[(*audit, 4732)] == 2
    assert ids(system)[("System", "Service Control Manager", 7045)] == 57
    assert ids(system)[("System", "Service Control Manager", 7040)] == 24
    assert ids(system)[("System", "Microsoft-Windows-Eventlog", 104)] == 2


def test_a_record_keeps_its_channel_provider_time_computer_record_id_and_data(
    security: list[dict[str, object]],
) -> None:
    created = [r for r in security if r["event_id"] == 4720]
    fsir = created[0]
    assert fsir["ts"] == "2016-07-08T18:15:23.398026Z"
    assert fsir["computer"] == "WIN-03DLIIOFRRA"
    assert fsir["level"] == 0
    data = fsir["data"]
    assert isinstance(data, dict)
    assert data["TargetUserName"] == "fsir"
    assert data["TargetSid"] == "S-1-5-21-2603537626-3982775912-406486804-1000"
    assert data["SubjectUserName"] == "WIN-03DLIIOFRRA$"
    raw = json.loads(str(fsir["raw"]))
    assert raw["Event"]["System"]["EventRecordID"] == fsir["line"]
    assert raw["Event"]["EventData"]["SamAccountName"] == "fsir"
    # record ids are the rows' lines: unique, increasing
    lines = [r["line"] for r in security]
    assert lines == sorted(set(lines))  # type: ignore[type-var]


def test_numbers_are_text_and_an_event_id_with_qualifiers_is_its_number(
    security: list[dict[str, object]], system: list[dict[str, object]]
) -> None:
    logon = next(r for r in security if r["event_id"] == 4624)
    assert logon["data"]["LogonType"] == "0"  # type: ignore[index]
    service = next(r for r in system if r["event_id"] == 7045)  # EventID has Qualifiers=16384
    assert service["provider"] == "Service Control Manager"
    assert service["data"] == {  # named Data elements by name, in order
        "ServiceName": "UMDF Reflector service for Sensors HID Class Driver",
        "ImagePath": "\\SystemRoot\\System32\\drivers\\WUDFRd.sys",
        "ServiceType": "kernel mode driver",
        "StartType": "demand start",
        "AccountName": "",
    }


def test_user_data_is_flattened_and_unnamed_data_is_numbered(
    system: list[dict[str, object]],
) -> None:
    cleared = [r for r in system if r["event_id"] == 104]
    assert [r["line"] for r in cleared] == [1847, 1848]
    assert cleared[0]["data"] == {
        "LogFileCleared.SubjectUserName": "tony",
        "LogFileCleared.SubjectDomainName": "DESKTOP-2KGM189",
        "LogFileCleared.Channel": "Microsoft-Windows-Sysmon/Operational",
        "LogFileCleared.BackupPath": None,
    }
    first = system[0]  # EventLog 6009: five Data elements without a name
    assert first["event_id"] == 6009
    assert first["data"] == {
        "Data[1]": "10.00.",
        "Data[2]": "15063",
        "Data[3]": "",
        "Data[4]": "Multiprocessor Free",
        "Data[5]": "0",
    }


def test_batches_carry_the_evidence_hash_and_are_bounded() -> None:
    stats = EvtxStats()
    batches = list(read_evtx_paths([SECURITY_EVTX], batch=1000, stats=stats))
    assert [len(b) for b in batches] == [1000, 1000, 261]
    assert {b.sha256 for b in batches} == {hashlib.sha256(SECURITY_EVTX.read_bytes()).hexdigest()}
    assert {b.source for b in batches} == {str(SECURITY_EVTX)}
    assert (stats.records, stats.files, stats.bytes, stats.warnings) == (
        2261,
        1,
        SECURITY_EVTX.stat().st_size,
        0,
    )


def test_skip_leaves_an_evidence_file_unread() -> None:
    sha = hashlib.sha256(SYSTEM_EVTX.read_bytes()).hexdigest()
    stats = EvtxStats()
    batches = list(read_evtx_paths([SYSTEM_EVTX, POST_EVTX], skip=lambda s: s == sha, stats=stats))
    assert {b.source for b in batches} == {str(POST_EVTX)}
    assert stats.skipped == 1


def test_a_directory_is_read_for_its_evtx_files(tmp_path: Path) -> None:
    (tmp_path / "logs" / "deep").mkdir(parents=True)
    shutil.copy(POST_EVTX, tmp_path / "logs" / "deep" / "Security.evtx")
    shutil.copy(POST_EVTX, tmp_path / "logs" / "renamed.bin")  # EVTX by its magic
    (tmp_path / "logs" / "notes.txt").write_text("not a log")
    (tmp_path / "logs" / "fake.evtx").write_text("not EVTX either")
    warnings: list[ReadWarning] = []
    rows = read_all(tmp_path / "logs", on_warning=warnings.append)
    assert len(rows) == 2 * 126
    assert [str(w) for w in warnings] == [
        f"{tmp_path / 'logs' / 'fake.evtx'}: not an EVTX file: it starts with "
        "b'not EVTX', not 'ElfFile'"
    ]


# -- bad input --------------------------------------------------------------------------------


def corrupt_copy(tmp_path: Path) -> Path:
    """security.evtx with chunk 2's header overwritten and garbage in the middle of chunk 5."""
    data = bytearray(SECURITY_EVTX.read_bytes())
    chunk2 = 0x1000 + 2 * 0x10000
    data[chunk2 : chunk2 + 8] = b"XXXXXXXX"
    middle5 = 0x1000 + 5 * 0x10000 + 20000
    data[middle5 : middle5 + 200] = b"\xff" * 200
    path = tmp_path / "corrupt.evtx"
    path.write_bytes(bytes(data))
    return path


def test_corrupt_chunks_and_records_are_skipped_with_located_warnings(tmp_path: Path) -> None:
    path = corrupt_copy(tmp_path)
    warnings: list[ReadWarning] = []
    stats = EvtxStats()
    rows = read_all(path, on_warning=warnings.append, stats=stats)
    shown = [str(w) for w in warnings]
    assert len(shown) == 2, shown
    assert shown[0].startswith(f"{path}: chunk 2 at offset 0x21000 skipped: ")
    assert "chunk header magic" in shown[0]
    assert shown[1].startswith(f"{path}:464: record skipped: ")
    assert (stats.corrupt_chunks, stats.corrupt_records) == (1, 1)
    # The rest is read: the chunks before and after the broken one, the last record too.
    whole = read_all(SECURITY_EVTX)
    assert 2100 < len(rows) < 2261
    assert rows[-1]["line"] == whole[-1]["line"]
    assert rows[0] == whole[0]
    lost = {r["line"] for r in whole} - {r["line"] for r in rows}
    assert 464 in lost


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not an EVTX file: it is empty"),
        (b"#Software: Microsoft IIS\n", "not an EVTX file: it starts with b'#Softwar', not"),
        (b"MZ\x90\x00\x03\x00\x00\x00rest", "not an EVTX file: it starts with b'MZ\\x90\\x00"),
    ],
)
def test_a_named_file_that_is_not_evtx_is_a_located_error(
    tmp_path: Path, content: bytes, message: str
) -> None:
    bad = tmp_path / "Security.evtx"
    bad.write_bytes(content)
    batches = read_evtx_paths([POST_EVTX, bad])
    with pytest.raises(InvalidFile) as raised:
        next(batches)  # before anything is read, even of the good file named first
    [problem] = raised.value.problems
    assert str(problem).startswith(f"{bad}:1:1: {message}")


def test_a_stream_that_is_not_evtx_is_a_located_error() -> None:
    import io

    with pytest.raises(InvalidFile, match=r"^member\.evtx:1:1: not an EVTX file"):
        list(read_evtx_stream(io.BytesIO(b"PK\x03\x04"), source="member.evtx", sha256="0" * 64))


def test_a_broken_file_header_is_a_warning_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "cut.evtx"
    path.write_bytes(SECURITY_EVTX.read_bytes()[:100])  # the magic, then nothing
    warnings: list[ReadWarning] = []
    assert read_all(path, on_warning=warnings.append) == []
    assert len(warnings) == 1
    assert str(warnings[0]).startswith(f"{path}: cannot read its file header: ")


def test_a_missing_path_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(OSError, match=r"no-such\.evtx"):
        next(read_evtx_paths([tmp_path / "no-such.evtx"]))


def test_is_evtx() -> None:
    assert is_evtx(SECURITY_EVTX.read_bytes()[:8])
    assert not is_evtx(b"ElfChnk\x00") and not is_evtx(b"")


# -- the events table -------------------------------------------------------------------------


def test_the_reader_loads_into_the_events_table(st: RequestStore) -> None:
    stats = st.load_events(read_evtx_paths([SECURITY_EVTX, SYSTEM_EVTX]), host="web01")
    assert stats.rows == 2261 + 1881
    assert stats.sources == [str(SECURITY_EVTX), str(SYSTEM_EVTX)]
    rows = st.query(
        "SELECT ts, channel, provider, event_id, level, computer, data['TargetUserName'] AS who, "
        "evidence_sha256, source, line, host FROM events "
        "WHERE event_id = 4720 ORDER BY ts"
    )
    assert [r["who"] for r in rows] == ["fsir", "archir"]
    first = rows[0]
    assert first["ts"] == datetime(2016, 7, 8, 18, 15, 23, 398026)
    assert (first["channel"], first["provider"], first["computer"], first["host"]) == (
        "Security",
        "Microsoft-Windows-Security-Auditing",
        "WIN-03DLIIOFRRA",
        "web01",
    )
    assert first["evidence_sha256"] == hashlib.sha256(SECURITY_EVTX.read_bytes()).hexdigest()
    assert first["source"] == str(SECURITY_EVTX)
    cleared = st.query(
        "SELECT data['LogFileCleared.SubjectUserName'] AS who, count(*) AS n FROM events "
        "WHERE channel = 'System' AND provider = 'Microsoft-Windows-Eventlog' AND event_id = 104 "
        "GROUP BY 1"
    )
    assert cleared == [{"who": "tony", "n": 2}]
    assert st.query("SELECT count(*) AS n FROM requests") == [{"n": 0}]


def test_an_evidence_file_loads_once_and_forget_drops_its_events(st: RequestStore) -> None:
    first = st.load_events(read_evtx_paths([POST_EVTX]))
    assert first.rows == 126 and first.loaded
    again = st.load_events(read_evtx_paths([POST_EVTX]))
    assert (again.rows, again.skipped, again.skipped_rows) == (0, [str(POST_EVTX)], 126)
    sha = first.loaded[0]
    assert st.loaded(sha)
    # not even read when the reader is told to skip what the store holds
    stats = EvtxStats()
    assert list(read_evtx_paths([POST_EVTX], skip=st.loaded, stats=stats)) == []
    assert stats.skipped == 1
    st.forget(sha)
    assert not st.loaded(sha)
    assert st.query("SELECT count(*) AS n FROM events") == [{"n": 0}]


def test_a_failing_load_leaves_nothing_of_that_evidence(
    st: RequestStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "_COMMIT_ROWS", 1)  # rows are committed as they go
    good = Events(name="good.evtx")
    good.add(SECURITY, 4720, datetime(2024, 3, 1), {"TargetUserName": "a"})
    bad = Events(name="bad.evtx", computer="WEB02")
    bad.add(SECURITY, 4720, datetime(2024, 3, 1), {"TargetUserName": "b"})
    bad.add(SECURITY, 4720, datetime(2024, 3, 2), {"TargetUserName": "c"})

    def batches() -> Iterator[EventBatch]:
        yield good.batch()
        yield EventBatch.of_rows(bad.name, bad.sha256, bad.rows[:1])
        yield EventBatch.of_rows(bad.name, bad.sha256, bad.rows[1:])
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        st.load_events(batches())
    assert st.loaded(good.sha256) and not st.loaded(bad.sha256)
    assert st.query("SELECT data['TargetUserName'] AS who FROM events") == [{"who": "a"}]
    assert st.load_events([bad.batch()]).rows == 2


def test_an_error_in_the_store_fails_the_load_and_leaves_nothing(
    st: RequestStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = Events()
    events.add(SECURITY, 4720, datetime(2024, 3, 1), {"TargetUserName": "a"})
    monkeypatch.setattr(store_module, "_EVENTS_INSERT", "INSERT INTO events SELECT nothing")
    with pytest.raises(StoreError, match=f"loading {events.sha256}: "):
        events.load(st)
    assert not st.loaded(events.sha256)
    monkeypatch.undo()
    assert events.load(st).rows == 1


def test_a_killed_load_is_removed_when_the_store_opens(tmp_path: Path) -> None:
    """The process dies half-way through an EVTX file (some records committed): the next
    open removes them, and the file loads again in full."""
    db = tmp_path / "s.duckdb"
    script = f"""
import os, sys
sys.path.insert(0, {str(ROOT)!r})
from irtool.analysis import store
from irtool.analysis.evtx import read_evtx_paths
store._COMMIT_ROWS = 500
def batches():
    for batch in read_evtx_paths([{str(SECURITY_EVTX)!r}], batch=600):
        yield batch
        if len(batch) == 600:
            os._exit(3)
store.RequestStore({str(db)!r}).load_events(batches())
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert done.returncode == 3, done.stderr.decode()
    with RequestStore(db) as st:
        assert st.query("SELECT count(*) AS n FROM events") == [{"n": 0}]
        assert st.load_events(read_evtx_paths([SECURITY_EVTX])).rows == 2261


def test_a_store_of_the_previous_schema_is_emptied(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    with RequestStore(db) as st:
        st.load_events(read_evtx_paths([POST_EVTX]))
        st._con.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    with RequestStore(db) as st:
        assert st.query("SELECT count(*) AS n FROM events") == [{"n": 0}]
        assert st.load_events(read_evtx_paths([POST_EVTX])).rows == 126


def test_only_scopes_events_as_it_scopes_requests(st: RequestStore) -> None:
    a = st.load_events(read_evtx_paths([POST_EVTX])).loaded
    st.load_events(read_evtx_paths([SYSTEM_EVTX]))
    with st.only(a):
        assert st.query("SELECT count(*) AS n FROM events") == [{"n": 126}]
    assert st.query("SELECT count(*) AS n FROM events") == [{"n": 126 + 1881}]


def test_a_read_only_store_answers_event_queries(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    with RequestStore(db) as st:
        st.load_events(read_evtx_paths([POST_EVTX]))
    with RequestStore(db, read_only=True) as ro:
        assert ro.query("SELECT count(*) AS n FROM events WHERE event_id = 4720") == [{"n": 1}]
        with pytest.raises(StoreError):
            ro.query("SELECT * FROM read_json('/etc/passwd')")


def test_a_record_without_a_time_is_kept_and_warned_about(st: RequestStore) -> None:
    events = Events()
    events.add(SECURITY, 4720, datetime(2024, 3, 1), {"TargetUserName": "a"})
    events.rows[0]["ts"] = "yesterday"
    stats = events.load(st)
    assert stats.rows == 1 and stats.invalid == {"ts": 1}
    assert [str(w) for w in stats.warnings] == [
        "synthetic.evtx:1: ts: the record's time could not be read: stored as NULL"
    ]
    assert st.query("SELECT ts FROM events") == [{"ts": None}]


def test_a_stream_of_evidence_is_read_under_the_hash_custody_gave(st: RequestStore) -> None:
    """What an incident does with an EVTX file fetched as evidence: its stored bytes, opened."""
    with SYSTEM_EVTX.open("rb") as stream:
        batches = read_evtx_stream(stream, source="web01/System.evtx", sha256="ab" * 32)
        stats = st.load_events(batches, host="web01")
    assert stats.rows == 1881 and stats.loaded == ["ab" * 32]
    assert st.query("SELECT DISTINCT source, evidence_sha256 AS sha, host FROM events") == [
        {"source": "web01/System.evtx", "sha": "ab" * 32, "host": "web01"}
    ]


def test_a_record_that_is_not_a_windows_event_is_skipped_and_located(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The parser hands over JSON without an Event (a damaged template): the record is
    skipped, the next one read."""
    import io

    import evtx

    good = next(read_evtx_paths([POST_EVTX]))
    records = [
        {"event_record_id": 7, "data": '{"NotAnEvent": {}}'},
        {"event_record_id": good.lines[0], "data": good.raw[0]},
    ]

    class Parser:
        def __init__(self, stream: object, **options: object) -> None:
            pass

        def records_json(self) -> Iterator[dict[str, object]]:
            return iter(records)

    monkeypatch.setattr(evtx, "PyEvtxParser", Parser)
    warnings: list[ReadWarning] = []
    stream = io.BytesIO(POST_EVTX.read_bytes())
    [batch] = read_evtx_stream(stream, source="s.evtx", sha256="0" * 64, on_warning=warnings.append)
    assert batch.lines == [good.lines[0]] and len(batch.ts) == len(batch.data) == 1
    assert [str(w) for w in warnings] == [
        "s.evtx:7: record skipped: not a Windows event (KeyError: 'Event')"
    ]
