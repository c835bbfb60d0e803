// Web shells in classic ASP (VBScript or JScript .asp pages).
//
// irtool's own rules. SPDX-License-Identifier: MIT.

rule irtool_webshell_asp_eval_request
{
    meta:
        description = "Classic ASP page runs a request value as code (eval, execute, executeglobal)"
        severity = "critical"
        author = "irtool"
        license = "MIT"
        version = "1"
    strings:
        $asp = "<%"
        // not Server.Execute (a path): the character before the verb is no dot and no letter
        $run = /[^\w.](eval|execute|executeglobal)[\s(]+request\s*(\.\s*(form|querystring|item|cookies))?\s*\(/ nocase
        // an ASP.NET page is the ASPX rules' business
        $aspnet = /<%@\s*(Page|Control|Master|WebHandler|WebService)\b/ nocase
    condition:
        filesize < 512KB and $asp and $run and not $aspnet
}
