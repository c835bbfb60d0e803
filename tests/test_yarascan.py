"""The content scan: the shipped web-shell rules fire on one-line shells and stay quiet on an
ordinary ASP.NET site; a user's broken rule file is reported, located, while the rest run; a
hit becomes a finding with host, path, hash and rule."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

import pytest

from irtool.analysis.yarascan import (
    SHIPPED_YARA,
    YaraHit,
    YaraMatch,
    YaraRules,
    YaraScanError,
    hits_drafts,
    load_yara,
    scan_bytes,
    scan_file,
    scan_files,
)
from irtool.model.problems import Severity
from tests.support.webroot import planted_webroot

# -- the cases: one-line shells each rule must find, files of an ordinary site it must not -----
# (rule, file name, content). Adding a shipped rule means adding its shells here: a rule with
# no case fails `test_every_shipped_rule_has_a_shell`.
SHELLS: list[tuple[str, str, str]] = [
    (
        "irtool_webshell_chopper_jscript_eval",
        "errors.aspx",
        '<%@ Page Language="Jscript"%><%eval(Request.Item["z"],"unsafe");%>',
    ),
    (
        "irtool_webshell_chopper_jscript_eval",
        "x.aspx",
        "<%@ Page Language=\"Jscript\" validateRequest=\"false\"%><%eval(Request['p'],'unsafe');%>",
    ),
    (
        "irtool_webshell_aspx_eval_request",
        "a.aspx",
        '<%@ Page Language="Jscript"%><%eval(Request.Form["cmd"]);%>',
    ),
    (
        "irtool_webshell_aspx_eval_request",
        "b.aspx",
        '<script runat="server" language="JScript">eval(Request.QueryString["c"]);</script>',
    ),
    (
        "irtool_webshell_aspx_eval_request",
        "c.aspx",
        '<%@ Page Language="C#"%><%Microsoft.JScript.Eval.JScriptEvaluate(Request["c"], '
        "Microsoft.JScript.Vsa.VsaEngine.CreateEngine());%>",
    ),
    (
        "irtool_webshell_aspx_assembly_load",
        "load.aspx",
        '<%@ Page Language="C#"%><%System.Reflection.Assembly.Load(Convert.FromBase64String('
        'Request.Form["d"])).CreateInstance("U").Equals(this);%>',
    ),
    (
        "irtool_webshell_aspx_assembly_load",
        "godzilla.aspx",
        '<%@ Page Language="C#"%><%byte[] d=Request.BinaryRead(Request.ContentLength);'
        'System.Reflection.Assembly.Load(d).CreateInstance("P").Equals(Context);%>',
    ),
    (
        "irtool_webshell_aspx_process_request",
        "cmd.aspx",
        '<%@ Page Language="C#"%><%System.Diagnostics.Process.Start("cmd.exe", "/c " + '
        'Request["c"]);%>',
    ),
    (
        "irtool_webshell_aspx_process_request",
        "ps.aspx",
        '<%@ Page Language="C#"%><%var i=new System.Diagnostics.ProcessStartInfo("powershell",'
        'Request.Form["p"]);System.Diagnostics.Process.Start(i);%>',
    ),
    (
        "irtool_webshell_handler_command",
        "h.ashx",
        '<%@ WebHandler Language="C#" Class="H" %>using System.Web;public class H:IHttpHandler{'
        "public void ProcessRequest(HttpContext c){var p=System.Diagnostics.Process.Start(new "
        'System.Diagnostics.ProcessStartInfo("cmd.exe","/c "+c.Request["c"]){'
        "RedirectStandardOutput=true,UseShellExecute=false});c.Response.Write("
        "p.StandardOutput.ReadToEnd());}public bool IsReusable{get{return false;}}}",
    ),
    (
        "irtool_webshell_handler_command",
        "s.asmx",
        '<%@ WebService Language="C#" Class="S" %>using System.Web.Services;public class S{'
        "[WebMethod]public string Run(string c){var i=new System.Diagnostics.ProcessStartInfo("
        '"powershell.exe",c){RedirectStandardOutput=true,UseShellExecute=false};return '
        "System.Diagnostics.Process.Start(i).StandardOutput.ReadToEnd();}}",
    ),
    ("irtool_webshell_asp_eval_request", "e.asp", '<%eval request("cmd")%>'),
    ("irtool_webshell_asp_eval_request", "x.asp", '<%execute(request("cmd"))%>'),
    ("irtool_webshell_asp_eval_request", "g.asp", '<% ExecuteGlobal Request.Form("c") %>'),
    ("irtool_webshell_php_request_exec", "p.php", "<?php @eval($_POST['cmd']);?>"),
    ("irtool_webshell_php_request_exec", "a.php", "<?php assert($_REQUEST['x']); ?>"),
    ("irtool_webshell_php_request_exec", "s.php", "<?php system($_GET['c']); ?>"),
    ("irtool_webshell_php_request_exec", "b.php", "<?php eval(base64_decode($_POST['z'])); ?>"),
    (
        "irtool_webshell_jsp_runtime_exec",
        "c.jsp",
        '<%Runtime.getRuntime().exec(request.getParameter("cmd"));%>',
    ),
    (
        "irtool_webshell_jsp_runtime_exec",
        "b.jsp",
        '<%new ProcessBuilder("sh","-c",request.getParameter("c")).start();%>',
    ),
]

WEB_CONFIG = """<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <system.web>
    <compilation debug="false" targetFramework="4.8" />
    <httpRuntime targetFramework="4.8" requestValidationMode="4.5" />
    <pages validateRequest="true" />
  </system.web>
  <system.webServer>
    <handlers>
      <add name="ExtensionlessUrlHandler-Integrated-4.0" path="*." verb="*"
           type="System.Web.Handlers.TransferRequestHandler" preCondition="integratedMode" />
      <add name="ReportHandler" path="report.ashx" verb="GET" type="Contoso.Web.ReportHandler" />
    </handlers>
    <httpProtocol><customHeaders><add name="X-Frame-Options" value="DENY" /></customHeaders>
    </httpProtocol>
  </system.webServer>
