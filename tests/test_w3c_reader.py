"""The W3C extended log reader (irtool/analysis/w3c.py, sources.py) on generated IIS traffic
(tests/support/weblog.py) and on broken input: every row read with the right fields, its
evidence SHA-256 and its line number; every bad line a located warning, never an exception."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any, cast

import pytest

from irtool.analysis import sources, w3c
from irtool.analysis.w3c import Batch, ReadStats, ReadWarning, read_paths, read_stream
from tests.conftest import ROOT
from tests.support import weblog
from tests.support.weblog import write_log

HEADER = (
    "#Software: Microsoft Internet Information Services 10.0\r\n"
    "#Version: 1.0\r\n"
    "#Date: 2024-03-01 00:00:00\r\n"
)
DEFAULT = " ".join(weblog.DEFAULT_FIELDS)
ROW = (
    "2024-03-01 00:00:{s:02d} 10.0.0.10 GET /default.aspx id={s} 443 - 192.0.2.{s} "
    "Mozilla/5.0+(Windows+NT+10.0) - 200 0 0 15"
)


def rows(n: int, start: int = 0) -> str:
    return "".join(ROW.format(s=s) + "\r\n" for s in range(start, start + n))


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Read:
    """Everything one read gave: batches, flat rows, warnings, stats."""

    def __init__(self, paths: list[Path], **kw: Any) -> None:
        self.warnings: list[ReadWarning] = []
        self.stats = ReadStats()
        self.batches: list[Batch] = list(
            read_paths(paths, on_warning=self.warnings.append, stats=self.stats, **kw)
        )
        self.rows: list[dict[str, Any]] = []
        for b in self.batches:
            assert len(b.columns) == len(b.fields)
            assert all(len(c) == len(b.lines) == len(b.raw) for c in b.columns)
            for rec, line, raw in zip(b.records(), b.lines, b.raw, strict=True):
                self.rows.append(
                    {**rec, "_source": b.source, "_sha": b.sha256, "_line": line, "_raw": raw}
                )

    @property
    def messages(self) -> list[str]:
        return [str(w) for w in self.warnings]


def file_lines(path: Path) -> list[str]:
    return path.read_bytes().decode("utf-8-sig", "replace").replace("\r\n", "\n").split("\n")


def assert_custody(read: Read, path: Path, opened: list[str] | None = None) -> None:
    """Every row's sha256 is the file's and its raw text is the file's line at its number."""
    lines = opened if opened is not None else file_lines(path)
    digest = sha(path)
    for row in read.rows:
        assert row["_sha"] == digest
        assert lines[row["_line"] - 1] == row["_raw"]


# -- generated traffic -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, weblog.Manifest]:
    path = tmp_path_factory.mktemp("weblog") / "u_ex240301.log"
    return path, write_log(path, lines=20_000, seed=7)


def test_a_generated_log_is_read_whole_across_its_fields_change(
    generated: tuple[Path, weblog.Manifest],
) -> None:
    path, man = generated
    read = Read([path], batch=3000)
    assert read.warnings == []
    st = read.stats
    assert (st.rows, st.lines, st.directives) == (man.rows, man.total_lines, man.directives)
    assert (st.invalid, st.torn, st.blank, st.fields_changes) == (0, 0, 0, 1)
    assert len(read.rows) == man.rows == 20_000
    assert all(len(b) <= 3000 for b in read.batches)

    # Both halves under their own #Fields, canonical (lowercased), with exact counts.
    first = tuple(f.lower() for f in weblog.DEFAULT_FIELDS)
    second = tuple(f.lower() for f in weblog.CHANGED_FIELDS)
    change = man.fields_lines[1]
    before = [b for b in read.batches if b.fields == first]
    after = [b for b in read.batches if b.fields == second]
    assert len(before) + len(after) == len(read.batches)
    assert sum(map(len, before)) == change - 4 - 4  # the rows between the two headers
    assert sum(map(len, after)) == man.total_lines - change
    assert all(line < change for b in before for line in b.lines)
    assert all(line > change for b in after for line in b.lines)
    # the columns did not shift: in both halves the status is a status, the time a time
    for row in read.rows:
        assert row["sc-status"] in {"200", "302", "304", "401", "404", "500"}, row
        assert row["time"][2] == ":" and row["time-taken"].isdigit()
    late = [r for r in read.rows if r["_line"] > change]
    assert {r["cs-host"] for r in late} == {weblog.HOST}
    assert all(r["sc-bytes"].isdigit() and "cs(x-forwarded-for)" in r for r in late)
    assert_custody(read, path)


