"""The analytical store (irtool/analysis/store.py): typed requests in DuckDB, derived from the
evidence (rebuilt the same), loaded in bulk, each evidence file once."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pytest

from irtool.analysis import store as store_module
from irtool.analysis.store import COLUMNS, LoadWarning, RequestStore, StoreError, column_name
from irtool.analysis.w3c import IIS_DEFAULT_FIELDS, Batch, read_paths

ROOT = Path(__file__).resolve().parent.parent

SHA_A = "a" * 64
SHA_B = "b" * 64

IIS = list(IIS_DEFAULT_FIELDS)

# Every typed column, two custom fields, and IIS's own spelling of the header fields.
WIDE = [
    "date",
    "time",
    "s-sitename",
    "s-computername",
    "s-ip",
    "cs-method",
    "cs-uri-stem",
    "cs-uri-query",
    "s-port",
    "cs-username",
    "c-ip",
    "cs(user-agent)",
    "cs(cookie)",
    "cs(referer)",
    "cs-host",
    "sc-status",
    "sc-substatus",
    "sc-win32-status",
    "sc-bytes",
    "cs-bytes",
    "time-taken",
    "cs(x-forwarded-for)",
    "cs(x-custom)",
    "x-correlation-id",
]


#: Set by the `path_kind` fixture: `make_batch` makes exact batches without columns.
EXACT_BATCHES = False


def make_batch(
    fields: Sequence[str],
    rows: Sequence[str],
    *,
    sha: str = SHA_A,
    source: str = "u_ex260101.log",
    first: int = 5,
    lines: Sequence[int] | None = None,
) -> Batch:
    """A batch as the reader yields it: each raw row split on spaces, '+' -> ' ', '-' -> None."""
    tokens = [row.split(" ") for row in rows]
    assert all(len(t) == len(fields) for t in tokens), "a test row has the wrong field count"
    columns: list[list[str | None]] = [
        [None if t[i] == "-" else t[i].replace("+", " ") for t in tokens]
        for i in range(len(fields))
    ]
    numbers = list(lines) if lines is not None else list(range(first, first + len(rows)))
    if EXACT_BATCHES:  # as the reader yields exact lines: the columns are split if asked for
        return Batch(source, sha, tuple(fields), None, numbers, list(rows), exact=True)
    return Batch(source, sha, tuple(fields), columns, numbers, list(rows))


def iis_row(i: int, *, status: str = "200", port: str = "443", time_taken: str = "15") -> str:
    return (
        f"2026-01-01 10:00:{i % 60:02d} 10.0.0.5 GET /app/page{i}.aspx id={i} {port} - "
        f"192.168.1.{i % 250} Mozilla/5.0+(Windows+NT+10.0) - {status} 0 0 {time_taken}"
    )


def all_rows(st: RequestStore) -> list[dict[str, Any]]:
    return st.query("SELECT * FROM requests ORDER BY evidence_sha256, source, line")


@pytest.fixture
def st() -> Iterator[RequestStore]:
    with RequestStore(":memory:") as s:
        yield s


@pytest.fixture(params=["fast", "columns", "exact"])
def path_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test on the bulk path (raw lines split in DuckDB), on the path that loads the
    decoded columns (a batch whose raw lines are not its fields joined by spaces), and on the
    reader's exact batches (raw lines only, their bad values counted over the stored rows)."""
    if request.param == "columns":
        monkeypatch.setattr(store_module, "_fast_text", lambda batch: None)
    if request.param == "exact":
        monkeypatch.setattr(sys.modules[__name__], "EXACT_BATCHES", True)
        # the columns of an exact batch are never made on the way into the store
        monkeypatch.setattr(Batch, "columns", property(lambda b: pytest.fail("columns made")))
    return str(request.param)


@pytest.mark.parametrize(
    ("field", "column"),
    [
        ("cs(User-Agent)", "cs_user_agent"),
        ("cs(user-agent)", "cs_user_agent"),
        ("cs(Referer)", "cs_referer"),
        ("cs(Cookie)", "cs_cookie"),
        ("cs-host", "cs_host"),
        ("cs(Host)", "cs_host"),
        ("cs(X-Forwarded-For)", "x_forwarded_for"),
        ("X-Forwarded-For", "x_forwarded_for"),
        ("sc-win32-status", "sc_win32_status"),
        ("time-taken", "time_taken"),
        ("s-computername", "s_computername"),
        ("date", None),
        ("cs-version", None),
        ("cs(x-custom)", None),
        ("host", None),
    ],
)
def test_field_names_map_to_columns(field: str, column: str | None) -> None:
    assert column_name(field) == column