</configuration>
"""

BENIGN: list[tuple[str, str]] = [
    ("web.config", WEB_CONFIG),
    (
        "Orders.aspx",
        '<%@ Page Title="Orders" Language="C#" MasterPageFile="~/Site.Master" '
        'AutoEventWireup="true" CodeBehind="Orders.aspx.cs" Inherits="Contoso.Web.Orders" %>\n'
        '<asp:Content ID="Body" ContentPlaceHolderID="MainContent" runat="server">\n'
        '  <asp:GridView ID="Grid" runat="server" DataKeyNames="Id" />\n'
        '  <%: Request.QueryString["q"] %>\n'
        '  <script type="text/javascript">var q = eval("(" + json + ")");</script>\n'
        "</asp:Content>\n",
    ),
    (
        "Orders.aspx.cs",
        "using System; using System.Diagnostics; using System.Web.UI;\n"
        "namespace Contoso.Web { public partial class Orders : Page {\n"
        "  protected void Page_Load(object sender, EventArgs e) {\n"
        '    var id = Request.QueryString["id"]; Trace.Write("order " + id);\n'
        '    Grid.DataSource = Repository.Orders(Request["customer"]); Grid.DataBind(); } } }\n',
    ),
    (
        "Global.asax",
        '<%@ Application Codebehind="Global.asax.cs" Inherits="Contoso.Web.Global" '
        'Language="C#" %>\n',
    ),
    (
        "Global.asax.cs",
        "using System; using System.Reflection; using System.Web;\n"
        "namespace Contoso.Web { public class Global : HttpApplication {\n"
        "  protected void Application_Start(object sender, EventArgs e) {\n"
        '    var plugin = Assembly.Load("Contoso.Plugins"); RouteConfig.Register(); }\n'
        "  protected void Application_BeginRequest(object sender, EventArgs e) {\n"
        '    if (Request["culture"] != null) { Culture.Set(Request["culture"]); } } } }\n',
    ),
    (
        "report.ashx",
        '<%@ WebHandler Language="C#" Class="Contoso.Web.ReportHandler" %>\n'
        "using System.Web; namespace Contoso.Web { public class ReportHandler : IHttpHandler {\n"
        "  public void ProcessRequest(HttpContext context) {\n"
        '    context.Response.ContentType = "application/json";\n'
        '    context.Response.Write(Reports.Json(context.Request["id"])); }\n'
        "  public bool IsReusable { get { return true; } } } }\n",
    ),
    (
        "Site.Master",
        '<%@ Master Language="C#" CodeBehind="Site.Master.cs" %>\n<html><head>'
        '<script src="Scripts/jquery.min.js"></script></head><body>'
        '<asp:ContentPlaceHolder ID="MainContent" runat="server" /></body></html>\n',
    ),
    ("default.asp", '<% Server.Execute(Request.QueryString("page")) %>\n'),
    ("search.asp", '<% Response.Write Server.HTMLEncode(Request("q")) %>\n'),
    ("index.php", "<?php $r = curl_exec($ch); echo htmlspecialchars($_GET['q']); ?>\n"),
    ("hello.jsp", '<%= org.owasp.encoder.Encode.forHtml(request.getParameter("q")) %>\n'),
    (
        "app.min.js",
        '!function(e){"use strict";var t=e.document,n=function(e){return new Function("return "+'
        'e)()};e.globalEval=function(r){var o=t.createElement("script");o.text=r;'
        "t.head.appendChild(o).parentNode.removeChild(o)};e.request=function(u){return "
        "fetch(u).then(function(r){return r.json()})};e.run=eval}(window);\n",
    ),
]

JQUERY = Path("/usr/share/javascript/jquery/jquery.min.js")  # Debian's libjs-jquery


@pytest.fixture(scope="module")
def shipped() -> YaraRules:
    return load_yara()


def _names(matches: Iterable[YaraMatch]) -> list[str]:
    return [m.rule for m in matches]


def test_the_shipped_rules_compile_without_a_problem(shipped: YaraRules) -> None:
    assert shipped.problems == ()
    assert sorted(p.name for p in shipped.files) == sorted(
        p.name for p in SHIPPED_YARA.glob("*.yar")
    )
    assert shipped.rules >= 8


def test_every_shipped_rule_has_a_shell(shipped: YaraRules) -> None:
    ruled = {r.identifier for r in shipped.compiled}
    assert ruled == {rule for rule, _, _ in SHELLS}


@pytest.mark.parametrize(("rule", "name", "text"), SHELLS, ids=[c[1] for c in SHELLS])
def test_a_shipped_rule_finds_its_one_line_shell(
    shipped: YaraRules, rule: str, name: str, text: str, tmp_path: Path
) -> None:
    path = tmp_path / name
    path.write_text(text)
    matches = scan_file(shipped, path)
    assert _names(matches) == [rule]  # that rule, and no second finding for the same file
    (match,) = matches
    assert match.severity == "critical"
    assert match.namespace.startswith("irtool/")
    assert match.description and match.meta_value("author") == "irtool"
    assert match.offsets  # where in the file it matched


@pytest.mark.parametrize(("name", "text"), BENIGN, ids=[c[0] for c in BENIGN])
def test_an_ordinary_site_file_stays_quiet(shipped: YaraRules, name: str, text: str) -> None:
    assert scan_bytes(shipped, text.encode()) == []


@pytest.mark.skipif(not JQUERY.is_file(), reason="Debian's libjs-jquery is not installed")
def test_jquery_stays_quiet(shipped: YaraRules) -> None:
    assert scan_file(shipped, JQUERY) == []


def test_only_the_planted_shell_hits_on_the_planted_server(
    shipped: YaraRules, tmp_path: Path
) -> None:
    planted = planted_webroot(tmp_path)
    # what a comparison hands over: the added shell and the changed web.config
    targets = [planted.server / planted.shell, planted.server / planted.config]
    scanned, problems = scan_files(shipped, targets)
    assert problems == []
    hits = {f.path: _names(f.matches) for f in scanned}
    assert hits == {targets[0]: ["irtool_webshell_chopper_jscript_eval"], targets[1]: []}
    assert scanned[0].sha256 == planted.sha256[planted.shell]
    # and the whole server copy (pages, DLLs, scripts, uploads): the shell alone
    everything = sorted(p for p in planted.server.rglob("*") if p.is_file())
    scanned, problems = scan_files(shipped, everything)
    assert problems == [] and len(scanned) == len(everything)
    assert [f.path for f in scanned if f.matches] == [targets[0]]


# -- a user's rules ---------------------------------------------------------------------------

GOOD_RULE = """rule contoso_backdoor_marker
{
    meta:
        description = "Contoso's red team marker"
        severity = "medium"
    strings:
        $m = "CONTOSO-RT-7731"
    condition:
        $m
}
"""
# a good rule first, then an error on line 7: the file is left out whole
BROKEN_RULE = """rule half_good
{
    strings: $a = "HALF-GOOD"
    condition: $a
}
rule broken {
    condition: undefined_thing
}
"""
MISSING_MODULE = """import "magic"

