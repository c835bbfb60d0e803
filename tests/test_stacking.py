"""Stacking across five hosts of one build: the module only one of them loads is the finding,
what most of them have is not, and a group too small to compare says so."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from irtool.analysis.records import Record, read_records
from irtool.analysis.stacking import rare_drafts, stack
from irtool.model.records import RecordSpec

HOSTS = ("web01", "web02", "web03", "web04", "web05")
SPEC = RecordSpec(
    kind="global-module", path="modules", key=["name", "image", "files.sha256"],
    show=["name", "image"],
)  # fmt: skip
SERVICES = RecordSpec(kind="service", path="services", key=["name", "path"])


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest().upper()


def module(name: str, dll: str) -> dict[str, Any]:
    path = f"C:\\Windows\\System32\\inetsrv\\{dll}"
    return {
        "name": name,
        "image": f"%windir%\\System32\\inetsrv\\{dll}",
        "files": [{"path": path, "exists": True, "sha256": sha(dll), "signature": "Valid"}],
    }


STOCK = [module("UriCacheModule", "cachuri.dll"), module("StaticFileModule", "static.dll")]
ODD = module("CacheHelperModule", "cachehlp.dll")  # the backdoor, on web03 only
PAIR = module("UrlRewriteModule", "rewrite.dll")  # installed on web01 and web02


def host_records(host: str, modules: list[dict[str, Any]]) -> list[Record]:
    output = json.dumps({"computer": host.upper(), "modules": modules}, indent=4).encode()
    return read_records(
        output, SPEC, source=f"{host}:triage-iis-config/global-modules",
        sha256=hashlib.sha256(output).hexdigest(),
    ).records  # fmt: skip


def farm() -> dict[str, list[Record]]:
    found = {}
    for host in HOSTS:
        modules = list(STOCK)
        if host == "web03":
            modules.append(ODD)
        if host in ("web01", "web02"):
            modules.append(PAIR)
        found[host] = host_records(host, modules)
    return found


def test_the_rarest_records_come_first() -> None:
    stacks = stack(farm())
    assert [(s.records[0].fields["name"], s.count) for s in stacks] == [
        ("CacheHelperModule", 1),
        ("UrlRewriteModule", 2),
        ("StaticFileModule", 5),
        ("UriCacheModule", 5),
    ]
    assert stacks[0].hosts == ("web03",)


def test_only_the_module_on_one_of_five_hosts_is_a_finding() -> None:
    by_host = farm()
    rare = rare_drafts(stack(by_host), hosts_total=len(by_host))
    assert rare.note is None
    (draft,) = rare.drafts
    assert draft.hunt == "stack:global-module" and draft.severity == "high"
    assert draft.hosts == ("web03",)
    assert draft.summary == (
        "global-module CacheHelperModule %windir%\\System32\\inetsrv\\cachehlp.dll "
        "on 1 of 5 hosts (web03)"
    )
    identity = (
        f"cachehelpermodule|%windir%\\system32\\inetsrv\\cachehlp.dll|{sha('cachehlp.dll').lower()}"
    )
    assert draft.key == f"stack:global-module:{identity}"
    (ref,) = draft.refs
    assert ref[1] == "web03:triage-iis-config/global-modules"
    # the line the third module listed starts on in web03's output
    output = json.dumps({"computer": "WEB03", "modules": [*STOCK, ODD]}, indent=4)
    assert '"name": "CacheHelperModule"' in output.splitlines()[ref[2]]
    assert ("module", "CacheHelperModule") in draft.indicators
    assert ("sha256", sha("cachehlp.dll").lower()) in draft.indicators
    assert ("file", "C:\\Windows\\System32\\inetsrv\\cachehlp.dll") in draft.indicators


def test_a_higher_threshold_reviews_what_two_hosts_have_too() -> None:
    by_host = farm()
    rare = rare_drafts(stack(by_host), hosts_total=5, threshold=3)
    assert sorted(d.hosts for d in rare.drafts) == [("web01", "web02"), ("web03",)]
    pair = next(d for d in rare.drafts if d.hosts == ("web01", "web02"))
    assert pair.summary.endswith("on 2 of 5 hosts (web01, web02)")
    assert pair.count == 2 and len(pair.refs) == 2


def test_what_every_host_has_is_never_rare() -> None:
    by_host = {h: host_records(h, STOCK) for h in HOSTS}
    assert rare_drafts(stack(by_host), hosts_total=5, threshold=99).drafts == []


def test_a_group_of_two_hosts_is_not_stacked_and_says_so() -> None:
    by_host = {"web01": host_records("web01", STOCK), "web03": host_records("web03", [ODD])}
    rare = rare_drafts(stack(by_host), hosts_total=2)
    assert rare.drafts == []
    assert rare.note is not None and "2 host(s)" in rare.note and "3 or more" in rare.note


def test_a_rare_service_is_medium_and_names_the_service() -> None:
    def services(host: str, extra: list[dict[str, str]]) -> list[Record]:
        rows = [{"name": "W3SVC", "path": "C:\\Windows\\system32\\svchost.exe -k iissvcs"}]
        data = json.dumps({"services": rows + extra}).encode()
        return read_records(data, SERVICES, source=f"{host}:services", sha256="ab" * 32).records

    tunnel = {"name": "WinHttpHelper", "path": "C:\\ProgramData\\helper.exe"}
    by_host = {h: services(h, [tunnel] if h == "web02" else []) for h in HOSTS[:3]}
    (draft,) = rare_drafts(stack(by_host), hosts_total=3).drafts
    assert (draft.hunt, draft.severity, draft.hosts) == ("stack:service", "medium", ("web02",))
    assert draft.indicators == (("service", "WinHttpHelper"),)


def test_a_host_whose_collector_failed_is_not_counted_in_its_kind() -> None:
    by_host = farm()
    # web05's global-modules output could not be read: the module is on 1 of 4 hosts.
    del by_host["web05"]
    rare = rare_drafts(stack(by_host), hosts_total={"global-module": 4})
    (draft,) = rare.drafts
    assert draft.summary.endswith("on 1 of 4 hosts (web03)")
    # A kind only two hosts reported is not stacked, however big the group.
    services = rare_drafts(stack(by_host), hosts_total={"global-module": 2, "service": 5})
    assert services.drafts == []


def test_each_hosts_own_administrator_is_the_same_local_admin() -> None:
    # Get-LocalGroupMember names a local member COMPUTER\name: on every host another text.
    spec = RecordSpec(kind="local-admin", path="administrators", key=["name"])

    def admins(host: str, extra: list[str]) -> list[Record]:
        members = [f"{host.upper()}\\Administrator", "CORP\\GG-Server-Admins", *extra]
        document = {"computer": host.upper(), "administrators": [{"name": m} for m in members]}
        return read_records(json.dumps(document).encode(), spec, source=host).records

    # web04 is a PowerShell 2 host: CSV, its computer name in a column.
    csv_rows = "".join(
        f'"administrators","WEB04\\{n}","","","","","WEB04"\n' for n in ("Administrator",)
    )
    web04 = read_records(
        ('"kind","name","sid","enabled","description","detail","computer"\n' + csv_rows).encode(),
        spec,
        source="web04",
    ).records
    by_host = {h: admins(h, ["WEB02\\support_iis"] if h == "web02" else []) for h in HOSTS[:3]}
    by_host["web04"] = web04 + [r for r in admins("web04", []) if "corp" in r.identity]
    (draft,) = rare_drafts(stack(by_host), hosts_total=4).drafts
    assert draft.key == "stack:local-admin:.\\support_iis" and draft.severity == "high"
    assert draft.indicators == (("account", "WEB02\\support_iis"),)
