"""A deterministic generator of realistic IIS W3C traffic, with planted attacks.

Normal traffic: an internet-facing ASP.NET site (pages, static files, a JSON API, a login form
that POSTs) reached by a few hundred clients with their own browsers, plus an intranet part
under ``/intranet/`` with Windows authentication, whose every request is the NTLM handshake
IIS logs: ``401 2 5`` (anonymous request refused), ``401 1 2148074254`` (the challenge leg,
SEC_E_NO_CREDENTIALS), then ``200`` with the user name. Traffic follows the hours of the day
(never zero at night) over ``duration``; a baseline precedes the incident window (the last
``incident`` of the log), where the attacks are planted:

- ``webshell``: one client GETs then POSTs a script page nobody else reaches, answered 200;
- ``bruteforce``: an intranet client tries passwords: real failures ``401 1 1326``
  (ERROR_LOGON_FAILURE), each after the normal ``401 2 5`` and ``401 1 2148074254`` legs;
- ``scanner``: sqlmap's user agent, SQL injection in query strings;
- ``admin``: probes of /admin, /phpmyadmin, /wp-login.php, /.env and the like (404);
- ``tunnel``: many small POSTs to one page from one client (reGeorg-like);
- ``gap``: hours with no lines at all (logging stopped);
- ``fields``: a new header half-way, whose ``#Fields`` adds ``cs-host``, ``sc-bytes``,
  ``cs-bytes`` and ``cs(X-Forwarded-For)`` (IIS's order, custom field last).

``write_log`` returns a ``Manifest``: every planted row's line number, client, URI and user
agent, the gap, the header lines, so that tests assert on exact lines.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from pathlib import Path
from typing import BinaryIO

DEFAULT_FIELDS: tuple[str, ...] = (
    "date",
    "time",
    "s-ip",
    "cs-method",
    "cs-uri-stem",
    "cs-uri-query",
    "s-port",
    "cs-username",
    "c-ip",
    "cs(User-Agent)",
    "cs(Referer)",
    "sc-status",
    "sc-substatus",
    "sc-win32-status",
    "time-taken",
)
#: The #Fields after the mid-file change (the ``fields`` attack): IIS's order, custom last.
CHANGED_FIELDS: tuple[str, ...] = (
    *DEFAULT_FIELDS[:11],
    "cs-host",
    "sc-status",
    "sc-substatus",
    "sc-win32-status",
    "sc-bytes",
    "cs-bytes",
    "time-taken",
    "cs(X-Forwarded-For)",
)
ATTACKS: tuple[str, ...] = (
    "webshell",
    "bruteforce",
    "scanner",
    "admin",
    "tunnel",
    "gap",
    "fields",
)
#: Every field the generator can write (extra_fields picks from these).
KNOWN_FIELDS: tuple[str, ...] = (
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
    "cs-version",
    "cs(User-Agent)",
    "cs(Cookie)",
    "cs(Referer)",
    "cs-host",
    "sc-status",
    "sc-substatus",
    "sc-win32-status",
    "sc-bytes",
    "cs-bytes",
    "time-taken",
    "cs(X-Forwarded-For)",
)
_INDEX = {name.lower(): i for i, name in enumerate(KNOWN_FIELDS)}

SERVER_IP = "10.0.0.10"
HOST = "www.contoso.com"
WEBSHELL_URI = "/aspnet_client/system_web/4_0_30319/errorpage.aspx"
TUNNEL_URI = "/aspnet_client/tunnel.ashx"
BRUTE_URI = "/intranet/default.aspx"
SCANNER_UA = "sqlmap/1.7.2#stable (https://sqlmap.org)"
ADMIN_PATHS = (
    "/admin",
    "/admin/login.aspx",
    "/administrator/",
    "/phpmyadmin/index.php",
    "/phpMyAdmin/",
    "/wp-login.php",
    "/wp-admin/",
    "/.env",
    "/.git/config",
    "/web.config",
    "/server-status",
    "/manager/html",
    "/elmah.axd",
    "/trace.axd",
)

_BROWSERS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.2 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.6099.144 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/119.0.0.0 Safari/537.36",
)
_BOTS = (
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
)
# (method, stem, query, status, weight); a query "id" gets a number.
_PAGES: tuple[tuple[str, str, str, int, int], ...] = (
    ("GET", "/", "-", 200, 30),
    ("GET", "/default.aspx", "-", 200, 20),
    ("GET", "/products.aspx", "category=2", 200, 12),
    ("GET", "/products/detail.aspx", "id", 200, 18),
    ("GET", "/app/Orders.aspx", "-", 200, 10),
    ("GET", "/app/Customers.aspx", "page", 200, 6),
    ("GET", "/app/Reports.aspx", "id", 200, 5),
    ("GET", "/api/orders", "id", 200, 10),
    ("POST", "/api/orders", "-", 200, 4),
    ("GET", "/app/Login.aspx", "ReturnUrl=%2fapp%2fOrders.aspx", 200, 5),
    ("POST", "/app/Login.aspx", "ReturnUrl=%2fapp%2fOrders.aspx", 302, 4),
    ("POST", "/Search.aspx", "-", 200, 3),
    ("GET", "/Search.aspx", "q=blue+shoes", 200, 4),
    ("GET", "/css/site.css", "v=3", 200, 25),
    ("GET", "/js/app.js", "v=3", 200, 25),
    ("GET", "/images/logo.png", "-", 304, 20),
    ("GET", "/favicon.ico", "-", 200, 10),
    ("GET", "/robots.txt", "-", 200, 1),
    ("GET", "/old/page.aspx", "-", 404, 1),
    ("GET", "/WebResource.axd", "d=abc123&t=638400000000000000", 200, 6),
    ("GET", "/ScriptResource.axd", "d=def456&t=638400000000000000", 200, 4),
    ("POST", "/api/cart.ashx", "-", 200, 3),
    ("GET", "/api/cart.ashx", "-", 200, 3),
    ("POST", "/services/Catalog.asmx", "-", 200, 1),
)
_INTRANET = ("/intranet/default.aspx", "/intranet/timesheet.aspx", "/intranet/api/people")
_USERS = ("jdoe", "asmith", "bwong", "ckumar", "dlee", "efischer", "gmartin", "hnguyen")
_PAGE_WEIGHTS = [p[4] for p in _PAGES]
_MIN_CLIENTS = 5
# A diurnal profile: requests per hour of the day (UTC), never zero.
_HOURS = (3, 2, 2, 2, 2, 3, 5, 8, 12, 15, 16, 15, 14, 15, 16, 15, 13, 11, 9, 8, 7, 6, 5, 4)


@dataclass
class Plant:
    """One planted attack: its rows' line numbers (1-based, in the file as written)."""

    kind: str
    client: str
    uri: str
    user_agent: str | None
    lines: list[int] = field(default_factory=list)
    first: datetime | None = None
    last: datetime | None = None
    notes: dict[str, object] = field(default_factory=dict)


