"""A leaf job: one stage's command, working directory and environment, and nothing else.

This is all an executor ships to a worker (a thread of the local pool or a
Dask worker process): the plan and the DAG stay on the client, so no stage
ever re-reads the document. The job calls the one runner and returns a small,
picklable result.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field

TAIL_BYTES = 4096


@dataclass(slots=True, frozen=True)
class LeafJob:
    index: int
    command: str
    cwd: str
    env_tag: str
    env_overrides: dict[str, str] = field(default_factory=dict)
    log_dir: str | None = None
    rerun: bool = False
    make_dirs: tuple[str, ...] = ()
    # run in a long-lived worker process (process pool, Dask): keep its tracer and caches open
    worker: bool = False
    #: the client's value of every variable that enters the run key (None: unset there)
    key_env: dict[str, str | None] = field(default_factory=dict)


@dataclass(slots=True)
class LeafResult:
    index: int
    exit_status: int
    reused: bool = False
    saved_seconds: float = 0.0
    duration: float = 0.0
    message: str = ""
    stderr_tail: str = ""
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    log: str | None = None
    #: the cached run standing for the stage and its recorded outputs (see
    #: :meth:`sharklib.pipeline.state.PipelineState.placed`)
    run_id: str | None = None
    run_outputs: list[str] = field(default_factory=list)


def key_environment() -> dict[str, str | None]:
    """This process's variables that enter a stage's run key, as a leaf job carries them.

    The plan was made here, with these values; a worker process (a Dask nanny
    sets ``OMP_NUM_THREADS=1``, ``PYTHONHASHSEED``...) must run the stage with
    them too, or it would run — and key — another stage than the one planned.
    """
    from sharklib.common.identity import allowed_variables
    from sharklib.config import ENV_ALLOW

    env: dict[str, str | None] = dict(allowed_variables())
    env[ENV_ALLOW] = os.environ.get(ENV_ALLOW)
    return env


def with_key_environment(env: dict[str, str], key_env: dict[str, str | None]) -> dict[str, str]:
    """``env`` with the client's key-relevant variables: its values set, the ones it lacks unset."""
    if not key_env:
        return env
    from sharklib.common.identity import allowed_variables
    from sharklib.config import ENV_ALLOW

    allow = key_env.get(ENV_ALLOW)
    if allow is None:
        env.pop(ENV_ALLOW, None)
    else:
        env[ENV_ALLOW] = allow
    for name in allowed_variables(env):  # under the client's allow-list
        if name not in key_env:
            del env[name]
    env.update({k: v for k, v in key_env.items() if v is not None})
    return env


def run_leaf(job: LeafJob) -> LeafResult:
    """Run one stage through :func:`sharklib.runner.run_command`.

    Parent directories of the stage's declared outputs are created first (as
    Snakemake does), so a method needs no ``mkdir`` stages. Standard output and error go to
    the stage's log files, removed again when both stayed empty (a stage that wants a file
    writes it with a redirection, which the runner records as an output).
    A failure of sharklib itself becomes a failed stage with the reason, never
    an exception that would take the executor down.
    """
    log_base = None
    try:
        from sharklib.runner import run_command

        if job.worker:
            keep_worker_state()
        if job.log_dir:
            if not os.path.isdir(job.log_dir):
                os.makedirs(job.log_dir, exist_ok=True)
            log_base = os.path.join(job.log_dir, f"stage-{job.index}")
        else:
            log_base = os.path.join(tempfile.mkdtemp(prefix="sharklib-stage-"), "stage")
        for d in job.make_dirs:
            if not os.path.isdir(d):
                os.makedirs(d, exist_ok=True)
        env = with_key_environment(dict(os.environ), job.key_env)
        env.update(job.env_overrides)
        with open(log_base + ".out", "wb") as out, open(log_base + ".err", "w+b") as err:
            # stdin is empty, as it is on a cluster's worker: a stage reading the terminal (or the
            # pipe `sharklib pipeline run` was fed) would hang, or depend on bytes in no record
            res = run_command(job.command, shell=True, cwd=job.cwd, env=env, env_tag=job.env_tag,
                              quiet=True, rerun=job.rerun, stdin=subprocess.DEVNULL, stdout=out,
                              stderr=err)
            err_size = err.seek(0, os.SEEK_END)
            err.seek(max(0, err_size - TAIL_BYTES))
            tail = err.read().decode("utf-8", "replace")
            out.flush()  # (a replayed reuse wrote through the file object)
            kept: str | None = log_base
            if res.exit_status == 0 and not err_size and not os.fstat(out.fileno()).st_size:
                _drop_empty_logs(log_base)
                kept = None
        inputs: list[str] = []
        outputs: list[str] = []
        for r in res.runs:
            inputs.extend(a.path for a in r.inputs)
            outputs.extend(o.path for o in r.outputs if not o.stream)
        return LeafResult(index=job.index, exit_status=res.exit_status, reused=res.reused,
                          saved_seconds=res.saved_seconds, duration=res.duration,
                          message=res.message, stderr_tail=tail, inputs=inputs, outputs=outputs,
                          log=kept, run_id=res.run_id, run_outputs=res.run_outputs)
    except Exception as exc:  # the executor must survive anything a stage or the runner does
        with contextlib.suppress(Exception):
            if log_base:
                with open(log_base + ".err", "ab") as err:
                    err.write(f"sharklib: error: {exc}\n".encode())
        return LeafResult(index=job.index, exit_status=125, message=f"sharklib failed: {exc}",
                          stderr_tail=f"sharklib: error: {type(exc).__name__}: {exc}", log=log_base)


def _drop_empty_logs(log_base: str) -> None:
    """Remove a stage's two log files when it printed nothing to either.

    A trivial stage (``cp a b``) prints nothing: two empty files per stage were
    two inodes per stage in the cache directory (200,000 for a 100,000-stage map)
    and told nothing. What a stage printed is kept, and a re-run that prints
    nothing leaves no stale log of an earlier run behind.
    """
    for suffix in (".out", ".err"):
        with contextlib.suppress(OSError):
            os.unlink(log_base + suffix)


_worker_state: contextlib.ExitStack | None = None
_worker_lock = threading.Lock()


def keep_worker_state() -> None:
    """In a worker process, load the tracer and open the caches once for all its stages.

    Loading the BPF programs (~30 ms) and opening the cache's databases cost
    more than a trivial stage; a worker keeps both until it exits (closed by
    multiprocessing's and the interpreter's exit hooks; if the worker is killed
    the kernel frees the tracer with its file descriptors).
    """
    global _worker_state
    if _worker_state is not None:
        return
    with _worker_lock:
        if _worker_state is not None:
            return
        import atexit
        from multiprocessing import util

        from sharklib.runner.opencaches import kept_open
        from sharklib.trace.service import shared_tracing

        stack = contextlib.ExitStack()
        stack.enter_context(shared_tracing())
        stack.enter_context(kept_open())
        _worker_state = stack
        util.Finalize(None, stack.close, exitpriority=10)
        atexit.register(stack.close)
