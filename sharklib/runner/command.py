"""Run one command: reuse it if it is provably done, else execute it under capture and record it."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
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
    backend: str = ""
    recorded: bool = False
    #: the cached run now standing for this command (the one reused, or the one just recorded)
    run_id: str | None = None
    #: that run's recorded outputs (absolute): what a later reuse of it would restore
    run_outputs: list[str] = field(default_factory=list)
    #: what the native tracer observed, when the step ran under it
    trace: Any = None


def _choose(capture: CaptureMode) -> str:
    """'trace' when the native tracer can run here (and is wanted), else 'python' or 'none'."""
    if capture in ("python", "none"):
        return capture
    from sharklib.trace.session import choose_backend

    try:
        choose_backend("auto")
    except Exception:
        if capture == "trace":
            raise
        return "python"
    return "trace"


def _write_stream(target: IO[Any] | int | None, data: bytes, default: IO[Any]) -> None:
    if not data or target == subprocess.DEVNULL:
        return
    if target is None:
        default.flush()
        getattr(default, "buffer", default).write(data)
        default.flush()
    elif isinstance(target, int):
        os.write(target, data)
    else:
        with contextlib.suppress(TypeError):
            target.write(data)
            return
        target.write(data.decode("utf-8", "replace"))


def run_command(argv: Sequence[str] | str, *, cwd: str | os.PathLike[str] | None = None,
                env: Mapping[str, str] | None = None, shell: bool = False,
                capture: CaptureMode = "auto", env_tag: str | None = None,
                quiet: bool = True, rerun: bool = False, use_cache: bool = True,
                stdin: IO[Any] | int | None = None, stdout: IO[Any] | int | None = None,
                stderr: IO[Any] | int | None = None,
                pins: Mapping[str, str] | None = None, preload: Any = None) -> RunResult:
    """Run ``argv`` (or a shell command line with ``shell=True``) as one cacheable step.

    A short call into :class:`sharklib.runner.step.Step`, which owns the key,
    the reuse decision, the launch, the record and the replay. ``preload``: a
    :class:`sharklib.trace.ebpf.Preload` the caller started (used or freed).
    """
    from sharklib.runner.step import Step

    return Step(argv, cwd=cwd, env=env, shell=shell, capture=capture, env_tag=env_tag,
                pins=pins).run(quiet=quiet, rerun=rerun, use_cache=use_cache, stdin=stdin,
                               stdout=stdout, stderr=stderr, preload=preload)


def _stream_files(*streams: IO[Any] | int | None) -> set[str]:
    """The regular files behind the stdout/stderr handed to the command (or inherited)."""
    paths: set[str] = set()
    for stream, default in zip(streams, (1, 2), strict=True):
        fd: int | None
        if stream is None:
            fd = default
        elif isinstance(stream, int):
            fd = stream if stream >= 0 else None
        else:
            try:
                fd = stream.fileno()
            except (OSError, ValueError, AttributeError):
                fd = None
        if fd is not None:
            with contextlib.suppress(OSError):
                paths.add(os.readlink(f"/proc/self/fd/{fd}"))
    return paths


def _run_plain(argv: list[str], cwd: str, base: dict[str, str], mode: str,
               stdin: IO[Any] | int | None, stdout: IO[Any] | int | None,
               stderr: IO[Any] | int | None) -> tuple[int, list[Run]]:
    from sharklib.common.environ import capture_environ
    from sharklib.common.sessiondir import session_runs

    session = Path(tempfile.mkdtemp(prefix="sharklib-session-"))
    try:
        child_env = capture_environ(base) if mode == "python" else dict(base)
        child_env[ENV_SESSION] = str(session)
        try:
            proc = subprocess.run(argv, cwd=cwd, env=child_env, stdin=stdin, stdout=stdout,
                                  stderr=stderr, check=False)
        except OSError as exc:
            from sharklib.launch import from_os_error, say

            return say(from_os_error(argv[0], exc)), []
        status = proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
        return status, session_runs(session)
    finally:
        shutil.rmtree(session, ignore_errors=True)
