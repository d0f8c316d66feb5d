"""``sharklib trace``: run a command under the native tracer and sign what it did.

The order of things is chosen for the user's command, not for the tracer:
the programs are loaded before the command starts (~30 ms), the command runs
with the caller's stdio, environment and working directory, its exit is taken
the moment ``waitpid`` returns, and only then is the record hashed, merged
and signed. Signals a supervisor sends to ``sharklib trace`` (TERM, HUP, USR1,
USR2, ALRM) are passed on to the command; INT and QUIT from the terminal
already reach it directly, so the tracer ignores them while it waits.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

from sharklib.common.sessiondir import session_runs
from sharklib.config import ENV_PARENT_RUN, ENV_QUIET, ENV_SESSION, ENV_SIGNED_BY
from sharklib.errors import SharkError, TraceError
from sharklib.model import Run
from sharklib.trace import ebpf
from sharklib.trace.assemble import Assembler, Draft
from sharklib.trace.classify import for_session
from sharklib.trace.merge import merge_python

if TYPE_CHECKING:
    from sharklib.hashing import StatCache
    from sharklib.trace.ptrace import StraceParser
    from sharklib.trace.service import TraceService

BackendChoice = Literal["auto", "ebpf", "ptrace"]
FORWARDED = (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGALRM)
IGNORED_WHILE_WAITING = (signal.SIGINT, signal.SIGQUIT)
_FORK_WINDOW = threading.Lock()


@dataclass
class TraceResult:
    """What ``trace_command`` observed; ``exit_status`` is shell style (128+N on signal N)."""

    exit_status: int
    signal: int | None = None
    backend: str = ""
    runs: list[Run] = field(default_factory=list)
    sidecars: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    events: int = 0
    dropped: int = 0
    truncated: int = 0
    incomplete: str = ""
    #: why a complete, signed record may still not be reused ("it appended to build.log")
    uncacheable: str = ""
    startup_seconds: float = 0.0
    command_seconds: float = 0.0
    record_seconds: float = 0.0
    started: bool = True
    #: large outputs hashed while copied into the store (``spool_root``), for the caller's
    #: ``put`` to commit or :func:`sharklib.cache.cas.discard_spooled` to drop
    spooled: list[str] = field(default_factory=list)


def choose_backend(requested: BackendChoice) -> str:
    """The backend to use, or a one-line TraceError saying why none can run."""
    if requested != "ptrace":
        why_ebpf = ebpf.unavailable_reason()
        if requested == "ebpf":
            if why_ebpf:
                raise TraceError(f"eBPF backend unavailable: {why_ebpf}")
            return "ebpf"
        if why_ebpf is None:
            return "ebpf"
    # imported only when it may be needed (its parser's expressions are compiled on import)
    from sharklib.trace import ptrace

    if requested == "ptrace":
        why_ptrace = ptrace.unavailable_reason()
        if why_ptrace:
            raise TraceError(f"ptrace backend unavailable: {why_ptrace}")
        return "ptrace"
    why_ptrace = ptrace.unavailable_reason()
    if why_ptrace is None:
        return "ptrace"
    raise TraceError(f"cannot trace here: eBPF: {why_ebpf}; ptrace: {why_ptrace}")


def _resolve(argv0: str, env: Mapping[str, str], cwd: str) -> tuple[str | None, int, str]:
    """Find the program like execvp would; (path, exit code, message) when it cannot run."""
    from sharklib.launch import LaunchError, resolve_program

    try:
        return resolve_program(argv0, env, cwd), 0, ""
    except LaunchError as exc:
        return None, exc.exit_status, str(exc)


def _fileno(stream: IO[Any] | int | None, default: int) -> int | None:
    if stream is None:
        return default
    if isinstance(stream, int):
        return stream if stream >= 0 else None
    try:
        return stream.fileno()
    except (OSError, ValueError, AttributeError):
        return None


def _stream_targets(stdout: IO[Any] | int | None, stderr: IO[Any] | int | None) -> dict[str, str]:
    """The command's stdout/stderr when they are regular files: outputs of the root run."""
    out: dict[str, str] = {}
    for fd, name in ((_fileno(stdout, 1), "stdout"), (_fileno(stderr, 2), "stderr")):
        if fd is None:
            continue
        with contextlib.suppress(OSError):
            if stat.S_ISREG(os.fstat(fd).st_mode):
                target = os.readlink(f"/proc/self/fd/{fd}")
                if target.startswith("/") and target not in out:
                    out[target] = name
    return out


