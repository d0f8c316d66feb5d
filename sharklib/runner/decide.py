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
import os
from collections.abc import Container, Mapping, Sequence

from sharklib.model import Download
from sharklib.runner.downloads import default_policy, judge

TYPE_CHECKING = False
if TYPE_CHECKING:  # no ``typing`` at run time (a reuse from its memo decides here)
    from typing import Any

    from sharklib.cache.entry import IndexEntry
    from sharklib.cache.runcache import RunCache
    from sharklib.hashing.statcache import StatCache


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


# -- probes ----------------------------------------------------------------------------------
def kind_now(path: str) -> int:
    """What ``path`` is now, as a probe kind bit (a symlink counts as what it points to).

    Any error is "absent": ``os.path.exists`` answers False for it too.
    """
    from sharklib.model.run import probe_kind

    try:
        return probe_kind(os.stat(path).st_mode)
    except (OSError, ValueError):
        return probe_kind(None)


_SAW = {"absent": "absent", "file": "as a file", "dir": "as a directory",
        "other": "as a special file", "file|dir|other": "present",
        "absent|dir|other": "not as a file", "absent|file|other": "not as a directory"}


def probe_reason(path: str, recorded: str, now: int, cwd: str | None = None) -> str | None:
    """Why a probed path no longer answers as the recorded run saw it (None: it does).

    One line a user can act on: ``out.txt now exists; the recorded run saw it absent``.
    """
    from sharklib.model.run import PROBE_ABSENT, PROBE_DIR, PROBE_FILE, probe_mask

    try:
        mask = probe_mask(recorded)
    except ValueError:
        mask = 0  # a kind this sharklib does not know: never matches
    if mask & now:
        return None
    name = shown(path, cwd)
    if now == PROBE_ABSENT:
        state = "no longer exists"
    elif mask == PROBE_ABSENT:
        state = "now exists" if now == PROBE_FILE else \
            "now exists as a directory" if now == PROBE_DIR else "now exists (a special file)"
    else:
        state = "is now a file" if now == PROBE_FILE else \
            "is now a directory" if now == PROBE_DIR else "is now a special file"
    return f"{name} {state}; the recorded run saw it {_SAW.get(recorded, recorded)}"


# -- inputs and downloads ----------------------------------------------------------------
def shown(path: str, cwd: str | None) -> str:
    """``path`` as a user would type it from ``cwd`` (relative when inside it)."""
    if cwd is None or not path.startswith("/"):
        return path
    rel = os.path.relpath(path, cwd)
    if rel == ".." or rel.startswith("../"):
        return path
    return rel + "/" if path.endswith("/") and rel != "." else rel  # a listed directory


def file_reason(path: str, recorded: str, now: str | None, *, code: bool,
                cwd: str | None = None) -> str | None:
    """Why a recorded file no longer matches, in words a user can act on (None: it matches)."""
    if now == recorded:
        return None
    name = shown(path, cwd)
    if code or path.endswith(".py"):  # a stage folds its Python modules into its inputs
        return f"code changed: {name}" if now is not None else f"code missing: {name}"
    if now is None:
        return f"input {name} missing (recorded {recorded[:4]}…)"
    return f"input {name} changed (recorded {recorded[:4]}…, now {now[:4]}…)"


#: what :func:`sharklib.runner.downloads.judge` says of an untrusted download, in words
_DOWNLOAD_WORDS = {
    "no validator": "not revalidated: no ETag/Last-Modified",
    "not http": "not revalidated: not an HTTP URL",
    "unreachable": "not revalidated: the server did not answer",
    "changed": "changed on the server",
    "not pinned": "not pinned (download policy strict)",
    "pin differs": "differs from its pin",
}


def download_reason(downloads: list[Any], policy: str | None = None,
                    pins: Mapping[str, str] | None = None) -> tuple[str | None, dict[str, int]]:
    """(why a recorded download is not trusted, or None; how each trusted one is, counted)."""
    policy = policy or default_policy()
    counts: dict[str, int] = {}
    for raw in downloads or []:
        dl = Download.from_dict(raw)
        verdict = judge(dl, policy, pins)
        if not verdict.trusted:
            words = _DOWNLOAD_WORDS.get(verdict.how, verdict.how)
            return f"download {dl.url} {words}", counts
        counts[verdict.how] = counts.get(verdict.how, 0) + 1
    return None, counts


def downloads_trusted(run: dict[str, Any], policy: str | None = None,
                      pins: Mapping[str, str] | None = None) -> dict[str, int] | None:
    """How each download of ``run`` is trusted (counts by reason), or None if one is not."""
    reason, counts = download_reason(run.get("downloads") or [], policy, pins)
    return None if reason is not None else counts


def environment_reason(distributions: Mapping[str, Any], downloads: list[Any],
                       policy: str | None = None,
                       pins: Mapping[str, str] | None = None) -> str | None:
    """Why the past run's environment or downloads do not count now (None: they do)."""
    dist = distributions_differ(distributions) if distributions else None
    if dist is not None:
        return f"environment changed: {dist}"
    if downloads:
        return download_reason(downloads, policy, pins)[0]
    return None


def signer_reason(run_id: str, signers: Sequence[str], trusted: Container[str]) -> str | None:
    """Why a past run's entry cannot prove anything to this user, or None.

    ``signers`` are the key ids its attestation names, ``trusted`` those of the keys the
    user trusts for reuse (:func:`sharklib.runner.proof.reuse_keys`). Whether a named
    signature actually verifies is :func:`sharklib.runner.proof.prove`'s question.
    """
    if not signers:
        return f"past run {run_id[:12]} is not signed (recorded by an older sharklib)"
    if not any(k in trusted for k in signers):
        who = ", ".join(k[:16] for k in signers)
        return (f"past run {run_id[:12]} is signed by {who}, not trusted for reuse "
                f"([reuse] trusted in trust.toml)")
    return None


