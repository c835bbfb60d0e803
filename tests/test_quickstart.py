"""The README's first command, `./scripts/quickstart`: nothing is printed before the first screen
but what a newcomer needs (issue 16, bug 22: a `BuildBackendWarning` from pip and an inventory
warning from `validate` came first).

The script runs for real against a stand-in virtual environment: its `python` takes pip's
commands and installs nothing, its `irtool` runs the real `validate` and stands in for the
terminal UI. So no network, and the script's own output is what is checked.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.conftest import ROOT


def stand_in_venv(folder: Path, validate_fails: bool = False) -> Path:
    venv = folder / "venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text("#!/bin/sh\n# pip install ...: nothing to install here\nexit 0\n")
    irtool = venv / "bin" / "irtool"
    validate = (
        "echo \"runbooks/x.yaml:3:1: missing required key 'id'\" >&2; exit 2"
        if validate_fails
        else f'exec "{sys.executable}" -m irtool "$@"'
    )
    irtool.write_text(
        textwrap.dedent(
            f"""\
            #!/bin/sh
            case "$1" in
              validate) {validate} ;;
              exercise) echo "FIRST SCREEN: $2"; exit 0 ;;
            esac
            exit 64
            """
        )
    )
    python.chmod(0o755)
    irtool.chmod(0o755)
    return venv


def quickstart(venv: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "IRTOOL_VENV": str(venv), "PYTHON": sys.executable}
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "quickstart")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_the_quick_start_prints_nothing_before_the_first_screen(tmp_path: Path) -> None:
    done = quickstart(stand_in_venv(tmp_path))
    assert done.returncode == 0, done.stderr
    # The example inventory's deliberate `insecure: true` host was warned about here.
    assert done.stderr == ""
    assert done.stdout == "FIRST SCREEN: runbooks/iis-compromise.yaml\n"


def test_the_quick_start_still_says_what_is_wrong_with_a_broken_shipped_file(
    tmp_path: Path,
) -> None:
    done = quickstart(stand_in_venv(tmp_path, validate_fails=True))
    assert done.returncode == 1
    assert "runbooks/x.yaml:3:1: missing required key 'id'" in done.stderr
    assert "FIRST SCREEN" not in done.stdout


def _setuptools_major() -> int:
    return int(version("setuptools").split(".")[0])


@pytest.mark.skipif(
    _setuptools_major() < 77,
    reason="the build backend pip uses is setuptools>=77 (PEP 639 license); this one is older",
)
def test_the_editable_install_gives_no_build_backend_warning(tmp_path: Path) -> None:
    """pip shows a warning the build backend raises as a `BuildBackendWarning`: setuptools'
    editable install of a package at the project root warned "Editable installation..." until
    pyproject.toml named the package's folder."""
    project = tmp_path / "project"
    (project / "irtool").mkdir(parents=True)
    (project / "irtool" / "__init__.py").write_text("")
    for name in ("pyproject.toml", "README.md"):
        (project / name).write_text((ROOT / name).read_text(encoding="utf-8"), encoding="utf-8")
    build = (
        "import warnings\n"
        "warnings.simplefilter('error')\n"
        "from setuptools import build_meta\n"
        "print(build_meta.build_editable('dist'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", build],
        capture_output=True,
        text=True,
        cwd=project,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Warning" not in done.stderr