def _python_capture_env(env: dict[str, str], session: Path, parent_run: str) -> dict[str, str]:
    with contextlib.suppress(Exception):
        from sharklib.common.environ import capture_environ

        env = capture_environ(env)
    env[ENV_SESSION] = str(session)
    env[ENV_PARENT_RUN] = parent_run
    env[ENV_SIGNED_BY] = str(session)  # the tracer signs what they record (see _attest)
    env.setdefault(ENV_QUIET, "1")
    return env


def _let_the_command_handle_it(_signum: int, _frame: object) -> None:
    """INT/QUIT from the terminal reach the command's process group directly: it decides."""


class _Signals:
    """Forward supervisor signals to the command while it runs."""

    def __init__(self) -> None:
        self.target: int | None = None
        self._saved: dict[int, object] = {}

    def __enter__(self) -> _Signals:
        if threading.current_thread() is not threading.main_thread():
            return self
        for sig in FORWARDED:
            self._saved[sig] = signal.signal(sig, self._forward)
        for sig in IGNORED_WHILE_WAITING:
            # a do-nothing handler, not SIG_IGN: the command inherits an ignored signal across
            # exec (Ctrl-C would no longer stop it), while a handler is reset to the default
            self._saved[sig] = signal.signal(sig, _let_the_command_handle_it)
        return self

    def _forward(self, signum: int, _frame: object) -> None:
        if self.target:
            with contextlib.suppress(OSError):
                os.kill(self.target, signum)

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]


def _status_from_returncode(rc: int) -> tuple[int, int | None]:
    return (128 - rc, -rc) if rc < 0 else (rc, None)


def trace_command(argv: Sequence[str], backend: BackendChoice = "auto", *, use_proxy: bool = False,
                  cwd: str | None = None, env: Mapping[str, str] | None = None,
                  sign: bool = True, python_capture: bool = True,
                  stdin: IO[Any] | int | None = None, stdout: IO[Any] | int | None = None,
                  stderr: IO[Any] | int | None = None,
                  preload: ebpf.Preload | None = None,
                  spool_root: str | None = None) -> TraceResult:
    """Run ``argv`` under the tracer, write signed sidecars beside every output, return the record.

    Raises :class:`TraceError` (one line) when no backend can run here. A
    command that cannot be found or executed is reported like a shell does
    (127/126) without tracing anything. ``stdin``/``stdout``/``stderr`` are
    passed to the command like ``subprocess.Popen``'s; by default it inherits
    this process's, and a stdout/stderr that is a regular file is an output.
    ``preload`` is a BPF load the caller started earlier (``sharklib trace`` starts it
    before importing the rest of sharklib); it is freed if it cannot be used.
    ``spool_root``: the project root of a cache the caller will record the run into; large
    outputs are then hashed while copied into its store (one read for both; see
    :func:`sharklib.cache.runcache.spool_outputs`), and the caller's ``put`` commits them.
    """
    t_enter = time.perf_counter()
    if not argv:
        raise TraceError("no command given (usage: sharklib trace -- CMD ARGS...)")
    run_cwd = os.path.abspath(cwd or os.getcwd())
    base_env = dict(os.environ if env is None else env)
    try:
        chosen = choose_backend(backend)
    except BaseException:
        if preload is not None:
            preload.discard()
        raise
    from sharklib.trace.service import active

    shared = active() if chosen == "ebpf" and not use_proxy else None
    # proxy.py forks its acceptor: no loader thread may be running then (fork + threads)
    wanted = chosen == "ebpf" and not use_proxy and shared is None
    if preload is not None and not wanted:
        preload.discard()
        preload = None
    elif preload is None and wanted:
        preload = ebpf.Preload()
    try:
        program, code, message = _resolve(argv[0], base_env, run_cwd)
        if program is None:
            return TraceResult(exit_status=code, backend=chosen, messages=[message])
        session = Path(tempfile.mkdtemp(prefix="sharklib-trace-"))
        try:
            return _trace(list(argv), chosen, use_proxy, run_cwd, base_env, session, sign,
                          python_capture, t_enter, (stdin, stdout, stderr), preload, shared,
                          spool_root)
        finally:
            _remove_session(session)
    finally:
        if preload is not None:
            preload.discard()


