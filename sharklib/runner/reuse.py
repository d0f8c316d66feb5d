"""Verifying-trace reuse: prove a run is already done, restore its results, replay it.

Two calls serve the capture path:

* :func:`check` before a script's body runs: look up past successful runs
  with the same run key (newest first, local then the remote), and take the
  first whose every recorded input and local module still has its recorded
  digest (through the stat cache: an unchanged file costs one ``stat``, a
  ``touch``\\ ed one is re-hashed to the same answer), whose imported
  distributions still have the recorded versions and whose downloads the
  trust policy accepts. Its outputs that are missing or differ are restored
  (atomically, never outside the project root), and the caller gets the
  recorded stdout/stderr to replay, the exit status, and the one-line report.
* :func:`record` after a run: store its outputs and streams, then index it.

Neither ever raises into the user's script: a failure becomes one
``sharklib: warning: ...`` line and the run simply happens (or is not cached).
A corrupt object is quarantined by the store and the run recomputed.
"""

from __future__ import annotations

import datetime as _dt
import functools
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sharklib.attest.naming import SUFFIX, is_sidecar
from sharklib.cache.index import IndexEntry, StoredObject
from sharklib.cache.runcache import RunCache
from sharklib.cache.store import CacheReadOnly, RemoteUnreachable
from sharklib.config import ENV_NO_CACHE, ENV_QUIET, ENV_RERUN, flag
from sharklib.errors import StoreError
from sharklib.model import Download, Run, RunKeyParts
from sharklib.model.runkey import relative_to_root
from sharklib.runner.downloads import default_policy, judge

Warn = Callable[[str], None]


def _stderr_warn(message: str) -> None:
    try:
        from sharklib.capture.safety import warn_once  # type: ignore[import-not-found]
    except ImportError:
        sys.stderr.write(f"sharklib: warning: {message}\n")
        sys.stderr.flush()
    else:
        warn_once(message)


@dataclass(slots=True)
class ReuseDecision:
    """A past run that counts as this one, with what is needed to stand in for it."""

    entry: IndexEntry
    exit_status: int
    stdout: bytes
    stderr: bytes
    saved: float
    restored: list[str] = field(default_factory=list)  # outputs and sidecars rewritten
    in_place: int = 0  # outputs (sidecars not counted) already right on disk
    checked: int = 0
    downloads: dict[str, int] = field(default_factory=dict)
    policy: str = "revalidate"
    message: str = ""

    @property
    def run(self) -> Run:
        """The reused run (parsed on first use)."""
        return self.entry.run


# -- paths ---------------------------------------------------------------------------------
def rebase(path: str, root: str) -> str:
    """A recorded path (relative to the recording's root, or absolute) on this machine."""
    return path if path.startswith("/") else f"{root}/{path}"


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def checked_relpath(root: str, relpath: str) -> str:
    """The lexical half of :func:`safe_destination`: no absolute paths, no ``..`` escapes."""
    if not relpath or "\0" in relpath or os.path.isabs(relpath):
        raise StoreError("refusing to restore to a path outside the project",
                         f"{root} (cache entry path {relpath!r})")
    norm = os.path.normpath(relpath)
    if norm in (".", "..") or norm.startswith(".." + os.sep):
        raise StoreError("refusing to restore to a path outside the project",
                         f"{root} (cache entry path {relpath!r})")
    return os.path.join(root, norm)


def safe_destination(root: str, relpath: str) -> str:
    """Where a recorded output goes, refusing anything that would land outside ``root``.

    Refused: absolute paths, ``..`` escapes, and paths whose existing parent
    directories resolve (through symlinks) outside the root. Creates the
    missing parent directories.
    """
    where = f"{root} (cache entry path {relpath!r})"
    dest = checked_relpath(root, relpath)
    real_root = os.path.realpath(root)
    probe = os.path.dirname(dest)
    while not os.path.lexists(probe):
        probe = os.path.dirname(probe)
    if not _inside(os.path.realpath(probe), real_root):
        raise StoreError("refusing to restore through a symlink leading outside the project",
                         where)
    if os.path.isdir(dest) and not os.path.islink(dest):
        raise StoreError("refusing to replace a directory with a file", where)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    if not _inside(os.path.realpath(os.path.dirname(dest)), real_root):
        raise StoreError("refusing to restore through a symlink leading outside the project",
                         where)
    return dest


