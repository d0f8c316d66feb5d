"""Helpers for the pipeline tests (importable by this unique name from conftest's sys.path entry)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Cli:
    """``sharklib pipeline ...`` as a real subprocess in the project directory."""

    cwd: Path

    def __call__(self, *args: str, check: bool | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, "-m", "sharklib", "pipeline", *args], cwd=self.cwd,
                              capture_output=True, text=True, timeout=240,
                              env={**os.environ, "COLUMNS": "200"})
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