rule by_mime { condition: magic.mime_type() == "text/html" }
"""
SLOW_RULE = """rule slow_but_valid
{
    strings: $a = "a"  // one byte: nothing to anchor on
    condition: $a
}
"""


def _user_rules(tmp_path: Path) -> Path:
    rules = tmp_path / "rules"
    (rules / "team").mkdir(parents=True)
    (rules / "team" / "good.yara").write_text(GOOD_RULE)
    (rules / "broken.yar").write_text(BROKEN_RULE)
    (rules / "magic.yar").write_text(MISSING_MODULE)
    (rules / "slow.yar").write_text(SLOW_RULE)
    (rules / "include.yar").write_text('include "../../etc/passwd.yar"\n')
    (rules / "latin1.yar").write_bytes(b'rule x { meta: d = "caf\xe9" condition: true }\n')
    (rules / "notes.txt").write_text("not a rule file: ignored\n")
    return rules


def test_a_broken_user_rule_is_located_and_the_rest_still_run(
    tmp_path: Path,
) -> None:
    rules_dir = _user_rules(tmp_path)
    rules = load_yara([rules_dir])
    shown = [str(p) for p in rules.problems]
    errors = [str(p) for p in rules.errors]
    bad_files = {Path(p.mark.path).name for p in rules.errors}
    assert bad_files == {"broken.yar", "magic.yar", "include.yar", "latin1.yar"}, shown
    assert any(
        e.startswith(f"{rules_dir / 'broken.yar'}:7:16: ") and "undefined_thing" in e
        for e in errors
    ), shown
    assert any(e.startswith(f"{rules_dir / 'magic.yar'}:1:1: ") and "magic" in e for e in errors), (
        shown
    )
    assert any(
        e.startswith(f"{rules_dir / 'include.yar'}:1:1: ") and "include" in e for e in errors
    ), shown
    assert f"{rules_dir / 'latin1.yar'}:1:24: not UTF-8 text" in errors, shown
    # a slow pattern is a warning: the file runs
    (slow,) = [p for p in rules.problems if p.severity is Severity.WARNING]
    assert str(slow).startswith(f"{rules_dir / 'slow.yar'}:3:14: warning: slow pattern"), shown
    compiled = {p.name for p in rules.files}
    assert {"good.yara", "slow.yar", "aspx.yar", "asp.yar", "php.yar", "jsp.yar"} <= compiled
    assert compiled.isdisjoint({"broken.yar", "magic.yar", "include.yar", "latin1.yar"})
    # the shipped rules, the user's good file and the slow one all run; the broken file's
    # good-looking first rule does not (a file with an error is left out whole)
    data = b'<%@ Page Language="Jscript"%><%eval(Request.Item["z"],"unsafe");%> CONTOSO-RT-7731 '
    found = {(m.namespace, m.rule) for m in scan_bytes(rules, data + b"a-b HALF-GOOD")}
    assert found == {
        ("irtool/aspx.yar", "irtool_webshell_chopper_jscript_eval"),
        (str(rules_dir / "team" / "good.yara"), "contoso_backdoor_marker"),
        (str(rules_dir / "slow.yar"), "slow_but_valid"),
    }


def test_two_files_may_name_a_rule_alike(tmp_path: Path) -> None:
    for name in ("a.yar", "b.yar"):
        (tmp_path / name).write_text('rule same { strings: $a = "SAME-MARK" condition: $a }')
    rules = load_yara([tmp_path], shipped=False)
    assert rules.problems == ()
    found = sorted(m.namespace for m in scan_bytes(rules, b"SAME-MARK"))
    assert found == [str(tmp_path / "a.yar"), str(tmp_path / "b.yar")]


def test_the_shipped_folder_named_again_runs_once(shipped: YaraRules) -> None:
    again = load_yara([SHIPPED_YARA, SHIPPED_YARA / "aspx.yar"])
    assert again.files == shipped.files and again.rules == shipped.rules
    assert len(scan_bytes(again, SHELLS[0][2].encode())) == 1


def test_a_missing_rule_directory_is_a_problem_not_an_end(tmp_path: Path) -> None:
    rules = load_yara([tmp_path / "nowhere"])
    assert [str(p) for p in rules.problems] == [
        f"{tmp_path / 'nowhere'}:1:1: no such directory of YARA rules"
    ]
    assert len(rules.files) == 4  # the shipped rules still run


def test_an_unknown_severity_is_a_warning_and_its_hits_are_high(tmp_path: Path) -> None:
    (tmp_path / "sev.yar").write_text(
        "rule ok { condition: filesize > 0 }\n\n"
        'rule loud { meta: severity = "urgent" condition: filesize > 0 }\n'
    )
    rules = load_yara([tmp_path], shipped=False)
    assert [str(p) for p in rules.problems] == [
        f"{tmp_path / 'sev.yar'}:3:1: warning: rule loud: severity 'urgent' is not one of "
        "info, low, medium, high, critical: its hits are high"
    ]
    loud = next(m for m in scan_bytes(rules, b"x") if m.rule == "loud")
    assert loud.severity == "high"


# -- what is not scanned ----------------------------------------------------------------------


def test_a_file_over_the_size_limit_is_not_scanned(shipped: YaraRules, tmp_path: Path) -> None:
    big = tmp_path / "big.aspx"
    big.write_bytes(b'<%@ Page Language="Jscript"%><%eval(Request.Item["z"],"unsafe");%>' * 100)
    with pytest.raises(YaraScanError, match="6,600 bytes is over the 1,000-byte limit"):
        scan_file(shipped, big, max_size=1000)
    assert scan_file(shipped, big, max_size=10_000)


def test_a_link_or_a_pipe_in_a_fetched_tree_is_not_followed(
    shipped: YaraRules, tmp_path: Path
) -> None:
    target = tmp_path / "shell.aspx"
    target.write_text(SHELLS[0][2])
    (tmp_path / "tree").mkdir()
    link = tmp_path / "tree" / "link.aspx"
    link.symlink_to(target)
    pipe = tmp_path / "tree" / "pipe.aspx"
    os.mkfifo(pipe)
    plain = tmp_path / "tree" / "plain.aspx"
    plain.write_text(SHELLS[0][2])
    scanned, problems = scan_files(shipped, [link, pipe, plain])
    assert [str(p) for p in problems] == [
        f"{link}:1:1: not scanned: a symbolic link",
        f"{pipe}:1:1: not scanned: not a regular file",
    ]
    (only,) = scanned
    assert only.path == plain and _names(only.matches) == ["irtool_webshell_chopper_jscript_eval"]
    assert only.sha256 == hashlib.sha256(SHELLS[0][2].encode()).hexdigest()


def test_a_scan_that_runs_too_long_is_stopped(tmp_path: Path) -> None:
    # quadratic in the file's size: minutes on 100 kB, stopped after the 1 s timeout
    (tmp_path / "slow.yar").write_text(
        "rule quadratic { condition: for all i in (0..filesize-1): "
        "(for any j in (0..filesize-1): (j == filesize-1 and uint8(j) == 0x61)) }"
    )
    rules = load_yara([tmp_path], shipped=False)
    with pytest.raises(YaraScanError, match="timed out"):
        scan_bytes(rules, b"a" * 100_000, timeout=1)


# -- findings ---------------------------------------------------------------------------------


def test_a_hit_is_a_finding_with_host_path_hash_and_rule(
    shipped: YaraRules, tmp_path: Path
) -> None:
    planted = planted_webroot(tmp_path)
    shell = planted.server / planted.shell
    (scanned,), _ = scan_files(shipped, [shell])
    windows_path = "C:\\inetpub\\wwwroot\\" + planted.shell.replace("/", "\\")
    evidence = "e" * 64
    hits = [
        YaraHit.of(
            m,
            host="web01",
            path=windows_path,
            sha256=scanned.sha256,
            evidence_sha256=evidence,
            source="web01/fetch/errors.aspx",
        )
        for m in scanned.matches
    ]
    (draft,) = hits_drafts(hits)
    rule = "irtool_webshell_chopper_jscript_eval"
    assert draft.hunt == f"yara:{rule}"
    assert draft.severity == "critical"
    assert draft.hosts == ("web01",)
    assert windows_path in draft.summary and rule in draft.summary
    assert scanned.sha256 in draft.summary
    assert draft.key == f"yara:{rule}:web01:{scanned.sha256}"
    assert draft.indicators == (("sha256", scanned.sha256), ("file", "errors.aspx"))
    assert draft.refs == ((evidence, "web01/fetch/errors.aspx", 0),)
    assert draft.count == 1
    assert draft.title.startswith("China Chopper")


def test_the_same_file_at_two_paths_of_a_host_is_one_finding_and_hosts_stay_apart() -> None:
    digest = "A" * 64  # PowerShell writes hashes in upper case
    base = {"rule": "r", "sha256": digest, "evidence_sha256": "1" * 64, "source": "s"}
    hits = [
        YaraHit(host="web01", path="/a/x.aspx", **base),
        YaraHit(host="web01", path="/b/y.aspx", **base),
        YaraHit(host="web02", path="/a/x.aspx", **base, severity="low"),
    ]
    drafts = hits_drafts(hits)
    assert [(d.hosts, d.count, d.severity) for d in drafts] == [
        (("web01",), 2, "high"),  # worst first; no severity in the rule's meta: high
        (("web02",), 1, "low"),
    ]
    assert "/a/x.aspx (and 1 more)" in drafts[0].summary
    assert ("file", "y.aspx") in drafts[0].indicators
