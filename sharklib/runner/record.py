"""Recording a finished run for reuse: store its outputs and streams, then index it.

Never raises into the user's script: a failure is one ``sharklib: warning: ...``
line and the run is simply not cached.
"""

from __future__ import annotations

import contextlib
import os
import sys

from sharklib.attest.naming import SUFFIX
from sharklib.cache.entry import IndexEntry, StoredObject
from sharklib.cache.runcache import RunCache
from sharklib.cache.store import CacheReadOnly
from sharklib.config import ENV_NO_CACHE, flag
from sharklib.errors import StoreError
from sharklib.model import Run, RunKeyParts
from sharklib.model.run import redact_argv
from sharklib.model.runkey import relative_to_root, relative_to_root_all
from sharklib.runner import proof
from sharklib.runner.notices import Warn, stderr_warn, unreachable_remotes
from sharklib.runner.stagekey import leaves_nothing


def _read_stream(value: bytes | str | os.PathLike[str] | None) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    try:
        with open(value, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        return None


def _uncaptured_environ() -> dict[str, str]:
    """This environment without what turns Python capture on: the push is not the run's."""
    from sharklib.config import (
        ENV_CAPTURE,
        ENV_EXEC_TOP,
        ENV_OWNS_SESSION,
        ENV_PARENT_RUN,
        ENV_SESSION,
        ENV_STREAMS,
    )

    drop = {ENV_CAPTURE, ENV_SESSION, ENV_PARENT_RUN, ENV_EXEC_TOP, ENV_STREAMS, ENV_OWNS_SESSION}
    return {k: v for k, v in os.environ.items() if k not in drop}


def push_in_child(root: str, run_id: str, url: str, warn: Warn) -> bool:
    """Push one recorded run with ``python -m sharklib cache push --run ID``, waiting for it.

    Why a child: the capture records a run at interpreter exit, after
    ``threading`` has shut down; fsspec's async clients (s3fs, gcsfs) need a
    thread pool then and fail with "cannot schedule new futures after
    shutdown". A fresh interpreter opens the same cache (same environment and
    project settings, ``--root``) and pushes objects, then the entry. A failure
    is one warning line; the run stays in the local cache either way.
    """
    import subprocess

    cmd = [sys.executable, "-m", "sharklib", "cache", "push", "--root", root, "--run", run_id]
    try:
        done = subprocess.run(cmd, env=_uncaptured_environ(), stdin=subprocess.DEVNULL,
                              capture_output=True, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        warn(f"pushing the run to {url} failed ({exc}); kept locally")
        return False
    except KeyboardInterrupt:
        warn(f"pushing the run to {url} interrupted; kept locally")
        return False
    if done.returncode == 0:
        return True
    lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
    reason = lines[-1].removeprefix("sharklib: error: ") if lines else \
        f"exit status {done.returncode}"
    warn(f"pushing the run to {url} failed ({reason}); kept locally")
    return False


def build_entry(run: Run, root: str, objects: list[StoredObject],
                key_parts: RunKeyParts | None = None) -> IndexEntry:
    assert run.run_key is not None
    parts = key_parts.to_dict() if key_parts is not None and \
        key_parts.digest() == run.run_key else None
    if parts is not None:  # kept to explain a key miss: the command line as the run records it
        parts["argv"] = redact_argv(list(key_parts.argv))  # type: ignore[union-attr]
    # the run's JSON data built once: signing, keeping and indexing the entry each serialise
    # it (three Run.to_dict of every input, for a traced step with 20,000 of them)
    return IndexEntry(
        key=run.run_key, run=run, run_dict=run.to_dict(), root=root, objects=objects,
        key_parts=parts,
        inputs=list(zip(relative_to_root_all([a.path for a in run.inputs], root),
                        [a.sha256 for a in run.inputs], strict=True)),
        modules=[(relative_to_root(m.path, root), m.sha256) for m in run.code.modules],
        probes=[(relative_to_root(p, root), t) for p, t in run.probes.items()],
    )


def note_failed(run: Run, *, root: str | None = None, cache: RunCache | None = None) -> None:
    """Keep a failed run in the ledger only (``sharklib log --status failed``). Never raises.

    Nothing of it is stored and it is never reused: the ledger just remembers
    that it ran, for how long, what it read and what it left behind.
    """
    own = cache is None
    try:
        root = os.path.abspath(root or (run.code.git.root if run.code.git else run.cwd))
        if cache is None:
            cache = RunCache.from_env(root)
        entry = IndexEntry(run.run_key or "", run, root, [],
                           inputs=[(relative_to_root(a.path, root), a.sha256) for a in run.inputs],
                           modules=[(relative_to_root(m.path, root), m.sha256)
                                    for m in run.code.modules],
                           probes=[(relative_to_root(p, root), t) for p, t in run.probes.items()])
        cache.index.note_run(entry.to_dict())
    except Exception:
        pass  # the ledger is a record of what happened, never a reason for a run to fail
    finally:
        if own and cache is not None:
            cache.close()


def record(run: Run, session_dir: str | os.PathLike[str] | None = None, *,
           root: str | None = None, cache: RunCache | None = None,
           stdout: bytes | str | os.PathLike[str] | None = None,
           stderr: bytes | str | os.PathLike[str] | None = None,
           warn: Warn | None = None, key_parts: RunKeyParts | None = None) -> IndexEntry | None:
    """Store a finished run's outputs and streams, then index it. Never raises.

    ``stdout``/``stderr`` are the captured bytes (or files holding them);
    by default ``<session_dir>/stdout`` and ``<session_dir>/stderr`` are used
    when present (the capture session's layout); a ``<stream>.truncated``
    marker there means the copy cannot be replayed, so the run is not cached. An output recorded with ``stream="stdout"`` (the script's
    stdout redirected to a file) is replayed rather than restored as a file.
    Runs that failed, have no run key, read a standard input that was a stream
    (``Run.stdin``) or wrote outside the project root are not cached (the last
    two with a warning). ``key_parts`` (what ``run.run_key`` was digested from) is
    kept beside the entry so ``--explain`` can name how another key differs.
    """
    warn = warn or stderr_warn
    if run.exit_status not in (0, None) and not flag(ENV_NO_CACHE):
        note_failed(run, root=root, cache=cache)
    if flag(ENV_NO_CACHE) or run.exit_status != 0 or not run.run_key:
        return None
    if run.stdin:
        warn(f"run not cached: it read standard input from a {run.stdin}; "
             f"sharklib cannot tell whether a later run gets the same bytes")
        return None
    own = cache is None
    try:
        root = os.path.abspath(root or (run.code.git.root if run.code.git else run.cwd))
        if session_dir is not None:
            for name in ("stdout", "stderr"):
                if os.path.exists(os.path.join(session_dir, f"{name}.truncated")):
                    warn(f"{name} too large to replay; run not cached")
                    return None
            stdout = stdout if stdout is not None else os.path.join(session_dir, "stdout")
            stderr = stderr if stderr is not None else os.path.join(session_dir, "stderr")
        streams = {"stdout": _read_stream(stdout), "stderr": _read_stream(stderr)}
        if leaves_nothing(run, streams):
            return None
        # the two streams interleaved as written (capture's session log): what a replay writes
        ordered = _read_stream(os.path.join(session_dir, "streams")) if session_dir else None
        files: list[tuple[str, str, str, int]] = []
        for out in run.outputs:
            if out.stream:
                if streams.get(out.stream) is None:  # stdout went to this file: replay it
                    files.append((out.stream, "", out.path, out.size))
                continue
            rel = relative_to_root(out.path, root)
            if os.path.isabs(rel):
                warn(f"{out.path}: output outside the project root {root}; run not cached")
                return None
            files.append(("output", rel, out.path, out.size))
        if cache is None:
            cache = RunCache.from_env(root)
        shas = {o.path: o.sha256 for o in run.outputs}
        # the signed sidecar travels with its output: a restored file is as attested as the original
        sidecars = [(rel + SUFFIX, path + SUFFIX)
                    for role, rel, path, _ in files if role == "output"]
        found = cache.statcache.digests(p for _, p in sidecars)
        for rel, path in sidecars:
            if path in found:
                shas[path] = found[path][0]
                files.append(("output", rel, path, found[path][1]))
        objects: list[StoredObject] = []
        batch = getattr(cache.store, "batch", None)  # small objects + entry: one commit
        with cache.shared(), batch() if batch is not None else contextlib.nullcontext():
            cache.store.snapshot(run.run_id, root)
            for role, rel, path, _size in files:
                if path.endswith(SUFFIX):
                    # best effort: a sidecar rewritten meanwhile (another signer) is not stored,
                    # the run still is; a restore then re-attests nothing, it just lacks that copy
                    try:
                        info = cache.store.put(path, shas[path])
                    except StoreError:
                        continue
                else:
                    info = cache.store.put(path, shas[path])
                mode = os.stat(path).st_mode & 0o777 if role == "output" else 0o644
                objects.append(StoredObject(role, rel, info.sha256, info.size, mode))
            for role, data in (*streams.items(), ("streams", ordered)):
                if data:
                    info = cache.store.put_bytes(data)
                    objects.append(StoredObject(role, "", info.sha256, info.size))
            entry = build_entry(run, root, objects, key_parts)
            # signed: the entry alone, edited anywhere, proves nothing
            signer = proof.attach(entry)
            added = cache.add(entry, push=False, proved=signer)
        if added and cache.has_remote and cache.push_new:
            if str(cache.remote_url) in unreachable_remotes:
                pass  # the lookup said so already; waiting on it again at exit would not help
            elif own:  # opened here from the environment: maybe at exit, push in a child
                push_in_child(root, entry.run_id, str(cache.remote_url), warn)
            else:
                try:
                    cache.push_entry(entry)
                except Exception as exc:
                    warn(f"pushing the run to {cache.remote_url} failed ({exc}); kept locally")
        return entry
    except CacheReadOnly as exc:
        warn(str(exc))
        return None
    except StoreError as exc:
        warn(f"{exc}; run not cached")
        return None
    except Exception as exc:  # never break the user's script
        warn(f"caching the run failed ({type(exc).__name__}: {exc})")
        return None
    finally:
        if own and cache is not None:
            cache.close()