@dataclass
class Manifest:
    rows: int = 0
    """Request lines written."""
    total_lines: int = 0
    """All lines written (rows and directives)."""
    directives: int = 0
    fields: list[tuple[str, ...]] = field(default_factory=list)
    """Each #Fields list written, in order (as written, not lowercased)."""
    fields_lines: list[int] = field(default_factory=list)
    """The line number of each #Fields line."""
    start: datetime | None = None
    end: datetime | None = None
    incident_start: datetime | None = None
    gap: tuple[datetime, datetime] | None = None
    planted: dict[str, Plant] = field(default_factory=dict)
    """By attack: webshell, bruteforce (lines: the 1326 failures; notes["legs"]: the
    401.2/5 and 401.1/2148074254 legs around them), scanner, admin, tunnel."""

    def __getitem__(self, kind: str) -> Plant:
        return self.planted[kind]


def w3c(value: object) -> str:
    """A value as IIS writes it: spaces as '+', empty as '-'."""
    s = "" if value is None else str(value)
    return s.replace(" ", "+") if s else "-"


_Row = tuple[float, tuple[str, ...], str | None]  # (seconds from start, values, plant kind)


class _Gen:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        r = rng
        self.clients = [
            f"{r.choice((81, 92, 109, 176, 188, 203, 24, 73, 98))}.{r.randrange(1, 255)}."
            f"{r.randrange(0, 255)}.{r.randrange(1, 255)}"
            for _ in range(300)
        ]
        self.client_ua = [w3c(r.choice(_BROWSERS)) for _ in self.clients]
        self.client_w = [1 / (i + 1) ** 0.6 for i in range(len(self.clients))]
        self.intranet = [f"10.1.{r.randrange(1, 30)}.{r.randrange(2, 250)}" for _ in range(60)]
        self.intranet_user = [f"CONTOSO\\{r.choice(_USERS)}" for _ in self.intranet]
        self.pool: list[tuple[tuple[str, ...], ...]] = []

    def values(
        self,
        method: str,
        stem: str,
        query: str,
        client: str,
        ua: str,
        status: int,
        sub: int = 0,
        win32: int = 0,
        user: str = "-",
        referer: str = "-",
        taken: int = 15,
        sc_bytes: int = 5000,
        cs_bytes: int = 400,
        port: int = 443,
        xff: str = "-",
    ) -> tuple[str, ...]:
        """Every KNOWN_FIELDS value but date and time (set when written)."""
        return (
            "",
            "",
            "W3SVC1",
            "WEB01",
            SERVER_IP,
            method,
            stem,
            query,
            str(port),
            user,
            client,
            "HTTP/1.1",
            ua,
            "-",
            referer,
            HOST,
            str(status),
            str(sub),
            str(win32),
            str(sc_bytes),
            str(cs_bytes),
            str(taken),
            xff,
        )

    def unit(
        self, page: tuple[str, str, str, int, int] | None = None, client: int | None = None
    ) -> tuple[tuple[str, ...], ...]:
        """One visit of normal traffic: a request, or an intranet user's NTLM handshake
        (three lines)."""
        r = self.rng
        rnd = r.random
        x = 0.5 if page is not None else rnd()
        if x < 0.06:
            k = int(rnd() * len(self.intranet))
            ip, user = self.intranet[k], self.intranet_user[k]
            stem = _INTRANET[int(rnd() * len(_INTRANET))]
            ua = w3c(_BROWSERS[k % 2])
            return (
                self.values("GET", stem, "-", ip, ua, 401, 2, 5, taken=1),
                self.values("GET", stem, "-", ip, ua, 401, 1, 2148074254, taken=0),
                self.values("GET", stem, "-", ip, ua, 200, user=user, taken=int(rnd() * 90)),
            )
        c = r.choices(range(len(self.clients)), weights=self.client_w)[0]
        if client is not None:
            c = client
        method, stem, query, status, _ = page or r.choices(_PAGES, weights=_PAGE_WEIGHTS)[0]
        ua = w3c(_BOTS[int(rnd() * len(_BOTS))]) if x < 0.07 else self.client_ua[c]
        if query == "id":
            query = f"id={int(rnd() * 5000)}"
        elif query == "page":
            query = f"page={int(rnd() * 40) + 1}"
        referer = f"https://{HOST}/" if rnd() < 0.6 else "-"
        small = stem.endswith((".css", ".js", ".png", ".ico"))
        return (
            self.values(
                method,
                stem,
                query,
                self.clients[c],
                ua,
                status,
                referer=referer,
                taken=int(rnd() * (20 if small else 400)),
                sc_bytes=int(rnd() * 60000) + 300,
                cs_bytes=int(rnd() * 900) + 200 + (600 if method == "POST" else 0),
            ),
        )

    def normal(self, times: list[float], pool_size: int) -> list[_Row]:
        """Visits at ``times``, drawn from a pool of ``pool_size`` distinct visits (fast:
        a 2M-line log is written in seconds; every visit recurs, so normal traffic has a
        baseline)."""
        if not self.pool:
            # every page from several clients, every intranet page handshaked by several
            # users, whatever the pool's size: normal traffic has no one-client page
            for page in _PAGES:
                for k in range(_MIN_CLIENTS):
                    self.pool.append(self.unit(page, (k * 37 + len(self.pool)) % len(self.clients)))
        if len(self.pool) < pool_size:
            self.pool.extend(self.unit() for _ in range(pool_size - len(self.pool)))
        rows: list[_Row] = []
        add = rows.append
        for t, u in zip(times, self.rng.choices(self.pool, k=len(times)), strict=True):
            for v in u:
                add((t, v, None))
        return rows