# -- environment ---------------------------------------------------------------------------
@functools.lru_cache(maxsize=4096)
def _installed_version(name: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(name)
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return None


def distributions_changed(run: dict[str, Any]) -> str | None:
    """The first imported distribution whose installed version differs, as text; else None."""
    return distributions_differ((run.get("environment") or {}).get("distributions") or {})


def distributions_differ(dists: Mapping[str, Any]) -> str | None:
    """:func:`distributions_changed` for the ``{name: version}`` map itself."""
    for name, version in dists.items():
        now = _installed_version(str(name))
        if now != version:
            return f"{name} {version} -> {now or 'not installed'}"
    return None


# -- the decision ----------------------------------------------------------------------------
def _inputs_unchanged(entry: IndexEntry, root: str, cache: RunCache) -> tuple[bool, int]:
    pairs = [(rebase(p, root), s) for p, s in (*entry.inputs, *entry.modules)]
    if not pairs:
        return True, 0
    got = cache.statcache.digests([p for p, _ in pairs])
    for path, sha in pairs:
        now = got.get(path)
        if now is None or now[0] != sha:
            return False, len(pairs)
    return True, len(pairs)


def downloads_trusted(run: dict[str, Any], policy: str | None = None,
                      pins: Mapping[str, str] | None = None) -> dict[str, int] | None:
    """How each download of ``run`` is trusted (counts by reason), or None if one is not."""
    policy = policy or default_policy()
    counts: dict[str, int] = {}
    for raw in run.get("downloads") or []:
        verdict = judge(Download.from_dict(raw), policy, pins)
        if not verdict.trusted:
            return None
        counts[verdict.how] = counts.get(verdict.how, 0) + 1
    return counts


def _restore_outputs(entry: IndexEntry, root: str, cache: RunCache) -> tuple[list[str], int]:
    """Restore every output that is missing or differs; refuse hostile paths first."""
    plan = [(obj, checked_relpath(root, obj.path)) for obj in entry.outputs()]
    missing = []
    in_place = 0
    for obj, dest in plan:
        # a file already right needs no write, so the (costlier) symlink check is skipped
        if not os.path.islink(dest) and cache.statcache.unchanged(dest, obj.sha256):
            in_place += not is_sidecar(dest)
        else:
            missing.append(obj)
    writes = [(obj, safe_destination(root, obj.path)) for obj in missing]  # all refused first
    for obj, dest in writes:
        cache.restore(obj, dest)
    return [dest for _, dest in writes], in_place


def _stream(entry: IndexEntry, role: str, cache: RunCache) -> bytes:
    obj = entry.stream(role)
    return b"" if obj is None else cache.read(obj.sha256)


def reuse_message(decision: ReuseDecision) -> str:
    when = _dt.datetime.fromtimestamp(decision.entry.started).strftime("%Y-%m-%d %H:%M")
    # a user counts the files their script wrote; the sidecars travel with them
    n = sum(not is_sidecar(p) for p in decision.restored)
    outputs = f"{n} output{'s' if n != 1 else ''} restored"
    if decision.in_place:
        outputs += f" ({decision.in_place} already in place)"
    text = (f"sharklib: reused run of {when} (saved {decision.saved:.1f} s): {outputs}; "
            f"inputs unchanged ({decision.checked} checked)")
    if decision.downloads:
        parts = ", ".join(f"{n} {how}" for how, n in sorted(decision.downloads.items()))
        text += f"; downloads {parts} (policy {decision.policy})"
    return text


def _try(entry: IndexEntry, root: str, cache: RunCache, policy: str,
         pins: Mapping[str, str] | None, started: float) -> ReuseDecision | None:
    ok, checked = _inputs_unchanged(entry, root, cache)
    data = entry.run_data()
    if not ok or distributions_changed(data) is not None:
        return None
    downloads = downloads_trusted(data, policy, pins)
    if downloads is None:
        return None
    with cache.shared():
        try:
            # fetch streams first: if an object is bad we learn it before touching the workspace
            stdout = _stream(entry, "stdout", cache)
            stderr = _stream(entry, "stderr", cache)
            restored, in_place = _restore_outputs(entry, root, cache)
        except StoreError:
            # a gc between the lookup and this (shared) lock is a normal race, not corruption
            if not cache.index.has_run(entry.run_id):
                raise StoreError(f"run {entry.run_id[:12]} was removed by a concurrent "
                                 f"`sharklib cache gc`", str(cache.directory)) from None
            raise
    saved = max(0.0, entry.duration - (time.monotonic() - started))
    decision = ReuseDecision(entry=entry, exit_status=entry.exit_status or 0,
                             stdout=stdout, stderr=stderr, saved=saved, restored=restored,
                             in_place=in_place, checked=checked, downloads=downloads,
                             policy=policy)
    decision.message = reuse_message(decision)
    cache.index.mark_used(entry.run_id, saved)
    return decision


#: remotes a lookup in this process found unreachable (and said so, once)
_unreachable_remotes: set[str] = set()


def check(key_parts: RunKeyParts, *, cwd: str, root: str, cache: RunCache | None = None,
          policy: str | None = None, pins: Mapping[str, str] | None = None,
          warn: Warn | None = None) -> ReuseDecision | None:
    """A past run that can stand in for this one (outputs already restored), or None.

    ``cwd`` is accepted for symmetry with the key; what matters is ``root``,
    against which recorded relative paths are rebased. Honors
    ``SHARKLIB_NO_CACHE`` and ``SHARKLIB_RERUN``. Never raises.
    """
    warn = warn or _stderr_warn
    if flag(ENV_NO_CACHE) or flag(ENV_RERUN):
        return None
    started = time.monotonic()
    own = cache is None
    try:
        root = os.path.abspath(root)
        if cache is None:
            cache = RunCache.from_env(root)
        policy = policy or default_policy()
        key = key_parts.digest()
        local = cache.candidates(key)
        for batch in (local, None):
            entries = batch if batch is not None else cache.pull_candidates(key, warn)
            for entry in entries:
                decision = _try(entry, root, cache, policy, pins, started)
                if decision is not None:
                    return decision
        return None
    except CacheReadOnly as exc:
        warn(str(exc))  # the same line as record's: printed once per run
        return None
    except RemoteUnreachable as exc:
        # said once: record() then keeps the new run locally without waiting on the remote again
        _unreachable_remotes.add(str(cache.remote_url) if cache is not None else "")
        kept = " (a new run is kept locally; `sharklib cache push` sends it later)" \
            if cache is not None and cache.push_new else ""
        warn(f"{exc}; running the step instead{kept}")
        return None
    except StoreError as exc:
        warn(f"{exc}; running the step instead")
        return None
    except Exception as exc:  # never break the user's script
        warn(f"cache lookup failed ({type(exc).__name__}: {exc}); running the step instead")
        return None
    finally:
        if own and cache is not None:
            cache.close()


def replay(decision: ReuseDecision, *, quiet: bool | None = None) -> int:
    """Write the recorded stdout/stderr and the reuse line; returns the exit status to use."""
    for stream, data in ((sys.stdout, decision.stdout), (sys.stderr, decision.stderr)):
        if data:
            stream.flush()
            buf = getattr(stream, "buffer", None)
            if buf is not None:
                buf.write(data)
                buf.flush()
            else:
                stream.write(data.decode("utf-8", "replace"))
    if not (flag(ENV_QUIET) if quiet is None else quiet):
        sys.stderr.write(decision.message + "\n")
        sys.stderr.flush()
    return decision.exit_status


# -- recording -------------------------------------------------------------------------------
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
    from sharklib.config import ENV_CAPTURE, ENV_PARENT_RUN, ENV_SESSION

    drop = {ENV_CAPTURE, ENV_SESSION, ENV_PARENT_RUN, "SHARKLIB_EXEC_TOP", "SHARKLIB_STREAMS",
            "SHARKLIB_OWNS_SESSION"}
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


def build_entry(run: Run, root: str, objects: list[StoredObject]) -> IndexEntry:
    assert run.run_key is not None
    return IndexEntry(
        key=run.run_key, run=run, root=root, objects=objects,
        inputs=[(relative_to_root(a.path, root), a.sha256) for a in run.inputs],
        modules=[(relative_to_root(m.path, root), m.sha256) for m in run.code.modules],
    )


def record(run: Run, session_dir: str | os.PathLike[str] | None = None, *,
           root: str | None = None, cache: RunCache | None = None,
           stdout: bytes | str | os.PathLike[str] | None = None,
           stderr: bytes | str | os.PathLike[str] | None = None,
           warn: Warn | None = None) -> IndexEntry | None:
    """Store a finished run's outputs and streams, then index it. Never raises.

    ``stdout``/``stderr`` are the captured bytes (or files holding them);
    by default ``<session_dir>/stdout`` and ``<session_dir>/stderr`` are used
    when present (the capture session's layout); a ``<stream>.truncated``
    marker there means the copy cannot be replayed, so the run is not cached. An output recorded with ``stream="stdout"`` (the script's
    stdout redirected to a file) is replayed rather than restored as a file.
    Runs that failed, have no run key, read a standard input that was a stream
    (``Run.stdin``) or wrote outside the project root are not cached (the last
    two with a warning).
    """
    warn = warn or _stderr_warn
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
        with cache.shared():
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
            for role, data in streams.items():
                if data:
                    info = cache.store.put_bytes(data)
                    objects.append(StoredObject(role, "", info.sha256, info.size))
            entry = build_entry(run, root, objects)
            added = cache.add(entry, push=False)
        if added and cache.has_remote and cache.push_new:
            if str(cache.remote_url) in _unreachable_remotes:
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
