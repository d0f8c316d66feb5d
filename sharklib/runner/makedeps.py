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

A recorded step only appends its own dependencies, one JSON line, to ``deps.jsonl`` under an
``flock`` of that file: no lock package to import (``filelock`` pulled ``logging`` and
``inspect`` into every recorded step, ~10 ms quiet) and no read and rewrite of every target's
record (which grew with the Makefile). Whoever reads the record (``sharklib env`` once before
make starts, the Snakemake staleness check) folds the journal into ``deps.json`` under the
same lock and empties it, so steps appending meanwhile are neither lost nor read twice.
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
#: what recorded steps appended since the last fold into :data:`DEPS_FILE`
JOURNAL_FILE = "deps.jsonl"
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
    """Append ``run``'s observed dependencies to the project's journal (one locked write)."""
    found = observed(run, root)
    if not found:
        return
    import fcntl

    where = os.path.join(root, DEPS_DIR)
    make_dirs(where)
    line = json.dumps(found, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    fd = os.open(os.path.join(where, JOURNAL_FILE),
                 os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        view = memoryview(line)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)  # releases the lock


def recorded(root: str) -> dict[str, list[str]]:
    """Every recorded target's observed dependencies, the journal folded in first.

    The fold happens under the journal's lock: ``deps.json`` is rewritten (atomically, and
    only when it changes) and then the journal emptied. Where the record cannot be written
    (a read-only checkout), the journal is read and left as it is.
    """
    where = os.path.join(root, DEPS_DIR)
    path = os.path.join(where, DEPS_FILE)
    journal_path = os.path.join(where, JOURNAL_FILE)
    writable = True
    try:
        fd = os.open(journal_path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return load(path)
    except OSError:
        writable = False
        try:
            fd = os.open(journal_path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return load(path)
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX if writable else fcntl.LOCK_SH)
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        deps = load(path)
        if not chunks:
            return deps
        merged = dict(deps)
        for line in b"".join(chunks).splitlines():
            merged.update(_entries(line))
        if writable:
            try:
                if merged != deps:
                    from sharklib.hashing import atomic_write

                    atomic_write(path, json.dumps(merged, sort_keys=True, indent=0).encode())
                os.ftruncate(fd, 0)
            except OSError:
                pass  # folded next time; this make still gets everything
        return merged
    finally:
        os.close(fd)  # releases the lock


def _entries(line: bytes) -> dict[str, list[str]]:
    """One journal line's ``{target: [dependency, ...]}``; a torn or hostile line is none."""
    try:
        data = json.loads(line)
    except ValueError:
        return {}
    return _valid(data)


def load(path: str) -> dict[str, list[str]]:
    """The recorded dependencies; an unreadable or hostile file counts as none."""
    try:
        with open(path, "rb") as fh:
            data = json.loads(fh.read(64 << 20))
    except (OSError, ValueError):
        return {}
    return _valid(data)


def _valid(data: object) -> dict[str, list[str]]:
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
    """Add the project's dependency fragment for a make in ``cwd`` to ``env['MAKEFILES']``.

    The fragment is written again when steps recorded something since (the journal is
    folded in here, once per ``sharklib env``) or when ``deps.json`` is newer than it.
    """
    where = os.path.join(root, DEPS_DIR)
    source = os.path.join(where, DEPS_FILE)
    deps = recorded(root) if _journal_pending(where) else None
    name = hashlib.sha256(os.path.abspath(cwd).encode()).hexdigest()[:16]
    target = os.path.join(where, f"deps-{name}.mk")
    if deps is None:
        try:
            mtime = os.stat(source).st_mtime_ns
        except OSError:
            return
        try:
            fresh = os.stat(target).st_mtime_ns >= mtime
        except OSError:
            fresh = False
        if not fresh:
            deps = load(source)
    if deps is not None:
        from sharklib.hashing import atomic_write

        atomic_write(target, fragment(deps, root, cwd).encode())
    word = _word(target)
    if word is None:
        return
    env[MAKEFILES] = " ".join(x for x in (env.get(MAKEFILES, ""), word) if x)


def _journal_pending(where: str) -> bool:
    try:
        return os.stat(os.path.join(where, JOURNAL_FILE)).st_size > 0
    except OSError:
        return False


def stale_targets(root: str) -> list[str]:
    """Recorded outputs (relative to ``root``) older than something they were seen to read.

    make's rule over the observed dependencies, for a scheduler that has no ``MAKEFILES``: an
    output is stale when a dependency changed after it was written (a newer mtime) or is gone.
    """
    deps = recorded(root)
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
