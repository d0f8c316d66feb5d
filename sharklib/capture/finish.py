"""Turn what a recorder saw into a Run: hash, classify, sign, write to the session.

Runs once per process at exit (or per notebook cell for finished outputs).
Everything expensive lives here and only here: digests (through the stat cache,
so unchanged inputs cost one ``stat``), module and distribution identity,
git state and signatures. A run with nothing to sign skips git, distributions
and the signing key, which keeps ``python -m sharklib run noop.py`` cheap.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import time
from collections.abc import Iterable

from sharklib.capture.libs.import_hooks import own_imports
from sharklib.capture.recorder import PendingOutput, Recorder
from sharklib.common import identity, paths
from sharklib.common.safety import describe, warn_once
from sharklib.config import ENV_QUIET, ENV_SIGNED_BY, flag

# ``typing`` is not imported at run time: it costs every captured script ~2.5 ms of start-up
TYPE_CHECKING = False

if TYPE_CHECKING:
    from sharklib.model import Artifact, GitInfo, Output, Run


class Finished:
    """The outcome of finishing a recorder (a plain class: no ``dataclasses`` import at exit)."""

    __slots__ = ("json_path", "run", "sidecars")

    def __init__(self, run: Run | None, sidecars: list[str] | None = None,
                 json_path: str | None = None) -> None:
        self.run = run
        self.sidecars = sidecars if sidecars is not None else []
        self.json_path = json_path


#: below this many bytes to hash, hashing them directly is faster than the stat cache (opening
#: SQLite, a lookup and an insert per file): measured, 600 files / 11 MB hash in ~15 ms directly
#: and take ~40 ms through the cache even when most are unchanged
STATCACHE_MIN_BYTES = 64 << 20


_READ_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)


def _sequential_digests(files: Iterable[str]) -> dict[str, tuple[str, int]]:
    """Digests without threads or SQLite: start-up-cheap, and safe after threading shut down.

    A path ending in ``/`` is a directory listing (``sharklib.hashing.listing_digest``).
    """
    out: dict[str, tuple[str, int]] = {}
    files = list(files)
    if not files:
        return out
    import hashlib

    buf = bytearray(1 << 20)
    view = memoryview(buf)
    for p in files:
        if p.endswith("/"):
            from sharklib.hashing.digest import listing_digest

            with contextlib.suppress(OSError):
                out[p] = listing_digest(p)
            continue
        # descriptors, not file objects: hundreds of small files are mostly per-file overhead
        try:
            fd = os.open(p, _READ_FLAGS)
        except OSError:
            continue
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                continue
            h = hashlib.sha256()
            size = 0
            while n := os.readv(fd, (buf,)):
                h.update(view[:n])
                size += n
        except OSError:
            continue
        finally:
            os.close(fd)
        out[p] = (h.hexdigest(), size)
    return out


def _digests(files: list[str], heavy: bool) -> dict[str, tuple[str, int]]:
    """Through the stat cache (parallel misses) when there is much data, else directly.

    Below :data:`STATCACHE_MIN_BYTES` the files are hashed directly: cheaper
    than the cache, and a later step that reads them fills the cache itself.
    In a forked child ending through ``os._exit`` (multiprocessing workers),
    threading has already shut down and a thread pool cannot start: hash
    sequentially then.
    """
    if not heavy or _total_size(files) < STATCACHE_MIN_BYTES:
        return _sequential_digests(files)
    from sharklib.hashing import StatCache

    # the stat cache keys on UTF-8 text; names that are not valid UTF-8 are hashed directly
    plain: list[str] = []
    odd: list[str] = []
    for f in files:
        (odd if _not_utf8(f) else plain).append(f)
    cache = StatCache()
    try:
        result = cache.digests(plain)
    except RuntimeError:
        result = _sequential_digests(plain)
    finally:
        cache.close()
    if odd:
        result.update(_sequential_digests(odd))
    return result


def _spool_outputs(rec: Recorder, out_paths: list[str], status: int | None,
                   ) -> dict[str, tuple[str, int]]:
    """Digests of large outputs taken while copying them into the store (see runcache)."""
    if not out_paths:
        return {}
    from sharklib.capture import reuse_hook

    if not reuse_hook.would_record(rec, status, has_outputs=True):
        return {}
    try:
        from sharklib.cache.runcache import spool_outputs

        return spool_outputs(out_paths, reuse_hook._root(rec))
    except Exception:  # only a faster path: the outputs are hashed the ordinary way
        return {}


def _discard_spooled() -> None:
    """Drop copies made for a record that did not take them (the run was not cached)."""
    cas = sys.modules.get("sharklib.cache.cas")
    if cas is not None:
        with contextlib.suppress(Exception):
            cas.discard_spooled()


def _total_size(files: list[str]) -> int:
    total = 0
    for f in files:
        with contextlib.suppress(OSError):
            total += os.stat(f).st_size
    return total


def _not_utf8(path: str) -> bool:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _main_script(rec: Recorder) -> str | None:
    if rec.code_text is not None:
        return None
    if rec.script:
        return os.path.abspath(rec.script)
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    return os.path.abspath(path) if isinstance(path, str) else None


def build_run(rec: Recorder, outputs: list[PendingOutput], status: int | None,
              final: bool) -> tuple[Run, list[PendingOutput]]:
    """Build the Run for ``outputs``; returns it and the outputs that turned out to exist."""
    from sharklib.model import Artifact, Output, Run

    # what the script imported, before finishing imports anything (subprocess, signing)
    imported = dict(sys.modules)
    script = _main_script(rec)
    modules = identity.local_module_paths(rec.ignore, exclude=[script] if script else [])
    code_files = set(modules)
    if script:
        code_files.add(script)
    input_paths = [p for p in rec.inputs if p not in code_files]
    out_paths = [o.path for o in outputs]
    heavy = bool(input_paths or out_paths)
    # the script's digest was taken from the bytes that ran, when sharklib read them
    known_script = rec.script_digest if script and script == rec.script else None
    to_hash = code_files - {script} if known_script else code_files
    wanted = [*input_paths, *out_paths, *sorted(to_hash)]
    # git state only matters when something will be signed; `git` runs beside the hashing. A
    # script of the environment (`python -m json.tool`) is identified by its distribution: the
    # repository that may hold the interpreter (pyenv is a git checkout) says nothing of the run,
    # the working directory's does
    git_probe: identity.GitProbe | None = None
    if out_paths:
        where = rec.cwd if script is None or paths.is_ignored(script, rec.ignore) \
            else os.path.dirname(script)
        # the probe reads git's config files itself: sharklib's reads, not the run's
        active, rec.active = rec.active, False
        try:
            git_probe = identity.GitProbe(where)
        except Exception as exc:
            rec.warnings.append(f"git state not recorded: {describe(exc)}")
        finally:
            rec.active = active
    # a large output of a run about to be recorded is hashed while it is copied into the
    # store (one read for both); record's put then renames the copy into place
    spooled = _spool_outputs(rec, out_paths, status) if final else {}
    digests = _digests([p for p in wanted if p not in spooled] if spooled else wanted, heavy)
    digests.update(spooled)
    if known_script and script:
        digests[script] = known_script

    kept: list[PendingOutput] = []
    temporaries = list(rec.temporaries)
    for o in outputs:
        if o.path in digests:
            kept.append(o)
        elif final and o.confirmed and not os.path.lexists(o.path) and o.path not in temporaries:
            temporaries.append(o.path)

    inputs: list[Artifact] = []
    failed_reads: list[str] = []
    attest_links = heavy and bool(kept)
    for p in input_paths:
        d = rec.pre_digests.get(p) or digests.get(p)
        if d is None:
            if final and not os.path.lexists(p):
                # read, then gone before the end: what fed it is found by Run.read_through
                inputs.append(Artifact(path=p, sha256=""))
                name = p.rstrip("/")  # a listed directory is `dir/`
                if rec.project and p.startswith(rec.project) and name not in rec.touched:
                    # or never there: `try: open("cfg.json") except FileNotFoundError:` took
                    # the branch for a missing file, which must be missing again for a reuse
                    failed_reads.append(name)
            continue
        art = Artifact(path=p, sha256=d[0], size=d[1])
        if attest_links:
            art.attestation = _input_attestation(p, d[0])
        inputs.append(art)
    # An output's inputs are the recorded inputs among the first ``finished`` reads: a slice of
    # the recorded inputs in read order, found through a running count (not a scan per output,
    # which is quadratic for a script that writes an output after each of hundreds of reads).
    known_inputs = {a.path for a in inputs}
    known_order: list[str] = []
    known_before = [0]
    for p in rec.inputs:
        if p in known_inputs:
            known_order.append(p)
        known_before.append(len(known_order))

    outs: list[Output] = []
    for o in kept:
        sha, size = digests[o.path]
        feeding: list[str] | None = None
        if o.finished is not None:
            feeding = known_order[:known_before[min(o.finished, len(known_before) - 1)]]
        outs.append(Output(path=o.path, sha256=sha, size=size, inputs=feeding, stream=o.stream))  # type: ignore[arg-type]
    if final and rec.moved_in:
        _link_moved_in(rec, outs, inputs)

    # what the script asked about a project file without reading it: an input of the run,
    # unless the file is an input with a digest anyway (that checks more) or code
    probes: dict[str, str] = {}
    if rec.probes or failed_reads:
        from sharklib.model.run import ABSENT_SHA256, probe_text

        hashed = {a.path for a in inputs if a.sha256 and a.sha256 != ABSENT_SHA256}
        probes = {p: probe_text(mask) for p, mask in rec.probes.items()
                  if p not in hashed and p not in code_files}
        for p in failed_reads:
            probes.setdefault(p, "absent")

    full = bool(kept)
    git: GitInfo | None = None
    if git_probe is not None and full:
        try:
            git = git_probe.result()
        except Exception as exc:
            rec.warnings.append(f"git state not recorded: {describe(exc)}")
    elif git_probe is not None:
        git_probe.close()
    user, host = identity.user_and_host()
    run = Run(
        run_id=rec.run_id,
        argv=list(rec.argv),
        cwd=rec.cwd,
        started=rec.started,
        ended=time.time(),
        exit_status=status,
        user=user,
        host=host,
        pid=rec.pid,
        backend="python",
        code=identity.code_identity(script, rec.code_text, modules, digests,
                                    git=git),
        environment=identity.environment_identity(full, paths.site_dirs(),
                                                  preloaded=rec.modules_at_start | own_imports,
                                                  modules=imported),
        inputs=inputs,
        downloads=list(rec.downloads),
        outputs=outs,
        temporaries=temporaries,
        removed=list(rec.removed),
        execs=list(rec.execs),
        connects=list(rec.connects),
        parent=rec.parent,
        run_key=rec.run_key,
        warnings=list(rec.warnings),
        stdin=rec.read_stdin,
        probes=probes,
        variables_read=dict(rec.env_reads),
    )
    return run, kept


def _input_attestation(path: str, sha: str) -> str | None:
    from sharklib.attest import input_attestation, sidecar_path

    if not os.path.exists(sidecar_path(path)):
        return None
    try:
        return input_attestation(path, sha)
    except Exception as exc:
        warn_once(f"{path}: upstream sidecar not linked: {describe(exc)}")
        return None


def sign(run: Run, no_sidecar: frozenset[str] = frozenset()) -> list[str]:
    """Write sidecars for the run's outputs; a failure becomes a warning line."""
    if not run.outputs:
        return []
    try:
        from sharklib.attest import attest_run

        return attest_run(run, no_sidecar=no_sidecar) if no_sidecar else attest_run(run)
    except Exception as exc:
        msg = f"sidecars not written: {describe(exc)}"
        run.warnings.append(msg)
        warn_once(msg)
        return []


