"""The cache as the runner sees it: a local store, the run index, and an optional remote.

:class:`RunCache` puts the pieces together so callers never touch object
paths: it lists candidate runs for a key (pulling entries through from the
remote on a local miss), fetches and verifies objects, restores them inside a
workspace, indexes new runs and pushes them.

Where it lives, in order of precedence:

1. arguments to :class:`RunCache` / :meth:`RunCache.from_env`;
2. ``SHARKLIB_CACHE``: a directory, or an fsspec URL (``s3://...``,
   ``file:///shared/...``) meaning "the default local cache, plus this remote";
   ``SHARKLIB_CACHE_REMOTE`` adds a remote to a local directory,
   ``SHARKLIB_CACHE_PUSH=0`` stops pushing new runs;
3. a per-project ``.sharklib/cache.toml`` under the project root
   (``dir``, ``remote``, ``push``, ``store``, ``link``, ``read_only``, ``[store_options]``);
   it comes with a clone, so its remote is pulled from but not pushed to, and its ``dir`` must
   lie inside the project, unless ``SHARKLIB_TRUST_PROJECT_CACHE=1``;
4. the platform's user cache directory (:func:`sharklib.config.cache_dir`).

Concurrency: recording and restoring hold a shared ``flock`` on ``gc.lock``;
``gc`` takes it exclusively, so garbage collection never removes what a live
run is writing or restoring. The kernel drops the lock when a process dies.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sharklib.cache.cas import ContentStore, refuse_file_link
from sharklib.cache.entry import IndexEntry, StoredObject
from sharklib.cache.index import RunIndex
from sharklib.cache.pack import PACK, Pack
from sharklib.cache.store import (
    CacheReadOnly,
    LinkMode,
    ObjectStore,
    RemoteUnreachable,
    Restored,
    open_store,
)
from sharklib.config import (
    ENV_CACHE,
    ENV_CACHE_PUSH,
    ENV_CACHE_REMOTE,
    ENV_TRUST_PROJECT_CACHE,
    flag,
    make_dirs,
)
from sharklib.errors import StoreError
from sharklib.hashing import StatCache

if TYPE_CHECKING:  # fsspec and zstandard load only when a remote is configured
    from sharklib.cache.remote import RemoteStore

PROJECT_CONFIG = os.path.join(".sharklib", "cache.toml")
_READ_ONLY = ("cache directory is read-only: runs are neither reused nor cached (make it "
              "writable, or set SHARKLIB_CACHE to another directory)")


def is_url(location: str) -> bool:
    return "://" in location


def _inside_project(directory: str, root: str | None, what: str = "the cache dir") -> str:
    """A cache ``dir`` from a project's cache.toml, refused unless it lies inside the project.

    The file is the project's, so hostile input: a cache there may not make sharklib write
    objects, an index and temporaries into any other directory of the user's.
    """
    if root is None:
        raise StoreError(f"{what} in .sharklib/cache.toml needs a project root", directory)
    full = os.path.realpath(os.path.join(root, directory))
    real_root = os.path.realpath(root)
    if full != real_root and not full.startswith(real_root + os.sep):
        raise StoreError(f"{what} named in .sharklib/cache.toml is outside the project "
                         "(SHARKLIB_TRUST_PROJECT_CACHE=1 uses it)", directory)
    return full


#: per backend, the ``[store_options]`` that name a directory the store writes into
_STORE_DIRS = {"btrfs": ("snapshots",), "zfs": ("state",)}


def _project_store(settings: dict[str, Any], root: str | None,
                   trusted: bool) -> ObjectStore | None:
    """The object store a project's cache.toml asks for (None: the default content store).

    The file comes with a clone, so it is hostile input like ``dir`` and ``remote``:
    ``store = "remote"`` with ``[store_options] url = …`` sent every output the user
    computed to wherever the project said, and a btrfs/ZFS store's own directory may not be
    put outside the project either, unless the user trusts the project's settings. A wrong
    type or option is one line naming the file, not a Python error.
    """
    where = os.path.join(root or ".", PROJECT_CONFIG)
    backend = settings.get("store", "cas")
    options = settings.get("store_options", {})
    if not isinstance(backend, str) or not isinstance(options, dict):
        raise StoreError("`store` must be a name and [store_options] a table", where)
    if backend == "cas":
        return None
    if backend == "remote" and not trusted:
        raise StoreError('store = "remote" would send your results where the project says '
                         "(a `remote` there is pulled from only; SHARKLIB_TRUST_PROJECT_CACHE=1 "
                         "uses it)", where)
    options = dict(options)
    if not trusted:
        for name in _STORE_DIRS.get(backend, ()):
            if name in options:
                options[name] = _inside_project(str(options[name]), root,
                                                f"the {backend} store's {name}")
    try:
        return open_store(backend, **options)
    except TypeError as exc:
        raise StoreError(f"store {backend!r}: unusable [store_options] ({exc})", where) from None


def project_settings(root: str | None) -> dict[str, Any]:
    """The project's ``.sharklib/cache.toml`` (empty when absent)."""
    if not root:
        return {}
    path = os.path.join(root, PROJECT_CONFIG)
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise StoreError(f"unreadable cache settings: {exc}", path) from None
    import tomllib  # only with a settings file: most projects have none, every step checks

    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise StoreError(f"unreadable cache settings: {exc}", path) from None
    settings: dict[str, Any] = data.get("cache", data)
    return settings