def test_typed_columns_mapping_and_extra(st: RequestStore, path_kind: str) -> None:
    row = (
        "2026-01-01 10:00:01 W3SVC1 WEB01 10.0.0.5 POST /owa/auth/logon.aspx a=1&b=c+d 443 "
        "CONTOSO\\alice 192.168.1.7 Mozilla/5.0+(Windows+NT+10.0) ASP.NET_SessionId=xyz "
        "https://mail.contoso.com/owa/ mail.contoso.com 302 0 0 512 1024 31 203.0.113.9 "
        "hello+world -"
    )
    stats = st.load([make_batch(WIDE, [row], first=7)], host="web01")
    assert (stats.rows, stats.invalid, stats.warnings) == (1, {}, [])
    assert stats.slow_batches == (1 if path_kind == "columns" else 0)
    (r,) = all_rows(st)
    assert list(r) == [name for name, _ in COLUMNS]
    assert r == {
        "ts": dt.datetime(2026, 1, 1, 10, 0, 1),
        "s_ip": "10.0.0.5",
        "cs_method": "POST",
        "cs_uri_stem": "/owa/auth/logon.aspx",
        "cs_uri_query": "a=1&b=c d",
        "s_port": 443,
        "cs_username": "CONTOSO\\alice",
        "c_ip": "192.168.1.7",
        "cs_user_agent": "Mozilla/5.0 (Windows NT 10.0)",
        "cs_referer": "https://mail.contoso.com/owa/",
        "cs_cookie": "ASP.NET_SessionId=xyz",
        "cs_host": "mail.contoso.com",
        "sc_status": 302,
        "sc_substatus": 0,
        "sc_win32_status": 0,
        "sc_bytes": 512,
        "cs_bytes": 1024,
        "time_taken": 31,
        "s_sitename": "W3SVC1",
        "s_computername": "WEB01",
        "x_forwarded_for": "203.0.113.9",
        "extra": {"cs(x-custom)": "hello world", "x-correlation-id": None},
        "raw": row,
        "evidence_sha256": SHA_A,
        "source": "u_ex260101.log",
        "line": 7,
        "host": "web01",
        # The client behind the proxy: the address X-Forwarded-For says the proxy saw.
        "client": "203.0.113.9",
    }
    # A custom field is queried by its canonical name.
    got = st.query("SELECT extra['cs(x-custom)'] AS v FROM requests WHERE sc_status = 302")
    assert got == [{"v": "hello world"}]


def test_fields_change_between_batches(st: RequestStore, path_kind: str) -> None:
    changed = [*IIS[:11], "cs-host", *IIS[11:14], "sc-bytes", "time-taken"]
    changed += ["cs(x-forwarded-for)", "cs(x-app)"]
    later = (
        "2026-01-01 11:00:00 10.0.0.5 GET /later.aspx - 443 - 192.168.1.9 curl/8.5.0 - "
        "www.contoso.com 404 0 2 77 12 198.51.100.4 v2"
    )
    batches = [
        make_batch(IIS, [iis_row(1), iis_row(2)], lines=[5, 7]),  # a comment line between
        make_batch(changed, [later], first=9),  # a #Fields line in between
    ]
    stats = st.load(batches)
    assert stats.rows == 3 and stats.batches == 2
    rows = all_rows(st)
    assert [r["line"] for r in rows] == [5, 7, 9]
    assert rows[0]["cs_host"] is None and rows[0]["sc_bytes"] is None
    assert rows[0]["extra"] is None  # no field beyond the typed ones
    assert rows[0]["cs_uri_stem"] == "/app/page1.aspx" and rows[0]["sc_status"] == 200
    last = rows[2]
    assert (last["cs_host"], last["sc_status"], last["sc_win32_status"]) == (
        "www.contoso.com",
        404,
        2,
    )
    assert (last["sc_bytes"], last["time_taken"], last["x_forwarded_for"]) == (
        77,
        12,
        "198.51.100.4",
    )
    assert last["cs_user_agent"] == "curl/8.5.0" and last["cs_uri_query"] is None
    assert last["extra"] == {"cs(x-app)": "v2"}
    assert st.query("SELECT source, rows FROM sources") == [{"source": "u_ex260101.log", "rows": 3}]


