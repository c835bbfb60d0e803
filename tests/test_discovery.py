"""Rogue-server discovery: `irtool discover` scans with the real nmap (scripts/bootstrap.sh
installs it), only 127.0.0.1, where web servers with distinct `Server` headers listen; the
inventory knows some of them. The parser is also fed saved and hostile scan output."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from irtool.model.discovery import (
    DEFAULT_PORTS,
    ScanProblem,
    Verdict,
    compare,
    parse_ports,
    parse_scan,
    parse_target,
    ports_text,
)
from irtool.model.inventory import Inventory
from irtool.remote.nmap import NmapError, nmap_argv, run_nmap
from tests.support.cli import irtool

KNOWN_IIS = "Microsoft-IIS/10.0"
KNOWN_APACHE = "Apache/2.4.57 (Debian)"
ROGUE = "Microsoft-IIS/7.5"


def _handler(server_header: str) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def version_string(self) -> str:
            return server_header

        def do_GET(self) -> None:
            body = b"<html><head><title>IIS Windows Server</title></head></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

        def handle(self) -> None:
            with contextlib.suppress(OSError):  # nmap hangs up mid-request on purpose
                super().handle()

    return Handler


@dataclass
class Listeners:
    iis: int
    apache: int
    rogue: int
    silent: int  # bound, never listening: connections to it are refused

    @property
    def scanned(self) -> list[int]:
        return [self.iis, self.apache, self.rogue, self.silent]


@pytest.fixture(scope="module")
def listeners() -> Iterator[Listeners]:
    servers = []
    for header in (KNOWN_IIS, KNOWN_APACHE, ROGUE):
        # Bound and listening when the constructor returns: ready before any scan.
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(header))
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    try:
        yield Listeners(
            *(s.server_address[1] for s in servers),  # type: ignore[arg-type]
            closed.getsockname()[1],
        )
    finally:
        closed.close()
        for server in servers:
            server.shutdown()
            server.server_close()


def _inventory(path: Path, web_ports: list[int], extra: str = "") -> Path:
    path.write_text(
        "hosts:\n"
        "  web-a:\n"
        "    address: 127.0.0.1\n"
        "    transport: winrm\n"
        "    vars:\n"
        f'      web_ports: "{",".join(str(p) for p in web_ports)}"\n'
        "  gw01:\n"
        "    address: 192.0.2.1\n"
        "    transport: ssh\n" + extra
    )
    return path


def _env() -> dict[str, str]:
    return {**os.environ, "IRTOOL_DEBUG": ""}


@dataclass
class Scanned:
    result: object
    xml: Path
    ports: Listeners


@pytest.fixture(scope="module")
def scanned(listeners: Listeners, tmp_path_factory: pytest.TempPathFactory) -> Scanned:
    """One real scan through the command line: the inventory knows the IIS and the Apache
    listeners, and a port nothing listens on; not the third server."""
    folder = tmp_path_factory.mktemp("discover")
    inventory = _inventory(folder / "inventory.yaml", [listeners.iis, listeners.apache,
                                                       listeners.silent])  # fmt: skip
    saved = folder / "scan.xml"
    result = irtool(
        _env(),
        "discover",
        "127.0.0.1",
        "--ports",
        ",".join(str(p) for p in listeners.scanned),
        "--inventory",
        str(inventory),
        "--save",
        str(saved),
        "--timeout",
        "120",
        timeout=180,
    )
    return Scanned(result, saved, listeners)


def test_the_unlisted_server_is_reported_rogue_with_its_server_header(scanned: Scanned) -> None:
    result = scanned.result
    assert result.returncode == 1, (result.stdout, result.stderr)  # type: ignore[attr-defined]
    lines = result.stdout.splitlines()  # type: ignore[attr-defined]
    rows = {line.split()[2]: line for line in lines if line.startswith(("ROGUE", "KNOWN"))}
    ports = scanned.ports
    assert set(rows) == {str(ports.iis), str(ports.apache), str(ports.rogue)}
    rogue = rows[str(ports.rogue)]
    assert rogue.startswith("ROGUE") and ROGUE in rogue and "Microsoft IIS httpd 7.5" in rogue
    assert "web-a lists web ports" in rogue and f"not {ports.rogue}" in rogue
    assert rows[str(ports.iis)].startswith("KNOWN") and KNOWN_IIS in rows[str(ports.iis)]
    known_apache = rows[str(ports.apache)]
    assert known_apache.startswith("KNOWN") and KNOWN_APACHE in known_apache
    # The port the inventory lists and nothing serves: a web server that did not answer.
    assert any(
        line.strip().startswith("web-a (127.0.0.1)") and str(ports.silent) in line for line in lines
    )
    assert "2 known, 1 rogue" in result.stdout  # type: ignore[attr-defined]


def test_the_saved_scan_reads_back_and_passes_once_the_inventory_knows_all(
    scanned: Scanned, tmp_path: Path
) -> None:
    ports = scanned.ports
    assert scanned.xml.read_bytes().startswith(b"<?xml")
    everything = _inventory(tmp_path / "all.yaml", [ports.iis, ports.apache, ports.rogue])
    result = irtool(_env(), "discover", "--xml", str(scanned.xml), "--inventory", str(everything))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ROGUE" not in result.stdout and "3 known, 0 rogue" in result.stdout

    # An inventory that names the host is matched by what the name resolves to.
    named = tmp_path / "named.yaml"
    named.write_text(everything.read_text().replace("address: 127.0.0.1", "address: localhost"))
    result = irtool(_env(), "discover", "--xml", str(scanned.xml), "--inventory", str(named))
    assert result.returncode == 0, result.stdout + result.stderr

    # No inventory: everything that answers is rogue; --json says what each one answers.
    result = irtool(_env(), "discover", "--xml", str(scanned.xml), "--json")
    assert result.returncode == 1
    answers = {a["port"]: a for a in json.loads(result.stdout)["answers"]}
    assert answers[ports.rogue]["server_header"] == ROGUE
    assert answers[ports.rogue]["header_source"] == "http-server-header"
    assert answers[ports.rogue]["product"] == "Microsoft IIS httpd"
    assert answers[ports.rogue]["version"] == "7.5"
    assert {a["verdict"] for a in answers.values()} == {"rogue"}


def test_the_scan_is_piped_in_as_the_runbook_keeps_it(scanned: Scanned, tmp_path: Path) -> None:
    ports = scanned.ports
    inventory = _inventory(tmp_path / "inv.yaml", [ports.iis, ports.apache])
    result = irtool(
        _env(),
        "discover",
        "--xml",
        "-",
        "--inventory",
        str(inventory),
        stdin=scanned.xml.read_text(),
    )
    assert result.returncode == 1 and ROGUE in result.stdout


def test_a_windows_host_without_web_ports_is_expected_on_80_and_443(scanned: Scanned) -> None:
    scan = parse_scan(scanned.xml.read_bytes())
    inventory = Inventory.model_validate({"hosts": {"web01": {"address": "127.0.0.1"}}})
    result = compare(scan, inventory)
    assert {a.verdict for a in result.answers} == {Verdict.ROGUE}
    assert all("lists web ports 80,443" in a.why for a in result.answers)
    # 80 and 443 were not among the ports scanned: not reported as silent.
    assert result.silent == ()


def test_names_in_the_inventory_match_by_their_resolved_address(scanned: Scanned) -> None:
    ports = scanned.ports
    scan = parse_scan(scanned.xml.read_bytes())
    inventory = Inventory.model_validate(
        {
            "hosts": {
                "web-a": {
                    "address": "web-a.corp.example.org",
                    "vars": {"web_ports": ports_text([ports.iis, ports.apache, ports.rogue])},
                }
            }
        }
    )
    unresolved = compare(scan, inventory)
    assert unresolved.unresolved == ("web-a.corp.example.org",)
    assert len(unresolved.rogue) == 3
    result = compare(scan, inventory, {"web-a.corp.example.org": ["127.0.0.1"]})
    assert result.rogue == () and {a.hosts for a in result.answers} == {("web-a",)}


def test_nmap_runs_as_an_argv_with_the_quick_unprivileged_options() -> None:
    argv = nmap_argv("/usr/bin/nmap", ["127.0.0.1", "192.0.2.0/24"], [443, 80, 81, 82])
    assert argv[:1] == ["/usr/bin/nmap"] and "-6" not in argv
    for option in ("-n", "-Pn", "-T4", "-sT", "-sV"):
        assert option in argv
    assert argv[argv.index("--max-retries") + 1] == "1"
    assert argv[argv.index("--script") + 1] == "http-server-header"
    assert argv[argv.index("-p") + 1] == "80-82,443"
    assert argv[argv.index("-oX") + 1] == "-"
    assert argv[-3:] == ["--", "127.0.0.1", "192.0.2.0/24"]  # targets never read as options
    assert "-6" in nmap_argv("nmap", ["2001:db8::/120"], [80])
    assert ports_text(DEFAULT_PORTS) == "80,443,8000,8080,8443,8888"


def test_a_scan_past_its_deadline_is_killed(listeners: Listeners) -> None:
    # nmap waits seconds for each open port to speak first: one second is not enough.
    argv = nmap_argv("nmap", ["127.0.0.1"], [listeners.iis])
    with pytest.raises(NmapError, match="did not finish within 1 s"):
        run_nmap(argv, 1)


def test_without_nmap_the_command_says_so(tmp_path: Path) -> None:
    env = {**_env(), "PATH": str(tmp_path)}
    result = irtool(env, "discover", "127.0.0.1")
    assert result.returncode == 2
    assert result.stderr.startswith("irtool: nmap is not installed")
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["-iL", "/etc/passwd"], "No such option"),
        (["--", "-iL"], "'-iL' is not an address range"),
        (["127.0.0.1;id"], "is not an address range"),
        (["10.0.0.300"], "is not an address range"),
        (["10.0.0.1-300"], "is not an address range"),
        (["nosuchhost.invalid"], "the scan covered no address"),
        (["127.0.0.1", "--ports", "80,x"], "is not a list of ports"),
        (["127.0.0.1", "--ports", "0"], "between 1 and 65535"),
        ([], "give the address ranges to scan"),
        (["127.0.0.1", "--xml", "scan.xml"], "give one of"),
    ],
)
def test_bad_input_is_one_line_and_status_2(args: list[str], said: str) -> None:
    result = irtool(_env(), "discover", *args)
    assert result.returncode == 2 and said in result.stderr, result.stderr


def test_a_bad_web_ports_value_is_located_in_the_inventory(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        "hosts:\n  web01:\n    address: 192.0.2.5\n    vars:\n      web_ports: eighty\n"
    )
    scan = tmp_path / "scan.xml"
    scan.write_text(SAVED)
    result = irtool(_env(), "discover", "--xml", str(scan), "--inventory", str(inventory))
    assert result.returncode == 2
    assert result.stderr.startswith(f"{inventory}:5:18: host web01: vars.web_ports:")


def test_startup_stays_lazy() -> None:
    code = (
        "import sys, irtool.cli;"
        "print(sorted(m for m in sys.modules if m.startswith(('irtool.cli.discover',"
        " 'irtool.remote.nmap', 'irtool.model.discovery'))))"
    )
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    listed = irtool(_env(), "--help")
    assert "discover" in listed.stdout


# -- the parser, over saved and hostile output --------------------------------------------

SAVED = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE nmaprun>
<?xml-stylesheet href="file:///usr/bin/../share/nmap/nmap.xsl" type="text/xsl"?>
<!-- Nmap 7.93 scan initiated as: nmap -n -Pn -sT -sV -p 80,443,8080 -oX - 192.0.2.0/30 -->
<nmaprun scanner="nmap" args="nmap -n -Pn -sT -sV -p 80,443,8080 -oX - 192.0.2.0/30"
 start="1796604350" version="7.93" xmloutputversion="1.05">
<scaninfo type="connect" protocol="tcp" numservices="3" services="80,443,8080"/>
<host><status state="up" reason="user-set" reason_ttl="0"/>
<address addr="192.0.2.5" addrtype="ipv4"/>
<address addr="08:00:27:5C:1E:9A" addrtype="mac" vendor="Oracle VirtualBox virtual NIC"/>
<hostnames><hostname name="web01.corp.example.org" type="PTR"/></hostnames>
<ports>
<port protocol="tcp" portid="80"><state state="open" reason="syn-ack" reason_ttl="0"/>
<service name="http" product="Microsoft IIS httpd" version="10.0" ostype="Windows"
 method="probed" conf="10"/>
<script id="http-server-header" output="Microsoft-IIS/10.0"><elem>Microsoft-IIS/10.0</elem></script>
</port>
<port protocol="tcp" portid="443"><state state="closed" reason="conn-refused" reason_ttl="0"/>
<service name="https" method="table" conf="3"/></port>
</ports></host>
<host><status state="up" reason="user-set" reason_ttl="0"/>
<address addr="192.0.2.6" addrtype="ipv4"/>
<hostnames></hostnames>
<ports>
<port protocol="tcp" portid="8080"><state state="open" reason="syn-ack" reason_ttl="0"/>
<service name="unknown" method="table" conf="3"/>
<script id="fingerprint-strings" output="x"><elem key="GetRequest">&#xa;    HTTP/1.1 200 OK&#xa;\
    Server: Evil&#x9b;2J&#x202e;Srv/1.0&#xa;    Content-Length: 0</elem></script>
</port>
<port protocol="tcp" portid="443"><state state="open" reason="syn-ack" reason_ttl="0"/>
<service name="ssh" product="OpenSSH" version="9.2p1" method="probed" conf="10"/></port>
</ports></host>
<host><status state="up" reason="user-set" reason_ttl="0"/>
<address addr="192.0.2.7" addrtype="ipv4"/>
<ports><extraports state="closed" count="3"/></ports></host>
<runstats><finished time="1796604438" exit="success"/><hosts up="3" down="0" total="3"/>
</runstats>
</nmaprun>
"""