class RunCache:
    """Local store + run index (+ remote). Open one per process; close when done."""

    def __init__(self, directory: str | os.PathLike[str] | None = None, *,
                 remote: str | RemoteStore | None = None, push: bool = True,
                 store: ObjectStore | None = None, link: LinkMode = "auto",
                 read_only: bool = False, statcache: StatCache | None = None,
                 push_refused: str | None = None) -> None:
        if directory is None:
            from sharklib.config import cache_dir

            directory = cache_dir()
        self.directory = Path(directory)
        try:
            make_dirs(self.directory)
        except OSError as exc:
            if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                raise CacheReadOnly(_READ_ONLY, str(self.directory)) from None
            raise StoreError(f"cannot create the cache directory: {exc.strerror}",
                             str(self.directory)) from None
        # SQLite (WAL) must create index.sqlite-wal/-shm beside the index even to read it
        if not os.access(self.directory, os.W_OK):
            raise CacheReadOnly(_READ_ONLY, str(self.directory))
        for name in ("index.sqlite", "index.sqlite-wal", "index.sqlite-shm", "gc.lock"):
            refuse_file_link(str(self.directory / name), str(self.directory))
        self.store: ObjectStore = store if store is not None else ContentStore(self.directory)
        self.index = RunIndex(self.directory / "index.sqlite")
        # a URL is opened on first use: importing fsspec starts no threads but registers an
        # exit hook, which fails when the cache is opened at interpreter exit (the capture's
        # record); a run is cached locally whether or not the remote can be reached
        self.remote_url: str | None = remote if isinstance(remote, str) else \
            (remote.describe() if remote is not None else None)
        self._remote: RemoteStore | None = None if isinstance(remote, str) else remote
        self.push_new = push
        # why nothing may be uploaded to this remote at all (not even by ``cache push``)
        self.push_refused = push_refused
        self.link: LinkMode = link
        self.read_only = read_only
        self.statcache = statcache if statcache is not None else StatCache()
        self._lockfile = self.directory / "gc.lock"
        #: every recorded entry, kept to rebuild a damaged index from (sharklib.cache.pack):
        #: the store's own pack when it lives here (a run's objects and entry: one commit)
        own = getattr(self.store, "pack", None)
        self.kept = own if isinstance(own, Pack) and own.path == self.directory / PACK \
            else Pack(self.directory / PACK)

    @property
    def remote(self) -> RemoteStore | None:
        """The remote store (opened here on first use), or None when none is configured."""
        if self._remote is None and self.remote_url is not None:
            from sharklib.cache.remote import RemoteStore

            self._remote = RemoteStore(self.remote_url)
        return self._remote

    @remote.setter
    def remote(self, value: RemoteStore | None) -> None:
        self._remote = value
        self.remote_url = value.describe() if value is not None else None

    @property
    def has_remote(self) -> bool:
        """Is a remote configured? (Without opening it.)"""
        return self.remote_url is not None

    @classmethod
    def from_env(cls, root: str | None = None) -> RunCache:
        """The cache the environment and the project's settings ask for."""
        return cls(**cls.settings_from_env(root))

    @staticmethod
    def settings_from_env(root: str | None = None) -> dict[str, Any]:
        """The arguments :meth:`from_env` opens the cache with (nothing is opened)."""
        settings = project_settings(root)
        location = os.environ.get(ENV_CACHE) or None
        directory: str | None = settings.get("dir")
        remote: str | None = settings.get("remote")
        for name, value in (("dir", directory), ("remote", remote)):
            if value is not None and not isinstance(value, str):
                raise StoreError(f"`{name}` must be a string, not {type(value).__name__}",
                                 os.path.join(root or ".", PROJECT_CONFIG))
        if location:
            if is_url(location):
                remote = location
            else:
                directory = location
        from_project = remote is not None and not location and \
            not os.environ.get(ENV_CACHE_REMOTE)
        remote = os.environ.get(ENV_CACHE_REMOTE) or remote
        push_env = os.environ.get(ENV_CACHE_PUSH)
        # a project's cache.toml arrives with a clone: it may name a remote to pull runs from
        # (a reuse needs a signature by a key the user trusts), but the user's results go to a
        # place it names (a remote, a dir outside the project) only when the user says so:
        # SHARKLIB_TRUST_PROJECT_CACHE=1 (or SHARKLIB_CACHE_PUSH=1 for the remote)
        trusted = flag(ENV_TRUST_PROJECT_CACHE)
        push = (bool(settings.get("push", True)) and (trusted or not from_project)) \
            if push_env is None else push_env.strip().lower() not in ("0", "false", "no", "off")
        push_refused = None
        if from_project and not trusted and not (push_env is not None and push):
            push_refused = ("this remote is named by the project's .sharklib/cache.toml, which "
                            "comes with a clone: your runs go there only with "
                            "SHARKLIB_TRUST_PROJECT_CACHE=1")
        if settings.get("dir") and directory == settings.get("dir") and not trusted:
            directory = _inside_project(str(directory), root)
        elif directory and root and not os.path.isabs(directory):
            directory = os.path.join(root, directory)
        store = _project_store(settings, root, trusted)
        return {"directory": directory, "remote": remote, "push": push, "store": store,
                "link": settings.get("link", "auto"),
                "read_only": bool(settings.get("read_only")), "push_refused": push_refused}

    def close(self) -> None:
        self.index.close()
        self.store.close()
        self.kept.close()  # (again, when it is the store's: closing twice is harmless)

    def __enter__(self) -> RunCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- locking ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def _flock(self, mode: int) -> Iterator[None]:
        fd = os.open(self._lockfile, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, mode)
            yield
        finally:
            os.close(fd)

    def shared(self) -> contextlib.AbstractContextManager[None]:
        """Held while recording or restoring: gc waits."""
        return self._flock(fcntl.LOCK_SH)

    def exclusive(self) -> contextlib.AbstractContextManager[None]:
        """Held by gc: no run records or restores meanwhile."""
        return self._flock(fcntl.LOCK_EX)

    # -- lookups ---------------------------------------------------------------------------
    def candidates(self, key: str) -> list[IndexEntry]:
        """Successful local runs recorded under ``key``, newest first."""
        return self.index.candidates(key)

    def pull_candidates(self, key: str, warn: Any = None) -> list[IndexEntry]:
        """Entries for ``key`` the remote has and the local index lacks (indexed locally)."""
        if self.remote is None:
            return []
        found = []
        for path in self.remote.entry_paths(key):
            run_id = path.rsplit("/", 1)[-1].removesuffix(".json.zst")
            if self.index.has_run(run_id):
                continue
            try:
                entry = self.remote.get_entry(path)
            except StoreError as exc:
                if warn is not None:
                    warn(str(exc))
                continue
            if entry.exit_status != 0:
                continue
            self.index.add(entry)
            found.append(entry)
        found.sort(key=lambda e: e.started, reverse=True)
        return found

    def quarantine_entry(self, entry: IndexEntry) -> str:
        """Take an entry out of use: out of the local index (kept in ``quarantine/runs/`` for
        inspection) and off the remote when it holds the same bytes. Returns where it was read
        from (the remote's URL or this cache's directory), to name in a warning."""
        from sharklib.hashing import atomic_write

        came_from = str(self.directory)
        if self.remote_url and entry.where and entry.where.startswith(str(self.remote_url)):
            came_from = str(self.remote_url)
        with contextlib.suppress(OSError, StoreError):
            keep = self.directory / "quarantine" / "runs"
            make_dirs(keep)
            name = "".join(c if c.isalnum() or c in "-_" else "_" for c in entry.run_id)[:100]
            atomic_write(keep / f"{name}.json", entry.to_json().encode())
        self.index.remove([entry.run_id])
        self.forget_entries([(entry.key, entry.run_id)])
        if self.has_remote:
            with contextlib.suppress(Exception):
                if self.remote is not None and self.remote.quarantine_entry(entry):
                    came_from = str(self.remote_url)
        return came_from

    # -- objects ---------------------------------------------------------------------------
    def ensure_local(self, sha256: str) -> bool:
        """Make the verified object available locally, pulling it from the remote if needed."""
        bad = False
        if self.store.has(sha256):
            if self.store.verify(sha256):
                return True
            self.store.quarantine(sha256)
            bad = True
        if self.remote is not None and isinstance(self.store, ContentStore):
            try:
                with self.remote.open(sha256) as src:
                    self.store.put_stream(src, sha256)
                return True
            except RemoteUnreachable:
                pass  # a miss: the step runs (a lookup said so already, if it got that far)
            except StoreError:
                if self.remote.has(sha256):  # present but wrong: never serve it again
                    self.remote.quarantine(sha256)
                    raise StoreError(f"object {sha256} does not match its digest "
                                     f"(quarantined)", self.remote.describe()) from None
            except Exception as exc:
                import zstandard  # loaded with the remote

                if isinstance(exc, zstandard.ZstdError):
                    # bytes that are not zstd are as wrong as bytes with another digest: left
                    # in place, every machine would take them for a miss and re-run forever
                    self.remote.quarantine(sha256)
                    raise StoreError(f"object {sha256} is not valid zstd ({exc}; quarantined)",
                                     self.remote.describe()) from None
                # unreachable remote: treated as a miss
        if bad:
            raise StoreError(f"object {sha256} does not match its digest (quarantined)",
                             self.store.describe())
        return False

    def restore(self, obj: StoredObject, dest: str) -> Restored:
        if not self.ensure_local(obj.sha256):
            raise StoreError(f"object {obj.sha256} is missing from the cache", str(self.directory))
        done = self.store.restore(obj.sha256, dest, link=self.link, read_only=self.read_only)
        if done.strategy != "hardlink":  # a hardlink shares the object's inode: leave it 0444
            mode = obj.mode & 0o755
            os.chmod(dest, mode & 0o555 if self.read_only else mode | 0o200)
        return done

    def read(self, sha256: str) -> bytes:
        if not self.ensure_local(sha256):
            raise StoreError(f"object {sha256} is missing from the cache", str(self.directory))
        return self.store.read(sha256)

    # -- writing ---------------------------------------------------------------------------
    def entry_file(self, key: str, run_id: str) -> Path:
        """Where an older sharklib kept a recorded run's entry (``runs/<key>/<id>.json``).

        Entries are now rows of ``pack.sqlite`` (one file per run was one file and one
        directory per pipeline stage); repair and gc still read and remove these files.
        """
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in run_id)[:100]
        return self.directory / "runs" / key.removeprefix("sha256:")[:64] / f"{safe}.json"

    def _keep_entry(self, entry: IndexEntry, data: dict[str, Any] | None = None) -> None:
        """Keep the (signed) entry in the runs pack too, so a damaged index can be rebuilt.

        Written before the run is indexed: a crash between the two leaves a kept entry whose
        objects are stored (``sharklib cache repair`` indexes it), never an index row whose
        entry exists nowhere else.
        """
        take = getattr(self.store, "take_pending", None)
        pending: list[tuple[str, bytes]] = take() if take is not None else []
        if pending and self.kept is not getattr(self.store, "pack", None):
            self.store.pack.put_many(pending)  # type: ignore[attr-defined]
            pending = []
        self.kept.put_many(pending, (entry.run_id, entry.key,
                                     entry.to_dict() if data is None else data))

    def forget_entries(self, runs: list[tuple[str, str]]) -> None:
        """Remove the kept entries of ``(key, run id)`` runs taken out of the index."""
        for key, run_id in runs:
            path = self.entry_file(key, run_id)
            with contextlib.suppress(OSError):
                if not os.path.islink(path.parent):
                    path.unlink()
        self.kept.delete_entries([run_id for _, run_id in runs])

    def add(self, entry: IndexEntry, push: bool | None = None, proved: str | None = None) -> bool:
        """Index a run whose objects are stored; push it when a remote is configured.

        ``proved``: the id of the key the entry was just signed with (see
        :meth:`~sharklib.cache.index.RunIndex.set_proved`).
        """
        data = entry.to_dict()  # built once for the kept copy and the index (a path per input)
        self._keep_entry(entry, data)
        added = self.index.add(entry, proved, data)
        if push is None:
            push = self.push_new
        if added and self.has_remote and push:
            self.push_entry(entry)
        return added

    def push_entry(self, entry: IndexEntry) -> bool:
        """Upload the entry's objects, then the entry (so a reader never sees dangling names)."""
        assert self.remote is not None
        for obj in entry.objects:
            if self.remote.has(obj.sha256):
                continue
            if not self.ensure_local(obj.sha256):
                raise StoreError(f"object {obj.sha256} is missing from the cache",
                                 str(self.directory))
            with self.store.open(obj.sha256) as src:
                _push_stream(self.remote, src, obj.sha256)
        return self.remote.put_entry(entry)


