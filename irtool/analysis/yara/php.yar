// Web shells in PHP (IIS with PHP through FastCGI).
//
// irtool's own rules. SPDX-License-Identifier: MIT.

rule irtool_webshell_php_request_exec
{
    meta:
        description = "PHP page passes a request value straight to eval, assert or a command function"
        severity = "critical"
        author = "irtool"
        license = "MIT"
        version = "1"
    strings:
        $php = "<?"
        $run = /\b(eval|assert|system|exec|shell_exec|passthru|popen|proc_open|pcntl_exec|create_function)\s*\(\s*@?\s*((base64_decode|str_rot13|gzinflate|gzuncompress|stripslashes|urldecode|rawurldecode|trim)\s*\(\s*)*\$_(GET|POST|REQUEST|COOKIE|SERVER)\s*\[/ nocase
    condition:
        filesize < 512KB and $php and $run
}
