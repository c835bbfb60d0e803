"""Rogue web servers: what an nmap scan found answering, compared with the inventory.

`parse_scan` reads nmap's XML output (`-oX`), one document or several one after the other (an
IPv4 and an IPv6 run). The XML comes from the network, or from a file someone handed over:
it is parsed with expat directly and every entity declaration, internal DTD subset and
external reference is refused (the "billion laughs" and XXE attacks), so only plain elements
and the five predefined entities are read. Text taken from it (`Server` headers, products)
is kept as it came; faces show it through `irtool.model.untrusted.visible`.

`compare` matches each answering port with the inventory:
- a port on an address no inventory host has is `rogue`;
- so is a port on an inventory host that does not list it as one of its web ports (a web
  server nobody declared on a managed machine: a test site, or an attacker's);
- the rest are `known`;
and lists the inventory's web servers that were scanned and did not answer (`silent`).
An inventory host is a web server when its `vars.web_ports` names its ports ("80,443,8080"),
or when it is a Windows host (this is an IIS estate): 80 and 443 then. Any other host is
expected to answer on no web port at all.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from xml.etree.ElementTree import Element, TreeBuilder
from xml.parsers import expat

from irtool.model.inventory import Inventory, OsFamily

DEFAULT_PORTS = (80, 443, 8080, 8443, 8000, 8888)
WINDOWS_WEB_PORTS = (80, 443)
WEB_PORTS_VAR = "web_ports"
MAX_SCAN_BYTES = 256 * 1024 * 1024

# Targets as nmap takes them: an address, a CIDR block, an octet range (10.0.1-3.*), a name.
_OCTET = r"(?:\*|\d{1,3}(?:-\d{1,3})?(?:,\d{1,3}(?:-\d{1,3})?)*)"
_IPV4_RANGE = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}")
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


class ScanProblem(ValueError):
    """Scan output, a target or a port list that cannot be used; `line`/`col` locate it in
    the XML (counting from 1) when it is a parse problem."""

    def __init__(self, message: str, line: int | None = None, col: int | None = None) -> None:
        self.message, self.line, self.col = message, line, col
        super().__init__(message)


# -- targets and ports --------------------------------------------------------------------


def parse_target(text: str) -> str:
    """One nmap target, checked: never an option (`-iL`), never a shell word."""
    value = text.strip()
    if not value or value.startswith("-"):
        raise ScanProblem(f"{text!r} is not an address range")
    try:
        if "/" in value:
            return str(ipaddress.ip_network(value, strict=False))
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    if _IPV4_RANGE.fullmatch(value) and _octets_fit(value):
        return value
    name = value.removesuffix(".")
    labels = name.split(".")
    # A name's last label has a letter: 10.0.0.300 and 10.0.0.1-300 are typos, not names.
    lettered = any(c.isalpha() for c in labels[-1])
    if 0 < len(name) <= 253 and lettered and all(_LABEL.fullmatch(p) for p in labels):
        return value
    raise ScanProblem(
        f"{text!r} is not an address range: give an address, a CIDR block (192.0.2.0/24), "
        "an nmap octet range (192.0.2.1-40) or a host name"
    )


def _octets_fit(value: str) -> bool:
    for octet in value.split("."):
        for part in octet.split(","):
            low, _, high = part.partition("-")
            if part != "*" and not int(low) <= int(high or low) <= 255:
                return False
    return True


def is_ipv6_target(target: str) -> bool:
    return ":" in target


def parse_ports(text: str) -> tuple[int, ...]:
    """`80,443,8000-8010` as sorted port numbers; ScanProblem when it is anything else."""
    ports: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        match = re.fullmatch(r"(\d{1,5})(?:-(\d{1,5}))?", part)
        if not match:
            raise ScanProblem(f"{text!r} is not a list of ports such as 80,443,8000-8010")
        low = int(match.group(1))
        high = int(match.group(2) or low)
        if not 1 <= low <= high <= 65535:
            raise ScanProblem(f"{part!r} is not a port or range between 1 and 65535")
        if high - low > 65535:
            raise ScanProblem(f"{part!r} is too wide a range")
        ports.update(range(low, high + 1))
    return tuple(sorted(ports))


def ports_text(ports: Iterable[int]) -> str:
    """Sorted ports written compactly, runs as ranges: `80,443,8000-8010`."""
    out: list[str] = []
    values = sorted(set(ports))
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[j] + 1:
            j += 1
        out.append(str(values[i]) if i == j else f"{values[i]}-{values[j]}")
        i = j + 1
    return ",".join(out)


# -- the scan -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Service:
    """One open port and what answered on it."""

    port: int
    protocol: str = "tcp"
    name: str = ""  # nmap's service name: http, https, http-proxy, unknown, ...
    product: str = ""
    version: str = ""
    extrainfo: str = ""
    tunnel: str = ""  # "ssl" when nmap spoke TLS to reach the service
    method: str = ""  # "probed": nmap recognised it; "table": only the port's usual name
    server_header: str = ""  # the HTTP `Server` header(s), from http-server-header
    header_source: str = ""  # "http-server-header" or "fingerprint" (nmap's raw replies)

    @property
    def service(self) -> str:
        return f"{self.tunnel}/{self.name}" if self.tunnel else self.name

    @property
    def software(self) -> str:
        return " ".join(p for p in (self.product, self.version, self.extrainfo) if p)

    @property
    def is_web(self) -> bool:
        """Whether this may be a web server: HTTP seen, or nmap could not tell what it is.
        Only a port nmap recognised by probing as something else (ssh, rdp) is not."""
        if self.server_header or "http" in self.name:
            return True
        return self.method != "probed" or self.name in ("", "unknown", "ssl", "tcpwrapped")


@dataclass(frozen=True)
class ScannedHost:
    address: str  # the IP address nmap scanned
    status: str  # up, down, unknown
    hostnames: tuple[str, ...] = ()
    mac: str = ""
    vendor: str = ""
    services: tuple[Service, ...] = ()  # open ports only


@dataclass(frozen=True)
class Scan:
    hosts: tuple[ScannedHost, ...]
    ports: tuple[int, ...] = ()  # the ports nmap was asked to scan, when it says so
    commands: tuple[str, ...] = ()  # each run's nmap command line
    errors: tuple[str, ...] = ()  # what a run that ended in error said

    @property
    def addresses(self) -> set[str]:
        return {h.address for h in self.hosts}

    def merged(self, other: Scan) -> Scan:
        return Scan(
            self.hosts + other.hosts,
            tuple(sorted(set(self.ports) | set(other.ports))),
            self.commands + other.commands,
            self.errors + other.errors,
        )


def _refuse_entity(*_: object) -> None:
    raise ScanProblem("the scan declares an XML entity: refused (nmap never writes one)")


def _refuse_doctype(name: str, sysid: str | None, pubid: str | None, internal: int) -> None:
    if internal or sysid or pubid:
        raise ScanProblem(
            "the scan's DOCTYPE has declarations or points at another file: refused "
            "(nmap writes a bare <!DOCTYPE nmaprun>)"
        )


def _refuse_external(*_: object) -> int:
    raise ScanProblem("the scan refers to an external entity: refused")


def _xml_document(data: bytes) -> tuple[Element, int, int]:
    """One XML document as an element tree, and where its root element starts; every DTD
    feature but a bare DOCTYPE is refused."""
    builder = TreeBuilder()
    parser = expat.ParserCreate()
    where: list[int] = []

    def start(tag: str, attrs: dict[str, str]) -> None:
        if not where:
            where.extend((parser.CurrentLineNumber, parser.CurrentColumnNumber + 1))
        builder.start(tag, attrs)

    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse_doctype
    parser.EntityDeclHandler = _refuse_entity
    parser.UnparsedEntityDeclHandler = _refuse_entity
    parser.ExternalEntityRefHandler = _refuse_external
    parser.SkippedEntityHandler = _refuse_entity
    parser.DefaultHandler = None
    parser.StartElementHandler = start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    parser.buffer_text = True
    parser.ordered_attributes = False
    try:
        parser.Parse(data, True)
    except ScanProblem as refused:
        raise ScanProblem(
            refused.message, parser.CurrentLineNumber, parser.CurrentColumnNumber + 1
        ) from None
    except expat.ExpatError as bad:
        message = expat.errors.messages.get(bad.code, str(bad)) if bad.code else str(bad)
        if bad.code == expat.errors.codes[expat.errors.XML_ERROR_NO_ELEMENTS]:
            message = "the scan output ends before its last element (did nmap stop early?)"
        raise ScanProblem(f"not nmap XML: {message}", bad.lineno, bad.offset + 1) from None
    return builder.close(), where[0], where[1]


_DOCUMENT_START = re.compile(rb"<\?xml[ \t]", re.MULTILINE)


def _documents(data: bytes) -> list[tuple[int, bytes]]:
    """The XML documents in `data`, each with the line it starts on (from 1)."""
    starts = [m.start() for m in _DOCUMENT_START.finditer(data)]
    if not starts or data[: starts[0]].strip():
        starts = [0, *starts]
    bounds = [*starts, len(data)]
    return [
        (data.count(b"\n", 0, bounds[i]) + 1, data[bounds[i] : bounds[i + 1]])
        for i in range(len(starts))
    ]


def _int(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


_SERVER_LINE = re.compile(r"^\s*server:[ \t]*(.*?)\s*$", re.IGNORECASE | re.MULTILINE)
_HTTP_STATUS = re.compile(r"^\s*HTTP/\d\.\d \d{3}", re.MULTILINE)


def _fingerprint_header(port: Element) -> str:
    """The `Server` header of nmap's raw GetRequest (or other) reply, when http-server-header
    did not run because nmap did not recognise the service (an unusual header, an odd port)."""
    for script in port.findall("script"):
        if script.get("id") != "fingerprint-strings":
            continue
        for elem in script.findall("elem"):
            text = elem.text or ""
            if _HTTP_STATUS.search(text):
                found = _SERVER_LINE.search(text)
                if found and found.group(1):
                    return found.group(1)
    return ""


def _service(port: Element) -> Service | None:
    state = port.find("state")
    number = _int(port.get("portid"))
    if state is None or state.get("state") != "open" or number is None:
        return None
    service = port.find("service")
    attrs = dict(service.attrib) if service is not None else {}
    header, source = "", ""
    for script in port.findall("script"):
        if script.get("id") == "http-server-header":
            values = [e.text or "" for e in script.findall("elem") if e.text]
            header = "; ".join(values) if values else (script.get("output") or "").strip()
            source = "http-server-header" if header else ""
    if not header:
        header = _fingerprint_header(port)
        source = "fingerprint" if header else ""
    return Service(
        port=number,
        protocol=port.get("protocol") or "tcp",
        name=attrs.get("name", ""),
        product=attrs.get("product", ""),
        version=attrs.get("version", ""),
        extrainfo=attrs.get("extrainfo", ""),
        tunnel=attrs.get("tunnel", ""),
        method=attrs.get("method", ""),
        server_header=header,
        header_source=source,
    )


def _host(element: Element) -> ScannedHost | None:
    address, mac, vendor = "", "", ""
    for item in element.findall("address"):
        kind = item.get("addrtype")
        if kind in ("ipv4", "ipv6") and not address:
            address = _canonical(item.get("addr") or "")
        elif kind == "mac":
            mac, vendor = item.get("addr") or "", item.get("vendor") or ""
    if not address:
        return None
    status = element.find("status")
    names = tuple(
        n.get("name") or "" for n in element.findall("hostnames/hostname") if n.get("name")
    )
    services = tuple(
        s for s in (_service(p) for p in element.findall("ports/port")) if s is not None
    )
    return ScannedHost(
        address=address,
        status=(status.get("state") or "unknown") if status is not None else "unknown",
        hostnames=names,
        mac=mac,
        vendor=vendor,
        services=services,
    )


def _scanned_ports(root: Element) -> set[int]:
    ports: set[int] = set()
    for info in root.findall("scaninfo"):
        services = info.get("services") or ""
        if services:
            try:
                ports.update(parse_ports(services))
            except ScanProblem:
                continue
    return ports


def parse_scan(data: bytes) -> Scan:
    """Every host and open port in nmap's XML output; ScanProblem, located, when it is not."""
    if len(data) > MAX_SCAN_BYTES:
        raise ScanProblem(f"the scan output is larger than {MAX_SCAN_BYTES} bytes")
    if not data.strip():
        raise ScanProblem("the scan output is empty (did nmap run?)")
    scan = Scan(())
    for first_line, document in _documents(data):
        try:
            root, line, col = _xml_document(document)
        except ScanProblem as bad:
            at = bad.line + first_line - 1 if bad.line is not None else None
            raise ScanProblem(bad.message, at, bad.col) from None
        if root.tag != "nmaprun":
            raise ScanProblem(
                f"not an nmap scan: the document is <{root.tag}>, not <nmaprun>",
                line + first_line - 1,
                col,
            )
        hosts = tuple(h for h in (_host(e) for e in root.findall("host")) if h is not None)
        finished = root.find("runstats/finished")
        errors: tuple[str, ...] = ()
        if finished is not None and finished.get("exit") == "error":
            errors = (finished.get("errormsg") or "nmap ended in error",)
        scan = scan.merged(
            Scan(hosts, tuple(sorted(_scanned_ports(root))), (root.get("args") or "",), errors)
        )
    return scan


