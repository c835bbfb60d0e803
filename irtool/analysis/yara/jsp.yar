// Web shells in JSP (Tomcat or another servlet container behind IIS).
//
// irtool's own rules. SPDX-License-Identifier: MIT.

rule irtool_webshell_jsp_runtime_exec
{
    meta:
        description = "JSP page runs a request parameter as an operating system command"
        severity = "critical"
        author = "irtool"
        license = "MIT"
        version = "1"
    strings:
        $jsp = "<%"
        $exec_param = /Runtime\s*\.\s*getRuntime\s*\(\s*\)\s*\.\s*exec\s*\(\s*request\s*\.\s*getParameter\s*\(/
        $builder_param = /new\s+ProcessBuilder\s*\([^;]{0,160}request\s*\.\s*getParameter\s*\(/
        // the two-line form: the parameter in a variable, the command's output sent back
        $exec = /Runtime\s*\.\s*getRuntime\s*\(\s*\)\s*\.\s*exec\s*\(/
        $param = /request\s*\.\s*getParameter\s*\(/
        $output = "getInputStream"
    condition:
        filesize < 512KB and $jsp
        and ($exec_param or $builder_param or ($exec and $param and $output))
}
