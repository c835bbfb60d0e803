from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _bugs_fail_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    """The UI turns an unexpected exception into a notification; in tests it must fail."""
    monkeypatch.setenv("IRTOOL_DEBUG", "1")


@pytest.fixture(scope="session")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The two recorded incidents of the export tests (tests/support/recorded.py), built once."""
    from tests.support.recorded import record_both

    return record_both(tmp_path_factory.mktemp("recorded"))


@pytest.fixture
def live_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Incidents under tmp_path/home and no keymap of the machine's: for the live UI tests
    (`pytestmark = pytest.mark.usefixtures("live_home")`)."""
    monkeypatch.setenv("IRTOOL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("IRTOOL_KEYMAP", str(tmp_path / "keymap.yaml"))
