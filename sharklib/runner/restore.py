"""Standing in for a past run: write its outputs back from the store, replay its streams.

Only called once :mod:`sharklib.runner.decide` accepted the past run. Outputs
that are missing or differ are restored (atomically, never outside the
project root, hostile paths refused before anything is written); the caller
gets the recorded stdout/stderr to replay, the exit status, and the one-line
report.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Mapping

from sharklib.attest.naming import is_sidecar
from sharklib.cache.entry import IndexEntry
from sharklib.config import ENV_QUIET, ENV_REPORT, flag
from sharklib.errors import StoreError
from sharklib.model import Run
from sharklib.model.run import _Record
from sharklib.runner import decide, proof
from sharklib.runner.decide import rebase  # noqa: F401  (re-exported: callers map paths here)
from sharklib.runner.notices import Warn, stderr_warn

TYPE_CHECKING = False
if TYPE_CHECKING:  # not at run time: the reuse memo's path opens no index (runner/memo.py)
    from sharklib.cache.runcache import RunCache


class ReuseDecision(_Record):
    """A past run that counts as this one, with what is needed to stand in for it.

    A plain class with a dataclass's constructor, equality and repr: ``dataclasses``
    (with ``inspect``) cost every reuse check ~6 ms of imports.
    """

    __slots__ = ("checked", "downloads", "entry", "exit_status", "in_place", "message", "policy",
                 "restored", "saved", "stderr", "stdout", "streams")
    _fields = __match_args__ = ("entry", "exit_status", "stdout", "stderr", "saved", "restored",
                                "in_place", "checked", "downloads", "policy", "message", "streams")

    def __init__(self, entry: IndexEntry, exit_status: int, stdout: bytes, stderr: bytes,
                 saved: float, restored: list[str] | None = None, in_place: int = 0,
                 checked: int = 0, downloads: dict[str, int] | None = None,
                 policy: str = "revalidate", message: str = "", streams: bytes = b"") -> None:
        self.entry = entry
        self.exit_status = exit_status
        self.stdout = stdout
        self.stderr = stderr
        self.saved = saved
        #: outputs and sidecars rewritten
        self.restored: list[str] = [] if restored is None else restored
        #: outputs (sidecars not counted) already right on disk
        self.in_place = in_place
        self.checked = checked
        self.downloads: dict[str, int] = {} if downloads is None else downloads
        self.policy = policy
        self.message = message
        #: both streams as one ordered log (``sharklib.capture.session.chunks``), when recorded
        self.streams = streams

    @property
    def run(self) -> Run:
        """The reused run (parsed on first use)."""
        return self.entry.run


# -- paths ---------------------------------------------------------------------------------
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


# -- restoring -----------------------------------------------------------------------------
def restore_outputs(entry: IndexEntry, root: str, cache: RunCache) -> tuple[list[str], int]:
    """Restore every output that is missing or differs; refuse hostile paths first.

    A sidecar on disk that holds the recorded attestation with more signatures (an
    institution countersigned it after the run was recorded) keeps them: the recorded copy's
    signatures are merged into it, never written over it. Outputs restored as hard links
    (``read_only = true``) share the store's inode, whose mtime is old: they get the time of
    the restore, so make sees them newer than the run's inputs (as after a copy).
    """
    plan = [(obj, checked_relpath(root, obj.path)) for obj in entry.outputs()]
    missing = []
    in_place = 0
    for obj, dest in plan:
        # a file already right needs no write, so the (costlier) symlink check is skipped
        if not os.path.islink(dest) and cache.statcache.unchanged(dest, obj.sha256):
            in_place += not is_sidecar(dest)
            _made_now(dest, obj.sha256, cache)
        else:
            missing.append(obj)
    writes = [(obj, safe_destination(root, obj.path)) for obj in missing]  # all refused first
    restored: list[str] = []
    linked: list[str] = []
    for obj, dest in writes:
        if is_sidecar(dest) and _keep_signatures(dest, cache.read(obj.sha256)):
            continue  # the sidecar on disk already carries every recorded signature, and more
        done = cache.restore(obj, dest)
        restored.append(dest)
        if done.strategy == "hardlink":
            linked.append(dest)
    _newer_than_inputs(linked)
    _folders_made_now(root, [dest for _, dest in plan])
    return restored, in_place


def _keep_signatures(dest: str, recorded: bytes) -> bool:
    """Merge the recorded sidecar into the one at ``dest`` if both hold the same attestation.

    True when ``dest`` now holds (or already held) the recorded attestations with the union
    of both copies' signatures; False when there is nothing to merge with (no sidecar, another
    attestation, an unreadable one): the recorded sidecar is then restored as it is.
    """
    from sharklib.attest.dsse import merge_signatures
    from sharklib.attest.sidecar import parse_line, read_bundle, write_bundle
    from sharklib.errors import SidecarError

    if not os.path.isfile(dest) or os.path.islink(dest):
        return False
    try:
        disk = read_bundle(dest)
        lines = [raw for raw in recorded.splitlines() if raw.strip()]
        ours = [parse_line(raw, dest, n) for n, raw in enumerate(lines, 1)]
    except (SidecarError, OSError):
        return False
    if not ours or disk.head.digest != ours[0].digest:
        return False
    on_disk = disk.by_digest
    merged = []
    grew = False
    for entry in ours:
        there = on_disk.get(entry.digest)
        if there is None:
            merged.append(entry.envelope)
            grew = True
            continue
        union = merge_signatures(there.envelope, entry.envelope)
        grew = grew or union is not there.envelope
        merged.append(union)
    if grew:
        recorded_digests = {o.digest for o in ours}
        extra = [e.envelope for e in disk.entries if e.digest not in recorded_digests]
        write_bundle(dest, merged + extra)
    return True


def _newer_than_inputs(paths: list[str]) -> None:
    """Give hard-linked restores the time of the restore, as a copy would have.

    Objects keep a fixed old mtime (2001) in the store, and a hard link shares the inode:
    make took such a restored output for older than its inputs and ran the recipe again on
    every call. The inode is shared with the store and every project that restored it, so
    they see the new time too (newer, never older: make never takes them for stale), and
    the store re-hashes the object at its next use (its ctime changed), as after any write.
    """
    for path in paths:
        with contextlib.suppress(OSError):
            os.utime(path)


def _folders_made_now(root: str, outputs: list[str]) -> None:
    """Give the folders holding the outputs (below the project root) the time of the reuse.

    make's target may be the folder (``copy: raw`` with ``rm -rf copy; cp -r raw copy``):
    running the recipe makes it anew, a reuse that only put files back inside it left its old
    time, and make re-invoked the recipe on every later call, forever.
    """
    top = os.path.abspath(root).rstrip(os.sep)
    folders: set[str] = set()
    for path in outputs:
        d = os.path.dirname(path)
        while d.startswith(top + os.sep) and d not in folders:
            folders.add(d)
            d = os.path.dirname(d)
    for d in folders:
        if not os.path.islink(d):
            with contextlib.suppress(OSError):
                os.utime(d)


def _made_now(dest: str, sha256: str, cache: RunCache) -> None:
    """Give an output already in place the time a run would have given it.

    A reuse stands for running the step, and running it rewrites its outputs: make compares
    times, so an output kept at its old time after ``touch input`` looked stale to make on
    every later invocation, forever. The stat cache learns the new time with the same digest.
    """
    try:
        os.utime(dest)
    except OSError:
        return  # a read-only object (hard link, another owner): make re-runs it, as before
    cache.statcache.remember(dest, sha256)


def _stream(entry: IndexEntry, role: str, cache: RunCache) -> bytes:
    obj = entry.stream(role)
    return b"" if obj is None else cache.read(obj.sha256)


def _step_label(entry: IndexEntry, width: int = 72) -> str:
    """The reused command, short and printable: under ``make -j`` the line must say which step."""
    import shlex

    argv = entry.run_data().get("argv") or ["?"]
    words = [str(a) for a in argv] if isinstance(argv, list) else ["?"]
    words[0] = os.path.basename(words[0]) or words[0]
    text = shlex.join(words)
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return f"`{text if len(text) <= width else text[:width - 1] + '…'}`"


def reuse_message(decision: ReuseDecision) -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(decision.entry.started))
    # a user counts the files their script wrote; the sidecars travel with them
    n = sum(not is_sidecar(p) for p in decision.restored)
    outputs = f"{n} output{'s' if n != 1 else ''} restored"
    if decision.in_place:
        outputs += f" ({decision.in_place} already in place)"
    saved = f"saved {decision.saved:.1f} s"
    if flag(ENV_REPORT):
        from sharklib.model.energy import EnergyModel, saving_text

        # one busy core for the time saved: the run index keeps no CPU time for a reuse
        saved += f" {saving_text(decision.saved, EnergyModel.from_environ(os.environ))}"
    text = (f"sharklib: reused run of {when} for {_step_label(decision.entry)} "
            f"({saved}): {outputs}; "
            f"inputs unchanged ({decision.checked} checked)")
    if decision.downloads:
        parts = ", ".join(f"{n} {how}" for how, n in sorted(decision.downloads.items()))
        text += f"; downloads {parts} (policy {decision.policy})"
    return text


def restore(entry: IndexEntry, root: str, cache: RunCache, *, started: float, checked: int,
            downloads: dict[str, int], policy: str, pins: Mapping[str, str] | None = None,
            warn: Warn | None = None,
            environ: Mapping[str, str] | None = None) -> ReuseDecision | None:
    """Stand in for ``entry`` (accepted on its hint): fetch its streams, restore its outputs.

    The hint is only a way to say no cheaply: what is restored is the entry as signed by a
    key trusted for reuse (:func:`sharklib.runner.proof.prove`), after the inputs, modules,
    distributions and downloads *that* names are checked again. None: the entry proves
    nothing (unsigned, untrusted, or edited: then quarantined with one warning), or what it
    signs no longer holds; the step runs.
    """
    signed = proof.prove(entry, entry.key, cache, warn or stderr_warn)
    if signed is None:
        return None
    accepted = decide.accept(signed, root, cache, policy, pins, environ)
    if accepted is None:
        return None
    entry = signed
    checked, downloads = accepted
    with cache.shared():
        try:
            # fetch streams first: if an object is bad we learn it before touching the workspace
            stdout = _stream(entry, "stdout", cache)
            stderr = _stream(entry, "stderr", cache)
            streams = _stream(entry, "streams", cache)
            restored, in_place = restore_outputs(entry, root, cache)
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
                             policy=policy, streams=streams)
    decision.message = reuse_message(decision)
    cache.index.mark_used(entry.run_id, saved)
    return decision


def replay(decision: ReuseDecision, *, quiet: bool | None = None) -> int:
    """Write the recorded stdout/stderr and the reuse line; returns the exit status to use.

    With the ordered log, each chunk goes to its descriptor in the order the run wrote it,
    so a terminal or ``2>&1`` sees the same bytes interleaved the same way.
    """
    if decision.streams:
        from sharklib.common.sessiondir import chunks

        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        for fd, data in chunks(decision.streams):
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        if not (flag(ENV_QUIET) if quiet is None else quiet):
            sys.stderr.write(decision.message + "\n")
            sys.stderr.flush()
        return decision.exit_status
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


