"""What earlier runs of a pipeline taught us, kept between runs.

Per stage (by signature): the paths it wrote (declared or observed by
capture) and the inputs capture saw it read, so the next plan links stages
through undeclared reads and still knows who writes a file that now exists.
Per import: the digest of the bytes first fetched, for ``pipeline pin``.
Per stage that last finished well: which cached run its outputs on disk came
from, and their stat signatures then (``placed``), so a re-run can skip a reused
stage only when its outputs are still exactly the ones that run left.

Kept under the cache directory, keyed by the document's absolute path; written
atomically under a file lock. A corrupt state file is ignored with a note (it
is a cache of observations, never trusted for anything but ordering).
"""

from __future__ import annotations

import json
import os
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sharklib.config import cache_dir, make_dirs
from sharklib.hashing import atomic_write
from sharklib.model.runkey import sha256_constructor
from sharklib.pipeline.bulk import paused_gc


def _well_formed(v: Any) -> bool:
    """``{"writes": [str...], "inputs": [str...]}`` exactly: kept as parsed, no copy."""
    if type(v) is not dict or len(v) != 2:
        return False
    w, i = v.get("writes"), v.get("inputs")
    if type(w) is not list or type(i) is not list:
        return False
    try:
        "".join(w)  # a TypeError names any item that is not a string, at C speed
        "".join(i)
    except TypeError:
        return False
    return True


def _unpacked(raw: bytes) -> bytes:
    """The state's JSON: kept zlib-compressed (a 10,000-stage map's state is 3.5 MB of JSON,
    ~0.3 MB deflated), or plain JSON as an older sharklib wrote it. Raises ValueError."""
    if raw[:1] == b"{":
        return raw
    try:
        return zlib.decompress(raw)
    except zlib.error as exc:
        raise ValueError(str(exc)) from None


def _coerced(v: Any) -> dict[str, list[str]]:
    return {"writes": [str(p) for p in v.get("writes", [])],
            "inputs": [str(p) for p in v.get("inputs", [])]}


#: a signature taken this soon after a file's last change could miss a write in the same clock tick
_SETTLE_NS = 20_000_000

#: a stage's record in ``placed``: ``[run_id, {output path: stat signature}]``
Placed = list[Any]


def _stat(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except (OSError, ValueError):
        return None


def stat_sig(path: str) -> str | None:
    """The stat signature of a file (None if it is not there)."""
    st = _stat(path)
    if st is None:
        return None
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"


def placed_records(finished: dict[str, tuple[str, list[str]]]) -> dict[str, Placed]:
    """``[run_id, signatures]`` per stage signature, for stages that just finished.

    ``finished`` maps a stage's signature to the run standing for it and that
    run's outputs. A file changed within a clock tick of being looked at could
    change again under the same signature; waiting out that tick (once, a few
    milliseconds at most) makes a matching signature later mean "untouched since".
    """
    newest = 0
    for _, outputs in finished.values():
        for o in outputs:
            st = _stat(o)
            if st is not None:
                newest = max(newest, st.st_mtime_ns, st.st_ctime_ns)
    wait = newest + _SETTLE_NS - time.time_ns()
    if wait > 0:
        time.sleep(min(wait, _SETTLE_NS) / 1e9)
    return {k: [run_id, {o: sig for o in outputs if (sig := stat_sig(o)) is not None}]
            for k, (run_id, outputs) in finished.items()}


def in_place(record: Placed | None, run_id: str | None, outputs: list[str]) -> bool:
    """Are ``outputs`` exactly what the run ``run_id`` left when this pipeline last placed them?"""
    if record is None or run_id is None or record[0] != run_id:
        return False
    sigs = record[1]
    return all(sigs.get(o) is not None and sigs.get(o) == stat_sig(o) for o in outputs)


def _placed_ok(v: Any) -> bool:
    return (type(v) is list and len(v) == 2 and type(v[0]) is str and type(v[1]) is dict
            and all(type(x) is str for x in v[1].values()))


def state_dir(document: Path) -> Path:
    key = sha256_constructor()(os.fsencode(str(document.absolute()))).hexdigest()[:24]
    return cache_dir() / "pipelines" / key


@dataclass(slots=True)
class PipelineState:
    path: Path
    stages: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    imports: dict[str, str] = field(default_factory=dict)
    #: by stage signature: the run whose outputs are on disk, and their signatures then
    placed: dict[str, Placed] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, document: Path) -> PipelineState:
        path = state_dir(document) / "state.json"
        st = cls(path=path)
        try:
            raw = path.read_bytes()
        except OSError:
            return st
        try:
            with paused_gc():  # 10,000 stages are 30,000 objects that all stay alive
                data = json.loads(_unpacked(raw))
                stages = data["stages"]
                imports = data["imports"]
                if not isinstance(stages, dict) or not isinstance(imports, dict):
                    raise TypeError("bad shape")
                st.stages = {k: v if _well_formed(v) else _coerced(v) for k, v in stages.items()}
                st.imports = {str(k): str(v) for k, v in imports.items()}
                placed = data.get("placed") or {}
                # an unreadable record only costs the runner a look at that stage's outputs
                st.placed = {k: v for k, v in placed.items() if _placed_ok(v)} \
                    if isinstance(placed, dict) else {}
        except (ValueError, KeyError, TypeError, AttributeError):
            st.notes.append(f"note: ignoring corrupt pipeline state {path}")
        return st

    def save(self, updates: dict[str, dict[str, list[str]]], imports: dict[str, str],
             placed: dict[str, Placed | None] | None = None) -> None:
        """Merge ``updates`` into the state on disk (other runs may have written meanwhile).

        A ``None`` in ``placed`` forgets that stage's record: it failed, so what its
        outputs hold is no run's.
        """
        from filelock import FileLock

        make_dirs(self.path.parent)
        with FileLock(str(self.path) + ".lock"):
            stages: dict[str, Any] = {}
            imports_now: dict[str, Any] = {}
            placed_now: dict[str, Any] = {}
            try:
                data = json.loads(_unpacked(self.path.read_bytes()))
                if isinstance(data, dict):
                    stages = dict(data.get("stages") or {})
                    imports_now = dict(data.get("imports") or {})
                    placed_now = dict(data.get("placed") or {})
            except (OSError, ValueError, TypeError):
                pass  # missing or corrupt: start again from what this run observed
            stages.update(updates)
            imports_now.update(imports)
            for sig, record in (placed or {}).items():
                if record is None:
                    placed_now.pop(sig, None)
                else:
                    placed_now[sig] = record
            body = {"version": 1, "stages": stages, "imports": imports_now, "placed": placed_now}
            atomic_write(self.path, zlib.compress(json.dumps(body, separators=(",", ":")).encode(), 1))
            self.stages, self.imports, self.placed = stages, imports_now, placed_now