def _leaves_nothing(rec: Recorder, status: int | None) -> bool:
    """True when no one would read this process's Run, so it need not be built at all.

    That is a quiet top-level run that wrote nothing, had no captured children,
    will remove its own session, and that the cache would not record (nothing
    printed to replay, or caching off). ``python -m sharklib run -q noop.py``
    then ends without importing the data model, ``json`` or ``hashlib``.
    """
    if rec.outputs or not rec.top or not flag(ENV_QUIET):
        return False
    if rec.session:
        if not _discards_session(rec):
            return False
        try:
            if os.listdir(os.path.join(rec.session, "runs")):
                return False
        except OSError:
            pass
    from sharklib.capture import reuse_hook

    return not reuse_hook.would_record(rec, status, has_outputs=False)


def finish(rec: Recorder, status: int | None) -> Finished:
    """Final record of a process: every output, children, sidecars, the session JSON."""
    _flush_library_patches()
    rec.active = False
    count = len(rec.inputs)
    for o in rec.outputs.values():
        if o.finished is None:
            o.finished = count
    rec.open_outputs = []
    if rec.top and rec.session:
        with contextlib.suppress(Exception):
            from sharklib.capture.session import split_streams

            split_streams(rec.session)
    if _leaves_nothing(rec, status):
        return Finished(run=None)
    try:
        return _finish_run(rec, status)
    finally:
        _discard_spooled()