IPV6 = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE nmaprun>
<nmaprun scanner="nmap" args="nmap -6 -p 80 -oX - 2001:db8::/126">
<scaninfo type="connect" protocol="tcp" numservices="1" services="80"/>
<host><status state="up" reason="user-set"/><address addr="2001:DB8::0:5" addrtype="ipv6"/>
<ports><port protocol="tcp" portid="80"><state state="open" reason="syn-ack"/>
<service name="http" product="nginx" method="probed"/></port></ports></host>
</nmaprun>
"""


def _inv(hosts: dict[str, dict[str, object]]) -> Inventory:
    return Inventory.model_validate({"hosts": hosts})


def test_a_saved_scan_reads_port_service_product_and_server_header() -> None:
    scan = parse_scan(SAVED.encode())
    assert [h.address for h in scan.hosts] == ["192.0.2.5", "192.0.2.6", "192.0.2.7"]
    assert scan.ports == (80, 443, 8080)
    web01 = scan.hosts[0]
    assert web01.hostnames == ("web01.corp.example.org",)
    assert web01.mac == "08:00:27:5C:1E:9A" and web01.vendor.startswith("Oracle VirtualBox")
    (http,) = web01.services  # 443 is closed: not an answer
    assert (http.port, http.service, http.software) == (80, "http", "Microsoft IIS httpd 10.0")
    assert (http.server_header, http.header_source) == ("Microsoft-IIS/10.0", "http-server-header")
    odd = {s.port: s for s in scan.hosts[1].services}
    # nmap did not recognise it: the header comes from its raw reply, escape and all.
    assert odd[8080].server_header == "Evil\x9b2J\u202eSrv/1.0" and odd[8080].is_web
    assert odd[8080].header_source == "fingerprint"
    assert not odd[443].is_web  # nmap recognised ssh there


def test_compare_lists_rogue_known_silent_and_other() -> None:
    scan = parse_scan(SAVED.encode())
    inventory = _inv(
        {
            "web01": {"address": "192.0.2.5", "vars": {"web_ports": "80,443"}},
            "web02": {"address": "192.0.2.7"},  # Windows: 80 and 443, and both closed
            "web09": {"address": "198.51.100.9"},  # not in the scan
            "gw01": {"address": "192.0.2.1", "transport": "ssh"},  # no web ports expected
        }
    )
    result = compare(scan, inventory)
    verdicts = {(a.address, a.service.port): a.verdict for a in result.answers}
    assert verdicts == {("192.0.2.5", 80): Verdict.KNOWN, ("192.0.2.6", 8080): Verdict.ROGUE}
    assert [(a.address, a.service.port) for a in result.other] == [("192.0.2.6", 443)]
    assert [(s.host, s.ports) for s in result.silent] == [("web01", (443,)), ("web02", (80, 443))]
    assert result.not_scanned == ("web09",)
    assert [a.service.port for a in result.rogue] == [8080]


def test_two_documents_one_after_the_other_are_one_scan() -> None:
    scan = parse_scan((SAVED + IPV6).encode())
    assert scan.hosts[-1].address == "2001:db8::5"  # canonical form
    assert len(scan.commands) == 2
    result = compare(scan, _inv({"v6": {"address": "2001:db8::5", "transport": "ssh",
                                        "vars": {"web_ports": "80"}}}))  # fmt: skip
    assert any(a.verdict is Verdict.KNOWN and a.address == "2001:db8::5" for a in result.answers)


def test_the_shown_server_header_cannot_drive_the_terminal(tmp_path: Path) -> None:
    scan = tmp_path / "scan.xml"
    scan.write_text(SAVED)
    result = irtool(_env(), "discover", "--xml", str(scan))
    assert result.returncode == 1
    assert "\x9b" not in result.stdout and "\u202e" not in result.stdout
    assert "Evil\\x9b2J\\u202eSrv/1.0" in result.stdout


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE nmaprun [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
]>
<nmaprun><host><address addr="&lol2;" addrtype="ipv4"/></host></nmaprun>
"""


