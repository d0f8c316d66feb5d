"""Where Python capture meets the run cache: check before the script body, record after it.

Only a *root* process is checked and recorded: one with no captured parent
(``sharklib run script.py``, or each ``python step.py`` of a Makefile under
``sharklib env``). Its record folds in every captured child process, so
reusing it restores what the whole process tree produced.

The check must cost next to nothing when there is nothing to find, because it
runs before every captured script: a key marker file (one ``stat``) says
whether the cache ever recorded this run key, and only then are the index and
the store opened.
"""

from __future__ import annotations

import os

from sharklib.config import (
    ENV_CACHE,
    ENV_CACHE_REMOTE,
    ENV_MAKE_DEPS,
    ENV_NO_CACHE,
    ENV_RERUN,
    flag,
)

# ``typing`` is not imported at run time: it costs every captured script ~2.5 ms of start-up
TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

    from sharklib.capture.recorder import Recorder
    from sharklib.model import Run


def _marker(key: str) -> str:
    from sharklib.config import cache_dir

    digest = key.split(":", 1)[-1]
    return os.path.join(str(cache_dir()), "keys", digest[:2], digest)


def _cache_location_is_default() -> bool:
    return not os.environ.get(ENV_CACHE) and not os.environ.get(ENV_CACHE_REMOTE)


def _root(rec: Recorder) -> str:
    from sharklib.common.identity import project_root

    return project_root(rec.cwd)


def is_root_process(rec: Recorder) -> bool:
    return rec.parent is None and rec.key_parts is not None


def check(rec: Recorder) -> int | None:
    """Replay a reusable past run and return its exit status, or None to run the script."""
    if not is_root_process(rec) or flag(ENV_NO_CACHE) or flag(ENV_RERUN):
        return None
    key = rec.key_parts.digest()
    root = _root(rec)
    # the project's documented settings file may name a shared cache dir or a remote
    if _cache_location_is_default() and not os.path.exists(_marker(key)) \
            and not os.path.exists(os.path.join(root, ".sharklib", "cache.toml")):
        return None
    import time

    from sharklib.runner.step import PythonStep

    step = PythonStep(rec.key_parts, rec.cwd, root)
    # what the check reads and writes (the index, the stat cache, the inputs it re-hashes, the
    # outputs it restores) is sharklib's doing, not the script's: recorded, a later run would
    # have the cache's own files, or a child's inputs, among the script's inputs and outputs
    looked = time.time()
    active, rec.active = rec.active, False
    try:
        decision = _memo_reuse(rec, root)
        if decision is None:
            decision = step.reuse()
            if decision is not None:
                _write_memo(decision.entry, (decision.stdout, decision.stderr, decision.streams))
    finally:
        rec.active = active
    if decision is None:
        # the lookup (a slow or unreachable remote) is not the run's time: not in its duration
        rec.started += time.time() - looked
        return None
    return step.replay(decision)


def quick_check(key_parts: Any, cwd: str, quiet: bool | None = None) -> int | None:
    """Before capture is installed: replay the reuse the key's memo proves; its exit status.

    None (the full :func:`check` then decides, after capture is on) when the key was never
    recorded, the memo does not hold or does not prove a reuse. The environment judged is
    the one the script would run with under capture.
    """
    if flag(ENV_NO_CACHE) or flag(ENV_RERUN) or not _cache_location_is_default():
        return None
    key = key_parts.digest()
    if not os.path.exists(_marker(key)):
        return None
    from sharklib.common.identity import project_root

    root = project_root(cwd)
    if not _memo_ok(root):
        return None
    from sharklib.common.environ import capture_environ
    from sharklib.config import cache_dir
    from sharklib.runner import memo

    decision = memo.reuse(key_parts, cwd=cwd, root=root, directory=cache_dir(),
                          environ=capture_environ(os.environ))
    if decision is None:
        return None
    from sharklib.runner.restore import replay

    return replay(decision, quiet=quiet)


def _memo_ok(root: str) -> bool:
    """Is the default cache the one this step uses (where markers, and memos, are kept)?"""
    return _cache_location_is_default() and \
        not os.path.exists(os.path.join(root, ".sharklib", "cache.toml"))


def _memo_reuse(rec: Recorder, root: str) -> Any:
    """The reuse the key's memo proves (:mod:`sharklib.runner.memo`), else None."""
    if not _memo_ok(root):
        return None
    from sharklib.config import cache_dir
    from sharklib.runner import memo

    return memo.reuse(rec.key_parts, cwd=rec.cwd, root=root, directory=cache_dir())


