"""Shared fixtures: every test runs with its own sharklib home (keys, cache, config)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def shark_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private SHARKLIB_HOME so tests never touch the user's keys or cache."""
    home = tmp_path_factory.mktemp("sharkhome")
    monkeypatch.setenv("SHARKLIB_HOME", str(home))
    for var in ("SHARKLIB_KEY", "SHARKLIB_CACHE", "SHARKLIB_CAPTURE", "SHARKLIB_SESSION",
                "SHARKLIB_PARENT_RUN", "SHARKLIB_STDIN", "SHARKLIB_QUIET", "SHARKLIB_NO_CACHE", "SHARKLIB_RERUN"):
        monkeypatch.delenv(var, raising=False)
    yield home


@pytest.fixture
def python() -> str:
    """The interpreter the tests run under (the project's venv)."""
    return sys.executable


def is_root() -> bool:
    return os.geteuid() == 0
