"""``--explain``: would this step be reused, and if not, why? Nothing is run or restored.

The answer comes from the one reuse decision (:func:`sharklib.runner.decide.judge_run`),
applied to the same candidates, in the same order, as the run itself
(:func:`sharklib.runner.reuse.check`): the newest past run with this run key
first, local then the remote. When no past run has this key, the nearest
recorded run (the same command line, else the same code) is compared with this
one's key parts, and the first difference is named: that is what a teammate
whose venv or checkout is elsewhere needs to see.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sharklib.config import ENV_NO_CACHE, ENV_RERUN, flag
from sharklib.model import RunKeyParts
from sharklib.model.runkey import first_difference

if TYPE_CHECKING:
    from sharklib.cache.entry import IndexEntry
    from sharklib.cache.runcache import RunCache

NO_PAST_RUN = "no past run with this key"
#: how many recorded runs are compared with this key at most, looking for the nearest
_NEAREST_SCAN = 5000


@dataclass(slots=True)
class Explanation:
    """The verdict on one step: ``reuse`` or ``run``, and the reason in words."""

    reusable: bool
    reason: str
    run_id: str | None = None
    when: float | None = None

    def text(self, label: str = "") -> str:
        what = f"{label}: " if label else ""
        if self.reusable:
            stamp = "" if self.when is None else \
                " of " + _dt.datetime.fromtimestamp(self.when).strftime("%Y-%m-%d %H:%M")
            rid = f" {self.run_id[:12]}" if self.run_id else ""
            return f"sharklib: {what}would be reused (run{rid}{stamp}; {self.reason})"
        return f"sharklib: {what}would run: {self.reason}"


def _as_recorded(parts: RunKeyParts) -> dict[str, Any]:
    """``parts`` as an entry keeps them: the URLs of the command line redacted."""
    from sharklib.model.run import redact_argv

    mine = parts.to_dict()
    mine["argv"] = redact_argv(list(parts.argv))
    return mine


def same_command_difference(cache: RunCache, parts: RunKeyParts) -> str | None:
    """The first key difference to the newest recorded run of the same command line, if any."""
    import json

    mine = _as_recorded(parts)
    needle = '"argv":' + json.dumps(mine["argv"], separators=(",", ":"))
    try:
        found = cache.index.entries_containing(needle)
    except Exception:  # only a hint is lost
        return None
    for entry in found:
        theirs = entry.key_parts
        if theirs and theirs.get("argv") == mine["argv"]:
            diff = first_difference(theirs, mine)
            if diff is not None:
                return diff
    return None


def _nearest(cache: RunCache, parts: RunKeyParts) -> str | None:
    """The first key difference to the nearest recorded run (same argv, else same code)."""
    quick = same_command_difference(cache, parts)
    if quick is not None:
        return quick
    mine = _as_recorded(parts)
    best: tuple[int, str] | None = None
    scanned = 0
    for entry in reversed(list(_entries(cache))):
        scanned += 1
        if scanned > _NEAREST_SCAN:
            break
        theirs = entry.key_parts
        if not theirs:
            continue
        score = (2 if theirs.get("argv") == mine["argv"] else 0) + \
            (1 if theirs.get("code") == mine["code"] else 0)
        if score == 0:
            continue
        diff = first_difference(theirs, mine)
        if diff is not None and (best is None or score > best[0]):
            best = (score, diff)
            if score == 3:
                break
    return None if best is None else best[1]


def _entries(cache: RunCache) -> list[IndexEntry]:
    try:
        return list(cache.index.entries())
    except Exception:  # a damaged entry only loses the hint
        return []


def explain(parts: RunKeyParts, *, root: str, cwd: str, cache: RunCache | None = None,
            policy: str | None = None, pins: Mapping[str, str] | None = None) -> Explanation:
    """Would a run with key ``parts`` be reused here? Never runs, restores or raises."""
    if flag(ENV_NO_CACHE):
        return Explanation(False, "cache disabled (--no-cache / SHARKLIB_NO_CACHE)")
    if flag(ENV_RERUN):
        return Explanation(False, "forced (--rerun / SHARKLIB_RERUN)")
    from sharklib.cache.runcache import RunCache
    from sharklib.runner import decide, proof

    own = cache is None
    try:
        root = os.path.abspath(root)
        if cache is None:
            cache = RunCache.from_env(root)
        key = parts.digest()
        first: str | None = None
        local = cache.candidates(key)
        for batch in (local, None):
            try:
                entries = batch if batch is not None else cache.pull_candidates(key)
            except Exception as exc:  # an unreachable remote: say what the local cache says
                first = first or f"{NO_PAST_RUN} (remote not reachable: {exc})"
                continue
            for entry in entries:
                verdict = decide.judge_entry(entry, root, cache, policy, pins, cwd=cwd)
                if not isinstance(verdict, str):
                    unproved = proof.why_not(entry, key)  # what a reuse restores is signed
                    if unproved is not None:
                        first = first or unproved
                        continue
                    n = verdict.checked
                    return Explanation(True, f"{n} recorded file{'s' if n != 1 else ''} "
                                             f"unchanged", entry.run_id, entry.started)
                first = first or verdict
        if first is not None:
            return Explanation(False, first)
        diff = _nearest(cache, parts)
        return Explanation(False, NO_PAST_RUN + (f"; nearest past run: {diff}" if diff else ""))
    except Exception as exc:
        return Explanation(False, f"cannot look up past runs ({type(exc).__name__}: {exc})")
    finally:
        if own and cache is not None:
            cache.close()


def explain_key(parts: RunKeyParts, *, root: str, cwd: str, label: str = "",
                **kwargs: Any) -> str:
    """The one line ``--explain`` prints."""
    return explain(parts, root=root, cwd=cwd, **kwargs).text(label)
