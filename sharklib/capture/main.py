"""``python -m sharklib run [OPTIONS] SCRIPT ARGS...``: run a script under capture, in-process.

Start-up must stay within a few milliseconds of plain ``python``: this module
imports neither click nor rich nor cryptography; signing, git and
distribution metadata are loaded at exit, and only when there is an output.
"""

from __future__ import annotations

import os
import sys

from sharklib.config import (
    ENV_KEEP_SESSION,
    ENV_NO_CACHE,
    ENV_QUIET,
    ENV_REPORT,
    ENV_RERUN,
    ENV_SESSION,
    flag,
)

# ``typing`` is not imported at run time: it costs every captured script ~2.5 ms of start-up
TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

    from sharklib.capture.finish import Finished
    from sharklib.capture.recorder import Recorder
    from sharklib.model import RunKeyParts


USAGE = """\
usage: sharklib run [-q] [--rerun] [--no-cache] [--report] [--explain] (SCRIPT | -m MODULE | -c CODE) [ARGS...]

Run a Python script exactly as `python SCRIPT ARGS` would, recording what it
read and wrote; a signed sidecar (X.intoto.jsonl) is written beside every output X.

options:
  -q, --quiet   no summary line
  --rerun       run even if a past run could be reused (still records)
  --no-cache    neither read nor write the run cache
  --report      a reuse line also states the energy and emissions saved (sharklib report)
  --explain     run nothing: say whether the run would be reused, and if not, why
  -m MODULE     run a library module as a script
  -c CODE       run a program passed as a string
"""


class UsageError(Exception):
    pass


class RunOptions:
    """What ``sharklib run`` was asked to do.

    A plain class, not a dataclass: importing ``dataclasses`` (and with it
    ``inspect``) would cost every captured script ~8 ms of start-up.
    """

    __slots__ = ("args", "code", "explain", "help", "module", "no_cache", "quiet", "rerun",
                 "script")

    def __init__(self, quiet: bool = False, rerun: bool = False, no_cache: bool = False,
                 script: str | None = None, module: str | None = None, code: str | None = None,
                 args: list[str] | None = None, help: bool = False,
                 explain: bool = False) -> None:
        self.quiet = quiet
        self.rerun = rerun
        self.no_cache = no_cache
        self.script = script
        self.module = module
        self.code = code
        self.args = args if args is not None else []
        self.help = help
        self.explain = explain

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunOptions) and all(
            getattr(self, n) == getattr(other, n) for n in self.__slots__)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return "RunOptions(" + ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__) + ")"


def parse_args(argv: list[str]) -> RunOptions:
    """Options stop at the script (or ``-m``/``-c``): everything after belongs to it."""
    opts = RunOptions()
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-q", "--quiet"):
            opts.quiet = True
        elif a == "--rerun":
            opts.rerun = True
        elif a == "--no-cache":
            opts.no_cache = True
        elif a == "--report":
            os.environ[ENV_REPORT] = "1"  # read by the reuse line (model.energy)
        elif a == "--explain":
            opts.explain = True
        elif a in ("-h", "--help"):
            opts.help = True
            return opts
        elif a in ("-m", "-c"):
            if i + 1 >= len(argv):
                raise UsageError(f"argument expected for the {a} option")
            if a == "-m":
                opts.module = argv[i + 1]
            else:
                opts.code = argv[i + 1]
            opts.args = argv[i + 2:]
            return opts
        elif a == "--":
            if i + 1 >= len(argv):
                raise UsageError("a script to run is required")
            opts.script = argv[i + 1]
            opts.args = argv[i + 2:]
            return opts
        elif a.startswith("-") and a != "-":
            raise UsageError(f"unknown option {a}")
        else:
            opts.script = a
            opts.args = argv[i + 1:]
            return opts
        i += 1
    raise UsageError("a script to run is required")


def prepare_environment(opts: RunOptions) -> tuple[str, bool]:
    """Export the capture environment for children; returns (session, owned)."""
    from sharklib.common.environ import capture_environ
    from sharklib.config import ENV_OWNS_SESSION

    for key, value in capture_environ(os.environ).items():
        if os.environ.get(key) != value:
            os.environ[key] = value
    if opts.quiet:
        os.environ[ENV_QUIET] = "1"
    if opts.rerun:
        os.environ[ENV_RERUN] = "1"
    if opts.no_cache:
        os.environ[ENV_NO_CACHE] = "1"
    session = os.environ.get(ENV_SESSION)
    owned = False
    if not session or not os.path.isdir(session):
        from sharklib.common.sessiondir import create_session_dir

        session = create_session_dir()
        os.environ[ENV_SESSION] = session
        owned = True
    os.environ[ENV_OWNS_SESSION] = "1" if owned else "0"
    return session, owned