def _xxe(secret: Path) -> str:
    return f"""<?xml version="1.0"?>
<!DOCTYPE nmaprun [<!ENTITY leak SYSTEM "file://{secret}">]>
<nmaprun><host><status state="up"/><address addr="192.0.2.9" addrtype="ipv4"/><ports>
<port protocol="tcp" portid="80"><state state="open"/><service name="http"/>
<script id="http-server-header"><elem>&leak;</elem></script></port></ports></host></nmaprun>
"""


def test_entity_expansion_and_external_entities_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ScanProblem, match="refused") as bomb:
        parse_scan(BILLION_LAUGHS.encode())
    assert bomb.value.line == 2
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CANARY")
    for document in (
        _xxe(secret),
        f'<?xml version="1.0"?>\n<!DOCTYPE nmaprun SYSTEM "file://{secret}">\n<nmaprun/>\n',
        # A parameter entity inside the internal subset, the other way in.
        f'<?xml version="1.0"?>\n<!DOCTYPE nmaprun [<!ENTITY % p SYSTEM "file://{secret}"> %p;]>'
        "\n<nmaprun/>\n",
    ):
        with pytest.raises(ScanProblem, match="refused") as refused:
            parse_scan(document.encode())
        assert "CANARY" not in str(refused.value)
    # An entity used without being declared is a parse error, not an expansion.
    with pytest.raises(ScanProblem, match="undefined entity"):
        parse_scan(b'<?xml version="1.0"?>\n<nmaprun>&lol;</nmaprun>')

    path = tmp_path / "bomb.xml"
    path.write_text(BILLION_LAUGHS)
    result = irtool(_env(), "discover", "--xml", str(path))
    assert result.returncode == 2
    assert result.stderr.startswith(f"{path}:2:") and "refused" in result.stderr