def _finish_run(rec: Recorder, status: int | None) -> Finished:
    """:func:`finish` once there is something to record."""
    run, _ = build_run(rec, list(rec.outputs.values()), status, final=True)
    if rec.session:
        from sharklib.common.sessiondir import children_of

        run.children = [c["run_id"] for c in children_of(rec.session, rec.run_id)]
    tree = _read_through_tree(rec, run)
    # Inside a traced command the tracer merges this Run into its own and signs every output
    # itself: signing here too would write each sidecar twice (and needs the signing
    # libraries, which an interpreter of a pipeline's own environment may not have).
    signed_by_tracer = bool(rec.session) and os.environ.get(ENV_SIGNED_BY) == rec.session
    no_sidecar = _logs_outside_the_project(rec, run)
    if rec.no_sidecar:
        no_sidecar |= frozenset(o.path for o in run.outputs if o.path in rec.no_sidecar)
    if not signed_by_tracer:
        _summary_before_signing(rec, run, tree, no_sidecar)
    sidecars = [] if signed_by_tracer else sign(run, no_sidecar)
    if rec.summary_written and sidecars:
        # the redirected stderr is signed as it is now: nothing more may go into it
        from sharklib.common import safety

        safety.sealed = True
    json_path = None
    if rec.session and not (rec.top and _discards_session(rec)):
        try:
            from sharklib.common.sessiondir import write_run

            json_path = write_run(rec.session, run.to_dict())
        except Exception as exc:
            warn_once(f"run record not written to the session: {describe(exc)}")
    if not sidecars and not signed_by_tracer and any(o.path not in no_sidecar
                                                      for o in run.outputs):
        # a reuse would restore the outputs without their attestation (or beside a stale one)
        rec.not_cached = "its sidecars were not written"
        return Finished(run=run, sidecars=sidecars, json_path=json_path)
    unfaithful = None
    if rec.top and rec.session:
        from sharklib.capture.session import why_not_replayable

        unfaithful = why_not_replayable(rec.session)
    if unfaithful and run.exit_status == 0:
        # a reuse would print something else than the run did (or miss some of it)
        rec.not_cached = f"its output cannot be replayed: {unfaithful}"
        return Finished(run=run, sidecars=sidecars, json_path=json_path)
    try:
        from sharklib.capture import reuse_hook

        reuse_hook.record(rec, run, tree=tree)
    except Exception as exc:
        warn_once(f"run not cached: {describe(exc)}")
    return Finished(run=run, sidecars=sidecars, json_path=json_path)