def _remove_session(session: Path) -> None:
    try:
        os.rmdir(session)  # usually empty: no Python process ran
    except OSError:
        shutil.rmtree(session, ignore_errors=True)


def _trace(argv: list[str], backend: str, use_proxy: bool, cwd: str, env: dict[str, str],
           session: Path, sign: bool, python_capture: bool, t_enter: float,
           stdio: tuple[Any, Any, Any], preload: ebpf.Preload | None,
           shared: TraceService | None = None, spool_root: str | None = None) -> TraceResult:
    classify = for_session(str(session))
    asm = Assembler(argv, cwd, classify, backend)
    result = TraceResult(exit_status=0, backend=backend)
    if python_capture:
        env = _python_capture_env(env, session, asm.root.run_id)
    proxy_log = str(session / "downloads.jsonl")
    with contextlib.ExitStack() as stack:
        if use_proxy:
            from sharklib.trace.proxy import proxy_environment, recording_proxy

            port = stack.enter_context(recording_proxy(proxy_log))
            env = proxy_environment(port, env)
        streams = _stream_targets(stdio[1], stdio[2])
        asm.stream_paths.update(streams)
        sigs = stack.enter_context(_Signals())
        if backend == "ebpf" and shared is not None:
            _run_shared(argv, cwd, env, asm, sigs, result, t_enter, stdio, shared)
        elif backend == "ebpf":
            _run_ebpf(argv, cwd, env, asm, sigs, result, t_enter, stdio, preload or ebpf.Preload())
        else:
            _run_ptrace(argv, cwd, env, asm, sigs, result, t_enter, stdio)
    t_rec = time.perf_counter()
    if not result.started:
        return result
    for path, name in streams.items():
        asm.stream_output(name, path)
    if result.dropped:
        result.incomplete = f"the tracer lost {result.dropped} events (ring buffer full)"
    elif result.truncated:
        # a cut path names another file (its prefix is lost): recording it would make a
        # later reuse check the wrong file, so the run is neither signed nor cached
        result.incomplete = (f"{result.truncated} path(s) were longer or deeper than the "
                             "tracer can walk (4 KiB) and were cut")
    elif not asm.root.execs:
        result.incomplete = "the tracer saw no exec of the command"
    if result.incomplete:
        result.messages.append(f"{result.incomplete}; the record is incomplete, so nothing "
                               "was signed")
        result.record_seconds = time.perf_counter() - t_rec
        return result
    if asm.appended:
        first = next(iter(asm.appended))
        rel = os.path.relpath(first, cwd)
        first = first if rel.startswith("..") else rel
        result.uncacheable = (f"it appended to {first}, whose earlier content is in no record"
                              + (f" (and {len(asm.appended) - 1} more)"
                                 if len(asm.appended) > 1 else ""))
    elif edited := asm.rewritten_in_place():
        first = next(iter(edited))
        rel = os.path.relpath(first, cwd)
        first = first if rel.startswith("..") else rel
        result.uncacheable = (f"it rewrote its own input {first}, whose earlier content is in "
                              "no record" + (f" (and {len(edited) - 1} more)"
                                             if len(edited) > 1 else ""))
    runs = _finish_runs(asm, session, proxy_log if use_proxy else None, result, spool_root)
    result.runs = runs
    if sign:
        result.sidecars = _attest(runs, result.messages)
    result.record_seconds = time.perf_counter() - t_rec
    return result