@pytest.mark.parametrize(
    ("data", "where", "said"),
    [
        (b"Starting Nmap 7.93\nNmap scan report for 192.0.2.5\n", (1, 1), "not nmap XML"),
        (SAVED.encode()[:-40], None, "not nmap XML"),
        (b'<?xml version="1.0"?>\n<html><body/></html>\n', (2, 1), "not an nmap scan"),
        ((SAVED + IPV6[:-20]).encode(), None, "not nmap XML"),
        (b"\xff\xfe\x00<", None, "not nmap XML"),
    ],
    ids=["normal-output", "cut-short", "html", "second-document-cut-short", "utf-16"],
)
def test_garbage_gives_a_located_error(
    data: bytes, where: tuple[int, int] | None, said: str, tmp_path: Path
) -> None:
    with pytest.raises(ScanProblem, match=said) as bad:
        parse_scan(data)
    assert bad.value.line is not None and bad.value.col is not None
    if where is not None:
        assert (bad.value.line, bad.value.col) == where
    else:  # cut short: the error is on the last lines
        assert bad.value.line >= data.count(b"\n") - 1
    path = tmp_path / "scan.xml"
    path.write_bytes(data)
    result = irtool(_env(), "discover", "--xml", str(path))
    assert result.returncode == 2
    assert result.stderr.startswith(f"{path}:{bad.value.line}:{bad.value.col}: ")
    assert len(result.stderr.splitlines()) == 1


