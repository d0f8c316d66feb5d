"""Fixtures for ``sharklib shell``: a workspace with real files, and the shell as a subprocess.

Every test here runs the shell as a user would (``python -m sharklib shell`` in the
workspace, fed from a pipe or driven through a pseudo-terminal). Commands are
recorded by the native tracer (eBPF, else ptrace): without either, the shell only
records Python commands, so these tests are skipped with the reason.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
# the loop-mounted btrfs helper the cache tests use (tests/cache/loopfs.py)
sys.path.insert(1, str(Path(__file__).resolve().parents[1] / "cache"))

from shellkit import Counter, make_workspace, tracer_reason


@pytest.fixture
def traced() -> None:
    why = tracer_reason()
    if why:
        pytest.skip(f"no native tracer here, the shell would record Python commands only ({why})")


@pytest.fixture
def counter() -> Iterator[Counter]:
    c = Counter()
    yield c
    c.close()


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return make_workspace(tmp_path)