def _spread(rng: random.Random, n: int, start: float, end: float, base: datetime) -> list[float]:
    """n sorted times in [start, end) seconds, following the hours of the day."""
    if n <= 0 or end <= start:
        return []
    first_hour = int(start // 3600)
    last_hour = int((end - 1) // 3600)
    hours = list(range(first_hour, last_hour + 1))
    weights = [_HOURS[(base + timedelta(hours=h)).hour] for h in hours]
    rnd = rng.random
    top = end - 0.5
    out = [
        min(max(h * 3600.0 + rnd() * 3600.0, start), top) for h in rng.choices(hours, weights, k=n)
    ]
    out.sort()
    return out


def write_log(
    target: str | Path | BinaryIO,
    *,
    lines: int = 20_000,
    start: datetime = datetime(2024, 3, 1, tzinfo=UTC),
    duration: timedelta = timedelta(days=3),
    incident: timedelta = timedelta(hours=18),
    seed: int = 1,
    attacks: Iterable[str] = ATTACKS,
    extra_fields: Sequence[str] = (),
    gap_hours: float = 3.0,
    bom: bool = False,
    crlf: bool = True,
) -> Manifest:
    """Write exactly ``lines`` request rows of IIS W3C log (normal traffic fills what the
    attacks leave) to ``target``: a path, or a binary stream (flushed, left open).

    ``extra_fields`` (from ``KNOWN_FIELDS``) are added to the first header's #Fields; with
    the ``fields`` attack the second half is written under ``CHANGED_FIELDS`` (plus the
    same extras). The same arguments always write the same bytes."""
    chosen = tuple(attacks)
    unknown = set(chosen) - set(ATTACKS)
    if unknown:
        raise ValueError(f"unknown attacks: {sorted(unknown)}")
    for f in extra_fields:
        if f.lower() not in _INDEX:
            raise ValueError(f"unknown field {f!r}; known: {KNOWN_FIELDS}")
    rng = random.Random(seed)
    gen = _Gen(rng)
    total = duration.total_seconds()
    inc_start = total - incident.total_seconds()
    man = Manifest(start=start, end=start + duration)
    man.incident_start = start + timedelta(seconds=inc_start)
    gap_len = gap_hours * 3600 if "gap" in chosen else 0.0
    gap_at = inc_start + (total - inc_start) * 0.45
    if gap_len:
        man.gap = (start + timedelta(seconds=gap_at), start + timedelta(seconds=gap_at + gap_len))
    for kind, (client, uri, ua) in _PLANT_INFO.items():
        if kind in chosen:  # the gap and the #Fields change are in man.gap, man.fields_lines
            man.planted[kind] = Plant(kind, client, uri, ua)

    planted = _plant(gen, chosen, inc_start, total, gap_at, gap_len)
    n_normal = lines - len(planted)
    if n_normal < 0:
        raise ValueError(f"lines={lines} is fewer than the {len(planted)} planted rows")
    rows = _normal_rows(gen, rng, n_normal, total, gap_at, gap_len, start)
    rows.extend(planted)
    rows.sort(key=itemgetter(0))

    first_fields = (*DEFAULT_FIELDS, *extra_fields)
    second_fields = (*CHANGED_FIELDS, *[f for f in extra_fields if f not in CHANGED_FIELDS])
    change_at = len(rows) // 2 if "fields" in chosen else -1

    eol = "\r\n" if crlf else "\n"
    own = isinstance(target, str | Path)
    raw: BinaryIO = open(target, "wb") if own else target  # type: ignore[arg-type]  # noqa: SIM115
    chunks: list[str] = ["\ufeff"] if bom else []
    line_no = 0

    def header(fields: tuple[str, ...], at: datetime) -> None:
        nonlocal line_no
        chunks.append(
            f"#Software: Microsoft Internet Information Services 10.0{eol}#Version: 1.0{eol}"
            f"#Date: {at:%Y-%m-%d %H:%M:%S}{eol}#Fields: {' '.join(fields)}{eol}"
        )
        man.fields.append(fields)
        man.fields_lines.append(line_no + 4)
        line_no += 4
        man.directives += 4

    def getter(fields: tuple[str, ...]) -> itemgetter[tuple[str, ...]]:
        return itemgetter(*[_INDEX[f.lower()] for f in fields])

    def flush() -> None:
        raw.write("".join(chunks).encode("utf-8"))
        chunks.clear()

    try:
        header(first_fields, start)
        get = getter(first_fields)
        day0 = start.replace(hour=0, minute=0, second=0, microsecond=0)
        offset = int((start - day0).total_seconds())
        days: dict[int, str] = {}
        rest: dict[int, str] = {}  # id(values) -> the values after date and time, joined
        for i, (t, values, kind) in enumerate(rows):
            if i == change_at:
                header(second_fields, start + timedelta(seconds=int(t)))
                get = getter(second_fields)
                rest = {}
            whole = int(t)
            day, sec = divmod(offset + whole, 86400)
            date = days.get(day)
            if date is None:
                date = days[day] = f"{day0 + timedelta(days=day):%Y-%m-%d} "
            tail = rest.get(id(values))
            if tail is None:
                tail = rest[id(values)] = " " + " ".join(get(values)[2:]) + eol
            chunks.append(date + _CLOCK[sec] + tail)
            line_no += 1
            if kind is not None:
                _record(man, kind, line_no, start + timedelta(seconds=whole))
            if len(chunks) >= 4096:
                flush()
        flush()
        raw.flush()
    finally:
        if own:
            raw.close()
    man.rows = len(rows)
    man.total_lines = line_no
    return man


_CLOCK = [f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)]


def _record(man: Manifest, kind: str, line: int, at: datetime) -> None:
    base, _, part = kind.partition(":")
    p = man.planted[base]
    if part:
        p.notes.setdefault(part, []).append(line)  # type: ignore[union-attr]
    else:
        p.lines.append(line)
    p.first = p.first or at
    p.last = at


WEBSHELL_CLIENT = "185.220.101.47"
BRUTE_CLIENT = "10.1.7.23"
SCANNER_CLIENT = "45.155.205.99"
ADMIN_CLIENT = "103.75.190.12"
ADMIN_UA = "python-requests/2.31.0"
TUNNEL_CLIENT = "193.142.146.35"
TUNNEL_UA = "Mozilla/5.0 (Windows NT 6.1; WOW64; rv:40.0) Gecko/20100101 Firefox/40.1"
_PLANT_INFO: dict[str, tuple[str, str, str | None]] = {
    "webshell": (WEBSHELL_CLIENT, WEBSHELL_URI, _BROWSERS[0]),
    "bruteforce": (BRUTE_CLIENT, BRUTE_URI, _BROWSERS[1]),
    "scanner": (SCANNER_CLIENT, "/app/Reports.aspx", SCANNER_UA),
    "admin": (ADMIN_CLIENT, "/admin", ADMIN_UA),
    "tunnel": (TUNNEL_CLIENT, TUNNEL_URI, TUNNEL_UA),
}
_SQLI = (
    "id=1%27+AND+1%3D1--+",
    "id=1+UNION+ALL+SELECT+NULL,NULL,NULL--",
    "id=1%27%29+AND+SLEEP%285%29--",
    "id=1;WAITFOR+DELAY+%270:0:5%27--",
    "id=-1+OR+1=1",
    "id=1%22+AND+EXTRACTVALUE(1,CONCAT(0x7e,VERSION()))--",
)


def _plant(
    gen: _Gen,
    chosen: tuple[str, ...],
    inc_start: float,
    total: float,
    gap_at: float,
    gap_len: float,
) -> list[_Row]:
    """The attack rows, in the incident window (never in the gap)."""
    r = gen.rng
    rows: list[_Row] = []
    before = gap_at - inc_start  # the part of the window before the gap
    after0 = gap_at + gap_len  # the part after it starts here

    def at(t: float) -> float:
        return min(t, total - 1)

    if "scanner" in chosen:
        t0 = inc_start + before * 0.1
        ua = w3c(SCANNER_UA)
        for k in range(80):
            q = f"{_SQLI[k % len(_SQLI)]}&r={k}"
            status = 500 if k % 5 == 0 else 200
            v = gen.values(
                "GET",
                "/app/Reports.aspx",
                q,
                SCANNER_CLIENT,
                ua,
                status,
                taken=int(r.random() * 5000),
            )
            rows.append((at(t0 + k * 15), v, "scanner"))
    if "admin" in chosen:
        t0 = inc_start + before * 0.3
        for k in range(2 * len(ADMIN_PATHS)):
            path = ADMIN_PATHS[k % len(ADMIN_PATHS)]
            v = gen.values("GET", path, "-", ADMIN_CLIENT, w3c(ADMIN_UA), 404, 0, 2, taken=3)
            rows.append((at(t0 + k * 7), v, "admin"))
    if "bruteforce" in chosen:
        t0 = inc_start + before * 0.6
        ua = w3c(_BROWSERS[1])
        for k in range(40):
            user = f"CONTOSO\\{_USERS[k % len(_USERS)]}"
            t = at(t0 + k * 12)
            rows.append(
                (
                    t,
                    gen.values("GET", BRUTE_URI, "-", BRUTE_CLIENT, ua, 401, 2, 5, taken=1),
                    "bruteforce:legs",
                )
            )
            rows.append(
                (
                    t,
                    gen.values(
                        "GET", BRUTE_URI, "-", BRUTE_CLIENT, ua, 401, 1, 2148074254, taken=0
                    ),
                    "bruteforce:legs",
                )
            )
            rows.append(
                (
                    t,
                    gen.values(
                        "GET", BRUTE_URI, "-", BRUTE_CLIENT, ua, 401, 1, 1326, user=user, taken=2
                    ),
                    "bruteforce",
                )
            )
    if "webshell" in chosen:
        t0 = after0 + 600
        ua = w3c(_BROWSERS[0])
        rows.append(
            (
                at(t0),
                gen.values("GET", WEBSHELL_URI, "-", WEBSHELL_CLIENT, ua, 200, taken=40),
                "webshell:get",
            )
        )
        for k in range(24):
            v = gen.values(
                "POST",
                WEBSHELL_URI,
                "-",
                WEBSHELL_CLIENT,
                ua,
                200,
                taken=int(200 + r.random() * 3000),
                sc_bytes=int(300 + r.random() * 8000),
                cs_bytes=int(500 + r.random() * 2000),
            )
            rows.append((at(t0 + 60 + k * 300), v, "webshell"))
    if "tunnel" in chosen:
        t0 = after0 + 1800
        ua = w3c(TUNNEL_UA)
        for k in range(300):
            q = "cmd=read" if k % 3 else "cmd=forward"
            v = gen.values(
                "POST",
                TUNNEL_URI,
                q,
                TUNNEL_CLIENT,
                ua,
                200,
                taken=int(r.random() * 30),
                sc_bytes=int(180 + r.random() * 150),
                cs_bytes=int(250 + r.random() * 200),
            )
            rows.append((at(t0 + k * 8), v, "tunnel"))
    return rows


def _normal_rows(
    gen: _Gen,
    rng: random.Random,
    n: int,
    total: float,
    gap_at: float,
    gap_len: float,
    start: datetime,
) -> list[_Row]:
    """Exactly n rows of normal traffic, never in the gap."""
    rows: list[_Row] = []
    pool_size = min(8192, max(256, n // 8))
    while len(rows) < n:
        want = max(1, int((n - len(rows)) / 1.12))
        times = _spread(rng, want, 0.0, total - gap_len, start)
        if gap_len:
            times = [t + gap_len if t >= gap_at else t for t in times]
        rows.extend(gen.normal(times, pool_size))
    excess = len(rows) - n
    if excess:
        # drop single rows (never a part of a handshake), evenly through the list
        singles = [i for i, row in enumerate(rows) if row[1][16] != "401"]
        step = len(singles) / excess
        drop = {singles[int(k * step)] for k in range(excess)}
        rows = [row for i, row in enumerate(rows) if i not in drop]
    return rows
