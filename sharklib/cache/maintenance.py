"""Looking after a cache: list, measure, collect garbage, verify, push and pull.

Each function is what one ``sharklib cache`` sub-command calls. Garbage
collection takes the cache's exclusive lock, so it waits for every run that is
recording or restoring (they hold the shared lock) and never removes what a
live run holds; objects are removed only once no indexed run names them.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sharklib.cache.cas import ContentStore, refuse_link
from sharklib.cache.entry import IndexEntry
from sharklib.cache.index import RunRow
from sharklib.cache.roots import live_objects
from sharklib.cache.runcache import RunCache
from sharklib.cache.store import RemoteUnreachable
from sharklib.errors import StoreError


@dataclass(slots=True)
class Usage:
    """How much the cache holds."""

    runs: int
    objects: int
    stored_bytes: int
    referenced_bytes: int
    unreferenced_objects: int
    saved_seconds: float
    location: str


#: a temporary older than this is a leftover of a killed writer (a live one is seconds old)
TMP_AGE = 3600.0


@dataclass(slots=True)
class GcReport:
    runs_removed: list[str] = field(default_factory=list)
    objects_removed: int = 0
    bytes_freed: int = 0
    dry_run: bool = False
    #: leftover temporaries removed (local ``tmp/``, the remote's ``*.tmp`` of killed pushes)
    temporaries: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass(slots=True)
class RepairReport:
    runs: int = 0
    skipped: list[str] = field(default_factory=list)
    moved_aside: str | None = None
    #: damaged packs (sharklib.cache.pack) moved aside, never deleted
    packs_aside: list[str] = field(default_factory=list)
    #: runs taken out of the index because an object they name was in a damaged pack
    dropped: int = 0


@dataclass(slots=True)
class VerifyReport:
    checked: int = 0
    bad: list[str] = field(default_factory=list)
    dangling: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    #: objects named by runs, absent locally, present on the configured remote (fetched on
    #: first use: the state ``pull --index-only`` leaves), so not dangling
    remote_only: set[str] = field(default_factory=set)
    #: leftover temporaries of killed writers removed (older than the age asked for)
    temporaries: int = 0

    @property
    def ok(self) -> bool:
        return not (self.bad or self.dangling or self.problems)


@dataclass(slots=True)
class SyncReport:
    """What a push or pull did, run by run: each run is counted under exactly one outcome."""

    #: runs sent (push) or fetched (pull)
    entries: int = 0
    #: runs the other side already had, whole (push: the entry and every object it names)
    skipped: int = 0
    #: runs whose entry the remote had but not every object (lost there): the objects sent
    completed: int = 0
    #: runs not sent or fetched: the reason of each is in ``problems``
    failed: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.entries + self.skipped + self.completed + self.failed


def list_runs(cache: RunCache) -> list[RunRow]:
    """Every indexed run, oldest first."""
    return cache.index.rows()


def disk_usage(cache: RunCache) -> Usage:
    rows = cache.index.rows()
    referenced = cache.index.referenced()
    rooted = live_objects(cache.directory, prune=False)
    objects = list(cache.store.list())
    return Usage(runs=len(rows), objects=len(objects),
                 stored_bytes=sum(o.size for o in objects),
                 referenced_bytes=sum(referenced.values()),
                 unreferenced_objects=sum(1 for o in objects if o.sha256 not in referenced
                                          and o.sha256 not in rooted),
                 saved_seconds=sum(r.saved for r in rows), location=str(cache.directory))


def _object_sizes(cache: RunCache, run_ids: list[str]) -> dict[str, dict[str, int]]:
    sizes: dict[str, dict[str, int]] = {}
    for rid in run_ids:
        entry = cache.index.entry(rid)
        sizes[rid] = {o.sha256: o.size for o in entry.objects} if entry else {}
    return sizes


def gc(cache: RunCache, *, max_age: float | None = None, max_size: int | None = None,
       dry_run: bool = False, now: float | None = None, tmp_age: float = TMP_AGE) -> GcReport:
    """Drop runs unused for ``max_age`` seconds, then least recently used ones until the
    objects they name fit in ``max_size`` bytes; then delete objects no run names and no
    live gc root (:mod:`sharklib.cache.roots`: a shell session's states) holds, and
    temporaries older than ``tmp_age`` that killed writers left (here and on the remote)."""
    report = GcReport(dry_run=dry_run)
    now = time.time() if now is None else now
    with cache.exclusive():
        rows = sorted(cache.index.rows(), key=lambda r: r.last_used)
        doomed = [r.run_id for r in rows if max_age is not None and r.last_used < now - max_age]
        if max_size is not None:
            keep = [r.run_id for r in rows if r.run_id not in set(doomed)]
            sizes = _object_sizes(cache, keep)
            held: dict[str, int] = {}
            counts: dict[str, int] = {}
            for rid in keep:
                for sha, size in sizes[rid].items():
                    held[sha] = size
                    counts[sha] = counts.get(sha, 0) + 1
            total = sum(held.values())
            for rid in keep:  # least recently used first
                if total <= max_size:
                    break
                doomed.append(rid)
                for sha, size in sizes[rid].items():
                    counts[sha] -= 1
                    if counts[sha] == 0:
                        total -= size
        report.runs_removed = doomed
        if not dry_run:
            cache.index.remove(doomed)
            keys = {r.run_id: r.key for r in rows}
            cache.forget_entries([(keys[rid], rid) for rid in doomed if rid in keys])
        referenced = cache.index.referenced()
        # objects held by something other than a run (a shell session's states): gc roots
        rooted = live_objects(cache.directory, prune=not dry_run)
        dropping = set(doomed)
        for info in list(cache.store.list()):
            if info.sha256 in rooted:
                continue
            still = info.sha256 in referenced
            if dry_run and still:
                still = any(rid not in dropping for rid in cache.index.runs_referencing(info.sha256))
            if still:
                continue
            report.objects_removed += 1
            report.bytes_freed += info.size
            if not dry_run:
                cache.store.delete(info.sha256)
        if not dry_run and isinstance(cache.store, ContentStore):
            # partial writes of killed processes (none is live now: gc holds the lock)
            report.temporaries += cache.store.clean_tmp()
    if not dry_run:
        report.temporaries += _remote_leftovers(cache, tmp_age, now, report.problems)
    return report


def _remote_leftovers(cache: RunCache, tmp_age: float, now: float, problems: list[str]) -> int:
    """Remove the remote's ``*.tmp`` older than ``tmp_age`` (pushes killed mid-upload).

    Other machines push to the remote without our lock, so only an age tells a leftover
    from an upload in progress. An unreachable remote is one problem line, not an error.
    """
    if not cache.has_remote or cache.remote is None:
        return 0
    try:
        return cache.remote.clean_tmp(tmp_age, now)
    except StoreError as exc:
        problems.append(str(exc))
        return 0


def verify(cache: RunCache, *, full: bool = True,
           progress: Callable[[int], None] | None = None, tmp_age: float = TMP_AGE,
           now: float | None = None) -> VerifyReport:
    """Check every object against its digest (quarantining bad ones) and every index entry;
    remove temporaries older than ``tmp_age`` left by killed writers, here and on the remote."""
    report = VerifyReport()
    now = time.time() if now is None else now
    if isinstance(cache.store, ContentStore):
        report.temporaries += cache.store.clean_tmp(older_than=now - tmp_age)
    # a remote that does not answer here is said below if it matters (objects only there)
    report.temporaries += _remote_leftovers(cache, tmp_age, now, [])
    with cache.shared():
        for info in list(cache.store.list()):
            report.checked += 1
            if not cache.store.verify(info.sha256, full=full):
                cache.store.quarantine(info.sha256)
                report.bad.append(info.sha256)
            if progress is not None:
                progress(report.checked)
        try:
            entries = list(cache.index.entries())
        except StoreError as exc:
            report.problems.append(str(exc))
            entries = []
        missing = [(entry.run_id, obj.sha256) for entry in entries for obj in entry.objects
                   if not cache.store.has(obj.sha256)]
    on_remote: dict[str, bool] = {}
    if missing and cache.has_remote:
        try:
            for _, sha in missing:
                if sha not in on_remote:
                    on_remote[sha] = cache.remote is not None and cache.remote.has(sha)
        except StoreError as exc:  # unreachable: what it did not answer for counts as dangling
            report.problems.append(str(exc))
    for run_id, sha in missing:
        if on_remote.get(sha):
            report.remote_only.add(sha)
        else:
            report.dangling.append((run_id, sha))
    return report


def push(cache: RunCache, run_ids: Collection[str] | None = None) -> SyncReport:
    """Upload every local run (objects first, then its entry) the remote lacks.

    ``run_ids``: only these runs (what ``record`` hands to a short-lived
    ``sharklib cache push --run ID`` when a run is recorded at interpreter exit).
    """
    if cache.remote is None:
        raise StoreError("no remote configured (set SHARKLIB_CACHE_REMOTE or "
                         "SHARKLIB_CACHE to a URL)", str(cache.directory))
    if cache.push_refused:
        raise StoreError(cache.push_refused, cache.remote_url or str(cache.directory))
    report = SyncReport()
    if run_ids is not None:
        wanted = set(run_ids)
        entries = [e for e in (cache.index.entry(r) for r in sorted(wanted)) if e is not None]
        missing = wanted - {e.run_id for e in entries}
        report.problems.extend(f"{cache.directory}: no run {r} in the cache"
                               for r in sorted(missing))
        report.failed += len(missing)
        known = {e.run_id for e in entries
                 if any(p.endswith(f"/{e.run_id}.json.zst") for p in cache.remote.entry_paths(e.key))}
    else:
        entries = None
        known = {p.rsplit("/", 1)[-1].removesuffix(".json.zst")
                 for p in cache.remote.entry_paths()}
    # a run is "already there" only when the remote can serve it: its entry and every object
    present = cache.remote.object_names() if known else set()
    with cache.shared():
        for entry in cache.index.entries() if entries is None else entries:
            whole = entry.run_id in known
            if whole and all(o.sha256 in present for o in entry.objects):
                report.skipped += 1
                continue
            try:
                cache.push_entry(entry)
            except RemoteUnreachable:
                raise  # once, not once per run (each after its own timeout)
            except StoreError as exc:
                report.problems.append(str(exc))
                report.failed += 1
            except OSError as exc:  # a share that refuses the write (read-only, full, a file
                # where a directory belongs): the run stays local; said, never "already there"
                reason = exc.strerror or str(exc) or type(exc).__name__
                report.problems.append(f"{cache.remote.url}: the remote refused the upload "
                                       f"({reason})")
                report.failed += 1
            else:
                if whole:
                    report.completed += 1
                else:
                    report.entries += 1
    return report


def pull(cache: RunCache, *, objects: bool = True) -> SyncReport:
    """Fetch every remote entry the local index lacks (and, by default, its objects)."""
    if cache.remote is None:
        raise StoreError("no remote configured (set SHARKLIB_CACHE_REMOTE or "
                         "SHARKLIB_CACHE to a URL)", str(cache.directory))
    report = SyncReport()
    with cache.shared():
        for path in cache.remote.entry_paths():
            run_id = path.rsplit("/", 1)[-1].removesuffix(".json.zst")
            if cache.index.has_run(run_id):
                report.skipped += 1
                continue
            try:
                entry: IndexEntry = cache.remote.get_entry(path)
                _check_signed_part(entry, cache.remote.describe())
                if objects:
                    for obj in entry.objects:
                        if not cache.ensure_local(obj.sha256):
                            raise StoreError(f"object {obj.sha256} missing from the remote",
                                             cache.remote.describe())
                cache.index.add(entry)
                report.entries += 1
            except RemoteUnreachable:
                raise  # once, not once per run (each after its own timeout)
            except StoreError as exc:
                report.problems.append(str(exc))
                report.failed += 1
    return report


def _check_signed_part(entry: IndexEntry, where: str) -> None:
    """Refuse an entry whose readable part differs from what its attestation signs.

    Anyone who can write a shared remote can edit an entry's readable part (its command,
    user, inputs); the local index then showed the edit in ``log``/``uses`` beside the
    key that signed the original. Only the agreement is checked here (no key is loaded):
    a reuse still proves the signature (runner/proof.py), and queries judge the signer.
    """
    import base64
    import json

    envelope = entry.attestation
    if not isinstance(envelope, dict):
        return  # recorded before entries were signed: never reused, judged by its sidecar
    try:
        statement = json.loads(base64.b64decode(str(envelope.get("payload", "")),
                                                validate=True))
        signed = statement["predicate"]["entry"]
    except (ValueError, KeyError, TypeError, RecursionError):
        signed = None

    def canonical(data: Any) -> str:
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    if signed is None or canonical(signed) != canonical(entry.signed_part()):
        raise StoreError(f"run {entry.run_id[:12]} differs from what its attestation signs; "
                         "not pulled", where)


def repair(**settings: Any) -> RepairReport:
    """Rebuild the run index from the entries kept beside it (``pack.sqlite``, and the
    ``runs/<key>/<id>.json`` files of an older sharklib); set a damaged pack aside.

    ``settings`` are :meth:`RunCache.settings_from_env`'s. A damaged ``index.sqlite`` (with
    its ``-wal``/``-shm``) is moved aside, never deleted; a sound one is kept and completed.
    Each kept entry is parsed as untrusted input and indexed when every object it names is
    in the store (reuse still requires its signature: runner/proof.py). Runs pulled from a
    remote are not kept as files here: the remote serves them again on the next lookup.
    A damaged pack is moved aside like the index; the runs naming an object that was in a
    damaged objects pack are taken out of the index (they would only fail to restore).
    """
    from sharklib.cache.pack import PACK, Pack
    from sharklib.config import cache_dir

    report = RepairReport()
    directory = Path(settings.get("directory") or cache_dir())
    stamp = time.strftime("%Y%m%d-%H%M%S")
    objects_lost = False
    pack = Pack(directory / PACK)  # (a store elsewhere checks its own: its objects stay)
    if not pack.sound():
        report.packs_aside.append(pack.move_aside(stamp))
        objects_lost = True
    index = directory / "index.sqlite"
    if index.exists() and not _index_sound(index):
        aside = directory / f"index.sqlite.damaged-{stamp}"
        for suffix in ("", "-wal", "-shm"):
            src = directory / f"index.sqlite{suffix}"
            if src.exists() and not src.is_symlink():
                os.replace(src, f"{aside}{suffix}")
        report.moved_aside = str(aside)
    with RunCache(**settings) as cache, cache.exclusive():
        if objects_lost:
            _drop_runs_without_objects(cache, report)
        runs = directory / "runs"
        refuse_link(str(runs), str(directory))
        kept: list[tuple[str, bytes | None]] = list(cache.kept.entries())
        for path in sorted(runs.glob("*/*.json")) if runs.is_dir() else []:
            if path.is_symlink() or path.parent.is_symlink():
                report.skipped.append(f"{path}: a symlink, not followed")
                continue
            try:
                kept.append((str(path), path.read_bytes()))
            except OSError as exc:
                report.skipped.append(f"{path}: {exc.strerror}")
        for where, data in kept:
            if data is None:
                report.skipped.append(f"{cache.kept.path} (run {where}): cannot be decoded")
                continue
            try:
                entry = IndexEntry.from_json(data, where)
            except StoreError as exc:
                report.skipped.append(str(exc))
                continue
            gone = [o.sha256 for o in entry.objects if not cache.store.has(o.sha256)]
            if gone:
                report.skipped.append(f"{where}: object {gone[0]} is not in the store")
                continue
            if cache.index.add(entry):
                report.runs += 1
    return report


def _drop_runs_without_objects(cache: RunCache, report: RepairReport) -> None:
    """Take out of the index the runs naming an object the store no longer has."""
    try:
        entries = list(cache.index.entries())
    except StoreError as exc:
        report.skipped.append(str(exc))
        return
    doomed = [e for e in entries if any(not cache.store.has(o.sha256) for o in e.objects)]
    if doomed:
        report.dropped = cache.index.remove([e.run_id for e in doomed])
        cache.forget_entries([(e.key, e.run_id) for e in doomed])


def _index_sound(path: Path) -> bool:
    import sqlite3

    from sharklib.sqlitedb import is_damaged

    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            return bool(db.execute("PRAGMA quick_check").fetchone() == ("ok",))
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        # locked by a busy writer past the wait is no damage: never a reason to move it aside
        return not is_damaged(exc)
    except sqlite3.Error:
        return False


_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_AGES = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_size(text: str) -> int:
    """``500M``, ``10G``, ``1234`` -> bytes."""
    t = text.strip().lower().removesuffix("ib").removesuffix("b")
    unit = t[-1:] if t[-1:] in _UNITS else ""
    try:
        value = float(t[: len(t) - len(unit)])
    except ValueError:
        value = math.nan
    # a negative budget (or nan, inf) would make gc remove every run: refused like "banana"
    if not (math.isfinite(value) and value >= 0):
        raise StoreError(f"not a size: {text!r} (try 500M or 10G)") from None
    return int(value * _UNITS[unit])


def parse_age(text: str) -> float:
    """``30d``, ``12h``, ``90m``, ``2w`` -> seconds."""
    t = text.strip().lower()
    unit = t[-1:] if t[-1:] in _AGES else "s"
    try:
        value = float(t.rstrip("smhdw"))
    except ValueError:
        value = math.nan
    # a negative age puts the cut-off in the future: every run would count as unused
    if not (math.isfinite(value) and value >= 0):
        raise StoreError(f"not an age: {text!r} (try 30d or 12h)") from None
    return value * _AGES[unit]
