"""Run one command: reuse it if it is provably done, else execute it under capture and record it."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from sharklib.config import ENV_NO_CACHE, ENV_SESSION
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
                stderr: IO[Any] | int | None = None) -> RunResult:
    """Run ``argv`` (or a shell command line with ``shell=True``) as one cacheable stage.

    1. Look up past runs of the same command, cwd, environment (``env_tag``
       names a pipeline's ``shark-build`` environment) whose recorded inputs
       are unchanged; on a hit restore the outputs and return without running.
    2. Otherwise run it under the native tracer when this machine allows it
       (every process in the tree recorded), else with the Python capture
       bootstrap (every Python process recorded). Each process's outputs get
       signed sidecars.
    3. Record the stage for next time when its capture was complete (traced,
       or a single Python command) and it succeeded.
    """
    from sharklib.runner import caches, reuse, stage

    run_cwd = os.path.abspath(os.fspath(cwd) if cwd is not None else os.getcwd())
    argv_list = stage.command_argv(argv, shell)
    base = dict(os.environ if env is None else env)
    caching = use_cache and capture != "none" and not base.get(ENV_NO_CACHE)
    from sharklib.capture.identity import allowed_variables

    # the key holds the variables the command runs with, not this (worker) process's own
    variables = tuple(allowed_variables(base).items())
    environment = caches.memo(("stage-environment", env_tag, variables),
                              lambda: stage.stage_environment(env_tag, base))
    root = caches.memo(("project-root", run_cwd), lambda: stage.project_root(run_cwd))
    key_parts, root = stage.stage_key(argv, shell=shell, cwd=run_cwd, env_tag=env_tag,
                                      environment=environment, root=root,
                                      path=base.get("PATH", os.defpath))

    cache = caches.kept(root) if caching else None
    if caching and not rerun:
        decision = reuse.check(key_parts, cwd=run_cwd, root=root, cache=cache)
        if decision is not None:
            _write_stream(stdout, decision.stdout, sys.stdout)
            _write_stream(stderr, decision.stderr, sys.stderr)
            if not quiet:
                sys.stderr.write(decision.message + "\n")
            return RunResult(exit_status=decision.exit_status, reused=True,
                             saved_seconds=decision.saved, message=decision.message,
                             reused_runs=1, backend="cache", run_id=decision.entry.run_id,
                             run_outputs=[reuse.rebase(o.path, root)
                                          for o in decision.entry.outputs()])

    mode = _choose(capture)
    if env_tag:
        base["SHARKLIB_ENV_TAG"] = env_tag
    if quiet:
        base["SHARKLIB_QUIET"] = "1"
    # the stage is cached as a whole; processes inside it need not cache themselves
    base[ENV_NO_CACHE] = "1"
    started = time.time()
    if mode == "trace":
        from sharklib.trace.session import trace_command

        traced = trace_command(argv_list, "auto", cwd=run_cwd, env=base, stdin=stdin,
                               stdout=stdout, stderr=stderr)
        status, runs = traced.exit_status, traced.runs
        for msg in traced.messages:
            if not quiet or "error" in msg.lower():
                sys.stderr.write(f"sharklib: {msg}\n")
        complete = not traced.incomplete
        backend = traced.backend
    else:
        status, runs = _run_plain(argv_list, run_cwd, base, mode, stdin, stdout, stderr)
        complete = mode == "python" and stage.is_single_python_command(argv, shell)
        backend = mode
    ended = time.time()

    result = RunResult(exit_status=status, runs=runs, duration=ended - started, backend=backend)
    if caching and complete and status is not None:
        agg = stage.aggregate(runs, argv=argv_list, cwd=run_cwd, started=started, ended=ended,
                              exit_status=status, run_key=key_parts.digest(),
                              inherited=_stream_files(stdout, stderr))
        # a failed stage is only noted in the ledger (`sharklib log --status failed`)
        entry = reuse.record(agg, root=root, cache=cache, key_parts=key_parts)
        if entry is not None:
            result.recorded = True
            result.run_id = entry.run_id
            result.run_outputs = [reuse.rebase(o.path, root) for o in entry.outputs()]
    return result


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
    from sharklib.capture.environ import capture_environ
    from sharklib.capture.session import session_runs

    session = Path(tempfile.mkdtemp(prefix="sharklib-session-"))
    try:
        child_env = capture_environ(base) if mode == "python" else dict(base)
        child_env[ENV_SESSION] = str(session)
        try:
            proc = subprocess.run(argv, cwd=cwd, env=child_env, stdin=stdin, stdout=stdout,
                                  stderr=stderr, check=False)
        except FileNotFoundError:
            sys.stderr.write(f"sharklib: command not found: {argv[0]}\n")
            return 127, []
        except PermissionError:
            sys.stderr.write(f"sharklib: permission denied: {argv[0]}\n")
            return 126, []
        status = proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
        return status, session_runs(session)
    finally:
        shutil.rmtree(session, ignore_errors=True)