def before_script(run: Recorder, key_parts: RunKeyParts | None) -> int | None:
    """The one place where a past run may be reused instead of running the script.

    Called after capture is installed and before the script body executes.
    Returns an exit status when the run was reused (the script then does not
    run and nothing is recorded), or ``None`` to run it.
    """
    if flag(ENV_NO_CACHE) or flag(ENV_RERUN):
        return None  # decided without importing the cache side at all
    from sharklib.capture import reuse_hook

    return reuse_hook.check(run)


def run_main(argv: list[str]) -> int:
    """``sharklib run``: returns the exit status (``SystemExit`` from the script propagates)."""
    try:
        opts = parse_args(list(argv))
    except UsageError as exc:
        sys.stderr.write(USAGE.splitlines()[0] + "\n" + f"sharklib run: error: {exc}\n")
        return 2
    if opts.help:
        sys.stdout.write(USAGE)
        return 0
    if not _bootstrap_present():
        return 2

    from sharklib.capture import execfile

    code_obj: Any = None
    abspath: str | None = None
    source: bytes | None = None
    if opts.script is not None:
        try:
            abspath, code_obj, source = execfile.read_script(opts.script)
        except execfile.NoScript as exc:
            sys.stderr.write(exc.message + "\n")
            return 2
        except SyntaxError as exc:
            execfile.print_exception(exc)
            return 1

    if opts.module is not None and not _module_exists(opts.module):
        from sharklib.launch import not_found, say

        return say(not_found(opts.module))  # as for any program that is not there: 127
    if opts.explain:
        return explain_run(opts, abspath, source)

    keyed = None
    if opts.script is not None and not (opts.no_cache or opts.rerun):
        # a reuse the key's memo proves replays before capture is installed: nothing runs
        keyed = key_of(opts, abspath, source, os.getcwd())
        status = _quick_reuse(keyed[0], opts.quiet)
        if status is not None:
            return status
    rec = _start_recording(opts, abspath, source, keyed)
    # ``-m`` whose file was not found: the run key would not name the code, so no reuse
    if rec is not None and (opts.module is None or rec.script):
        status = _reuse_check(rec)
        if status is not None:
            return status

    from sharklib.capture.hooks import exit_code_of

    try:
        if opts.module is not None:
            execfile.run_module(opts.module, opts.args)
        elif opts.code is not None:
            execfile.run_code(opts.code, opts.args)
        else:
            assert abspath is not None
            execfile.run_script(abspath, code_obj, [opts.script or abspath, *opts.args])
    except SystemExit as exc:
        if rec is not None:
            rec.exit_status = exit_code_of(exc.code)
        raise
    except KeyboardInterrupt as exc:
        execfile.print_exception(exc)
        if rec is not None:
            rec.exit_status = -2
        _die_of_sigint()
        return 130
    except BaseException as exc:
        execfile.print_exception(exc)
        if rec is not None:
            rec.exit_status = 1
        return 1
    if rec is not None:
        rec.exit_status = 0
    return 0


def _bootstrap_present() -> bool:
    """False, after one error line, when the install lacks the child-capture bootstrap.

    A broken install must stop here rather than run the script with its
    children silently unrecorded (it would end with "recorded no outputs").
    """
    from sharklib.common.environ import require_bootstrap_dir
    from sharklib.errors import SharkError

    try:
        require_bootstrap_dir()
    except SharkError as exc:
        sys.stderr.write(f"sharklib: error: {exc}\n")
        return False
    return True


def _quick_reuse(parts: RunKeyParts, quiet: bool = False) -> int | None:
    """Replay the reuse the key's memo proves (:mod:`sharklib.runner.memo`), else None.

    Tried before capture is installed, so a reused step costs neither the session, the
    hooks nor the index; anything less than a proof leaves the full check, after capture
    is on (:func:`before_script`), to decide as before. Never raises.
    """
    from sharklib.config import ENV_PARENT_RUN

    if flag(ENV_NO_CACHE) or flag(ENV_RERUN) or os.environ.get(ENV_PARENT_RUN):
        return None
    try:
        from sharklib.capture import reuse_hook

        return reuse_hook.quick_check(parts, os.getcwd(), quiet=quiet or None)
    except Exception:
        return None


