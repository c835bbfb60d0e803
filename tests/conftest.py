from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _bugs_fail_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    """The UI turns an unexpected exception into a notification; in tests it must fail."""
    monkeypatch.setenv("IRTOOL_DEBUG", "1")
