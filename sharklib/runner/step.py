"""One step: the single path from a command to an attested, cached result.

A :class:`Step` owns, in this order: resolving the program (one launcher
rule, :mod:`sharklib.launch`), computing the run key, the reuse decision
(:mod:`sharklib.runner.decide`), and then either replaying a past run
(:mod:`sharklib.runner.restore`) or launching the command (plainly, under the
Python capture bootstrap, or under the native tracer, which also signs) and
recording it (:mod:`sharklib.runner.record`). ``sharklib trace``, pipeline
stages and :func:`sharklib.runner.run_command` are short calls into it;
:meth:`Step.explain` is ``--explain``.

Python scripts run in-process by ``sharklib run`` and by the bootstrap take
their key from :func:`sharklib.common.identity.key_parts` (the script's
digest, not the program's path) and make the same decision through
:func:`sharklib.runner.reuse.check` before the script body; a notebook cell
would call :func:`python_step_explanation` / :func:`sharklib.runner.reuse.check`
with the key parts of its cell the same way.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any

from sharklib.config import ENV_NO_CACHE, ENV_QUIET, ENV_RERUN, ENV_TAG, flag
from sharklib.errors import printable
from sharklib.model import RunKeyParts

if TYPE_CHECKING:
    from sharklib.cache.entry import IndexEntry
    from sharklib.runner.command import CaptureMode, RunResult
    from sharklib.runner.explain import Explanation


class Step:
    """A command line as one cacheable step (see the module docstring)."""

    def __init__(self, argv: Sequence[str] | str, *, cwd: str | os.PathLike[str] | None = None,
                 env: Mapping[str, str] | None = None, shell: bool = False,
                 capture: CaptureMode = "auto", env_tag: str | None = None,
                 pins: Mapping[str, str] | None = None, backend: str = "auto",
                 use_proxy: bool = False, python_capture: bool = True) -> None:
        from sharklib.runner import stagekey

        self.command = argv
        self.shell = shell
        self.cwd = os.path.abspath(os.fspath(cwd) if cwd is not None else os.getcwd())
        self.argv = stagekey.command_argv(argv, shell)
        self.env = dict(os.environ if env is None else env)
        self.capture = capture
        self.env_tag = env_tag
        self.pins = pins
        self.backend = backend
        self.use_proxy = use_proxy
        self.python_capture = python_capture
        self._key: tuple[RunKeyParts, str] | None = None
        #: what this process's standard input holds is part of the key when the command reads
        #: it (no ``stdin=`` given to :meth:`run`): set by the recipe shell, whose ``sort``
        #: reads make's standard input (``make < B.txt``). Off elsewhere, so a step keys as
        #: its plan does (pipeline stages get ``/dev/null``)
        self.keys_stdin = False
        self.inherits_stdin = True
        #: the caller prints the trace's messages and summary (``sharklib trace``)
        self.report_trace = False

    # -- identity ------------------------------------------------------------------------
    def key(self) -> tuple[RunKeyParts, str]:
        """(run key parts, project root): what must be equal for a past run to count."""
        if self._key is None:
            from sharklib.common.identity import allowed_variables
            from sharklib.runner import opencaches, stagekey

            base, env_tag, run_cwd = self.env, self.env_tag, self.cwd
            # the key holds the variables the command runs with, not this (worker) process's
            variables = tuple(allowed_variables(base).items())
            environment = opencaches.memo(("stage-environment", env_tag, variables),
                                      lambda: stagekey.stage_environment(env_tag, base))
            root = opencaches.memo(("project-root", run_cwd), lambda: stagekey.project_root(run_cwd))
            if self.keys_stdin and self.inherits_stdin:
                from sharklib.common.identity import stdin_identity

                fed = stdin_identity()
                if fed is not None:
                    environment = {**environment, "stdin": fed}
            self._key = stagekey.stage_key(self.command, shell=self.shell, cwd=run_cwd,
                                        env_tag=env_tag, environment=environment, root=root,
                                        path=base.get("PATH", os.defpath))
        return self._key

    def resolve(self) -> None:
        """Raise :class:`~sharklib.launch.LaunchError` when the program cannot be started.

        A shell line is left to the shell unless it is one simple command: then its
        program is looked up here, so the message is the same as for a plain argv.
        """
        from sharklib.launch import resolve_program

        if not self.shell:
            resolve_program(self.argv[0], self.env, self.cwd)
            return
        from sharklib.runner.stagekey import simple_command_program

        program = simple_command_program(self.command)
        if program is not None:
            resolve_program(program, self.env, self.cwd)

    def explain(self, *, cache: Any = None) -> Explanation:
        """Would this step be reused? The same decision as :meth:`run`, nothing run."""
        from sharklib.runner.explain import Explanation, explain

        if self.capture == "none" or self.env.get(ENV_NO_CACHE):
            return Explanation(False, "cache disabled (--no-cache / SHARKLIB_NO_CACHE)")
        if self.capture == "trace":
            from sharklib.errors import SharkError
            from sharklib.runner.command import _choose

            try:
                _choose("trace")
            except SharkError as exc:  # the run would stop there, before any reuse
                return Explanation(False, str(exc))
        parts, root = self.key()
        return explain(parts, root=root, cwd=self.cwd, cache=cache, pins=self.pins)

    # -- the run -------------------------------------------------------------------------
    def run(self, *, quiet: bool = True, rerun: bool = False, use_cache: bool = True,
            stdin: IO[Any] | int | None = None, stdout: IO[Any] | int | None = None,
            stderr: IO[Any] | int | None = None, preload: Any = None) -> RunResult:
        """Reuse the step if it is provably done, else launch it under capture and record it.

        1. Look up past runs with the same key whose recorded inputs are unchanged;
           on a hit restore the outputs, replay the streams, return without running.
        2. Otherwise run it under the native tracer when this machine allows it
           (every process in the tree recorded), else with the Python capture
           bootstrap (every Python process recorded). Each output gets a signed sidecar.
        3. Record the step for next time when its capture was complete (traced, or a
           single Python command) and it succeeded.
        """
        from sharklib.launch import LaunchError, say
        from sharklib.runner import command, opencaches, stagekey

        try:
            self.resolve()
        except LaunchError as exc:
            if preload is not None:
                preload.discard()
            return command.RunResult(exit_status=say(exc), message=str(exc))
        try:
            # where the native tracer was asked for and cannot run, that is the one line
            mode = command._choose(self.capture)
        except BaseException:
            if preload is not None:
                preload.discard()
            raise
        if mode != "trace" and preload is not None:
            preload.discard()  # no tracer runs this step after all
            preload = None
        base = dict(self.env)
        if self.inherits_stdin != (stdin is None):
            self.inherits_stdin = stdin is None
            self._key = None
        caching = use_cache and self.capture != "none" and not base.get(ENV_NO_CACHE)
        key_parts, root = self.key()
        cache = opencaches.kept(root) if caching else None
        # reuse.check answers None at once under SHARKLIB_NO_CACHE/SHARKLIB_RERUN: asked here
        # first, a rerun imports no part of the cache before its command starts
        if caching and not rerun and not flag(ENV_NO_CACHE) and not flag(ENV_RERUN):
            from sharklib.runner import reuse

            decision = reuse.check(key_parts, cwd=self.cwd, root=root, cache=cache,
                                   pins=self.pins, environ=base)
            if decision is not None:
                if preload is not None:
                    preload.discard()
                command._write_stream(stdout, decision.stdout, sys.stdout)
                command._write_stream(stderr, decision.stderr, sys.stderr)
                if not quiet:
                    sys.stderr.write(printable(decision.message) + "\n")
                return command.RunResult(
                    exit_status=decision.exit_status, reused=True,
                    saved_seconds=decision.saved, message=decision.message, reused_runs=1,
                    backend="cache", run_id=decision.entry.run_id,
                    run_outputs=[reuse.rebase(o.path, root) for o in decision.entry.outputs()])

        if self.env_tag:
            base[ENV_TAG] = self.env_tag
        if quiet:
            base[ENV_QUIET] = "1"
        # the step is cached as a whole; processes inside it need not cache themselves
        base[ENV_NO_CACHE] = "1"
        started = time.time()
        traced = None
        from sharklib.runner.tee import Printed, StreamTee

        # what the step prints to streams it inherits is kept, for a reuse to replay
        tee = StreamTee(stdout, stderr) if caching else None
        out, err = (tee.stdout, tee.stderr) if tee is not None else (stdout, stderr)
        with tee or contextlib.nullcontext():
            if mode == "trace":
                from sharklib.trace.session import trace_command

                traced = trace_command(self.argv, self.backend, cwd=self.cwd,  # type: ignore[arg-type]
                                       env=base, stdin=stdin, stdout=out, stderr=err,
                                       use_proxy=self.use_proxy,
                                       python_capture=self.python_capture, preload=preload,
                                       spool_root=root if caching else None)
                status, runs = traced.exit_status, traced.runs
                complete = not traced.incomplete and traced.started and bool(runs)
                if traced.uncacheable and complete:
                    complete = False
                    traced.messages.append(f"not cached: {traced.uncacheable}")
                backend = traced.backend
            else:
                status, runs = command._run_plain(self.argv, self.cwd, base, mode, stdin, out,
                                                  err)
                complete = mode == "python" and stagekey.is_single_python_command(self.command,
                                                                               self.shell)
                backend = mode
        if traced is not None and not self.report_trace:  # else the caller reports it
            for msg in traced.messages:
                if not quiet or "error" in msg.lower():
                    sys.stderr.write(f"sharklib: {printable(msg)}\n")
        printed = tee.printed() if tee is not None else Printed()
        complete = complete and printed is not None
        ended = time.time()

        result = command.RunResult(exit_status=status, runs=runs, duration=ended - started,
                                   backend=backend, trace=traced)
        if traced is not None and not (caching and complete and status is not None):
            _discard_spooled(traced)  # copies of large outputs made for a record not taken
        if caching and complete and status is not None:
            # a failed step is only noted in the ledger (`sharklib log --status failed`)
            agg = stagekey.aggregate(runs, argv=self.argv, cwd=self.cwd, started=started,
                                  ended=ended, exit_status=status, run_key=key_parts.digest(),
                                  inherited=command._stream_files(stdout, stderr))
            try:
                entry: IndexEntry | None = None
                # a step that leaves nothing to keep is not recorded (record's own first
                # answer); said here, such a step never imports the cache at all
                shown = {"stdout": printed.get("stdout"), "stderr": printed.get("stderr")} \
                    if printed else {}
                if not (status == 0 and not agg.stdin and stagekey.leaves_nothing(agg, shown)):
                    from sharklib.runner import reuse

                    entry = reuse.record(agg, root=root, cache=cache, key_parts=key_parts,
                                         **(printed or {}))
            finally:
                if traced is not None:
                    _discard_spooled(traced)
            if entry is not None:
                from sharklib.runner.decide import rebase

                result.recorded = True
                result.run_id = entry.run_id
                result.run_outputs = [rebase(o.path, root) for o in entry.outputs()]
        return result


def _discard_spooled(traced: Any) -> None:
    """Remove the copies of large outputs a trace made for a record that did not take them."""
    if traced.spooled:
        from sharklib.cache.cas import discard_spooled

        discard_spooled(traced.spooled)


class PythonStep:
    """A Python script keyed in-process: ``sharklib run``, the bootstrap's short-circuit, a cell.

    Its key comes from :func:`sharklib.common.identity.key_parts` (the script's
    digest, argv, cwd, interpreter by version) before the script body runs; the
    decision, the restore and the record are :class:`Step`'s (the same
    :func:`sharklib.runner.reuse.check` and :func:`sharklib.runner.record.record`).
    """

    def __init__(self, key_parts: RunKeyParts, cwd: str, root: str | None = None) -> None:
        self.key_parts = key_parts
        self.cwd = cwd
        if root is None:
            from sharklib.common.identity import project_root

            root = project_root(cwd)
        self.root = root

    def reuse(self) -> Any:
        """The past run standing for this one, its outputs already restored (else None)."""
        from sharklib.runner import reuse

        return reuse.check(self.key_parts, cwd=self.cwd, root=self.root)

    @staticmethod
    def replay(decision: Any) -> int:
        """Print what the reused run printed, and the reuse line; its exit status."""
        from sharklib.runner import reuse

        return reuse.replay(decision)

    def explain(self) -> Explanation:
        from sharklib.runner.explain import explain

        return explain(self.key_parts, root=self.root, cwd=self.cwd)

    def record(self, run: Any, session: str | None, **streams: Any) -> Any:
        """Store and index the finished run under this key (never raises)."""
        from sharklib.runner import reuse

        return reuse.record(run, session, root=self.root, key_parts=self.key_parts, **streams)


def python_step_explanation(parts: RunKeyParts, cwd: str, label: str = "") -> str:
    """``--explain`` for a Python step keyed in-process (``sharklib run``, the bootstrap, a cell)."""
    return PythonStep(parts, cwd).explain().text(label)


def trace_step(cmd: Sequence[str], backend: str = "auto", *, use_proxy: bool = False,
               python_capture: bool = True, preload: Any = None, quiet: bool = False,
               explain: bool = False) -> int:
    """``sharklib trace [--explain] -- CMD``: the command as a step, run under the native tracer.

    Reused like any step (nothing runs when a past run provably stands for it);
    otherwise traced, signed, reported and recorded. Returns the exit status to
    leave with (a command killed by a signal is re-raised by ``exit_like``).
    """
    step = Step(list(cmd), capture="trace", backend=backend, use_proxy=use_proxy,
                python_capture=python_capture)
    if explain:
        if preload is not None:
            preload.discard()
        sys.stdout.write(step.explain().text(_label(cmd)) + "\n")
        return 0
    step.report_trace = True
    result = step.run(quiet=True, preload=preload)
    if result.reused:
        if not quiet:
            sys.stderr.write(printable(result.message) + "\n")
        return result.exit_status
    if result.trace is None:  # it never started (the launcher said why)
        return result.exit_status
    from sharklib.trace.report import report
    from sharklib.trace.session import exit_like

    report(result.trace, quiet=quiet)
    return exit_like(result.trace)


def _label(cmd: Sequence[str]) -> str:
    import shlex

    text = shlex.join(cmd)
    return text if len(text) <= 60 else text[:57] + "…"