def test_the_planted_attacks_are_where_the_manifest_says(
    generated: tuple[Path, weblog.Manifest],
) -> None:
    path, man = generated
    by_line = {r["_line"]: r for r in Read([path]).rows}

    shell = man["webshell"]
    assert len(shell.lines) == 24
    for line in shell.lines:
        r = by_line[line]
        assert (r["c-ip"], r["cs-method"], r["cs-uri-stem"], r["sc-status"]) == (
            weblog.WEBSHELL_CLIENT,
            "POST",
            weblog.WEBSHELL_URI,
            "200",
        )
    # nobody else reaches the web shell
    assert {r["c-ip"] for r in by_line.values() if r["cs-uri-stem"] == weblog.WEBSHELL_URI} == {
        weblog.WEBSHELL_CLIENT
    }

    brute = man["bruteforce"]
    fails = [by_line[n] for n in brute.lines]
    legs = [by_line[n] for n in cast("list[int]", brute.notes["legs"])]
    assert len(fails) == 40 and len(legs) == 80
    assert {(r["sc-status"], r["sc-substatus"], r["sc-win32-status"]) for r in fails} == {
        ("401", "1", "1326")
    }
    assert {(r["sc-substatus"], r["sc-win32-status"]) for r in legs} == {
        ("2", "5"),
        ("1", "2148074254"),
    }
    assert all(r["cs-username"].startswith("CONTOSO\\") for r in fails)
    # the normal intranet handshakes carry the same legs, from many clients
    normal_legs = [
        r
        for r in by_line.values()
        if r["sc-win32-status"] == "2148074254" and r["c-ip"] != weblog.BRUTE_CLIENT
    ]
    assert len({r["c-ip"] for r in normal_legs}) > 10

    scanner = [by_line[n] for n in man["scanner"].lines]
    assert {r["cs(user-agent)"] for r in scanner} == {weblog.SCANNER_UA}  # '+' decoded
    assert all("+" not in r["cs(user-agent)"] for r in by_line.values() if r["cs(user-agent)"])

    admin = {by_line[n]["cs-uri-stem"] for n in man["admin"].lines}
    assert {"/admin", "/phpmyadmin/index.php", "/wp-login.php", "/.env"} <= admin

    tunnel = [by_line[n] for n in man["tunnel"].lines]
    assert len(tunnel) == 300
    assert {(r["c-ip"], r["cs-method"], r["cs-uri-stem"]) for r in tunnel} == {
        (weblog.TUNNEL_CLIENT, "POST", weblog.TUNNEL_URI)
    }
    assert max(int(r["sc-bytes"]) for r in tunnel) < 400

    assert man.gap is not None
    lo, hi = (t.strftime("%Y-%m-%d %H:%M:%S") for t in man.gap)
    stamps = sorted(f"{r['date']} {r['time']}" for r in by_line.values())
    assert not [s for s in stamps if lo <= s < hi]
    assert stamps[0] < lo and stamps[-1] > hi