def test_empty_output_says_so() -> None:
    with pytest.raises(ScanProblem, match="empty"):
        parse_scan(b"  \n")


def test_targets_and_ports_are_checked() -> None:
    assert parse_target("192.0.2.0/24") == "192.0.2.0/24"
    assert parse_target("192.0.2.7/24") == "192.0.2.0/24"
    assert parse_target("10.0.1-3.*") == "10.0.1-3.*"
    assert parse_target("2001:db8::1") == "2001:db8::1"
    assert parse_target("web01.corp.example.org") == "web01.corp.example.org"
    for bad in ("-oN/tmp/x", "a b", "$(id)", "10.0.0.300", "10.0.0.9-2", "", "192.0.2.0/33"):
        with pytest.raises(ScanProblem):
            parse_target(bad)
    assert parse_ports("8000-8002, 80") == (80, 8000, 8001, 8002)
    for bad in ("", "80;", "70000", "90-80", "-1"):
        with pytest.raises(ScanProblem):
            parse_ports(bad)


# -- the runbook's sweep, read back from an incident ---------------------------------------


def test_discover_reads_the_sweep_an_incident_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rogue-server exercise runs `discover-scan` (its scenario answers with nmap XML);
    `irtool discover --incident` reads that evidence and compares it with the incident's
    inventory, in which neither web server of VLAN 40 is."""
    from irtool.engine.runner import Runner
    from irtool.evidence.store import EvidenceStore
    from irtool.exercise.setup import load_exercise, open_exercise
    from irtool.exercise.transports import transports_for
    from irtool.journal.incidents import EVIDENCE_DIR, incident_dir
    from irtool.model.plan import resolve_parameters
    from tests.conftest import ROOT
    from tests.test_shipped_scenarios import fast

    home = tmp_path / "home"
    monkeypatch.setenv("IRTOOL_HOME", str(home))
    exercise, _ = load_exercise(ROOT / "runbooks" / "rogue-server.yaml")
    exercise = fast(exercise)  # the scenario's delays in seconds, not minutes
    values = resolve_parameters(exercise.context.runbook.model, exercise.parameters({}))
    session = open_exercise(exercise, values, "fiona")
    store = EvidenceStore(incident_dir(session.state.id) / EVIDENCE_DIR)
    runner = Runner(session, transports_for(session.state, lambda: None), store, "fiona")
    incident = session.state.id
    result = irtool({**_env(), "IRTOOL_HOME": str(home)}, "discover", "--incident", incident)
    assert result.returncode == 2 and "no output of step discover-scan" in result.stderr
    report = runner.run("discover-scan")
    assert not report.failed
    session.close_journal()

    result = irtool({**_env(), "IRTOOL_HOME": str(home)}, "discover", "--incident", incident)
    assert result.returncode == 1, result.stdout + result.stderr
    rogue = [line.split()[1:3] for line in result.stdout.splitlines() if line.startswith("ROGUE")]
    assert rogue == [["10.40.9.31", "8080"], ["10.40.9.77", "80"], ["10.40.9.77", "443"]]
    assert "ssl/http" in result.stdout and "Microsoft-IIS/10.0" in result.stdout


def test_the_runbooks_sweep_command_scans_and_its_xml_compares(listeners: Listeners) -> None:
    """The shipped `discover-scan` command, rendered as a plan renders it and run by sh as
    the local transport runs it, over 127.0.0.1 only: its stdout is the XML discover reads."""
    import subprocess

    from irtool.model.loader import load_inventory, load_runbook
    from irtool.model.plan import build_plan, resolve_parameters
    from tests.conftest import ROOT

    runbook = load_runbook(ROOT / "runbooks" / "rogue-server.yaml").model
    ports = ports_text([listeners.iis, listeners.rogue])
    values = resolve_parameters(
        runbook, {"rogue_ip": "127.0.0.1", "scan_ranges": "127.0.0.1/32", "web_ports": ports}
    )
    inventory = load_inventory(ROOT / "inventory.example.yaml").model
    (row,) = [r for r in build_plan(runbook, values, inventory) if r.step == "discover-scan"]
    assert row.host == "responder" and row.shell == "sh" and row.command
    done = subprocess.run(
        ["/bin/sh", "-s"], input=row.command.encode(), capture_output=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    scan = parse_scan(done.stdout)
    assert scan.ports == tuple(sorted((listeners.iis, listeners.rogue)))
    known = Inventory.model_validate(
        {"hosts": {"web-a": {"address": "127.0.0.1", "vars": {"web_ports": str(listeners.iis)}}}}
    )
    result = compare(scan, known)
    (rogue,) = result.rogue
    assert (rogue.service.port, rogue.service.server_header) == (listeners.rogue, ROGUE)
