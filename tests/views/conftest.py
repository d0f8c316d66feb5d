"""Fixtures for the view tests; the helpers live in ``viewkit`` (importable by its unique name)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from viewkit import Pipeline, build_pipeline


@pytest.fixture
def pipeline(tmp_path: Path) -> Pipeline:
    """A real 3-step lineage (clean -> stats -> report), signed with this test's own key."""
    return build_pipeline(tmp_path / "proj")