def _start_recording(opts: RunOptions, abspath: str | None,
                     source: bytes | None = None,
                     keyed: tuple[RunKeyParts, str | None, str | None] | None = None,
                     ) -> Recorder | None:
    """Install capture for this process; a failure leaves the script to run uncaptured."""
    try:
        from sharklib.capture import bootstrap
        from sharklib.capture.recorder import Recorder
        from sharklib.capture.session import tee_streams
        from sharklib.config import ENV_PARENT_RUN

        session, _owned = prepare_environment(opts)
        prog = (getattr(sys, "orig_argv", None) or [sys.executable])[0]
        if opts.module is not None:
            run_argv = [prog, "-m", opts.module, *opts.args]
        elif opts.code is not None:
            run_argv = [prog, "-c", opts.code, *opts.args]
        else:
            run_argv = [prog, opts.script or "", *opts.args]
        rec = Recorder(run_argv, parent=os.environ.get(ENV_PARENT_RUN) or None, top=True,
                       session=session)
        rec.script = abspath
        rec.code_text = opts.code
        if keyed is None or rec.cwd != os.getcwd():
            keyed = key_of(opts, abspath, source, rec.cwd)
        rec.key_parts, module_file, digest = keyed
        if digest is not None and source is not None:
            rec.script_digest = (digest, len(source))
        if module_file:
            rec.script = module_file
        bootstrap.install(rec, sigterm=True)
        if not opts.no_cache:
            # the copies exist so a reused run can replay what it printed; without the
            # cache nothing is replayed, and every write would be copied for nothing
            tee_streams(session)
        return rec
    except Exception as exc:
        from sharklib.common.safety import describe, warn_once

        warn_once(f"capture not started: {describe(exc)}")
        return None


def _module_exists(name: str) -> bool:
    """Is there a top-level package or module ``name`` would start from (nothing imported)?"""
    import importlib.util

    top = name.split(".", 1)[0]
    if not top.isidentifier():
        return False
    if top in sys.modules or top in sys.builtin_module_names:
        return True
    saved = list(sys.path)
    sys.path.insert(0, os.getcwd())  # where ``python -m`` looks first
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        return True  # let the import system say it, as python -m would
    finally:
        sys.path[:] = saved


def _script_argv(opts: RunOptions) -> list[str]:
    if opts.module is not None:
        return [opts.module, *opts.args]
    if opts.code is not None:
        return ["-c", *opts.args]
    return [opts.script or "", *opts.args]


def key_of(opts: RunOptions, abspath: str | None, source: bytes | None,
           cwd: str) -> tuple[RunKeyParts, str | None, str | None]:
    """(run key parts, the file ``-m`` runs, the script's digest): the one recipe for a script."""
    from sharklib.common import identity

    digest = identity.sha256_hex(source) if source is not None else None
    module_file = identity.module_source(opts.module, cwd) if opts.module else None
    parts = identity.key_parts(_script_argv(opts), cwd, module_file or abspath, opts.code,
                               opts.module, digest)
    return parts, module_file, digest


def explain_run(opts: RunOptions, abspath: str | None, source: bytes | None) -> int:
    """``sharklib run --explain``: the reuse verdict on stdout, nothing run; exit 0."""
    cwd = os.getcwd()
    label = opts.script or (f"-m {opts.module}" if opts.module else "-c")
    if opts.module is not None and key_of(opts, abspath, source, cwd)[1] is None:
        sys.stdout.write(f"sharklib: {label}: would run: module {opts.module} is not a plain "
                         f"file on the path, so its runs are not reused\n")
        return 0
    parts = key_of(opts, abspath, source, cwd)[0]
    from sharklib.common.identity import project_root
    from sharklib.runner.explain import explain_key

    if opts.no_cache:
        os.environ[ENV_NO_CACHE] = "1"
    if opts.rerun:
        os.environ[ENV_RERUN] = "1"
    sys.stdout.write(explain_key(parts, root=project_root(cwd), cwd=cwd, label=label) + "\n")
    return 0


def _reuse_check(rec: Recorder) -> int | None:
    try:
        status = before_script(rec, rec.key_parts)
    except Exception as exc:
        from sharklib.common.safety import describe, warn_once

        warn_once(f"reuse check failed: {describe(exc)}")
        return None
    if status is None:
        return None
    from sharklib.capture import recorder

    rec.active = False
    recorder.set_current(None)
    remove_own_session(rec)
    return status


