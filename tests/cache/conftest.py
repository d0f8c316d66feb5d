"""Fixtures for the cache area: projects with real files, Runs made from them, backends."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sharklib.cache.runcache import RunCache
from sharklib.hashing import sha256_file
from sharklib.model import Artifact, Output, Run, RunKeyParts, run_key_parts


def key_for(argv: list[str], root: Path, script_sha: str = "0" * 64) -> RunKeyParts:
    return run_key_parts(argv, str(root), str(root), {"step.py": script_sha},
                         {"python": "3.11"})


def make_run(root: Path, argv: list[str], inputs: list[Path], outputs: list[Path], *,
             duration: float = 4.0, exit_status: int = 0, modules: list[Path] = (),
             key: RunKeyParts | None = None, **extra: object) -> Run:
    """A Run as capture would produce it, for files that exist on disk."""
    key = key or key_for(argv, root)
    now = time.time()

    def art(p: Path) -> Artifact:
        sha, size = sha256_file(p)
        return Artifact(path=str(p), sha256=sha, size=size)

    outs = []
    for p in outputs:
        sha, size = sha256_file(p)
        outs.append(Output(path=str(p), sha256=sha, size=size))
    run = Run(run_id=uuid.uuid4().hex, argv=argv, cwd=str(root), started=now - duration,
              ended=now, exit_status=exit_status, inputs=[art(p) for p in inputs],
              outputs=outs, run_key=key.digest(), **extra)  # type: ignore[arg-type]
    run.code.modules = [art(p) for p in modules]
    return run


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "data").mkdir()
    (root / "data" / "in.txt").write_text("hello sharks\n")
    return root


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[RunCache]:
    c = RunCache(tmp_path / "cache")
    yield c
    c.close()


@pytest.fixture
def write() -> Callable[[Path, str | bytes], Path]:
    def _write(p: Path, data: str | bytes) -> Path:
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            data = data.encode()
        p.write_bytes(data)
        return p
    return _write


def is_root() -> bool:
    return os.geteuid() == 0