def _run_ebpf(argv: list[str], cwd: str, env: dict[str, str], asm: Assembler, sigs: _Signals,
              result: TraceResult, t_enter: float, stdio: tuple[Any, Any, Any],
              preload: ebpf.Preload) -> None:
    tracer = preload.take()
    tracer.set_sink(asm.feed)
    # The tracer adopts the next child this process forks. Two commands traced at once from
    # threads of one process (a pipeline's pool) must not fork inside each other's window,
    # or one would adopt the other's command.
    tracer.start(0)  # loaded and attached, watching nothing yet
    _FORK_WINDOW.acquire()
    tracer.watch(os.getpid())
    try:
        result.startup_seconds = time.perf_counter() - t_enter
        t0 = time.perf_counter()
        try:
            proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=stdio[0], stdout=stdio[1],
                                    stderr=stdio[2])
        except OSError as exc:  # e.g. a script whose interpreter does not exist
            result.exit_status = 127 if exc.errno == errno.ENOENT else 126
            result.messages.append(f"cannot execute {argv[0]}: {exc.strerror or exc}")
            result.started = False
            return
        finally:
            tracer.stop_watching()
            _FORK_WINDOW.release()
        sigs.target = proc.pid
        rc = proc.wait()
        result.command_seconds = time.perf_counter() - t0
        result.exit_status, result.signal = _status_from_returncode(rc)
        tracer.finish()
        result.events = tracer.events
        result.dropped = tracer.dropped
        if tracer.undecodable:
            asm.root.warnings.append(f"{tracer.undecodable} tracer events could not be decoded")
        result.truncated = tracer.truncated_paths
    finally:
        threading.Thread(target=tracer.close, name="sharklib-ebpf-close").start()
    asm.root_exited(rc)


def _run_shared(argv: list[str], cwd: str, env: dict[str, str], asm: Assembler,
                sigs: _Signals, result: TraceResult, t_enter: float,
                stdio: tuple[Any, Any, Any], service: TraceService) -> None:
    """Like :func:`_run_ebpf`, inside a tracer that is already loaded and shared."""
    before = service.counters()
    result.startup_seconds = time.perf_counter() - t_enter
    t0 = time.perf_counter()
    with _FORK_WINDOW, service.window():
        try:
            proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=stdio[0], stdout=stdio[1],
                                    stderr=stdio[2])
        except OSError as exc:
            result.exit_status = 127 if exc.errno == errno.ENOENT else 126
            result.messages.append(f"cannot execute {argv[0]}: {exc.strerror or exc}")
            result.started = False
            return
    service.claim(proc.pid, asm)
    sigs.target = proc.pid
    rc = proc.wait()
    result.command_seconds = time.perf_counter() - t0
    result.exit_status, result.signal = _status_from_returncode(rc)
    service.settle(asm)
    after = service.counters()
    # the counters are global: a loss anywhere while this command ran makes it incomplete
    result.dropped = after.dropped - before.dropped
    result.events = asm.seq
    if after.undecodable > before.undecodable:
        asm.root.warnings.append(f"{after.undecodable - before.undecodable} tracer events could "
                                 "not be decoded while this command ran")
    # global too: a path cut in any command traced meanwhile may be this one's
    result.truncated = after.truncated - before.truncated
    asm.root_exited(rc)