# -- the inventory side -------------------------------------------------------------------


def _canonical(address: str) -> str:
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return address.lower().removesuffix(".")


def _literal(address: str) -> str | None:
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def needs_resolving(inventory: Inventory) -> list[str]:
    """The inventory's addresses that are names, not IP addresses: what to look up."""
    return sorted({h.address for h in inventory.hosts.values() if _literal(h.address) is None})


class BadWebPorts(ScanProblem):
    """An inventory host's `vars.web_ports` that is not a list of ports."""

    def __init__(self, host: str, value: str, message: str) -> None:
        super().__init__(f"host {host}: vars.{WEB_PORTS_VAR}: {message}")
        self.host, self.value = host, value


def web_ports(inventory: Inventory) -> dict[str, tuple[int, ...]]:
    """Each inventory host's expected web ports: `vars.web_ports`, else 80 and 443 for a
    Windows host (an IIS server), else none. BadWebPorts when a host's list is not one."""
    expected: dict[str, tuple[int, ...]] = {}
    for name, host in inventory.hosts.items():
        given = host.vars.get(WEB_PORTS_VAR)
        if given is not None:
            if not given.strip():
                expected[name] = ()
                continue
            try:
                expected[name] = parse_ports(given)
            except ScanProblem as bad:
                raise BadWebPorts(name, given, bad.message) from None
        elif inventory.resolve(name).os is OsFamily.WINDOWS:
            expected[name] = WINDOWS_WEB_PORTS
        else:
            expected[name] = ()
    return expected