def _push_stream(remote: RemoteStore, src: Any, sha256: str) -> None:
    """Push a local object; a file-backed source uses the path (one streaming pass)."""
    name = getattr(src, "name", None)
    if isinstance(name, str) and os.path.isfile(name):
        remote.put(name, sha256)
    else:
        remote.put_bytes(src.read())


#: below this size an output is hashed and later copied as before: the copy in ``tmp/`` would
#: cost a file create per small output, and reading a small file twice costs next to nothing
SPOOL_MIN_BYTES = 8 << 20


def spool_outputs(paths: list[str], root: str | None) -> dict[str, tuple[str, int]]:
    """Digests of the large files among ``paths``, each hashed while copied into the store.

    For a run that is about to be recorded under ``root``: each output of
    :data:`SPOOL_MIN_BYTES` or more is read once for both its digest and its stored copy
    (:meth:`ContentStore.spool`), which :meth:`RunCache.store`'s ``put`` then commits by
    renaming. Only where the run's store is the default content store that the
    environment's settings name (another store kind gets nothing: it is hashed as before);
    never raises. Files left out (small, changed while copied, unreadable) are for the
    caller to hash. :func:`sharklib.cache.cas.discard_spooled` drops unused copies.
    """
    large: list[str] = []
    for p in paths:
        with contextlib.suppress(OSError):
            if os.stat(p).st_size >= SPOOL_MIN_BYTES:
                large.append(p)
    if not large:
        return {}
    try:
        settings = RunCache.settings_from_env(root)
        if settings["store"] is not None or settings["read_only"]:
            return {}
        directory = settings["directory"]
        if directory is None:
            from sharklib.config import cache_dir

            directory = cache_dir()
        store = ContentStore(directory)  # its stat cache opens no database unless used
    except Exception:  # the record will say what is wrong with the cache; hashing goes on
        return {}
    out: dict[str, tuple[str, int]] = {}
    for p in large:
        got = store.spool(p)
        if got is not None:
            out[p] = got
    return out