def test_bad_values_are_null_counted_and_located(st: RequestStore, path_kind: str) -> None:
    rows = [
        iis_row(1, status="abc"),  # not a number
        iis_row(2, port="1.5"),  # TRY_CAST alone would make it 2
        iis_row(3, time_taken="0x1F"),
        iis_row(4, status="99999999999"),  # does not fit INTEGER
        iis_row(5, time_taken="99999999999999999999"),  # does not fit BIGINT
        iis_row(6, status="-"),  # no value: NULL, not counted
        iis_row(7).replace("2026-01-01 10:00:07", "2026-13-01 10:00:07"),
        iis_row(8).replace("10:00:08", "25:00:00"),
        iis_row(9, status="1e3"),
        iis_row(10),
    ]
    seen: list[LoadWarning] = []
    stats = st.load([make_batch(IIS, rows, first=2)], on_warning=seen.append)
    assert stats.rows == 10
    assert stats.invalid == {"sc_status": 3, "s_port": 1, "time_taken": 2, "ts": 2}
    assert stats.invalid_values == 8
    assert seen == stats.warnings
    messages = sorted(str(w) for w in stats.warnings)
    assert messages == sorted(
        [
            "u_ex260101.log:2: sc_status: 'abc' is not an integer: stored as NULL",
            "u_ex260101.log:3: s_port: '1.5' is not an integer: stored as NULL",
            "u_ex260101.log:4: time_taken: '0x1F' is not an integer: stored as NULL",
            "u_ex260101.log:5: sc_status: '99999999999' is not an integer: stored as NULL",
            "u_ex260101.log:6: time_taken: '99999999999999999999' is not an integer: "
            "stored as NULL",
            "u_ex260101.log:8: ts: '2026-13-01 10:00:07' is not a date and time: stored as NULL",
            "u_ex260101.log:9: ts: '2026-01-01 25:00:00' is not a date and time: stored as NULL",
            "u_ex260101.log:10: sc_status: '1e3' is not an integer: stored as NULL",
        ]
    )
    got = {r["line"]: r for r in all_rows(st)}
    assert [got[n]["sc_status"] for n in (2, 5, 7, 10, 11)] == [None, None, None, None, 200]
    assert got[3]["s_port"] is None and got[4]["time_taken"] is None
    assert got[8]["ts"] is None and got[9]["ts"] is None
    assert got[8]["sc_status"] == 200  # the rest of the row is there
    assert got[2]["raw"] == rows[0]  # and the line as written


def test_bad_values_beyond_the_listed_ones_are_summed_up(st: RequestStore, path_kind: str) -> None:
    rows = [iis_row(i, status="x") for i in range(8)]
    stats = st.load([make_batch(IIS, rows[:4]), make_batch(IIS, rows[4:], first=9)])
    assert stats.invalid == {"sc_status": 8}
    located = [w for w in stats.warnings if w.line]
    assert len(located) == store_module._EXAMPLES
    assert [str(w) for w in stats.warnings if not w.line] == [
        "u_ex260101.log: sc_status: 8 values did not fit and are stored as NULL "
        "(the first 5 are listed)"
    ]


def test_an_evidence_file_loads_once(st: RequestStore) -> None:
    a = [make_batch(IIS, [iis_row(i) for i in range(3)])]
    assert not st.loaded(SHA_A)
    first = st.load(a, host="web01")
    assert (first.rows, first.loaded, first.skipped) == (3, [SHA_A], [])
    assert st.loaded(SHA_A)
    again = st.load(a, host="web01")
    assert (again.rows, again.loaded, again.skipped, again.skipped_rows) == (
        0,
        [],
        ["u_ex260101.log"],
        3,
    )
    assert st.query("SELECT count(*) AS n FROM requests") == [{"n": 3}]