class Verdict(StrEnum):
    KNOWN = "known"  # an inventory host, on one of its web ports
    # No inventory host has the address; or one has, and does not list the port as a web
    # port (a web server nobody declared on a managed machine: a test site, an attacker's).
    ROGUE = "rogue"


@dataclass(frozen=True)
class Answer:
    """One port that answered, and what the inventory says of it."""

    address: str
    service: Service
    verdict: Verdict
    hosts: tuple[str, ...] = ()  # the inventory hosts at this address
    hostnames: tuple[str, ...] = ()
    mac: str = ""
    vendor: str = ""
    why: str = ""


@dataclass(frozen=True)
class Silent:
    """An inventory web server that was scanned and did not answer on its web ports."""

    host: str
    address: str
    ports: tuple[int, ...]
    why: str


@dataclass(frozen=True)
class Comparison:
    answers: tuple[Answer, ...]
    silent: tuple[Silent, ...]
    not_scanned: tuple[str, ...] = ()  # inventory web servers whose address the scan missed
    unresolved: tuple[str, ...] = ()  # inventory addresses that could not be looked up
    other: tuple[Answer, ...] = field(default=())  # open ports nmap says are not web servers

    @property
    def rogue(self) -> tuple[Answer, ...]:
        return tuple(a for a in self.answers if a.verdict is Verdict.ROGUE)