def _run_ptrace(argv: list[str], cwd: str, env: dict[str, str], asm: Assembler, sigs: _Signals,
                result: TraceResult, t_enter: float, stdio: tuple[Any, Any, Any]) -> None:
    from sharklib.trace import ptrace

    parser = ptrace.StraceParser(asm.feed, cwd)
    root_status: list[int] = []
    root_seen = threading.Event()
    closed = threading.Event()

    def sink(ev: object) -> None:
        if closed.is_set():
            return
        asm.feed(ev)  # type: ignore[arg-type]
        if getattr(ev, "kind", "") == "exit" and getattr(ev, "pid", None) == parser.root:
            root_status.append(ev.status)  # type: ignore[attr-defined]
            root_seen.set()

    parser.sink = sink
    r, w = os.pipe()
    try:
        proc = subprocess.Popen(ptrace.command(argv, w), cwd=cwd, env=env, pass_fds=(w,),
                                stdin=stdio[0], stdout=stdio[1], stderr=stdio[2])
    except OSError as exc:
        os.close(r)
        raise TraceError(f"cannot start strace: {exc.strerror or exc}") from exc
    finally:
        os.close(w)
    result.startup_seconds = time.perf_counter() - t_enter
    t0 = time.perf_counter()
    drain_fd = os.dup(r)
    reader = ptrace.reader_thread(os.fdopen(r, "rb", buffering=1 << 16), parser)
    sigs.target = proc.pid
    root_pid = _strace_root(proc, parser)
    outlived = False
    if root_pid:
        sigs.target = root_pid
        _wait_pid_exit(root_pid, proc, root_seen)
        result.command_seconds = time.perf_counter() - t0
        root_seen.wait(5)
        try:
            proc.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            # Processes outlived the command. Detaching strace would leave its seccomp
            # filter in them (their traced syscalls would fail), so strace stays until they
            # end; a detached `cat` keeps draining its output once we are gone.
            outlived = True
            closed.set()
            subprocess.Popen(["cat"], stdin=drain_fd, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    os.close(drain_fd)
    if not outlived:
        rc = proc.wait()
        reader.join(timeout=30)
    else:
        rc = 0
    if not result.command_seconds:
        result.command_seconds = time.perf_counter() - t0
    result.events = parser.lines
    if root_status:
        status = root_status[0]
        sig = status & 0x7F
        result.exit_status, result.signal = (128 + sig, sig) if sig else ((status >> 8) & 0xFF, None)
    else:
        result.exit_status, result.signal = _status_from_returncode(rc)
        asm.root.warnings.append("strace ended before the command's exit was seen")
    if parser.unparsed:
        asm.root.warnings.append(f"{parser.unparsed} strace lines could not be parsed")
    result.truncated = parser.unresolved
    asm.root_exited(-result.signal if result.signal else result.exit_status)


def _strace_root(proc: subprocess.Popen[bytes], parser: StraceParser) -> int | None:
    """The command's pid: the first pid in strace's (line-flushed) output."""
    while proc.poll() is None:
        if parser.root is not None:
            return parser.root
        time.sleep(0.001)
    return parser.root


def _wait_pid_exit(pid: int, proc: subprocess.Popen[bytes], seen: threading.Event) -> None:
    """Block until ``pid`` (strace's child, not ours) has exited, or strace itself ended."""
    import select

    try:
        fd = os.pidfd_open(pid)
    except OSError:  # already gone and reaped
        return
    try:
        while proc.poll() is None and not seen.is_set():
            if select.select([fd], [], [], 0.05)[0]:
                return
    finally:
        os.close(fd)


_stat_caches = threading.local()


def _digests(paths: Iterable[str], outputs: Iterable[str] = (), spool_root: str | None = None,
             spooled_into: list[str] | None = None,
             ) -> tuple[dict[str, tuple[str, int]], list[str]]:
    """Digests of what a command touched, through the persistent stat cache; and what kept changing.

    Every regular file goes through the stat cache, small ones too: a file the tree
    read before (the same path, device, inode, size, mtime and ctime) costs a ``stat``
    and a batched lookup, not an open and a read. A file hashed now is proved
    unchanged while it was read (its ``fstat`` after the last byte equals its ``stat``
    before) or read again; one that changed every time is returned in the second list
    and has no digest, so it can never be recorded with the digest of a state it was
    never in. Without a usable stat cache the files are hashed the same way directly.
    With ``spool_root``, large ``outputs`` are hashed while copied into the store the run
    will be recorded in (one read for the digest and the stored copy).
    """
    from sharklib.hashing.digest import hash_files_stable, listing_digest

    digests: dict[str, tuple[str, int]] = {}
    files_out = [p for p in outputs if not p.endswith("/")] if spool_root is not None else []
    if files_out and spool_root is not None:  # the store is imported only for outputs to spool
        from sharklib.cache.runcache import spool_outputs

        spooled = spool_outputs(files_out, spool_root)
        digests.update(spooled)
        if spooled_into is not None:
            spooled_into.extend(spooled)
    files: list[str] = []
    for p in paths:
        if p in digests:
            continue
        if p.endswith("/"):  # "dir/": a listing (cheap, never cached)
            with contextlib.suppress(OSError):
                if os.path.isdir(p):
                    digests[p] = listing_digest(p)
            continue
        files.append(p)
    if not files:
        return digests, []
    try:
        cache = _stat_cache()
        before = len(cache.unstable)
        digests.update(cache.digests(files))
        unstable = cache.unstable[before:]
        del cache.unstable[before:]
        return digests, unstable
    except Exception:  # an unusable stat cache only costs time
        stats: dict[str, os.stat_result] = {}
        for p in files:
            with contextlib.suppress(OSError):
                st = os.stat(p)
                if stat.S_ISREG(st.st_mode):
                    stats[p] = st
        got, unstable = hash_files_stable(stats)
        digests.update({p: (d, size) for p, (d, size, _) in got.items()})
        return digests, unstable


def _stat_cache() -> StatCache:
    """This thread's stat cache (kept open: a pipeline traces many commands per thread)."""
    from sharklib.config import cache_dir
    from sharklib.hashing import StatCache

    where = str(cache_dir())
    kept = getattr(_stat_caches, "kept", None)
    if kept is None or kept[0] != where:  # the first time, or the settings changed
        if kept is not None:
            kept[1].close()
        kept = _stat_caches.kept = (where, StatCache())
    cache: StatCache = kept[1]
    return cache


def _finish_runs(asm: Assembler, session: Path, proxy_log: str | None,
                 result: TraceResult, spool_root: str | None = None) -> list[Run]:
    outputs = [p for d in asm.drafts for p in d.outputs] if spool_root is not None else []
    py_runs = [(py, next((d for d in asm.drafts if py.pid in d.pids), None))
               for py in session_runs(session)]
    known = _read_time_digests(asm, py_runs)
    paths = asm.all_paths()
    digests, unstable = _digests(paths - known.keys() if known else paths, outputs, spool_root,
                                 result.spooled)
    digests.update(known)
    if unstable:
        # no digest is recorded for them (it would be of no state the file was ever in), so
        # the record cannot prove a reuse: signed with a warning, never cached
        names = ", ".join(unstable[:5])
        asm.root.warnings.append(f"{len(unstable)} file(s) kept changing while they were "
                                 f"hashed and are recorded without a digest: {names}")
        result.uncacheable = result.uncacheable or \
            f"{unstable[0]} kept changing while it was hashed"
    runs = asm.build(digests)
    by_id = {r.run_id: r for r in runs}
    drafts = {d.run_id: d for d in asm.drafts}
    for py, owner in py_runs:
        if owner is None:
            py.parent = asm.root.run_id
            by_id[asm.root.run_id].children.append(py.run_id)
            runs.insert(len(runs) - 1, py)
            continue
        merge_python(by_id[owner.run_id], py, owns_top=py.pid == drafts[owner.run_id].top)
    if proxy_log:
        from sharklib.trace.proxy import read_downloads

        for when, dl in read_downloads(proxy_log):
            target = asm.root
            for d in asm.drafts[1:]:
                if d.started <= when <= (d.ended or float("inf")):
                    target = d
            by_id[target.run_id].downloads.append(dl)
    return runs


def _read_time_digests(asm: Assembler, py_runs: list[tuple[Run, Draft | None]],
                       ) -> dict[str, tuple[str, int]]:
    """Inputs whose digest a Python process of the tree took when it read them, and no
    one else needs hashed: not hashed again after the command.

    The merge (:func:`merge_python`) gives the Python record's digest precedence for the
    inputs it saw, so hashing them at the end was work thrown away (a script reading
    20,000 files had each read twice more). A path is left out of the end-of-run hashing
    only when every Run that touched it just read it and has this same digest from a
    Python process of its own; an output, an executed file or a file another Run read
    without such a record is hashed as before.
    """
    covered: dict[int, dict[str, tuple[str, int]]] = {}
    for py, owner in py_runs:
        if owner is None:
            continue
        mine = covered.setdefault(id(owner), {})
        for a in py.inputs:
            if a.sha256:  # "": read, then gone before the end (no digest to lend)
                mine[a.path] = (a.sha256, a.size or 0)
    if not covered:
        return {}
    need: set[str] = set()
    lent: dict[str, tuple[str, int]] = {}
    for d in asm.drafts:
        need.update(d.outputs)
        need.update(d.code)
        have = covered.get(id(d), {})
        for p in d.inputs:
            got = have.get(p)
            if got is None or lent.setdefault(p, got) != got:
                need.add(p)
    return {p: dg for p, dg in lent.items() if p not in need}


def _attest(runs: list[Run], messages: list[str]) -> list[str]:
    """Sign runs upstream first, so each input links to the attestation that made it.

    Each run's inputs are linked just before it is signed (an upstream run of the same
    tree has written its sidecars by then). The sidecar reader is imported only when an
    input may have a sidecar, the signing code only for a run with outputs (``attest_run``
    of one without writes nothing), so a tree that wrote no file imports neither.
    """
    unlinked = [a.path for run in runs for a in run.inputs if a.attestation is None]
    # a file a run of this tree wrote gets its sidecar below, after any listing made now
    produced = {o.path for run in runs for o in run.outputs}
    with_sidecar = _sidecar_candidates([p for p in unlinked if p not in produced])
    with_sidecar.update(p for p in unlinked if p in produced)
    sidecars: list[str] = []
    for run in runs:
        linked = [a for a in run.inputs if a.attestation is None and a.path in with_sidecar]
        if linked:
            from sharklib.attest import input_attestation

            for a in linked:
                with contextlib.suppress(Exception):
                    a.attestation = input_attestation(a.path, a.sha256)
        if not run.outputs:
            continue
        from sharklib.attest import attest_run

        try:
            sidecars.extend(attest_run(run))
        except SharkError as exc:
            messages.append(f"warning: {exc}")
    return sidecars


#: from this many inputs in one directory on, the directory is listed once to find their
#: sidecars instead of one ``stat`` per input (20,000 inputs beside no sidecar cost 20,000 stats)
LIST_DIR_FROM = 32


def _sidecar_candidates(paths: list[str]) -> set[str]:
    """The inputs that may have a sidecar beside them (a superset; each is then read to link it)."""
    from sharklib.attest.naming import SUFFIX

    by_dir: dict[str, list[str]] = {}
    for p in dict.fromkeys(paths):  # absolute paths: the directory is cut by text
        by_dir.setdefault(p.rpartition("/")[0] or "/", []).append(p)
    out: set[str] = set()
    for d, group in by_dir.items():
        if len(group) < LIST_DIR_FROM:
            out.update(group)  # few: input_attestation's own exists() is cheaper than a listing
            continue
        try:
            listing = os.listdir(d)
        except OSError:
            out.update(group)
            continue
        # most data directories hold no sidecar: one search of the joined names says so
        if SUFFIX + "\0" in "\0".join(listing) + "\0":
            names = {n for n in listing if n.endswith(SUFFIX)}
            out.update(p for p in group if p.rpartition("/")[2] + SUFFIX in names)
    return out


def exit_like(result: TraceResult) -> int:
    """Leave the way the command left: the same exit code, or death by the same signal."""
    sys.stdout.flush()
    sys.stderr.flush()
    if result.signal:
        with contextlib.suppress(Exception):
            import resource

            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            signal.signal(result.signal, signal.SIG_DFL)
            os.kill(os.getpid(), result.signal)
    return result.exit_status