def _logs_outside_the_project(rec: Recorder, run: Run) -> frozenset[str]:
    """Redirected stdout/stderr files outside the project: signed by digest, no sidecar there.

    ``python -m sharklib run step.py > /var/log/x.log`` must not leave
    ``/var/log/x.log.intoto.jsonl``: sharklib writes no sidecar outside the project except
    beside an output the script itself wrote.
    """
    root = identity.project_root(rec.cwd).rstrip("/") + "/"
    logs = frozenset(o.path for o in run.outputs if o.stream and not o.path.startswith(root))
    if not any(not o.path.startswith(root) for o in run.outputs):
        return logs
    try:
        from sharklib.attest.sign_run import unnamed_outside

        # the same rule attest_run applies, so the summary predicts the sidecars it writes
        return logs | unnamed_outside(run)
    except Exception:
        return logs


def _summary_before_signing(rec: Recorder, run: Run, tree: list[Run] | None,
                            no_sidecar: frozenset[str]) -> None:
    """Write the summary line now when stderr is a log this run signs (``2> e.log``).

    Written after signing, the line changed the signed file and ``sharklib verify e.log``
    failed. So it goes in first, with the sidecars about to be written and the reasons
    the run will not be cached that are known now, and the log is hashed again.
    """
    if not (rec.top and rec.announce) or flag(ENV_QUIET):
        return
    try:
        from sharklib.capture.session import stream_file

        found = stream_file(2)
        logs = [o for o in run.outputs if found is not None and o.path == found[0]]
        if not logs or logs[0].path in no_sidecar:
            return
        rec.not_cached = rec.not_cached or _not_cached_now(rec, run, tree)
        from sharklib.attest.naming import SUFFIX
        from sharklib.capture.main import summary_line

        predicted = [o.path + SUFFIX for o in run.outputs if o.path not in no_sidecar]
        line = summary_line(rec, Finished(run=run, sidecars=predicted))
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                if stream is not None:
                    stream.flush()
        from sharklib.common.safety import _raw_write

        data = memoryview((line + "\n").encode("utf-8", "replace"))
        while data:
            data = data[_raw_write(2, data):]
        rec.summary_written = True
        from sharklib.hashing import sha256_file

        for o in logs:
            o.sha256, o.size = sha256_file(o.path)
    except Exception as exc:
        warn_once(f"summary line not written: {describe(exc)}")


