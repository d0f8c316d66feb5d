"""Helpers for the pipeline tests (importable by this unique name from conftest's sys.path entry)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Cli:
    """``sharklib pipeline ...`` as a real subprocess in the project directory."""

    cwd: Path

    timeout: float = 240

    def __call__(self, *args: str, check: bool | None = None) -> subprocess.CompletedProcess[str]:
        """Run it; a hang fails with the stacks of every thread (faulthandler on SIGABRT)."""
        argv = [sys.executable, "-m", "sharklib", "pipeline", *args]
        with subprocess.Popen(argv, cwd=self.cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env={**os.environ, "COLUMNS": "200",
                                              "PYTHONFAULTHANDLER": "1"}) as child:
            try:
                out, err = child.communicate(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                child.send_signal(signal.SIGABRT)
                try:
                    out, err = child.communicate(timeout=15)
                except subprocess.TimeoutExpired:
                    child.kill()
                    out, err = child.communicate()
                raise AssertionError(f"{' '.join(args)} still running after {self.timeout:.0f} s; "
                                     f"its stacks:\n{err[-6000:]}\nstdout:\n{out[-2000:]}") from None
        proc = subprocess.CompletedProcess(argv, child.returncode, out, err)
        if check is True:
            assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Served:
    """Files served by a loopback HTTP server: ``files[url_path] = bytes``."""

    base: str
    files: dict[str, bytes] = field(default_factory=dict)
    hits: list[str] = field(default_factory=list)