class Accepted:
    """A past run that counts: how many recorded files were checked, how downloads are trusted."""

    __slots__ = ("checked", "downloads")

    def __init__(self, checked: int, downloads: dict[str, int]) -> None:
        self.checked = checked
        self.downloads = downloads


def judge_run(inputs: list[tuple[str, str]], modules: list[tuple[str, str]],
              distributions: Mapping[str, Any], downloads: list[Any], *, root: str,
              now: Mapping[str, tuple[str, Any] | tuple[str, Any, Any]], policy: str | None,
              pins: Mapping[str, str] | None, cwd: str | None = None,
              run_id: str = "", signers: Sequence[str] | None = None,
              trusted: Container[str] | None = None,
              probes: Sequence[tuple[str, str]] = (),
              variables: Mapping[str, str] | None = None,
              environ: Mapping[str, str] | None = None) -> Accepted | str:
    """THE reuse decision, for the planner, the run and ``--explain`` alike.

    ``inputs``/``modules`` are the recorded ``(path, sha256)`` (relative to
    ``root`` when inside it), ``now`` the digests of those files on disk now
    (absolute path to ``(sha256, ...)``; a file absent there is missing);
    ``probes`` the recorded ``(path, answer)`` of files the run asked about
    without reading them, each looked at now (one ``stat``); ``variables`` the
    environment variables the past run's own code read (name to
    :func:`sharklib.common.envread.value_digest`, compared with ``environ``: the
    environment the step will run with, this process's by default; a pipeline worker
    deciding for a stage passes the stage's). The answer is :class:`Accepted`, or the first reason, in words,
    why the past run does not count: the first changed input, then probe, then code,
    then variable, then environment,
    then downloads, then (when ``trusted`` is given) an entry whose attestation
    names no key trusted for reuse (:func:`signer_reason`). The signature itself is
    checked by :func:`sharklib.runner.proof.prove` before anything is restored.
    """
    for path, sha in inputs:
        full = rebase(path, root)
        got = now.get(full)
        reason = file_reason(full, sha, None if got is None else got[0], code=False, cwd=cwd)
        if reason is not None:
            return reason
    for path, answer in probes:
        full = rebase(path, root)
        reason = probe_reason(full, answer, kind_now(full), cwd)
        if reason is not None:
            return reason
    for path, sha in modules:
        full = rebase(path, root)
        got = now.get(full)
        reason = file_reason(full, sha, None if got is None else got[0], code=True, cwd=cwd)
        if reason is not None:
            return reason
    if variables:
        from sharklib.common.envread import variable_reason

        for name, seen in variables.items():
            reason = variable_reason(name, seen, os.environ if environ is None else environ)
            if reason is not None:
                return reason
    dist = distributions_differ(distributions) if distributions else None
    if dist is not None:
        return f"environment changed: {dist}"
    reason, counts = download_reason(downloads, policy, pins)
    if reason is not None:
        return reason
    if trusted is not None:
        reason = signer_reason(run_id, signers or (), trusted)
        if reason is not None:
            return reason
    return Accepted(len(inputs) + len(modules) + len(probes), counts)


def judge_entry(entry: IndexEntry, root: str, cache: RunCache, policy: str | None,
                pins: Mapping[str, str] | None, cwd: str | None = None,
                environ: Mapping[str, str] | None = None) -> Accepted | str:
    """:func:`judge_run` for an index entry, the digests asked of the stat cache."""
    return judge_with(entry, root, cache.statcache, policy, pins, cwd, environ=environ)


def judge_with(entry: IndexEntry, root: str, statcache: StatCache | None, policy: str | None,
               pins: Mapping[str, str] | None, cwd: str | None = None, *,
               trusted: Container[str] | None = None,
               environ: Mapping[str, str] | None = None) -> Accepted | str:
    """:func:`judge_entry` with the stat cache itself (``None`` will do for an entry that
    recorded no input or module: the reuse memo's lookup opens none then), and the ids of
    the keys trusted for reuse when the caller has them already."""
    from sharklib.cache.facts import claimed_signers

    if trusted is None:
        from sharklib.runner.proof import trusted_key_ids

        trusted = trusted_key_ids()
    pairs = [*entry.inputs, *entry.modules]
    if pairs:
        if statcache is None:
            from sharklib.hashing import StatCache

            statcache = StatCache()
        now = statcache.digests([rebase(p, root) for p, _ in pairs])
    else:
        now = {}
    data = entry.run_data()
    return judge_run(entry.inputs, entry.modules,
                     (data.get("environment") or {}).get("distributions") or {},
                     data.get("downloads") or [], root=root, now=now, policy=policy, pins=pins,
                     cwd=cwd, run_id=entry.run_id, signers=claimed_signers(entry.attestation),
                     trusted=trusted, probes=entry.probes,
                     variables=data.get("variables_read"), environ=environ)


def accept(entry: IndexEntry, root: str, cache: RunCache, policy: str,
           pins: Mapping[str, str] | None,
           environ: Mapping[str, str] | None = None) -> tuple[int, dict[str, int]] | None:
    """Does ``entry`` count as this run? (files checked, downloads by how trusted), or None."""
    got = judge_entry(entry, root, cache, policy, pins, environ=environ)
    return None if isinstance(got, str) else (got.checked, got.downloads)
