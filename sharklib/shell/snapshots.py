"""Keeping what each mutation changed, and putting the workspace back to any recorded state.

After a mutating command, each changed file (and its signed sidecar) goes into
the project's object store by content: the content-addressed store by
default, or a btrfs/ZFS snapshot of the workspace where the project's cache is
configured on one (``.sharklib/cache.toml``, ``store = "btrfs"``), where
"storing" a file is noting which snapshot holds it. Only the changed files are
stored and only their digests are computed (most were already hashed by the
tracer); the workspace is never walked or copied whole.

Moving the workspace between states (``:undo``, ``:checkout N``) touches only
the paths that some mutation between the two states changed. A file whose
content before the session was never recorded (it existed before the first
command that changed it in place) cannot be put back on the content store; it
is named and left as it is. A file changed behind the shell's back is stored
before it is overwritten, and named, so nothing is lost.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import stat
from dataclasses import dataclass, field

from sharklib.attest.naming import SUFFIX
from sharklib.cache.snapshots import SnapshotStore, snapshot_name
from sharklib.errors import SharkError, StoreError
from sharklib.shell.classify import Effect
from sharklib.shell.store import UNKNOWN, Change, Command, SessionStore


def birth_time(path: str) -> float | None:
    """When the inode at ``path`` was created (``statx`` ``STATX_BTIME``), if the filesystem says."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        buf = ctypes.create_string_buffer(256)
        # statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_BTIME, buf)
        if libc.statx(-100, os.fsencode(path), 0x100, 0x800, buf) != 0:
            return None
    except (OSError, AttributeError):
        return None
    mask = int.from_bytes(buf.raw[0:4], "little")
    if not mask & 0x800:
        return None
    sec = int.from_bytes(buf.raw[80:88], "little", signed=True)
    nsec = int.from_bytes(buf.raw[88:92], "little")
    return sec + nsec / 1e9


#: the most files whose state the shell checks (one ``stat`` each) before a line runs
WATCH_MAX = 4096
#: a file a line read is copied into the store (for a later :undo) only up to this size
KEEP_INPUT_MAX = 64 << 20


def _sig(st: os.stat_result) -> list[int]:
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


class Watch:
    """Workspace files whose exact content the store holds, each with the stat that proves it.

    A file the session never changed, that a later line changes in place (``>>``, ``sed
    -i``), had content nobody recorded, unless something put it in the store before: the
    lines that read it (their inputs are stored) or an earlier session. Before each line
    the shell stats these files (no hashing, no walk): one whose stat is still the proven
    one still holds that content, one that is gone was absent. What the line then changes
    of them has a known earlier state that ``:undo`` can put back. Kept in the session's
    ``watch`` file (one JSON array a line, appended; the last line of a path wins).
    """

    def __init__(self, path: str) -> None:
        import json

        self.path = path
        self.entries: dict[str, tuple[str, list[int]]] = {}
        with contextlib.suppress(OSError), open(path, encoding="utf-8",
                                                errors="surrogateescape") as f:
            for line in f:
                try:
                    rel, sha, sig = json.loads(line)
                except (ValueError, TypeError):
                    continue  # a torn last line
                self.entries.pop(rel, None)
                self.entries[rel] = (sha, list(sig))

    def add(self, items: list[tuple[str, str, list[int]]]) -> None:
        import json

        fresh = [(rel, sha, sig) for rel, sha, sig in items if self.entries.get(rel) != (sha, sig)]
        if not fresh:
            return
        for rel, sha, sig in fresh:
            self.entries.pop(rel, None)
            self.entries[rel] = (sha, sig)
        while len(self.entries) > WATCH_MAX:  # the oldest go first
            self.entries.pop(next(iter(self.entries)))
        with contextlib.suppress(OSError), open(self.path, "a", encoding="utf-8",
                                                errors="surrogateescape") as f:
            f.write("".join(json.dumps([rel, sha, sig]) + "\n" for rel, sha, sig in fresh))

    def states(self, workspace: str) -> dict[str, str | None]:
        """What each watched file holds now: its stored sha256, or None (absent); files whose
        stat moved on (changed since, unrecorded) are left out."""
        out: dict[str, str | None] = {}
        for rel, (sha, sig) in self.entries.items():
            try:
                st = os.stat(os.path.join(workspace, rel))
            except FileNotFoundError:
                out[rel] = None
                continue
            except OSError:
                continue
            if _sig(st) == sig:
                out[rel] = sha
        return out