def _die_of_sigint() -> None:
    """Exit as Python does on an uncaught KeyboardInterrupt: atexit, flush, then SIGINT."""
    import atexit
    import signal

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except Exception:
            pass
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGINT)


# -- the end of the top-level run --------------------------------------------------------------


def end_of_top(rec: Recorder, done: Finished) -> None:
    """Print the one summary line and remove the session the command created."""
    try:
        if not flag(ENV_QUIET) and rec.announce and done.run is not None \
                and not rec.summary_written:
            line = summary_line(rec, done)
            try:
                sys.stderr.write(line + "\n")
                sys.stderr.flush()
            except Exception:
                os.write(2, (line + "\n").encode("utf-8", "replace"))
    finally:
        remove_own_session(rec)


def discards_session(rec: Recorder) -> bool:
    """Will this process remove its session at the end (it created it, and it is not kept)?

    Then nobody reads this process's own run record from it: children write
    theirs for it to read, but nothing outlives it to read its own.
    """
    return owns_session(rec) and not flag(ENV_KEEP_SESSION)


def owns_session(rec: Recorder) -> bool:
    """Did this top-level process create its session (so every run in it is of its tree)?"""
    from sharklib.config import ENV_OWNS_SESSION

    return bool(rec.session) and rec.top and os.environ.get(ENV_OWNS_SESSION) == "1"


def remove_own_session(rec: Recorder) -> None:
    """Remove the session ``rec`` created, unless it is to be kept (:func:`discards_session`)."""
    if rec.session and discards_session(rec):
        from sharklib.common.sessiondir import remove_session_dir

        remove_session_dir(rec.session)


def _rel(path: str, cwd: str) -> str:
    rel = os.path.relpath(path, cwd)
    return path if rel.startswith("..") else rel


def summary_line(rec: Recorder, done: Finished) -> str:
    """``sharklib: recorded 3 outputs (2 inputs) in 0.41 s; sidecars: a.csv.intoto.jsonl — sharklib show a.csv``."""
    from sharklib.common.sessiondir import read_runs
    from sharklib.model import Run

    assert done.run is not None
    runs = [done.run]
    if rec.session:
        for d in read_runs(rec.session):
            if d.get("run_id") != done.run.run_id:
                try:
                    runs.append(Run.from_dict(d))
                except Exception:
                    continue
    outputs: dict[str, None] = {}
    inputs: set[str] = set()
    produced: set[str] = set()
    from sharklib.capture.reuse_hook import gone

    temporaries = gone(runs)  # a worker's partial result the parent deleted is no output
    for r in runs:
        for o in r.outputs:
            if o.path not in temporaries:
                outputs[o.path] = None
            produced.add(o.path)
    # the data first: the hint names the first, and a log of the run is not what it made
    logs = {o.path for r in runs for o in r.outputs if o.stream}
    outputs = dict.fromkeys(sorted(outputs, key=lambda p: p in logs))
    for r in runs:
        inputs.update(a.path for a in r.inputs if a.path not in produced)
    elapsed = (done.run.ended or done.run.started) - done.run.started
    cwd = os.getcwd()
    n_out, n_in = len(outputs), len(inputs)
    outs = "no outputs" if n_out == 0 else f"{n_out} output{'s' if n_out != 1 else ''}"
    ins = f"{n_in} input{'s' if n_in != 1 else ''}"
    line = f"sharklib: recorded {outs} ({ins}) in {elapsed:.2f} s"
    # this process's own sidecars are those it wrote now (one left from an earlier run, when
    # signing failed, is stale); its children's were written by them
    own = {o.path for o in done.run.outputs}
    written = set(done.sidecars or ())

    def signed(sidecar: str, output: str) -> bool:
        return sidecar in written if output in own else os.path.exists(sidecar)

    sidecars = [p + ".intoto.jsonl" for p in outputs if signed(p + ".intoto.jsonl", p)]
    if sidecars:
        shown = ", ".join(_rel(s, cwd) for s in sidecars[:3])
        more = ", …" if len(sidecars) > 3 else ""
        first = _rel(sidecars[0][: -len(".intoto.jsonl")], cwd)
        line += f"; sidecars: {shown}{more} — sharklib show {first}"
    if rec.not_cached:
        line += f"; not cached: {rec.not_cached}"
    if done.run.warnings:
        line += f" ({len(done.run.warnings)} warning{'s' if len(done.run.warnings) != 1 else ''})"
    from sharklib.errors import printable

    return printable(line)  # file names may hold terminal escapes
