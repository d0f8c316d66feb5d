"""Execute one command under capture and collect what every process in it recorded."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from sharklib.config import ENV_SESSION
from sharklib.model import Run

CaptureMode = Literal["auto", "python", "trace", "none"]


@dataclass(slots=True)
class RunResult:
    """What happened when a command was run (or reused)."""

    exit_status: int
    reused: bool = False
    runs: list[Run] = field(default_factory=list)
    saved_seconds: float = 0.0
    duration: float = 0.0
    message: str = ""
    reused_runs: int = 0


def collect_session_runs(session: Path) -> list[Run]:
    """Every Run JSON a captured process dropped in the session, oldest first.

    A file that cannot be parsed (a process killed while writing is impossible
    thanks to atomic writes, but a hostile file is not) is skipped.
    """
    runs: list[Run] = []
    run_dir = session / "runs"
    if not run_dir.is_dir():
        return runs
    for f in sorted(run_dir.glob("*.json")):
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            runs.append(Run.from_dict(json.loads(f.read_bytes())))
    runs.sort(key=lambda r: r.started)
    return runs


def run_command(argv: Sequence[str] | str, *, cwd: str | os.PathLike[str] | None = None,
                env: Mapping[str, str] | None = None, shell: bool = False,
                capture: CaptureMode = "auto", env_tag: str | None = None,
                quiet: bool = True, rerun: bool = False, use_cache: bool = True,
                stdin: IO[Any] | int | None = None, stdout: IO[Any] | int | None = None,
                stderr: IO[Any] | int | None = None) -> RunResult:
    """Run ``argv`` (or a shell command line with ``shell=True``) under capture.

    Python processes anywhere in the command's tree are captured through the
    bootstrap (each writes sidecars for its outputs and may be reused before
    its body executes). ``env_tag`` names the environment (a pipeline's
    ``shark-build`` digest) and becomes part of every run key.
    """
    from sharklib.capture.environ import capture_environ

    session = Path(tempfile.mkdtemp(prefix="sharklib-session-"))
    try:
        base = dict(os.environ if env is None else env)
        if env_tag:
            base["SHARKLIB_ENV_TAG"] = env_tag
        if quiet:
            base["SHARKLIB_QUIET"] = "1"
        if rerun:
            base["SHARKLIB_RERUN"] = "1"
        if not use_cache:
            base["SHARKLIB_NO_CACHE"] = "1"
        child_env = capture_environ(base) if capture != "none" else base
        child_env[ENV_SESSION] = str(session)
        started = time.time()
        proc = subprocess.run(argv if not shell else str(argv), cwd=cwd, env=child_env,
                              shell=shell, stdin=stdin, stdout=stdout, stderr=stderr, check=False)
        duration = time.time() - started
        status = proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
        runs = collect_session_runs(session)
        return RunResult(exit_status=status, runs=runs, duration=duration)
    finally:
        shutil.rmtree(session, ignore_errors=True)
