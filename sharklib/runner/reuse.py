"""Verifying-trace reuse: prove a run is already done, restore its results, replay it.

Two calls serve the capture path:

* :func:`check` before a script's body runs: look up past successful runs
  with the same run key (newest first, local then the remote), and take the
  first that :func:`sharklib.runner.decide.accept` accepts (every recorded
  input and local module still has its recorded digest, imported distributions
  their recorded versions, downloads trusted by policy); its outputs that are
  missing or differ are restored (:mod:`sharklib.runner.restore`), and the
  caller gets the recorded stdout/stderr to replay, the exit status, and the
  one-line report.
* :func:`record` after a run (:mod:`sharklib.runner.record`): store its
  outputs and streams, then index it.

Neither ever raises into the user's script: a failure becomes one
``sharklib: warning: ...`` line and the run simply happens (or is not cached).
A corrupt object is quarantined by the store and the run recomputed.

This module is the orchestration; the decision, the restore and the record
live in their own modules and are re-exported here for existing callers.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping

from sharklib.cache.runcache import RunCache
from sharklib.cache.store import CacheReadOnly, RemoteUnreachable
from sharklib.config import ENV_NO_CACHE, ENV_RERUN, flag
from sharklib.errors import StoreError
from sharklib.model import RunKeyParts
from sharklib.runner import decide, restore
from sharklib.runner.decide import (  # noqa: F401  (re-exported)
    distributions_changed,
    distributions_differ,
    downloads_trusted,
    rebase,
)
from sharklib.runner.downloads import default_policy
from sharklib.runner.notices import Warn, stderr_warn, unreachable_remotes
from sharklib.runner.record import build_entry, note_failed, push_in_child, record  # noqa: F401
from sharklib.runner.restore import (  # noqa: F401  (re-exported)
    ReuseDecision,
    checked_relpath,
    replay,
    reuse_message,
    safe_destination,
)


def check(key_parts: RunKeyParts, *, cwd: str, root: str, cache: RunCache | None = None,
          policy: str | None = None, pins: Mapping[str, str] | None = None,
          warn: Warn | None = None,
          environ: Mapping[str, str] | None = None) -> ReuseDecision | None:
    """A past run that can stand in for this one (outputs already restored), or None.

    ``cwd`` is accepted for symmetry with the key; what matters is ``root``,
    against which recorded relative paths are rebased. Honors
    ``SHARKLIB_NO_CACHE`` and ``SHARKLIB_RERUN``. Never raises.
    """
    warn = warn or stderr_warn
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
                accepted = decide.accept(entry, root, cache, policy, pins, environ)
                if accepted is not None:
                    decision = restore.restore(entry, root, cache, started=started,
                                               checked=accepted[0], downloads=accepted[1],
                                               policy=policy, pins=pins, warn=warn,
                                               environ=environ)
                    if decision is not None:  # None: the entry proved nothing (runner/proof.py)
                        return decision
        return None
    except CacheReadOnly as exc:
        warn(str(exc))  # the same line as record's: printed once per run
        return None
    except RemoteUnreachable as exc:
        # said once: record() then keeps the new run locally without waiting on the remote again
        unreachable_remotes.add(str(cache.remote_url) if cache is not None else "")
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


