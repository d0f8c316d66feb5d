"""Starting and ending capture in one process.

:func:`start` is what ``sitecustomize`` calls in every Python process started
with ``SHARKLIB_CAPTURE=1`` (children of a captured run, steps under
``sharklib env``); :func:`install` is shared with ``run_main``, which starts
the top-level run itself. Ending happens in exactly one of: ``atexit`` (normal
exit, ``sys.exit``, an uncaught exception), the ``os._exit`` patch (forked
children, multiprocessing workers), the ``os.exec`` audit event (before the
image is replaced) or the top-level SIGTERM handler.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys

from sharklib.capture import hooks, stdin
from sharklib.capture import recorder as _rec
from sharklib.common.safety import describe, warn_once
from sharklib.config import (
    ENV_EXEC_TOP,
    ENV_EXPLAIN,
    ENV_NO_CACHE,
    ENV_OWNS_SESSION,
    ENV_PARENT_RUN,
    ENV_SESSION,
    ENV_STREAMS,
    flag,
)

#: ``sharklib env --explain -- python ...``: print the reuse verdict instead of running the script


def _own_session() -> str | None:
    """A fresh session for a root process, exported to its children (``None``: none made)."""
    try:
        from sharklib.common.sessiondir import create_session_dir

        session = create_session_dir()
    except OSError as exc:
        warn_once(f"no session for child processes: {describe(exc)}")
        return None
    os.environ[ENV_SESSION] = session
    os.environ[ENV_OWNS_SESSION] = "1"
    return session


def _is_sharklib_run(argv: list[str]) -> bool:
    """Is this interpreter ``python -m sharklib run ...`` (which starts capture itself)?"""
    for i, a in enumerate(argv[1:], 1):
        if a == "-m" and i + 1 < len(argv) and argv[i + 1] in ("sharklib", "sharklib.__main__"):
            return True
        if os.path.basename(a) == "sharklib" and not a.startswith("-"):
            return True
        if not a.startswith("-"):
            return False
    return False


#: Workflow schedulers written in Python. Each job they start is a step of its own, with its
#: own record and reuse decision, as a recipe under make is; the scheduler process itself is
#: not captured, so its jobs start as roots (and its private state is no one's input or output).
SCHEDULERS = frozenset({"snakemake"})


def is_scheduler(argv: list[str]) -> bool:
    """Is this interpreter running a workflow scheduler (``snakemake ...``, ``-m snakemake``)?"""
    script, _code, module = parse_python_argv(argv)
    name = module.split(".")[0] if module else os.path.basename(script or "")
    return name in SCHEDULERS


def parse_python_argv(argv: list[str]) -> tuple[str | None, str | None, str | None]:
    """(script, code, module) from an interpreter command line (``sys.orig_argv``)."""
    takes_value = {"-W", "-X", "--check-hash-based-pycs"}
    i = 1
    while i < len(argv):
        a = argv[i]
        if a == "-c":
            return None, argv[i + 1] if i + 1 < len(argv) else "", None
        if a.startswith("-c") and len(a) > 2:
            return None, a[2:], None
        if a == "-m":
            return None, None, argv[i + 1] if i + 1 < len(argv) else None
        if a.startswith("-m") and len(a) > 2:
            return None, None, a[2:]
        if a in takes_value:
            i += 2
            continue
        if a == "-" or not a.startswith("-"):
            return (None if a == "-" else a), None, None
        i += 1
    return None, None, None


def start() -> None:
    """Capture this process (called by the bootstrap when ``SHARKLIB_CAPTURE=1``)."""
    if _rec.current() is not None:
        return
    argv = list(getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv])
    if _is_sharklib_run(argv) or is_scheduler(argv):
        return
    handed = os.environ.pop(ENV_EXEC_TOP, None)
    top = handed is not None
    parent = os.environ.get(ENV_PARENT_RUN) or None
    session = os.environ.get(ENV_SESSION) or None
    announce = handed != "silent"
    if not top and parent is None and session is None:
        # a step under `sharklib env`: the root of its own process tree, owning a session as
        # `sharklib run` would, so its children fold into its record and a reuse replays what
        # it printed; without the summary line (make would print one per step)
        session = _own_session()
        top, announce = session is not None, False
    rec = _rec.Recorder(argv, parent=parent, top=top, session=session)
    rec.announce = announce
    script, code, module = parse_python_argv(argv)
    rec.script = os.path.abspath(script) if script else None
    rec.code_text = code
    try:
        from sharklib.common.identity import key_parts, module_source, sha256_hex

        if module:
            rec.script = module_source(module, rec.cwd)
        digest = None
        source = b""
        if rec.script and code is None:
            try:
                with open(rec.script, "rb") as fh:
                    source = fh.read()
                digest = sha256_hex(source)
                rec.script_digest = (digest, len(source))
            except OSError:
                pass
        script_argv = [a for a in (sys.argv or [])]
        job = None
        if digest is not None and rec.script and "/.snakemake/scripts/tmp" in rec.script:
            # imported only where Snakemake writes a `script:` job's copy: this runs at the
            # start of every captured script
            from sharklib.capture import snakemake_script

            job = snakemake_script.parse(rec.script, source)
        if job is not None:
            # a Snakemake `script:` job: keyed and recorded as the user's script, not as
            # the temporary copy whose name changes every run (capture.snakemake_script)
            from sharklib.common.identity import key_places, project_root

            rec.script = job.original
            digest = sha256_hex(job.source)
            rec.script_digest = (digest, len(job.source))
            script_argv = [job.original, *script_argv[1:]]
            # the record's command names the user's script too: the temporary copy is gone
            # when the job ends, and lineage should lead to the file the user edits
            rec.argv = [job.original if a == script else a for a in rec.argv]
        rec.key_parts = key_parts(script_argv, rec.cwd, rec.script, code, module, digest)
        if job is not None:
            places = [(project_root(rec.cwd), "<project>"), *key_places(),
                      (os.path.expanduser("~"), "<home>")]
            rec.key_parts.code["snakemake preamble"] = sha256_hex(job.key_text(places))
    except Exception as exc:
        warn_once(f"run key not computed: {describe(exc)}")
    if _is_multiprocessing_child(argv, code):
        preload_for_children()
    # a multiprocessing worker: `Pool` ends its workers with SIGTERM, and what they wrote
    # must still be recorded (and folded into the parent's record)
    install(rec, sigterm=_is_multiprocessing_child(argv, code))
    if not top and session is not None and not flag(ENV_NO_CACHE):
        # what it writes to the root's own stdout/stderr is part of what a reuse replays
        with contextlib.suppress(Exception):
            from sharklib.capture.session import tee_inherited

            tee_inherited(session)
    if (script or code is not None or (module and rec.script)) \
            and not _is_multiprocessing_child(argv, code):
        if top and not handed and session is not None and not flag(ENV_NO_CACHE):
            # copies of what it prints, for a reuse to replay (as `sharklib run` keeps)
            with contextlib.suppress(Exception):
                from sharklib.capture.session import tee_streams

                tee_streams(session)
        _reuse_before_script(rec)


def _reuse_before_script(rec: _rec.Recorder) -> None:
    """``python step.py`` under the bootstrap: if the step is provably done, replay and exit now.

    This runs inside ``sitecustomize``, before the script body: exiting here is
    the only way not to run it. Nothing of the script has run, so nothing is
    lost by leaving without the interpreter's normal shutdown.
    """
    if os.environ.pop(ENV_EXPLAIN, None) == "1":
        _explain_and_exit(rec)
    try:
        from sharklib.capture import reuse_hook

        status = reuse_hook.check(rec)
    except Exception as exc:
        warn_once(f"reuse check failed: {describe(exc)}")
        return
    if status is None:
        return
    rec.active = False
    _rec.set_current(None)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    with contextlib.suppress(Exception):
        from sharklib.capture.main import remove_own_session

        remove_own_session(rec)
    os._exit(status)


def _explain_and_exit(rec: _rec.Recorder) -> None:
    """Say whether this step would be reused (the decision its check would make), then leave."""
    rec.active = False
    _rec.set_current(None)
    try:
        if rec.key_parts is None:
            line = "sharklib: would run: no run key (see the warning above)"
        else:
            from sharklib.runner.step import python_step_explanation

            label = os.path.relpath(rec.script, rec.cwd) if rec.script else ""
            line = python_step_explanation(rec.key_parts, rec.cwd, label=label)
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    except BaseException as exc:
        warn_once(f"explain failed: {describe(exc)}")
    with contextlib.suppress(Exception):
        from sharklib.capture.main import remove_own_session

        remove_own_session(rec)
    os._exit(0)


def install(rec: _rec.Recorder, sigterm: bool = False, script: bool = True) -> None:
    """Make ``rec`` this process's recorder and install every hook.

    ``script``: a program, not an interactive session, whose standard input is
    watched (:mod:`sharklib.capture.stdin`); a notebook's or REPL's is its own.
    """
    if script:
        with contextlib.suppress(Exception):
            stdin.watch(rec, root=rec.parent is None)
    _rec.set_current(rec)
    os.environ[ENV_PARENT_RUN] = rec.run_id
    hooks.install_audit_hook()
    hooks.patch_open()
    hooks.patch_os_open()
    hooks.patch_os_write()
    hooks.patch_os_stat()
    with contextlib.suppress(Exception):
        from sharklib.capture import envreads
        from sharklib.common.identity import project_root

        envreads.install(project_root(rec.cwd), code_text=rec.code_text is not None)
    hooks.patch_exit(save_at_exit)
    hooks.install_fork_handler(_before_fork, _after_fork_in_child)
    record_stream_outputs(rec)
    _install_library_patches()
    # last: a SIGTERM (a pool's terminate) that lands while the modules above are still being
    # imported would otherwise save through half-initialised modules; before this line it ends
    # the process as plain Python does, and nothing has been done that needs recording
    if sigterm:
        hooks.install_sigterm(save_at_exit, ending)
    atexit.register(_at_exit)


def _install_library_patches() -> None:
    """Post-import hooks of :mod:`sharklib.capture.libs` (downloads, GDAL, h5py, ...)."""
    try:
        from sharklib.capture import libs

        libs.install()
    except Exception as exc:
        warn_once(f"library patches not installed: {describe(exc)}")


def record_stream_outputs(rec: _rec.Recorder) -> None:
    """stdout/stderr redirected to a regular file are outputs (unless an ancestor records them)."""
    from sharklib.capture.session import stream_file

    known = set(filter(None, os.environ.get(ENV_STREAMS, "").split(",")))
    for fd, name in ((1, "stdout"), (2, "stderr")):
        found = stream_file(fd)
        if found is None:
            continue
        path, (dev, ino) = found
        ident = f"{dev}:{ino}"
        if ident in known:
            continue
        known.add(ident)
        if path.startswith(rec.ignore):
            continue
        out = rec.outputs.get(path) or _rec.PendingOutput(path, append=True, confirmed=True)
        out.stream = name
        with contextlib.suppress(OSError):
            out.start = os.fstat(fd).st_size
        rec.outputs[path] = out
        if not rec._preloaded:
            rec.preload()
    if known:
        os.environ[ENV_STREAMS] = ",".join(sorted(known))


def preload_for_children() -> None:
    """Import what ending a run needs while it still can be imported.

    multiprocessing children end after ``threading._shutdown()``, and from then
    on importing ``concurrent.futures.thread`` (which the hashing module uses)
    raises (hashing then falls back to one thread). Importing the digest
    module at the ``os.fork`` audit event (not in an at-fork handler: the
    import lock is held there), or at the start of a multiprocessing child,
    costs a few milliseconds once and only there.
    """
    with contextlib.suppress(Exception):
        import sharklib.hashing.digest  # noqa: F401


def _is_multiprocessing_child(argv: list[str], code: str | None) -> bool:
    return "--multiprocessing-fork" in argv or bool(code and "multiprocessing" in code)


def _before_fork() -> None:
    try:
        from sharklib.capture.session import flush_sinks

        flush_sinks()
    except Exception:
        pass


def _after_fork_in_child() -> None:
    try:
        rec = _rec.current()
        if rec is None:
            return
        child = rec.forked()
        _rec.set_current(child)
        os.environ[ENV_PARENT_RUN] = child.run_id
    except Exception as exc:
        warn_once(f"forked child not captured: {describe(exc)}")
        _rec.set_current(None)


def ending() -> bool:
    """Is this process already saving its record (``os._exit``, ``atexit``, an ``exec``)?"""
    rec = _rec.current()
    return rec is not None and rec.ending


def save_at_exit(status: int | None = None) -> None:
    """End capture now with ``status`` (``os._exit``, SIGTERM)."""
    rec = _rec.current()
    if rec is not None and status is not None:
        rec.exit_status = status
    # no flush of sys.stdout here: Python loses that buffer on os._exit and SIGTERM too
    _at_exit(flush_streams=False)


def before_exec(env: object) -> None:
    """``os.exec*`` is about to replace this image: save first, hand over the top-level role."""
    rec = _rec.current()
    if rec is None or not rec.active:
        return
    if rec.top:
        os.environ[ENV_EXEC_TOP] = "1" if rec.announce else "silent"
    top, rec.top = rec.top, False
    _end(rec, None, top_handover=top)


def _at_exit(flush_streams: bool = True) -> None:
    rec = _rec.current()
    if rec is None or not rec.active:
        return
    # Python flushes sys.stdout/sys.stderr right after atexit; a stream redirected to a file
    # is an output, and the top-level run's copy of its streams must be complete, so flush
    # first or the digest / the copy would miss the last buffered bytes.
    if flush_streams and (rec.top or any(o.stream for o in rec.outputs.values())):
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                if stream is not None:
                    stream.flush()
    if flush_streams:
        rec.flush_open_outputs()
    status = rec.exit_status if rec.exit_status is not None else 0
    _end(rec, status)


def _end(rec: _rec.Recorder, status: int | None, top_handover: bool = False) -> None:
    rec.ending = True
    try:
        from sharklib.capture.finish import finish
        from sharklib.capture.session import flush_sinks

        flush_sinks()
        done = finish(rec, status)
    except BaseException as exc:
        rec.active = False
        warn_once(f"run not recorded: {describe(exc)}")
        return
    if rec.top and not top_handover:
        try:
            from sharklib.capture.main import end_of_top

            end_of_top(rec, done)
        except BaseException as exc:
            warn_once(f"summary failed: {describe(exc)}")