def _not_cached_now(rec: Recorder, run: Run, tree: list[Run] | None) -> str | None:
    """Why the run will not be cached, as far as it is known before it is signed."""
    from sharklib.capture import reuse_hook

    if not reuse_hook.is_root_process(rec) or run.exit_status != 0:
        return None
    if rec.session:
        from sharklib.capture.session import why_not_replayable

        unfaithful = why_not_replayable(rec.session)
        if unfaithful:
            return f"its output cannot be replayed: {unfaithful}"
    for r in (run, *(tree or [])):
        if r.stdin:
            return f"it read standard input from a {r.stdin}"
    for r in (run, *(tree or [])):
        unseen = reuse_hook.unseen_program(r)
        if unseen:
            return f"it ran {unseen}, whose reads Python capture cannot see"
    return None


def _link_moved_in(rec: Recorder, outs: list[Output], inputs: list[Artifact]) -> None:
    """An output renamed from a file that is gone now was fed by that file.

    A worker writes ``part.tmp``, the parent renames it to ``final.txt``: the parent read
    nothing, yet ``final.txt`` holds what the worker computed. The gone name joins the inputs
    without a digest, so :meth:`Run.read_through` replaces it by what fed it in the process
    that wrote it, or drops it when no process of the run did (a file older than the run).
    """
    from sharklib.model import Artifact

    known = {a.path for a in inputs}
    for o in outs:
        src = rec.moved_in.get(o.path)
        if src is None or os.path.lexists(src):
            continue
        if src not in known:
            known.add(src)
            inputs.append(Artifact(path=src, sha256=""))
        if o.inputs is not None and src not in o.inputs:
            o.inputs = [*o.inputs, src]