def test_one_load_skips_an_evidence_file_seen_earlier_in_it(st: RequestStore) -> None:
    """The same file named twice, or a copy of it elsewhere: same SHA-256, loaded once. The
    members of one archive (same SHA-256, one after the other) all load."""
    batches = [
        make_batch(IIS, [iis_row(1)], source="logs.zip!a.log"),
        make_batch(IIS, [iis_row(2)], source="logs.zip!b.log"),
        make_batch(IIS, [iis_row(3)], sha=SHA_B, source="other.log"),
        make_batch(IIS, [iis_row(1)], source="copy/logs.zip!a.log"),
    ]
    stats = st.load(batches)
    assert stats.rows == 3 and stats.loaded == [SHA_A, SHA_B]
    assert stats.sources == ["logs.zip!a.log", "logs.zip!b.log", "other.log"]
    assert stats.skipped == ["copy/logs.zip!a.log"]
    assert st.query("SELECT source, rows FROM sources ORDER BY source") == [
        {"source": "logs.zip!a.log", "rows": 1},
        {"source": "logs.zip!b.log", "rows": 1},
        {"source": "other.log", "rows": 1},
    ]


def test_forget_drops_an_evidence_file(st: RequestStore) -> None:
    st.load(
        [
            make_batch(IIS, [iis_row(1), iis_row(2)]),
            make_batch(IIS, [iis_row(3)], sha=SHA_B, source="b.log"),
        ]
    )
    st.forget(SHA_A)
    assert not st.loaded(SHA_A) and st.loaded(SHA_B)
    assert st.query("SELECT source, line FROM requests") == [{"source": "b.log", "line": 5}]
    assert st.query("SELECT source FROM sources") == [{"source": "b.log"}]
    assert st.load([make_batch(IIS, [iis_row(1), iis_row(2)])]).rows == 2  # loads again


def test_a_failing_load_leaves_nothing_of_that_evidence(
    st: RequestStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "_COMMIT_ROWS", 1)  # rows of SHA_B are committed

    def batches() -> Iterator[Batch]:
        yield make_batch(IIS, [iis_row(1)])
        yield make_batch(IIS, [iis_row(2)], sha=SHA_B, source="b.log")
        yield make_batch(IIS, [iis_row(3)], sha=SHA_B, source="b.log", first=6)
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        st.load(batches())
    assert st.loaded(SHA_A) and not st.loaded(SHA_B)
    assert st.query("SELECT evidence_sha256 AS sha, count(*) AS n FROM requests GROUP BY 1") == [
        {"sha": SHA_A, "n": 1}
    ]
    assert st.load([make_batch(IIS, [iis_row(2)], sha=SHA_B)]).rows == 1


def test_an_error_in_the_store_fails_the_load_and_leaves_nothing(
    st: RequestStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DuckDB fails on the loading thread's worker: the load raises it, rolled back."""
    st.load([make_batch(IIS, [iis_row(1)], sha=SHA_B, source="b.log")])
    monkeypatch.setattr(store_module._Sql, "select", lambda self: "SELECT no_such_column")
    with pytest.raises(StoreError, match=f"loading {SHA_A}: .*Parameter"):
        st.load([make_batch(IIS, [iis_row(i)], first=i) for i in range(5)])
    assert not st.loaded(SHA_A) and st.loaded(SHA_B)
    assert st.query("SELECT count(*) AS n FROM requests") == [{"n": 1}]
    monkeypatch.undo()
    assert st.load([make_batch(IIS, [iis_row(1)])]).rows == 1


def test_query_with_named_parameters(st: RequestStore) -> None:
    rows = [iis_row(i, status="401" if i % 3 == 0 else "200") for i in range(1, 10)]
    st.load([make_batch(IIS, rows)])
    got = st.query(
        "SELECT c_ip, count(*) AS n FROM requests WHERE sc_status = $status "
        "AND ts >= $since GROUP BY c_ip HAVING count(*) >= $min ORDER BY c_ip",
        {"status": 401, "since": dt.datetime(2026, 1, 1, 10), "min": 1, "unused": "x"},
    )
    assert got == [
        {"c_ip": "192.168.1.3", "n": 1},
        {"c_ip": "192.168.1.6", "n": 1},
        {"c_ip": "192.168.1.9", "n": 1},
    ]
    assert st.query("SELECT 1 AS one") == [{"one": 1}]
    with pytest.raises(StoreError, match=r"no value for parameter\(s\): \$min"):
        st.query("SELECT * FROM requests WHERE sc_status > $min")


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("DELETE FROM requests", "one SELECT"),
        ("SELECT 1; DROP TABLE requests", "one SELECT"),
        ("COPY requests TO 'out.csv'", "one SELECT"),
        ("SELECT * FROM read_csv('/etc/passwd')", "disabled by configuration"),
        ("SELECT * FROM nowhere", "nowhere"),
        ("SELEC 1", "syntax error"),
    ],
)
def test_query_reads_the_store_and_nothing_else(st: RequestStore, sql: str, message: str) -> None:
    st.load([make_batch(IIS, [iis_row(1)])])
    with pytest.raises(StoreError, match=message):
        st.query(sql)
    assert st.query("SELECT count(*) AS n FROM requests") == [{"n": 1}]


