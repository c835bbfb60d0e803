// Web shells written for ASP.NET: .aspx pages, .ashx handlers and .asmx services.
//
// irtool's own rules. SPDX-License-Identifier: MIT. Each rule names what an attacker's file
// does (runs a request value as code or as a command) rather than a known sample's bytes, and
// needs the server-side markers too, so that an ordinary site (web.config, pages with
// code-behind, Global.asax, minified JavaScript) stays quiet.

rule irtool_webshell_chopper_jscript_eval
{
    meta:
        description = "China Chopper-style one-line ASPX shell: a JScript page evals a request value with \"unsafe\""
        severity = "critical"
        author = "irtool"
        license = "MIT"
        version = "1"
    strings:
        $eval = /eval\s*\(\s*Request[^;]{0,120}["']unsafe["']\s*\)/ nocase
    condition:
        filesize < 512KB and $eval
}

rule irtool_webshell_aspx_eval_request
{
    meta:
        description = "ASPX page evaluates a request value as JScript code"
        severity = "critical"
        author = "irtool"
        license = "MIT"
        version = "1"
    strings:
        // eval exists in JScript.NET only: the page says so in its directive or script tag
        $page_jscript = /<%@\s*(Page|Control)\b[^>]{0,300}\bLanguage\s*=\s*["']?J(ava)?Script/ nocase
        $tag_jscript = /<script\b[^>]{0,300}\blanguage\s*=\s*["']?J(ava)?Script[^>]{0,300}\brunat\s*=\s*["']?server/ nocase
        $tag_jscript_2 = /<script\b[^>]{0,300}\brunat\s*=\s*["']?server[^>]{0,300}\blanguage\s*=\s*["']?J(ava)?Script/ nocase
        $eval = /\beval\s*\([^;)]{0,160}\bRequest\s*[.\[(]/ nocase
        // C# reaches the same evaluator through Microsoft.JScript
        $jscript_evaluate = /JScriptEvaluate\s*\([^;]{0,160}\bRequest\s*[.\[(]/ nocase
    condition:
        filesize < 512KB
        and ((any of ($page_jscript, $tag_jscript, $tag_jscript_2) and $eval) or $jscript_evaluate)
        and not irtool_webshell_chopper_jscript_eval
}

rule irtool_webshell_aspx_assembly_load
{
    meta:
        description = "ASP.NET page or handler loads an assembly from a base64 blob or a request body (Godzilla, Behinder style)"
        severity = "critical"
        author = "irtool"
        license = "MIT"
        version = "1"
    strings:
        $server_directive = /<%@\s*(Page|Control|WebHandler|WebService)\b/ nocase
        $server_script = /<script\b[^>]{0,300}\brunat\s*=\s*["']?server/ nocase
        $load = /Assembly\s*\.\s*Load\s*\(/
        $base64 = /FromBase64String\s*\(/
        $body = /Request\s*\.\s*BinaryRead\s*\(/ nocase
        $value = /\bRequest\s*(\.\s*(Form|QueryString|Item|Params|Cookies|Headers))?\s*\[/ nocase
    condition:
        filesize < 2MB and any of ($server_*) and $load and any of ($base64, $body, $value)
}

rule irtool_webshell_aspx_process_request
{
    meta:
        description = "ASPX page starts cmd.exe or PowerShell with a request value"
        severity = "critical"
        author = "irtool"
        license = "MIT"
        version = "1"
    strings:
        $page = /<%@\s*(Page|Control)\b/ nocase
        $server_script = /<script\b[^>]{0,300}\brunat\s*=\s*["']?server/ nocase
        $start = /Process\s*\.\s*Start\s*\(/
        $start_info = "ProcessStartInfo"
        $cmd = "cmd.exe" nocase
        $cmd_bare = /["']cmd["']/ nocase
        $powershell = "powershell" nocase
        $value = /\bRequest\s*(\.\s*(Form|QueryString|Item|Params|Cookies|Headers))?\s*[\[(]/ nocase
    condition:
        filesize < 512KB and ($page or $server_script) and ($start or $start_info)
        and any of ($cmd, $cmd_bare, $powershell) and $value
}

rule irtool_webshell_handler_command
{
    meta:
        description = "ASP.NET handler (.ashx) or web service (.asmx) that starts cmd.exe or PowerShell"
        severity = "critical"
        author = "irtool"
        license = "MIT"
        version = "1"
    strings:
        $handler = /<%@\s*(WebHandler|WebService)\b/ nocase
        $start = /Process\s*\.\s*Start\s*\(/
        $start_info = "ProcessStartInfo"
        $cmd = "cmd.exe" nocase
        $cmd_bare = /["']cmd["']/ nocase
        $powershell = "powershell" nocase
    condition:
        filesize < 512KB and $handler and ($start or $start_info)
        and any of ($cmd, $cmd_bare, $powershell)
}
