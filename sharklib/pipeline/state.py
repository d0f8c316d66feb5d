"""What earlier runs of a pipeline taught us, kept between runs.

Per stage (by signature): the paths it wrote (declared or observed by
capture) and the inputs capture saw it read, so the next plan links stages
through undeclared reads and still knows who writes a file that now exists.
Per import: the digest of the bytes first fetched, for ``pipeline pin``.

Kept under the cache directory, keyed by the document's absolute path; written
atomically under a file lock. A corrupt state file is ignored with a note (it
is a cache of observations, never trusted for anything but ordering).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sharklib.config import cache_dir
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


def _coerced(v: Any) -> dict[str, list[str]]:
    return {"writes": [str(p) for p in v.get("writes", [])],
            "inputs": [str(p) for p in v.get("inputs", [])]}


def state_dir(document: Path) -> Path:
    key = sha256_constructor()(os.fsencode(str(document.absolute()))).hexdigest()[:24]
    return cache_dir() / "pipelines" / key


@dataclass(slots=True)
class PipelineState:
    path: Path
    stages: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    imports: dict[str, str] = field(default_factory=dict)
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
                data = json.loads(raw)
                stages = data["stages"]
                imports = data["imports"]
                if not isinstance(stages, dict) or not isinstance(imports, dict):
                    raise TypeError("bad shape")
                st.stages = {k: v if _well_formed(v) else _coerced(v) for k, v in stages.items()}
                st.imports = {str(k): str(v) for k, v in imports.items()}
        except (ValueError, KeyError, TypeError, AttributeError):
            st.notes.append(f"note: ignoring corrupt pipeline state {path}")
        return st

    def save(self, updates: dict[str, dict[str, list[str]]], imports: dict[str, str]) -> None:
        """Merge ``updates`` into the state on disk (other runs may have written meanwhile)."""
        from filelock import FileLock

        self.path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.path) + ".lock"):
            stages: dict[str, Any] = {}
            imports_now: dict[str, Any] = {}
            try:
                data = json.loads(self.path.read_bytes())
                if isinstance(data, dict):
                    stages = dict(data.get("stages") or {})
                    imports_now = dict(data.get("imports") or {})
            except (OSError, ValueError, TypeError):
                pass  # missing or corrupt: start again from what this run observed
            stages.update(updates)
            imports_now.update(imports)
            body = {"version": 1, "stages": stages, "imports": imports_now}
            atomic_write(self.path, json.dumps(body, separators=(",", ":")).encode())
            self.stages, self.imports = stages, imports_now