def test_the_generator_is_deterministic_and_takes_options(tmp_path: Path) -> None:
    a, b, c = (tmp_path / n for n in ("a.log", "b.log", "c.log"))
    write_log(a, lines=3000, seed=3)
    write_log(b, lines=3000, seed=3)
    man = write_log(
        c,
        lines=3000,
        seed=4,
        attacks=("webshell",),
        extra_fields=("s-sitename", "cs(Cookie)"),
        crlf=False,
    )
    assert a.read_bytes() == b.read_bytes()
    assert set(man.planted) == {"webshell"} and man.gap is None
    assert man.fields == [(*weblog.DEFAULT_FIELDS, "s-sitename", "cs(Cookie)")]
    read = Read([c])
    assert read.warnings == [] and len(read.rows) == 3000
    assert {r["s-sitename"] for r in read.rows} == {"W3SVC1"}
    assert {r["cs(cookie)"] for r in read.rows} == {None}
    with pytest.raises(ValueError, match="unknown attacks"):
        write_log(io.BytesIO(), lines=100, attacks=("ddos",))


# -- format --------------------------------------------------------------------------------------


def test_plus_is_a_space_dash_is_none_and_custom_fields_are_read(tmp_path: Path) -> None:
    p = tmp_path / "x.log"
    p.write_bytes(
        (
            HEADER + "#Fields: date time cs-uri-query cs(User-Agent) cs(X-Forwarded-For) "
            "X-Custom\r\n"
            "2024-03-01 00:00:01 q=blue+shoes Mozilla/5.0+(Windows+NT+10.0) 203.0.113.9 +\r\n"
            "2024-03-01 00:00:02 - - - a-b\r\n"
        ).encode()
    )
    read = Read([p])
    assert read.warnings == []
    assert read.batches[0].fields == (
        "date",
        "time",
        "cs-uri-query",
        "cs(user-agent)",
        "cs(x-forwarded-for)",
        "x-custom",
    )
    one, two = read.rows
    assert one["cs-uri-query"] == "q=blue shoes"
    assert one["cs(user-agent)"] == "Mozilla/5.0 (Windows NT 10.0)"
    assert one["cs(x-forwarded-for)"] == "203.0.113.9" and one["x-custom"] == " "
    assert (two["cs-uri-query"], two["cs(user-agent)"], two["x-custom"]) == (None, None, "a-b")
    assert read.batches[0].column("cs(X-Forwarded-For)") == ["203.0.113.9", None]
    assert read.batches[0].column("cs-bytes") is None
    assert_custody(read, p)


def test_exact_batches_split_their_columns_only_when_asked(tmp_path: Path) -> None:
    """The reader's batches hold raw lines; their columns are made when first read (the store
    never reads them). A batch with a line that is not exactly its values joined by single
    spaces (a trailing space) has its columns made by the reader."""
    clean, trailing = tmp_path / "clean.log", tmp_path / "trailing.log"
    clean.write_bytes((HEADER + f"#Fields: {DEFAULT}\r\n" + rows(3)).encode())
    trailing.write_bytes(
        (HEADER + f"#Fields: {DEFAULT}\r\n" + rows(1) + ROW.format(s=1) + " \r\n").encode()
    )
    (exact,) = read_paths([clean])
    assert exact.exact and exact._columns is None
    assert exact.column("sc-status") == ["200", "200", "200"]
    assert exact.column("cs(user-agent)") == ["Mozilla/5.0 (Windows NT 10.0)"] * 3
    assert exact.column("cs(referer)") == [None, None, None]
    (not_exact,) = read_paths([trailing])
    assert not not_exact.exact and not_exact._columns is not None
    assert not_exact.raw[1].endswith(" ") and not_exact.column("time-taken") == ["15", "15"]
    with pytest.raises(ValueError, match="exact"):
        Batch("x.log", "0" * 64, ("a", "b"), None, [1], ["a b"])