@dataclass
class Moved:
    """What a move between states did."""

    restored: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept: list[tuple[str, str]] = field(default_factory=list)  # changed outside: (path, sha256)
    unknown: list[str] = field(default_factory=list)
    #: recorded paths that lead outside the workspace or into .git/, .sharklib/...: left alone
    refused: list[str] = field(default_factory=list)


class Snapshots:
    """The object store that holds a session's file states."""

    def __init__(self, workspace: str) -> None:
        from sharklib.cache.runcache import RunCache

        self.workspace = workspace
        try:
            self.cache = RunCache.from_env(workspace)
        except SharkError as exc:
            raise SharkError(f"the shell cannot keep snapshots: {exc}") from None
        self.store = self.cache.store
        self.statcache = self.cache.statcache
        self.cow = self._cow_store()
        self._pre: str | None = None
        self._watch: Watch | None = None
        #: the watched files' states before the running line (see :class:`Watch`)
        self._pre_states: dict[str, str | None] = {}
        #: whether the last line's record refers to content in its before-snapshot
        self.pre_used = False

    def _cow_store(self) -> SnapshotStore | None:
        """Where the workspace is a btrfs subvolume or a ZFS dataset's mount point: a snapshot
        store for the state before a line.

        Taken before every line (milliseconds, whatever the workspace's size) and dropped
        again unless the line changed a file, it holds the exact earlier content of every
        file the line changed, also of files that predate the session.
        """
        if isinstance(self.store, SnapshotStore):
            return self.store
        try:
            from sharklib.cache.btrfs import BtrfsStore, is_subvolume

            if is_subvolume(self.workspace):
                return BtrfsStore(self.workspace, statcache=self.statcache)
        except (StoreError, OSError):
            return None
        try:
            from sharklib.cache.zfs import ZfsStore, dataset_at

            dataset = dataset_at(self.workspace)
            if dataset is None:
                return None
            return ZfsStore(dataset, statcache=self.statcache)
        except (StoreError, OSError):
            return None

    def watch(self, session: SessionStore) -> Watch:
        if self._watch is None or self._watch.path != os.path.join(session.dir, "watch"):
            self._watch = Watch(os.path.join(session.dir, "watch"))
        return self._watch

    def before_command(self, label: str, session: SessionStore) -> None:
        """Note what the watched files hold, and freeze the workspace as it is before a line
        runs (copy-on-write filesystems only)."""
        self._pre = None
        self.pre_used = False
        self._pre_states = self.watch(session).states(self.workspace)
        if self.cow is None:
            return
        name = snapshot_name(label)
        try:
            self.cow._take(name)
        except (StoreError, OSError):
            return
        self._pre = name

    def detach(self) -> tuple[str | None, dict[str, str | None]]:
        """Hand over the state before the line that just started (a background job, finished
        later while other lines run): its before-snapshot and what the watched files held."""
        pre, self._pre = (self._pre, self._pre_states), None
        self._pre_states = {}
        return pre

    def attach(self, pre: tuple[str | None, dict[str, str | None]]) -> None:
        """Take back a :meth:`detach` ed state to record the finished job against it."""
        self._pre, self._pre_states = pre
        self.pre_used = False

    def after_command(self, kept: bool) -> None:
        """Drop the line's before-snapshot unless it holds content a change refers to."""
        name, self._pre = self._pre, None
        if name is not None and not kept and self.cow is not None:
            with contextlib.suppress(StoreError, OSError):
                self.cow._drop(name)

    def _from_pre(self, rel: str) -> tuple[bool, str | None]:
        """(known, content) of ``rel`` in the before-snapshot: its sha256 (kept), or None (absent)."""
        if self._pre is None or self.cow is None:
            return False, None
        frozen = os.path.join(self.cow._files(self._pre), rel)
        if not os.path.lexists(frozen):
            return True, None
        got = self.statcache.digests([frozen]).get(frozen)
        if got is None:
            return False, None
        current = self.cow._current
        try:
            self.cow._current = self._pre
            self.cow.put(os.path.join(self.workspace, rel), got[0])
        except (StoreError, OSError):
            return False, None
        finally:
            self.cow._current = current
        self.pre_used = True
        return True, got[0]

    def close(self) -> None:
        self.after_command(False)
        with contextlib.suppress(Exception):
            self.cache.close()
        if self.cow is not None and self.cow is not self.store:
            with contextlib.suppress(Exception):
                self.cow.close()

    def digest(self, path: str) -> tuple[str, int] | None:
        if not os.path.isfile(path):
            return None
        got = self.statcache.digests([path])
        return got.get(path)

    # -- after a command ---------------------------------------------------------------
    def record(self, eff: Effect, session: SessionStore, started: float, run_id: str) -> list[Change]:
        """Store the changed files; the changes with what each path held before.

        Under the cache's shared lock until the stored objects are rooted to the session
        (:mod:`sharklib.cache.roots`): ``sharklib cache gc`` never sees one stored and unrooted.
        """
        with self.cache.shared():
            changes = self._record(eff, session, started, run_id)
            self.root(session, changes)
        return changes

    def root(self, session: SessionStore, changes: list[Change],
             extra: tuple[str, ...] = ()) -> None:
        """Keep the objects these changes name for as long as the session exists."""
        from sharklib.cache.roots import add_roots

        shas = [sha for ch in changes for sha in (ch.before, ch.after, ch.sidecar)
                if sha and sha != UNKNOWN]
        with contextlib.suppress(OSError):
            add_roots(self.cache.directory, session.dir, [*shas, *extra])

    def root_session(self, session: SessionStore) -> None:
        """Root a session recorded before sessions were gc roots (once, when it is resumed)."""
        from sharklib.cache.roots import root_file

        if session.mutations() and not root_file(self.cache.directory, session.dir).exists():
            self.root(session, [ch for c in session.mutations() for ch in c.changes])

    def forget(self, session_id: str) -> int:
        """Destroy the before-snapshots a deleted session kept; how many there were."""
        if self.cow is None:
            return 0
        prefix = snapshot_name(f"shell-{session_id}-")
        names = [n for n in self.cow.snapshots() if n.startswith(prefix)]
        for name in names:
            with contextlib.suppress(StoreError, OSError):
                self.cow.forget_snapshot(name)
        return len(names)

    def _record(self, eff: Effect, session: SessionStore, started: float,
                run_id: str) -> list[Change]:
        with contextlib.suppress(StoreError, OSError):
            self.store.snapshot(run_id, self.workspace)
        self.pre_used = False
        changes = []
        head = session.chain_set()
        for rel, after in sorted(eff.written.items()):
            path = os.path.join(self.workspace, rel)
            watched = not session.known(rel) and rel in self._pre_states
            known, frozen = self._from_pre(rel) if not session.known(rel) and not watched \
                else (False, None)
            if session.known(rel):
                before = session.state(rel, chain=head)
            elif watched:
                before = self._pre_states[rel]  # stored (or absent) before this line
            elif known:
                before = frozen
            elif after is None:
                before = UNKNOWN
            else:
                # made by this command (a new inode it did not read first), or changed in
                # place; `sed -i` writes a new inode too, but read the file before
                born = birth_time(path)
                new = born is not None and born >= started and rel not in eff.inputs \
                    and rel not in eff.reread
                before = None if new else UNKNOWN
            sidecar = None
            size = eff.sizes.get(rel, 0)
            if after is not None:
                got = self.digest(path)
                if got is None:  # gone again (a later process removed it)
                    after = None
                else:
                    after, size = got
                    self._put(path, after)
                    side = self.digest(path + SUFFIX)
                    if side is not None:
                        self._put(path + SUFFIX, side[0])
                        sidecar = side[0]
            if before == after and before is not None:
                continue
            changes.append(Change(rel, before, after, sidecar, size))
        return changes

    def keep_named(self, line: str, cwd: str, session: SessionStore) -> None:
        """Before a line runs: store and watch the workspace files its words name.

        The file a line changes in place is nearly always named on it (``echo x >>
        log.txt``, ``sed -i … notes.txt``, ``> out.csv`` over an older file), and its
        content now is exactly the content before the line: kept here (a ``stat`` per
        word, hashing and copying only content the store lacks, up to
        :data:`KEEP_INPUT_MAX` a file), ``:undo`` can put it back. Files the session
        already knows, or changed a moment ago (no stat proves their digest yet), are
        left out.
        """
        import shlex

        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            return
        rels: list[str] = []
        for word in words:
            word = re.sub(r"^(\d*[<>]+|&>>?|--?[\w-]+=)", "", word)
            if not word or word.startswith("-") or len(rels) >= 64:
                continue
            path = os.path.normpath(os.path.join(cwd, word))
            rel = os.path.relpath(path, self.workspace)
            if rel.startswith("..") or rel.startswith(".sharklib") or session.known(rel):
                continue
            with contextlib.suppress(OSError):
                st = os.stat(path)
                if stat.S_ISREG(st.st_mode) and st.st_size <= KEEP_INPUT_MAX:
                    rels.append(rel)
        if rels:
            self._keep(rels, session)

    def keep_inputs(self, eff: Effect, session: SessionStore) -> None:
        """Store the workspace files this line read and left unchanged, and watch them.

        They are what a later in-place change would otherwise destroy unrecorded. Only
        files the line read (never a walk), each content once (the store dedups), each
        up to :data:`KEEP_INPUT_MAX` bytes; a file whose digest is not proven by a stat
        (written a moment ago) is left for a later line.
        """
        rels = [rel for rel, sha in eff.inputs.items() if rel not in eff.written
                and not session.known(rel)]
        if rels:
            self._keep(rels, session)

    def _keep(self, rels: list[str], session: SessionStore) -> None:
        """Store these workspace files (by content, once) and watch them with the proving stat."""
        paths = {}
        for rel in rels:  # size first: a big file is not hashed again only to be skipped
            path = os.path.join(self.workspace, rel)
            with contextlib.suppress(OSError):
                if os.stat(path).st_size <= KEEP_INPUT_MAX:
                    paths[path] = rel
        got = self.statcache.verified(list(paths))
        keep: list[tuple[str, str, list[int]]] = []
        with contextlib.suppress(StoreError, OSError), self.cache.shared():
            for path, (sha, size, st) in got.items():
                if st is None or size > KEEP_INPUT_MAX:
                    continue
                if not self.store.has(sha):
                    try:
                        self.store.put(path, sha)
                    except StoreError:  # changed since: it is not this content any more
                        continue
                keep.append((paths[path], sha, _sig(st)))
            if keep:
                self.root(session, [], tuple(sha for _, sha, _ in keep))
        self.watch(session).add(keep)

    def _put(self, path: str, sha256: str) -> None:
        try:
            self.store.put(path, sha256)
        except StoreError:
            # the file changed again since it was hashed; store what is there now
            self.store.put(path)

    # -- moving between states -----------------------------------------------------------
    def move(self, session: SessionStore, target: int) -> Moved:
        """Make the workspace hold the state after mutation ``target`` (0: before the first)."""
        now = session.chain_set()
        then = session.chain_set(target)
        paths: dict[str, None] = {}
        for c in session.mutations():
            if c.n in now ^ then:
                for ch in c.changes:
                    paths.setdefault(ch.path)
        moved = Moved()
        plan: list[tuple[str, str | None, str | None]] = []
        for rel in paths:
            if self._place(rel) is None:
                moved.refused.append(rel)
                continue
            want = session.state(rel, chain=then)
            have = session.state(rel, chain=now)
            if want == UNKNOWN:
                moved.unknown.append(rel)
                continue
            plan.append((rel, want, have))
        side_want: dict[str, str | None] = {}
        for rel, _want, _ in plan:
            side_want[rel] = self._sidecar_at(session, rel, then)
        for rel, want, have in plan:
            path = os.path.join(self.workspace, rel)
            cur = self.digest(path)
            cur_sha = cur[0] if cur else None
            if cur_sha == want:
                self._sidecar(path, side_want[rel], want)
                continue
            if cur_sha is not None and cur_sha != have:
                # changed outside the shell: keep those bytes before replacing them
                with contextlib.suppress(StoreError, OSError), self.cache.shared():
                    self.store.put(path, cur_sha)
                    self.root(session, [], (cur_sha,))
                    moved.kept.append((rel, cur_sha))
            if want is None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                moved.removed.append(rel)
            else:
                os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
                self._restore(want, path)
                moved.restored.append(rel)
            self._sidecar(path, side_want[rel], want)
        session.set_head(target)
        return moved

    def _place(self, rel: str) -> str | None:
        """Where a recorded change's path is in the workspace; None when it leads outside it
        (absolute, ``..``, through a symlinked directory) or into a version-control or
        scheduler directory.

        The session's records are files in the project, so whoever can write the project
        can edit them: a move must never write or delete what they name outside it.
        """
        from sharklib.runner.proof import private_dir
        from sharklib.runner.restore import checked_relpath

        try:
            path = checked_relpath(self.workspace, rel)
        except StoreError:
            return None
        if private_dir(os.path.relpath(path, self.workspace)) is not None:
            return None
        root = os.path.realpath(self.workspace)
        parent = os.path.realpath(os.path.dirname(path))
        if parent != root and not parent.startswith(root + os.sep):
            return None
        return path

    def _restore(self, sha256: str, path: str) -> None:
        if os.path.islink(path):
            os.unlink(path)
        stores = [self.store] + ([self.cow] if self.cow is not None and self.cow is not self.store
                                 else [])
        error: Exception | None = None
        for store in stores:
            if not store.has(sha256):
                continue
            for link in ("reflink", "copy"):
                try:
                    store.restore(sha256, path, link=link)
                    return
                except (StoreError, OSError) as exc:
                    error = exc
        raise SharkError(f"cannot restore {os.path.relpath(path, self.workspace)}: "
                         f"{error or f'object {sha256[:12]} is in no store'}")

    @staticmethod
    def _sidecar_at(session: SessionStore, rel: str, chain: frozenset[int]) -> str | None:
        for cn, ch in reversed(session.changes_of(rel)):
            if cn in chain:
                return ch.sidecar
        return None

    def _sidecar(self, path: str, sha: str | None, content: str | None) -> None:
        """The sidecar that goes with the restored content (none for a removed file)."""
        side = path + SUFFIX
        if content is None or sha is None:
            if content is None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(side)
            return
        cur = self.digest(side)
        if cur is None or cur[0] != sha:
            with contextlib.suppress(SharkError):
                self._restore(sha, side)


def describe(ch: Change) -> str:
    """``+ new``, ``~ changed``, ``- deleted``: one word for a change."""
    if ch.after is None:
        return f"- {ch.path}"
    if ch.before is None:
        return f"+ {ch.path}"
    return f"~ {ch.path}"


def undo_target(session: SessionStore) -> Command | None:
    """The mutation ``:undo`` takes back (the head)."""
    return session.get(session.head) if session.head else None
