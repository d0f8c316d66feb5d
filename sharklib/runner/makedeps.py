"""What each recorded output was observed to depend on, as a makefile fragment GNU make reads.

make decides from timestamps, and only over the prerequisites a Makefile declares, before any
recipe runs: after an edit of an undeclared helper module or a ``matplotlibrc``, ``make all``
says "Nothing to be done" and sharklib is never asked. So every recorded step's observed
dependencies (the data it read and its code, inside the project) are kept per project in
``.sharklib/make/deps.json``; ``sharklib env -- make ...`` writes them as extra prerequisites
(``out.txt: private .EXTRA_PREREQS += helper.py``) and lists that file in ``MAKEFILES``, which make reads before the
user's Makefile without taking its default goal from it. make itself then re-runs exactly the
targets an edit reaches, and a no-op stays a no-op at make's speed. A dependency also gets an
empty rule (``helper.py:``), as ``gcc -MP`` does, so deleting one re-runs its dependants instead
of stopping make with "No rule to make target".
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping

from sharklib.config import make_dirs
from sharklib.model import Run

DEPS_DIR = os.path.join(".sharklib", "make")
DEPS_FILE = "deps.json"
#: make's own name for the variable listing extra makefiles
MAKEFILES = "MAKEFILES"


def _inside(path: str, root: str) -> str | None:
    rel = os.path.relpath(path, root)
    return None if rel == ".." or rel.startswith("../") or os.path.isabs(rel) else rel


def observed(run: Run, root: str) -> dict[str, list[str]]:
    """Each recorded output (relative to ``root``) and what it was seen to depend on there."""
    code = [a.path for a in run.code.files()]
    out: dict[str, list[str]] = {}
    for o in run.outputs:
        if o.stream:
            continue
        target = _inside(o.path, root)
        if target is None:
            continue
        deps = [a.path for a in run.inputs_of(o)] + code
        rel = [r for r in (_inside(p.rstrip("/"), root) for p in deps) if r and r != target]
        out[target] = sorted(set(rel))
    return out


def remember(root: str, run: Run) -> None:
    """Merge ``run``'s observed dependencies into the project's record (locked, atomic)."""
    found = observed(run, root)
    if not found:
        return
    from filelock import FileLock

    from sharklib.hashing import atomic_write

    where = os.path.join(root, DEPS_DIR)
    make_dirs(where)
    path = os.path.join(where, DEPS_FILE)
    with FileLock(path + ".lock", timeout=30):
        deps = load(path)
        if all(deps.get(k) == v for k, v in found.items()):
            return
        deps.update(found)
        atomic_write(path, json.dumps(deps, sort_keys=True, indent=0).encode())


def load(path: str) -> dict[str, list[str]]:
    """The recorded dependencies; an unreadable or hostile file counts as none."""
    try:
        with open(path, "rb") as fh:
            data = json.loads(fh.read(64 << 20))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: [d for d in v if isinstance(d, str)] for k, v in data.items()
            if isinstance(k, str) and isinstance(v, list)}


def _word(path: str) -> str | None:
    """``path`` as one word of a make rule, or None when make cannot name it."""
    if any(c in path for c in "\n\r\t\0") or not path:
        return None
    out = path.replace("\\", "\\\\").replace("$", "$$").replace("#", "\\#")
    return out.replace(" ", "\\ ").replace(":", "\\:").replace("%", "\\%")


def fragment(deps: Mapping[str, Iterable[str]], root: str, cwd: str) -> str:
    """The makefile text of ``deps`` for a make running in ``cwd``.

    The dependencies go into ``.EXTRA_PREREQS`` (GNU make 4.3), not the prerequisite list: a
    recipe's ``$^``, ``$+`` and ``$?`` stay what the user's Makefile says (``collate.py $^``
    must not be handed ``collate.py`` itself). ``private`` keeps them off the target's own
    prerequisites, which a target-specific variable would otherwise reach. An older make
    ignores the variable: it then decides as it always did.
    """
    lines = ["# written by sharklib env: dependencies observed when each target was made\n"]
    prereqs: set[str] = set()
    for target, needs in sorted(deps.items()):
        t = _word(os.path.relpath(os.path.join(root, target), cwd))
        words = [w for w in (_word(os.path.relpath(os.path.join(root, d), cwd))
                             for d in needs) if w]
        if t and words:
            lines.append(f"{t}: private .EXTRA_PREREQS += {' '.join(words)}\n")
            prereqs.update(words)
    lines.extend(f"{w}:\n" for w in sorted(prereqs))
    return "".join(lines)


def makefiles_env(env: dict[str, str], root: str, cwd: str) -> None:
    """Add the project's dependency fragment for a make in ``cwd`` to ``env['MAKEFILES']``."""
    where = os.path.join(root, DEPS_DIR)
    source = os.path.join(where, DEPS_FILE)
    try:
        mtime = os.stat(source).st_mtime_ns
    except OSError:
        return
    name = hashlib.sha256(os.path.abspath(cwd).encode()).hexdigest()[:16]
    target = os.path.join(where, f"deps-{name}.mk")
    try:
        fresh = os.stat(target).st_mtime_ns >= mtime
    except OSError:
        fresh = False
    if not fresh:
        from sharklib.hashing import atomic_write

        atomic_write(target, fragment(load(source), root, cwd).encode())
    word = _word(target)
    if word is None:
        return
    env[MAKEFILES] = " ".join(x for x in (env.get(MAKEFILES, ""), word) if x)


def stale_targets(root: str) -> list[str]:
    """Recorded outputs (relative to ``root``) older than something they were seen to read.

    make's rule over the observed dependencies, for a scheduler that has no ``MAKEFILES``: an
    output is stale when a dependency changed after it was written (a newer mtime) or is gone.
    """
    deps = load(os.path.join(root, DEPS_DIR, DEPS_FILE))
    stale: list[str] = []
    mtimes: dict[str, int | None] = {}

    def mtime(rel: str) -> int | None:
        if rel not in mtimes:
            try:
                mtimes[rel] = os.stat(os.path.join(root, rel)).st_mtime_ns
            except OSError:
                mtimes[rel] = None
        return mtimes[rel]

    for target, needs in sorted(deps.items()):
        made = mtime(target)
        if made is None:
            continue
        for dep in needs:
            when = mtime(dep)
            if when is None or when > made:
                stale.append(target)
                break
    return stale