def _sort_key(address: str) -> tuple[int, int | str]:
    try:
        parsed = ipaddress.ip_address(address)
        return (parsed.version, int(parsed))
    except ValueError:
        return (9, address)


def compare(
    scan: Scan,
    inventory: Inventory | None,
    resolved: Mapping[str, Sequence[str]] | None = None,
) -> Comparison:
    """What answered, host by host and port by port, against the inventory. `resolved`: the
    addresses each of the inventory's names (`needs_resolving`) was found at; a name that
    is not in it is matched against the names nmap reports for a host, and only those."""
    inventory_hosts = inventory.hosts if inventory else {}
    expected = web_ports(inventory) if inventory else {}
    resolved = resolved or {}
    by_key: dict[str, list[str]] = {}  # address or name -> inventory host names
    keys_of: dict[str, set[str]] = {}
    unresolved: list[str] = []
    for name, host in inventory_hosts.items():
        keys = {_canonical(host.address)}
        if _literal(host.address) is None:
            found = [a for a in (_literal(x) for x in resolved.get(host.address, ())) if a]
            if not found and host.address not in unresolved:
                unresolved.append(host.address)
            keys.update(found)
        keys_of[name] = keys
        for key in keys:
            by_key.setdefault(key, []).append(name)

    answers: list[Answer] = []
    other: list[Answer] = []
    seen: dict[str, set[int]] = {}  # inventory host -> ports that answered
    for scanned in sorted(scan.hosts, key=lambda h: _sort_key(h.address)):
        keys = {scanned.address} | {_canonical(n) for n in scanned.hostnames}
        owners = tuple(sorted({n for k in keys for n in by_key.get(k, ())}))
        allowed = {p for n in owners for p in expected.get(n, ())}
        for service in sorted(scanned.services, key=lambda s: s.port):
            for owner in owners:
                seen.setdefault(owner, set()).add(service.port)
            if not owners:
                verdict, why = Verdict.ROGUE, "not in the inventory"
            elif service.port in allowed:
                verdict, why = Verdict.KNOWN, ""
            else:
                listed = f"web ports {ports_text(allowed)}" if allowed else "no web port"
                verdict = Verdict.ROGUE
                why = (
                    f"{', '.join(owners)} lists {listed}, not {service.port} (vars.{WEB_PORTS_VAR})"
                )
            answer = Answer(
                address=scanned.address,
                service=service,
                verdict=verdict,
                hosts=owners,
                hostnames=scanned.hostnames,
                mac=scanned.mac,
                vendor=scanned.vendor,
                why=why,
            )
            (answers if service.is_web else other).append(answer)

    status: dict[str, str] = {}
    for scanned in scan.hosts:
        for key in {scanned.address} | {_canonical(n) for n in scanned.hostnames}:
            if status.get(key) != "up":
                status[key] = scanned.status
    silent: list[Silent] = []
    not_scanned: list[str] = []
    for name, host in inventory_hosts.items():
        ports = expected.get(name, ())
        if not ports:
            continue
        keys = keys_of[name]
        states = [status[k] for k in keys if k in status]
        if not states:
            not_scanned.append(name)
            continue
        asked = [p for p in ports if not scan.ports or p in scan.ports]
        quiet = tuple(p for p in asked if p not in seen.get(name, set()))
        if not quiet:
            continue
        if "up" not in states:
            why = "the host did not answer the scan at all"
        elif len(quiet) == len(asked):
            why = "no web server answered"
        else:
            why = "some of its web ports did not answer"
        silent.append(Silent(name, host.address, quiet, why))
    return Comparison(
        answers=tuple(answers),
        silent=tuple(silent),
        not_scanned=tuple(not_scanned),
        unresolved=tuple(unresolved),
        other=tuple(other),
    )
