"""``python -m sharklib pipeline run|plan`` reads its options without click, or hands over."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sharklib.pipeline.main import parse


@pytest.mark.parametrize(("args", "expected"), [
    (["run", "m.md"], {"document": "m.md", "jobs": None, "dry_run": False, "executor": "local",
                       "scheduler": None, "rerun": False}),
    (["run", "-j", "3", "--rerun", "m.md"], {"document": "m.md", "jobs": 3, "rerun": True}),
    (["run", "m.md", "--executor", "dask", "--scheduler", "tcp://h:1"],
     {"executor": "dask", "scheduler": "tcp://h:1"}),
    (["run", "-n", "m.md"], {"dry_run": True}),
    (["plan", "m.md"], {"dry_run": True, "jobs": None}),
    (["plan", "--rerun", "m.md"], {"dry_run": True, "rerun": True}),
])
def test_options_read_by_hand(args: list[str], expected: dict[str, object]) -> None:
    got = parse(args)
    assert got is not None
    for k, v in expected.items():
        assert got[k] == v, (k, got)


@pytest.mark.parametrize("args", [
    ["run"], ["run", "--help"], ["run", "-j", "0", "m.md"], ["run", "-j", "x", "m.md"],
    ["run", "--executor", "nope", "m.md"], ["run", "a.md", "b.md"], ["plan", "-j", "2", "m.md"],
    ["pin", "m.md"], ["from", "x"], ["run", "--bogus", "m.md"],
])
def test_anything_else_goes_to_click(args: list[str]) -> None:
    assert parse(args) is None


def test_same_messages_as_click(tmp_path: Path) -> None:
    def cli(*a: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "sharklib", "pipeline", *a], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)

    bad = cli("run", "-j", "0", "m.md")
    assert bad.returncode == 2 and "Invalid value for '-j'" in bad.stderr
    missing = cli("run", "missing.md")
    assert missing.returncode == 2
    assert missing.stderr.startswith("sharklib: error:") and "missing.md" in missing.stderr
    assert cli("run", "--help").stdout.startswith("Usage: sharklib pipeline run")
