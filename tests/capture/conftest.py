"""Helpers for capture tests: run a script plainly and under ``python -m sharklib run``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    runs: list[dict[str, Any]]

    def top(self) -> dict[str, Any]:
        tops = [r for r in self.runs if not r.get("parent")]
        assert len(tops) == 1, [r["argv"] for r in self.runs]
        return tops[0]

    def run_with_output(self, name: str) -> dict[str, Any]:
        for r in self.runs:
            for o in r["outputs"]:
                if o["path"].endswith("/" + name):
                    return r
        raise AssertionError(f"no run recorded output {name}: {[r['outputs'] for r in self.runs]}")


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARKLIB_") or k == "SHARKLIB_HOME"}
    env.pop("PYTHONPATH", None)
    env.update(extra or {})
    return env


def load_runs(session: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((session / "runs").glob("*.json"))]


@pytest.fixture
def capture_env():
    """A copy of the environment without any inherited sharklib capture state."""
    return clean_env


@pytest.fixture
def read_session():
    """Every Run JSON in a session directory."""
    return load_runs


@pytest.fixture(autouse=True)
def signing_key(shark_home: Path) -> None:
    """Create the key up front so its one-time notice does not differ between runs."""
    from sharklib.attest import load_signing_key

    load_signing_key()


@pytest.fixture
def run_plain(tmp_path: Path):
    def run(args: list[str], cwd: Path | None = None, stdin: str | None = None,
            env: dict[str, str] | None = None, timeout: float = 120) -> Result:
        p = subprocess.run([sys.executable, *args], cwd=cwd or tmp_path, input=stdin,
                           capture_output=True, text=True, env=clean_env(env), timeout=timeout)
        return Result(p.returncode, p.stdout, p.stderr, [])
    return run


@pytest.fixture
def run_captured(tmp_path: Path):
    """``python -m sharklib run -q ARGS`` with a session dir kept for inspection."""
    counter = [0]

    def run(args: list[str], cwd: Path | None = None, stdin: str | None = None,
            env: dict[str, str] | None = None, quiet: bool = True, timeout: float = 120) -> Result:
        counter[0] += 1
        session = tmp_path / f"session{counter[0]}"
        (session / "runs").mkdir(parents=True)
        e = clean_env({"SHARKLIB_SESSION": str(session), **(env or {})})
        opts = ["-q"] if quiet else []
        p = subprocess.run([sys.executable, "-m", "sharklib", "run", *opts, *args],
                           cwd=cwd or tmp_path, input=stdin, capture_output=True, text=True,
                           env=e, timeout=timeout)
        return Result(p.returncode, p.stdout, p.stderr, load_runs(session))
    return run