def test_a_file_store_is_derived_and_rebuilds_the_same(tmp_path: Path) -> None:
    def batches() -> list[Batch]:
        return [
            make_batch(IIS, [iis_row(i, status="oops" if i == 4 else "200") for i in range(1, 40)]),
            make_batch(WIDE[:-2], [" ".join(["-"] * 22)], first=50),
            make_batch(IIS, [iis_row(7)], sha=SHA_B, source="b.log", lines=[3]),
        ]

    db = tmp_path / "incident" / "requests.duckdb"
    db.parent.mkdir()
    with RequestStore(db) as st:
        first = st.load(batches(), host="web01")
        before = all_rows(st)
    assert db.is_file() and len(before) == 41 and first.invalid == {"sc_status": 1}
    with RequestStore(db) as st:  # it persists
        assert st.loaded(SHA_A) and st.loaded(SHA_B)
        assert all_rows(st) == before
    db.unlink()
    with RequestStore(db) as st:
        assert not st.loaded(SHA_A)
        again = st.load(batches(), host="web01")
        assert all_rows(st) == before
    assert (again.rows, again.invalid) == (first.rows, first.invalid)


def test_another_schema_version_is_emptied(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    with RequestStore(db) as st:
        st.load([make_batch(IIS, [iis_row(1)])])
        st._con.execute("UPDATE meta SET value = '0' WHERE key = 'schema_version'")
    with RequestStore(db) as st:
        assert not st.loaded(SHA_A)
        assert st.query("SELECT count(*) AS n FROM requests") == [{"n": 0}]


def test_a_killed_load_is_removed_when_the_store_opens(tmp_path: Path) -> None:
    """The process dies half-way through an evidence file (some rows committed): the next
    open removes them, and the file loads again in full."""
    db = tmp_path / "s.duckdb"
    script = f"""
import os, sys
sys.path.insert(0, {str(ROOT)!r})
from irtool.analysis import store
from tests.test_request_store import make_batch, iis_row, IIS
store._COMMIT_ROWS = 2
def batches():
    yield make_batch(IIS, [iis_row(1), iis_row(2)])
    yield make_batch(IIS, [iis_row(3)], first=7)
    os._exit(3)
store.RequestStore({str(db)!r}).load(batches())
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert done.returncode == 3, done.stderr.decode()
    with RequestStore(db) as st:
        assert not st.loaded(SHA_A)
        assert st.query("SELECT count(*) AS n FROM requests") == [{"n": 0}]
        assert st.load([make_batch(IIS, [iis_row(i) for i in range(1, 4)])]).rows == 3


def test_loads_what_the_w3c_reader_yields(tmp_path: Path) -> None:
    from tests.support.weblog import write_log

    log = tmp_path / "u_ex240301.log"
    write_log(log, lines=3000)
    written = [
        (n, line)
        for n, line in enumerate(log.read_text(encoding="utf-8").splitlines(), 1)
        if not line.startswith("#")
    ]
    with RequestStore(tmp_path / "s.duckdb") as st:
        stats = st.load(read_paths([log], batch=1000), host="web01")
        assert (stats.rows, stats.slow_batches, stats.invalid) == (3000, 0, {})
        rows = st.query("SELECT line, raw, ts, cs_host, sc_bytes FROM requests ORDER BY line")
        assert [(r["line"], r["raw"]) for r in rows] == written
        assert all(r["ts"] is not None for r in rows)
        # The second half is under a #Fields line that adds cs-host and sc-bytes.
        assert rows[0]["cs_host"] is None and rows[-1]["sc_bytes"] is not None
        again = st.load(read_paths([log]))
        assert again.rows == 0 and again.skipped == [str(log)]


def test_no_progress_bar_is_drawn_on_standard_output(st: RequestStore) -> None:
    # DuckDB draws one for a query of more than two seconds (a hunt over a large log), in
    # the middle of `irtool analyze --json`'s output.
    assert st.query("SELECT current_setting('enable_progress_bar') AS on") == [{"on": False}]


def test_the_client_behind_a_proxy_is_the_address_the_proxy_saw(st: RequestStore) -> None:
    """Behind a load balancer every c-ip is the balancer's. The client is the LAST address of
    X-Forwarded-For (the one the balancer appended); the ones before it are what the client
    itself sent, which an attacker fills with anyone's address."""
    fields = ("date", "time", "cs-method", "cs-uri-stem", "c-ip", "X-Forwarded-For")
    rows = [
        "2026-01-01 10:00:00 POST /x.aspx 10.20.1.5 203.0.113.47",
        "2026-01-01 10:00:01 POST /x.aspx 10.20.1.5 198.51.100.7,+203.0.113.47",
        "2026-01-01 10:00:02 GET / 10.20.1.5 -",
        "2026-01-01 10:00:03 GET / 192.0.2.8 -",
    ]
    st.load([make_batch(fields, rows)])
    clients = [r["client"] for r in st.query("SELECT client FROM requests ORDER BY line")]
    assert clients == ["203.0.113.47", "203.0.113.47", "10.20.1.5", "192.0.2.8"]
    # A log without the field: the client is c-ip.
    plain = ("date", "time", "cs-method", "cs-uri-stem", "c-ip")
    st.load([make_batch(plain, ["2026-01-01 11:00:00 GET / 192.0.2.9"], sha=SHA_B)])
    got = st.query("SELECT client FROM requests WHERE evidence_sha256 = $s", {"s": SHA_B})
    assert got == [{"client": "192.0.2.9"}]


def test_a_read_only_store_answers_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "requests.duckdb"
    with RequestStore(path) as st:
        st.load([make_batch(IIS_DEFAULT_FIELDS, [iis_row(1), iis_row(2)])])
    with RequestStore(path, read_only=True) as reader, RequestStore(path, read_only=True) as other:
        assert reader.query("SELECT count(*) AS n FROM requests") == [{"n": 2}]
        assert other.loaded(SHA_A)
        with pytest.raises(StoreError):
            reader.load([make_batch(IIS_DEFAULT_FIELDS, [iis_row(3)], sha=SHA_B)])
    with RequestStore(path) as st:
        assert st.query("SELECT count(*) AS n FROM requests") == [{"n": 2}]
    with pytest.raises(StoreError, match="does not exist"):
        RequestStore(tmp_path / "missing.duckdb", read_only=True)
    duckdb.connect(str(tmp_path / "other.duckdb")).close()
    with pytest.raises(StoreError, match="not a store of requests"):
        RequestStore(tmp_path / "other.duckdb", read_only=True)


def test_a_second_store_on_the_same_file_in_one_process_keeps_file_access_off(
    tmp_path: Path,
) -> None:
    """DuckDB shares one database per file in a process: the second connection (an analysis
    and a pivot in one terminal UI) opens, and SQL still cannot read files through it."""
    path = tmp_path / "requests.duckdb"
    with RequestStore(path) as first, RequestStore(path) as second:
        first.load([make_batch(IIS_DEFAULT_FIELDS, [iis_row(1)])])
        assert second.query("SELECT count(*) AS n FROM requests") == [{"n": 1}]
        with pytest.raises(StoreError):
            second.query("SELECT * FROM read_csv('/etc/passwd')")