def _write_memo(entry: Any, found: Any) -> None:
    from sharklib.config import cache_dir
    from sharklib.runner import memo

    memo.write(cache_dir(), entry, found)


#: Programs libraries start to learn about the machine, not to read a step's data: matplotlib
#: runs ``fc-list`` to build its font cache, ``platform.uname()`` (h5py, pandas' show_versions)
#: runs ``uname``, ``ctypes.util.find_library`` runs ``ldconfig``/``gcc``/``ld``. What they read
#: is the environment, so they do not make a run uncacheable (docs/capture.md lists them).
PROBES = frozenset({"uname", "fc-list", "fc-match", "ldconfig", "ldconfig.real", "lsb_release",
                    "getconf", "nproc", "arch", "locale", "hostname", "lscpu", "nvidia-smi",
                    "gcc", "cc", "ld", "objdump", "sw_vers", "sysctl", "xcrun"})
#: ``git`` asked only about itself or the revision (the code identity records the git state)
GIT_PROBES = frozenset({"--version", "version", "rev-parse", "describe"})


def is_probe(argv: list[str], name: str) -> bool:
    """Is this program one of the environment probes of :data:`PROBES` (or a git version probe)?"""
    if name in PROBES:
        # find_library's compiler and linker probes name no file of the project
        return name not in ("gcc", "cc", "ld", "objdump") or not any(
            a.endswith((".c", ".o", ".a")) and not a.startswith("/tmp/") for a in argv[1:])
    if name == "git":
        words = [a for a in argv[1:] if not a.startswith("-C")]
        return bool(words) and words[0] in GIT_PROBES
    return False


def unseen_program(run: Run) -> str | None:
    """The first program the run's tree started that is not a (captured) Python interpreter.

    What ``cat in.txt`` read is in no record, so no reuse can prove it unchanged. A Python
    child inherits the bootstrap and records its own reads, folded into the run. A library's
    probe of the machine (:data:`PROBES`) is environment, not an unseen read of data.
    """
    import re

    for e in run.execs:
        name = os.path.basename(e.path or (e.argv[0] if e.argv else ""))
        if re.fullmatch(r"python(\d+(\.\d+)*)?", name) or is_probe(list(e.argv), name):
            continue
        return name or "a program"
    return None


def descendants(run: Run, session: str | None, whole_session: bool = False) -> list[Run]:
    """The runs of ``run``'s process tree recorded in the session, oldest first.

    ``whole_session``: the root made the session, so every run recorded there is
    of its process tree, including those whose parent has not written its record
    yet (the workers of a multiprocessing forkserver, which outlives the root).
    """
    if not session or not (run.children or whole_session):
        return []
    from sharklib.common.sessiondir import session_runs

    runs = [r for r in session_runs(session) if r.run_id != run.run_id]
    if whole_session:
        found = runs
    else:
        by_parent: dict[str, list[Run]] = {}
        for child in runs:
            if child.parent:
                by_parent.setdefault(child.parent, []).append(child)
        found = []
        stack = list(by_parent.get(run.run_id, []))
        while stack:
            child = stack.pop()
            stack.extend(by_parent.get(child.run_id, []))
            found.append(child)
    found.sort(key=lambda r: r.started)
    return found


def gone(runs: list[Run]) -> set[str]:
    """Paths the tree wrote or read that no longer exist: its temporaries, wherever they lived."""
    seen = {p for r in runs for p in (*(o.path for o in r.outputs), *(a.path for a in r.inputs))}
    return {p for p in seen if not os.path.lexists(p)}


def _fold_children(run: Run, tree: list[Run]) -> Run:
    """The root run with every descendant's inputs, code and outputs folded in."""
    if not tree:
        return run
    import copy

    folded = copy.deepcopy(run)
    folded.fold(tree, keep_output=lambda o: not o.stream, gone=gone([run, *tree]))
    # a child that failed makes the whole run failed (never cached); one ended by SIGTERM
    # after saving its record does not (Run.failure: how multiprocessing.Pool ends its workers)
    failed = [c.exit_status for c in tree if c.failure() is not None]
    if failed:
        folded.exit_status = folded.exit_status or failed[0]
    return folded


def _printed(rec: Recorder) -> bool:
    if not (rec.top and rec.session):
        return False
    for name in ("stdout", "stderr"):
        try:
            if os.path.getsize(os.path.join(rec.session, name)) > 0:
                return True
        except OSError:
            pass
    return False