def test_a_carriage_return_inside_a_line_stays_in_its_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stray CR (not the CRLF ending a line) is kept in its value as in the raw line,
    wherever the reads split the bytes (it was dropped from the value in some blocks only)."""
    p = tmp_path / "cr.log"
    stray = ROW.format(s=1).replace("/default.aspx", "/default.aspx\r")
    p.write_bytes((HEADER + f"#Fields: {DEFAULT}\r\n" + rows(1) + stray + "\r\n").encode())
    for chunk in (1 << 16, 7):
        monkeypatch.setattr(w3c, "CHUNK", chunk)
        read = Read([p])
        assert read.warnings == []
        assert [r["cs-uri-stem"] for r in read.rows] == ["/default.aspx", "/default.aspx\r"]
        assert read.rows[1]["_raw"] == stray


def test_a_bom_is_dropped(tmp_path: Path) -> None:
    p = tmp_path / "bom.log"
    p.write_bytes(b"\xef\xbb\xbf" + (HEADER + f"#Fields: {DEFAULT}\r\n" + rows(3)).encode())
    read = Read([p])
    assert read.warnings == [] and len(read.rows) == 3
    assert read.batches[0].fields[0] == "date"
    assert [r["_line"] for r in read.rows] == [5, 6, 7]
    assert_custody(read, p)


def test_lf_and_crlf_logs_read_the_same(tmp_path: Path) -> None:
    a, b = tmp_path / "crlf.log", tmp_path / "lf.log"
    write_log(a, lines=2000, seed=5)
    write_log(b, lines=2000, seed=5, crlf=False)
    ra, rb = Read([a]), Read([b])
    strip = [{k: v for k, v in r.items() if k not in ("_sha", "_source")} for r in ra.rows]
    assert strip == [{k: v for k, v in r.items() if k not in ("_sha", "_source")} for r in rb.rows]


# -- inputs -------------------------------------------------------------------------------------


def test_gzip_is_streamed_with_the_archive_hash(tmp_path: Path) -> None:
    plain, gz = tmp_path / "u_ex1.log", tmp_path / "u_ex1.log.gz"
    man = write_log(plain, lines=5000, seed=2)
    with gzip.open(gz, "wb") as f:
        f.write(plain.read_bytes())
    read = Read([gz])
    assert read.warnings == [] and read.stats.rows == man.rows
    assert {r["_source"] for r in read.rows} == {str(gz)}
    assert_custody(read, gz, file_lines(plain))  # sha256 of the .gz, lines of the content
    assert [r["_raw"] for r in read.rows] == [r["_raw"] for r in Read([plain]).rows]


def test_zip_members_are_read_each_with_their_own_lines(tmp_path: Path) -> None:
    one = (HEADER + f"#Fields: {DEFAULT}\r\n" + rows(3)).encode()
    two = (HEADER + "#Fields: date time c-ip\r\n2024-03-02 01:00:00 198.51.100.7\r\n").encode()
    z = tmp_path / "logs.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("W3SVC1/u_ex240301.log", one)
        zf.writestr("W3SVC2/u_ex240302.log", two)
        zf.writestr("README.md", "not a log\n")
        zf.writestr("W3SVC3/", "")
        zf.writestr("W3SVC3/old.log.gz", gzip.compress(one))
        zf.writestr("W3SVC3/noname", two)  # no .log name, but it starts like a log
    read = Read([z])
    assert read.warnings == []
    assert read.stats.sources == 4
    by_source: dict[str, list[int]] = {}
    for r in read.rows:
        assert r["_sha"] == sha(z)
        by_source.setdefault(r["_source"], []).append(r["_line"])
    assert by_source == {
        f"{z}!W3SVC1/u_ex240301.log": [5, 6, 7],
        f"{z}!W3SVC2/u_ex240302.log": [5],
        f"{z}!W3SVC3/old.log.gz": [5, 6, 7],
        f"{z}!W3SVC3/noname": [5],
    }
    assert read.rows[3]["c-ip"] == "198.51.100.7" and read.rows[3]["_raw"].endswith(".7")


def test_a_directory_is_read_recursively(tmp_path: Path) -> None:
    root = tmp_path / "LogFiles"
    (root / "W3SVC1").mkdir(parents=True)
    (root / "W3SVC2" / "old").mkdir(parents=True)
    (root / "W3SVC1" / "u_ex1.log").write_bytes(
        (HEADER + f"#Fields: {DEFAULT}\r\n" + rows(2)).encode()
    )
    (root / "W3SVC2" / "old" / "u_ex0.log.gz").write_bytes(
        gzip.compress((HEADER + f"#Fields: {DEFAULT}\r\n" + rows(1)).encode())
    )
    (root / "W3SVC2" / "export").write_bytes((f"#Fields: {DEFAULT}\n" + rows(1)).encode())
    (root / "notes.md").write_text("# notes, not a log\n")
    (root / "W3SVC2" / "picture.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    read = Read([root])
    assert read.warnings == []
    assert [(Path(r["_source"]).relative_to(root).as_posix(), r["_line"]) for r in read.rows] == [
        ("W3SVC1/u_ex1.log", 5),
        ("W3SVC1/u_ex1.log", 6),
        ("W3SVC2/export", 2),
        ("W3SVC2/old/u_ex0.log.gz", 5),
    ]
    assert read.stats.evidence == 3


def test_a_path_that_does_not_exist_raises_before_anything_is_read(tmp_path: Path) -> None:
    good = tmp_path / "a.log"
    good.write_bytes((f"#Fields: {DEFAULT}\n" + rows(1)).encode())
    with pytest.raises(OSError, match=r"missing\.log"):
        next(read_paths([good, tmp_path / "missing.log"]))


def test_skip_leaves_known_evidence_unread(tmp_path: Path) -> None:
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    a.write_bytes((f"#Fields: {DEFAULT}\n" + rows(2)).encode())
    b.write_bytes((f"#Fields: {DEFAULT}\n" + rows(3)).encode())
    read = Read([a, b], skip=lambda digest: digest == sha(a))
    assert {r["_source"] for r in read.rows} == {str(b)}
    assert (read.stats.skipped, read.stats.evidence) == (1, 2)


def test_a_file_changed_while_read_is_reported(tmp_path: Path) -> None:
    p = tmp_path / "a.log"
    p.write_bytes((f"#Fields: {DEFAULT}\n" + rows(2)).encode())
    said: list[tuple[str, int, str]] = []
    evidence = sources.Evidence(p, "0" * 64, p.stat().st_size)  # not the hash it has
    with open(p, "rb") as f:
        for _name, stream in sources.sources_of(
            f, evidence, explicit=True, warn=lambda *w: said.append(w)
        ):
            list(read_stream(stream, source=str(p), sha256=evidence.sha256))
    assert len(said) == 1 and "changed while it was read" in said[0][2]


# -- broken input ---------------------------------------------------------------------------------


def test_a_torn_last_line_is_counted_and_located(tmp_path: Path) -> None:
    p = tmp_path / "torn.log"
    p.write_bytes(
        (HEADER + f"#Fields: {DEFAULT}\r\n" + rows(3) + "2024-03-01 00:01:00 10.0.0.10 GE").encode()
    )
    read = Read([p])
    assert len(read.rows) == 3 and read.stats.torn == 1
    assert read.messages == [f"{p}:8: torn last line (4 of 15 values, no newline): skipped"]


def test_a_last_line_without_newline_but_whole_is_kept(tmp_path: Path) -> None:
    p = tmp_path / "end.log"
    p.write_bytes((f"#Fields: {DEFAULT}\n" + rows(2).rstrip("\r\n")).encode())
    read = Read([p])
    assert [r["_line"] for r in read.rows] == [2, 3] and read.stats.torn == 0
    assert read.messages == [f"{p}:3: last line has no newline: its last value may be cut short"]


def test_a_row_with_the_wrong_count_is_skipped_and_located(tmp_path: Path) -> None:
    p = tmp_path / "bad.log"
    bad = "2024-03-01 00:00:09 10.0.0.10 GET /x - 443 - 192.0.2.1 - - 200 0 0 15 extra"
    p.write_bytes((f"#Fields: {DEFAULT}\r\n" + rows(2) + bad + "\r\n\r\n" + rows(2, 10)).encode())
    read = Read([p])
    assert [r["_line"] for r in read.rows] == [2, 3, 6, 7]
    assert (read.stats.invalid, read.stats.blank, read.stats.lines) == (1, 1, 7)
    assert read.messages == [f"{p}:4: 16 values where #Fields has 15: skipped"]
    assert_custody(read, p)


def test_binary_garbage_gives_warnings_never_an_exception(tmp_path: Path) -> None:
    p = tmp_path / "garbage.log"
    garbage = random.Random(0).randbytes(20_000)
    p.write_bytes(
        (f"#Fields: {DEFAULT}\n" + rows(2)).encode() + garbage + b"\n" + rows(2, 5).encode()
    )
    read = Read([p])
    good = [r for r in read.rows if r["sc-status"] == "200" and r["_raw"].startswith("2024-")]
    assert len(good) >= 3  # the rows before the garbage, and those after its last line
    assert read.stats.invalid > 0
    assert read.stats.warnings == len(read.warnings) + read.stats.suppressed
    assert any("invalid UTF-8" in m for m in read.messages)
    assert all(m.startswith(f"{p}:") for m in read.messages)
    lines = [int(w.line) for w in read.warnings]
    assert lines == sorted(lines) and lines[0] >= 3


def test_a_binary_file_named_on_the_command_line_is_only_warnings(tmp_path: Path) -> None:
    p = tmp_path / "image.log"
    p.write_bytes(random.Random(1).randbytes(3 * w3c.CHUNK + 17))
    read = Read([p])
    assert read.rows == [] and read.stats.warnings >= 1


def test_rows_before_any_fields_line(tmp_path: Path) -> None:
    # the IIS default fields' count and a date: the default fields are assumed, with a warning
    p = tmp_path / "cut.log"
    p.write_bytes(rows(3).encode())
    read = Read([p])
    assert len(read.rows) == 3 and read.rows[0]["c-ip"] == "192.0.2.0"
    assert read.messages == [
        f"{p}:1: no #Fields line before this row: the IIS default fields are assumed"
    ]
    # anything else: skipped, one warning for the run, until a #Fields line
    q = tmp_path / "odd.log"
    q.write_bytes(b"a b c\nd e f\n#Fields: x y z\n1 2 3\n")
    read = Read([q])
    assert read.rows[0] | {"_sha": None} == {
        "x": "1", "y": "2", "z": "3", "_source": str(q), "_sha": None, "_line": 4, "_raw": "1 2 3"
    }  # fmt: skip
    assert read.stats.invalid == 2
    assert read.messages == [
        f"{q}:1: row before any #Fields line (fields unknown): skipped until one"
    ]


def test_an_empty_file_is_a_warning(tmp_path: Path) -> None:
    p = tmp_path / "empty.log"
    p.write_bytes(b"")
    read = Read([p])
    assert read.batches == [] and read.messages == [f"{p}: empty: no lines"]


def test_invalid_utf8_is_replaced_and_warned_once(tmp_path: Path) -> None:
    p = tmp_path / "ansi.log"
    body = f"#Fields: {DEFAULT}\n".encode() + rows(2).encode()
    bad = ROW.format(s=7).replace("/default.aspx", "/caf\xe9.aspx").encode("latin-1")
    p.write_bytes(body + bad + b"\r\n" + bad + b"\r\n")
    read = Read([p])
    assert len(read.rows) == 4
    assert read.rows[2]["cs-uri-stem"] == "/caf\ufffd.aspx"
    assert read.messages == [f"{p}:4: invalid UTF-8 (decoded with replacement characters)"]


def test_a_huge_line_is_skipped_without_being_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(w3c, "MAX_LINE", 5000)
    monkeypatch.setattr(w3c, "CHUNK", 1024)
    p = tmp_path / "long.log"
    p.write_bytes((f"#Fields: {DEFAULT}\n" + rows(1) + "x" * 20_000 + "\n" + rows(1, 3)).encode())
    read = Read([p])
    assert [r["_line"] for r in read.rows] == [2, 4]
    assert read.messages == [f"{p}:3: line longer than 5000 bytes: skipped"]


def test_a_broken_gzip_keeps_what_was_read(tmp_path: Path) -> None:
    whole = gzip.compress((f"#Fields: {DEFAULT}\n" + rows(3000)).encode())
    p = tmp_path / "cut.log.gz"
    p.write_bytes(whole[: len(whole) // 2])
    read = Read([p])
    assert 0 < len(read.rows) < 3000
    assert len(read.warnings) == 1 and "read error after line" in read.messages[0]
    zp = tmp_path / "bad.zip"
    zp.write_bytes(b"PK\x03\x04" + bytes(100))
    read = Read([zp])
    assert read.rows == [] and "not a readable zip archive" in read.messages[0]


MIXED = (
    b"\xef\xbb\xbf"
    + (HEADER + f"#Fields: {DEFAULT}\r\n" + rows(40)).encode()
    + b"2024-03-01 00:00:01 too few\r\n\r\n"
    + ROW.format(s=3).replace("GET", "G\xc9T").encode("latin-1")
    + b"\r\n"
    + (HEADER + "#Fields: date time cs-host X-Y\n").encode()
    + "".join(f"2024-03-01 00:01:{s:02d} h{s} a+b\n" for s in range(30)).encode()
    + (f"#Fields: {DEFAULT}\r\n" + rows(20)).encode()
    + b"2024-03-01 00:02"
)


@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 16])
def test_the_read_does_not_depend_on_where_reads_split_the_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    p = tmp_path / "mixed.log"
    p.write_bytes(MIXED)
    monkeypatch.setattr(w3c, "CHUNK", chunk)
    read = Read([p], batch=16)
    summary = {
        "rows": [(r["_line"], r["_raw"], tuple(sorted(map(str, r.items())))) for r in read.rows],
        "warnings": read.messages,
        "batches": [(b.fields, len(b)) for b in read.batches],
    }
    monkeypatch.setattr(w3c, "CHUNK", 1 << 16)
    again = Read([p], batch=16)
    assert summary == {
        "rows": [(r["_line"], r["_raw"], tuple(sorted(map(str, r.items())))) for r in again.rows],
        "warnings": again.messages,
        "batches": [(b.fields, len(b)) for b in again.batches],
    }
    assert len(read.rows) == 40 + 1 + 30 + 20
    assert read.stats.fields_changes == 2 and read.stats.torn == 1
    assert [r["x-y"] for r in read.rows if "x-y" in r][:2] == ["a b", "a b"]
    assert all(len(b) <= 16 for b in read.batches)
    assert read.messages == [
        f"{p}:45: 4 values where #Fields has 15: skipped",
        f"{p}:47: invalid UTF-8 (decoded with replacement characters)",
        f"{p}:103: torn last line (2 of 15 values, no newline): skipped",
    ]
    assert_custody(read, p)


# -- streaming -----------------------------------------------------------------------------------

_MEASURE = """
import json, resource, sys
from irtool.analysis.w3c import read_paths, ReadStats
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
stats = ReadStats()
rows = 0
for b in read_paths([sys.argv[1]], batch=int(sys.argv[2]), stats=stats):
    rows += len(b)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"rows": rows, "base_kb": base, "peak_kb": peak, "lines": stats.lines}))
"""


def test_a_large_log_is_streamed_in_bounded_memory(tmp_path: Path) -> None:
    """300k lines (about 70 MB) read in a fresh process: its peak RSS grows by a few MB per
    batch, far less than the file: the log is never held whole."""
    p = tmp_path / "big.log"
    man = write_log(p, lines=300_000, seed=11)
    size_mb = p.stat().st_size / 2**20
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(p), "5000"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    got = json.loads(out.stdout)
    assert got["rows"] == man.rows and got["lines"] == man.total_lines
    grown_mb = (got["peak_kb"] - got["base_kb"]) / 1024
    assert size_mb > 60
    assert grown_mb < 30, f"peak RSS grew by {grown_mb:.1f} MB reading a {size_mb:.0f} MB log"
