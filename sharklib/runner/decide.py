"""The reuse decision: does a past run with this run key count as this one?

Pure questions about facts on disk and in the environment, nothing written:
every input and local module the past run recorded still has its recorded
digest (through the stat cache: an unchanged file costs one ``stat``), its
imported distributions still have the recorded versions, and the trust policy
accepts its downloads. The restore (:mod:`sharklib.runner.restore`) and the
record (:mod:`sharklib.runner.record`) are separate modules so each can change
without touching the others.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sharklib.model import Download
from sharklib.runner.downloads import default_policy, judge

if TYPE_CHECKING:
    from sharklib.cache.index import IndexEntry
    from sharklib.cache.runcache import RunCache


def rebase(path: str, root: str) -> str:
    """A recorded path (relative to the recording's root, or absolute) on this machine."""
    return path if path.startswith("/") else f"{root}/{path}"



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


# -- inputs and downloads ----------------------------------------------------------------
def inputs_unchanged(entry: IndexEntry, root: str, cache: RunCache) -> tuple[bool, int]:
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




def accept(entry: IndexEntry, root: str, cache: RunCache, policy: str,
           pins: Mapping[str, str] | None) -> tuple[int, dict[str, int]] | None:
    """Does ``entry`` count as this run? (inputs checked, downloads by how trusted), or None."""
    ok, checked = inputs_unchanged(entry, root, cache)
    data = entry.run_data()
    if not ok or distributions_changed(data) is not None:
        return None
    downloads = downloads_trusted(data, policy, pins)
    if downloads is None:
        return None
    return checked, downloads