def _remove_sidecars_of_temporaries(run: Run) -> None:
    """A worker signed its partial before the parent deleted or renamed it: that sidecar
    describes a file that no longer exists, and was written by this run, so it goes too."""
    from sharklib.attest import sidecar_path

    for p in run.temporaries:
        if os.path.lexists(p):
            continue
        side = sidecar_path(p)
        try:
            if stat.S_ISREG(os.lstat(side).st_mode):
                os.unlink(side)
        except OSError:
            continue


def _read_through_tree(rec: Recorder, run: Run) -> list[Run] | None:
    """Read this run's descendants and let its lineage flow through the files they passed it.

    A parent that combines partial results its workers wrote into a temporary directory
    signs what the workers read, not the deleted partials (:meth:`Run.read_through`).
    Returns the descendants (None when there is no session to read them from), so the
    cache record folds the same tree without reading it again.
    """
    tree: list[Run] | None = None
    try:
        from sharklib.capture import reuse_hook
        from sharklib.capture.main import owns_session

        if rec.session and (run.outputs or rec.top):
            tree = reuse_hook.descendants(run, rec.session, whole_session=owns_session(rec))
        run.read_through(tree or [], reuse_hook.gone([run, *(tree or [])]))
        if tree:
            produced = {o.path for r in tree for o in r.outputs}
            run.temporaries.extend(  # renamed away: gone under the name its writer gave it
                src for src in rec.moved_in.values()
                if src in produced and src not in run.temporaries and not os.path.lexists(src))
            _remove_sidecars_of_temporaries(run)
    except Exception as exc:
        warn_once(f"lineage through child processes not linked: {describe(exc)}")
        run.read_through([], ())
    return tree


def _discards_session(rec: Recorder) -> bool:
    """The top-level process removes the session it created: its own record there is unread."""
    from sharklib.capture.main import discards_session

    return discards_session(rec)


def _flush_library_patches() -> None:
    """Let the library patches report what is still pending (half-read downloads, open DBs)."""
    libs = sys.modules.get("sharklib.capture.libs")
    # absent, or still being imported when a signal ended the process: no patch applied yet
    flush = getattr(libs, "flush", None)
    if flush is None:
        return
    try:
        flush()
    except Exception as exc:
        warn_once(f"library patches not flushed: {describe(exc)}")


def finish_closed_outputs(rec: Recorder, status: int | None = None) -> Finished | None:
    """Sign the outputs finished so far (notebook cells), keeping the recorder running.

    ``status``: how the cell that finished them ended (0, or 1 for an exception).
    """
    _flush_library_patches()
    if rec.open_outputs:
        rec.poll()
    open_now = _open_paths()
    count = len(rec.inputs)
    done: list[PendingOutput] = []
    for o in rec.outputs.values():
        if o.path in open_now:
            continue
        if o.finished is None and o.handle is None:
            # written through a descriptor or an open() captured before the patch
            # (IPython keeps its own reference): no longer open, so it is finished
            o.finished = count
        if o.finished is not None:
            done.append(o)
    if not done:
        return None
    run, kept = build_run(rec, done, status, final=False)
    before = set(sys.modules)
    try:
        sidecars = sign(run)
    finally:  # what signing loads (cryptography) is not what the next cell's code imported
        own_imports.update(set(sys.modules) - before)
    for o in kept:
        rec.outputs.pop(o.path, None)
    return Finished(run=run, sidecars=sidecars)


def _open_paths() -> set[str]:
    """Files this process still holds open (a write through a bare descriptor is not done)."""
    found: set[str] = set()
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return found
    for n in names:
        p = paths.fd_path(int(n))
        if p:
            found.add(p)
    return found