def _ran_what_was_keyed(rec: Recorder) -> bool:
    """For ``python -m``: the file whose digest is in the run key is the one that ran.

    The module's file was looked up before the module ran (without importing it);
    were the import system to find another one, the key would name the wrong code.
    """
    from sharklib.capture.bootstrap import parse_python_argv

    module = parse_python_argv(rec.argv)[2]
    if not module:
        return True
    from sharklib.common.identity import main_file_is

    return main_file_is(rec.script)


def _printed_to_files(rec: Recorder) -> dict[str, bytes] | None:
    """What the run printed to a stdout/stderr redirected to a file, where no copy was kept.

    A process started by ``sharklib env`` (make, a shell script) keeps no copy of its
    streams: when one goes to a regular file, what the run printed is what the file
    gained after the size it had when the run began. The whole file would be wrong to
    replay: ``make > build.log`` has every earlier step's lines in it. ``None``: more
    than a reuse may replay, so the run is not cached.
    """
    from sharklib.capture.session import STREAM_LIMIT

    printed: dict[str, bytes] = {}
    for out in rec.outputs.values():
        name = out.stream
        if name is None or name in printed or (
                rec.session and os.path.exists(os.path.join(rec.session, name))):
            continue
        try:
            with open(out.path, "rb") as fh:
                fh.seek(out.start)
                data = fh.read(STREAM_LIMIT + 1)
        except OSError:
            continue
        if len(data) > STREAM_LIMIT:
            from sharklib.common.safety import warn_once

            warn_once(f"{name} too large to replay; run not cached")
            return None
        printed[name] = data
    return printed


def _cpu_seconds() -> float:
    """CPU time of this process and the children it waited for: the run's, at its exit."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def would_record(rec: Recorder, status: int | None, has_outputs: bool) -> bool:
    """Could :func:`record` store this run (before any Run is built)?

    A run without outputs and without captured children is only worth caching
    when it printed something a reuse would replay.
    """
    if not is_root_process(rec) or flag(ENV_NO_CACHE) or status != 0:
        return False
    return has_outputs or _printed(rec)


def record(rec: Recorder, run: Run, stdout: Any = None, stderr: Any = None,
           tree: list[Run] | None = None) -> None:
    """Store the root run's outputs and index it (never raises; a failure is one warning).

    ``tree``: the runs of its descendants, when the caller has read them already.
    """
    if not is_root_process(rec) or flag(ENV_NO_CACHE):
        return
    from sharklib.cache import ledger

    ledger.note_cpu(run.run_id, _cpu_seconds())
    if run.exit_status != 0:
        if run.exit_status is not None:
            from sharklib.runner import reuse

            reuse.note_failed(run, root=_root(rec))  # for `sharklib log --status failed`
        return
    if not _ran_what_was_keyed(rec):
        return
    if rec.changed_environment:
        from sharklib.common.safety import warn_once

        warn_once(f"run not cached: it wrote into the Python environment "
                  f"({rec.changed_environment}), which a reuse could not redo")
        return
    run.run_key = rec.key_parts.digest()
    from sharklib.capture.main import owns_session

    if tree is None:
        tree = descendants(run, rec.session, whole_session=owns_session(rec))
    folded = _fold_children(run, tree)
    # not problems to warn about, reasons to give: in the summary line (quiet with -q)
    if folded.stdin:
        rec.not_cached = f"it read standard input from a {folded.stdin}"
        return
    unseen = unseen_program(folded)
    if unseen:
        rec.not_cached = f"it ran {unseen}, whose reads Python capture cannot see"
        return
    if not folded.outputs and not _printed(rec):
        return  # nothing to restore or replay: reusing it would save nothing but the run
    from sharklib.runner.step import PythonStep

    printed = _printed_to_files(rec)
    if printed is None:
        return
    entry = PythonStep(rec.key_parts, rec.cwd, _root(rec)).record(
        folded, rec.session if rec.top else None, **printed)
    if entry is not None and flag(ENV_MAKE_DEPS):
        from sharklib.runner import makedeps

        makedeps.remember(_root(rec), folded)
    if entry is not None and _cache_location_is_default():
        # the key's marker, holding what its next reuse needs (runner/memo.py)
        _write_memo(entry, [*_session_streams(rec), *printed.values()])


def _session_streams(rec: Recorder) -> list[bytes]:
    """What the run printed, as the session kept it (small copies only: a memo inlines those)."""
    from sharklib.runner.memo import INLINE_MAX

    found = []
    for name in ("stdout", "stderr", "streams"):
        if not rec.session:
            break
        try:
            with open(os.path.join(rec.session, name), "rb") as fh:
                data = fh.read(INLINE_MAX + 1)
        except OSError:
            continue
        if len(data) <= INLINE_MAX:
            found.append(data)
    return found
