"""A shell session on disk: one small JSON file per command, written atomically.

Layout under the project's ``.sharklib/shell/``::

    current                 the id of the session ``sharklib shell`` resumes
    SESSION/session.json    id, workspace, created, head (the mutation whose state is on disk)
    SESSION/commands/000001.json
    SESSION/bash/vars.sh    the shell state after the last finished line
    SESSION/bash/env.json   the exported variables the user changed
    SESSION/bash/state.mac  an HMAC of both under the user's secret (state without one is not used)
    SESSION/history         readline history

A command's file is written (temporary file, fsync, rename) as soon as it
finished and its changes were snapshotted, so a crash or a closed terminal
loses at most the command that was running. Nothing here is ever rewritten but
``session.json`` (the head moves on ``:undo``/``:checkout``) and the bash state.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from sharklib.errors import SharkError
from sharklib.hashing.atomic import atomic_write

#: a path's state: a sha256, None (absent), or UNKNOWN (existed before the session, never recorded)
UNKNOWN = "?"


@dataclass
class Change:
    """One workspace path a mutating command created, changed or deleted."""

    path: str  # relative to the workspace
    before: str | None  # sha256, None (absent) or UNKNOWN
    after: str | None  # sha256 or None (deleted)
    sidecar: str | None = None  # sha256 of the signed sidecar left beside it, if any
    size: int = 0


@dataclass
class Command:
    """One line entered at the prompt, as recorded."""

    n: int
    line: str
    cwd: str  # relative to the workspace ("." for its root)
    started: float
    duration: float
    exit_status: int
    kind: str  # "inspect" | "mutate" | "meta"
    parent: int = 0  # the mutation this one was applied on top of (mutate only)
    reused: bool = False
    saved: float = 0.0
    run_id: str | None = None
    backend: str = ""
    changes: list[Change] = field(default_factory=list)
    inputs: list[tuple[str, str]] = field(default_factory=list)  # (relative path, sha256)
    downloads: list[dict[str, Any]] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)  # absolute paths written outside
    python: str = ""  # interpreter version, when a Python process ran
    distributions: dict[str, str] = field(default_factory=dict)  # imported, name -> version
    #: variables exported in the session (beyond the environment it started in) the line ran with
    env: dict[str, str] = field(default_factory=dict)
    #: run as a job (``LINE &``): recorded when it ended, numbered then
    background: bool = False

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Command:
        d = dict(d)
        d["changes"] = [Change(**c) for c in d.get("changes", [])]
        d["inputs"] = [tuple(x) for x in d.get("inputs", [])]
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def _new_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + os.urandom(2).hex()


class SessionStore:
    """One session's directory: its commands, its head, its bash state."""

    def __init__(self, root: str, workspace: str, session_id: str, created: float,
                 head: int = 0) -> None:
        self.root = root  # .sharklib/shell
        self.workspace = workspace
        self.id = session_id
        self.created = created
        self.head = head
        self.dir = os.path.join(root, session_id)
        self.commands: list[Command] = []
        self._changes: dict[str, list[tuple[int, Change]]] | None = None
        self._lock_fd: int | None = None
        #: the session that was in use by another shell when this one was started instead
        self.busy: str | None = None
        self._mut: dict[int, Command] | None = None

    # -- opening ---------------------------------------------------------------------------
    @staticmethod
    def base(workspace: str) -> str:
        """``<workspace>/.sharklib/shell``, refusing one that leads elsewhere.

        The shell writes there (records, ``.gitignore``, the bash state) and deletes there
        (``--delete``): a ``.sharklib`` or ``shell`` symlink planted in the project must
        not turn that into writes in another directory.
        """
        base = os.path.join(workspace, ".sharklib", "shell")
        real = os.path.realpath(base)
        if real != os.path.join(os.path.realpath(workspace), ".sharklib", "shell"):
            raise SharkError(f"refusing to keep shell sessions there: it leads to {real} "
                             "(a symlink in the project)", base)
        return base

    @classmethod
    def open(cls, workspace: str, new: bool = False) -> tuple[SessionStore, bool]:
        """The session to use in ``workspace`` and whether it was resumed."""
        base = cls.base(workspace)
        os.makedirs(base, exist_ok=True)
        ignore = os.path.join(base, ".gitignore")
        if not os.path.exists(ignore):  # session records are not the project's files
            atomic_write(ignore, b"*\n", fsync=False)
        current = os.path.join(base, "current")
        busy = None
        if not new:
            try:
                with open(current, encoding="utf-8") as f:
                    sid = f.read().strip()
                store = cls.load(workspace, sid)
                if store.lock():
                    return store, True
                busy = sid
            except (OSError, ValueError, KeyError):
                pass
        store = cls(base, workspace, _new_id(), time.time())
        os.makedirs(os.path.join(store.dir, "commands"), exist_ok=True)
        os.makedirs(os.path.join(store.dir, "bash"), exist_ok=True)
        store.lock()
        store.save_meta()
        atomic_write(current, store.id.encode() + b"\n", fsync=False)
        store.busy = busy
        return store, False

    def lock(self) -> bool:
        """Hold this session for this process: two shells appending to one session would
        number their commands alike and overwrite each other's records."""
        import fcntl

        fd = os.open(os.path.join(self.dir, "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._lock_fd = fd
        return True

    @classmethod
    def load(cls, workspace: str, session_id: str) -> SessionStore:
        base = cls.base(workspace)
        if not session_id or os.sep in session_id or session_id.startswith("."):
            raise ValueError(session_id)
        with open(os.path.join(base, session_id, "session.json"), encoding="utf-8") as f:
            meta = json.load(f)
        if meta.get("id") != session_id:  # the folder's name is the id, never a path in it
            raise ValueError(session_id)
        store = cls(base, workspace, session_id, meta["created"], int(meta.get("head", 0)))
        cdir = os.path.join(store.dir, "commands")
        for name in sorted(os.listdir(cdir)):
            if not name.endswith(".json"):
                continue
            try:
                with open(os.path.join(cdir, name), encoding="utf-8") as f:
                    store.commands.append(Command.from_dict(json.load(f)))
            except (OSError, ValueError, TypeError) as exc:
                raise SharkError(f"unreadable command record ({exc})",
                                 os.path.join(cdir, name)) from None
        store.commands.sort(key=lambda c: c.n)
        store._changes = store._mut = None
        return store

    @classmethod
    def listing(cls, workspace: str) -> list[SessionStore]:
        base = cls.base(workspace)
        out = []
        try:
            names = sorted(os.listdir(base))
        except OSError:
            return []
        for name in names:
            if os.path.isfile(os.path.join(base, name, "session.json")):
                try:
                    out.append(cls.load(workspace, name))
                except (OSError, ValueError, KeyError, SharkError):
                    continue
        return out

    def current_id(self) -> str | None:
        try:
            with open(os.path.join(self.root, "current"), encoding="utf-8") as f:
                return f.read().strip()
        except OSError:
            return None

    # -- writing ---------------------------------------------------------------------------
    def save_meta(self) -> None:
        meta = {"id": self.id, "created": self.created, "workspace": self.workspace,
                "head": self.head}
        atomic_write(os.path.join(self.dir, "session.json"),
                     json.dumps(meta, indent=1).encode(), fsync=False)

    def add(self, cmd: Command) -> None:
        # renamed into place whole: a killed shell leaves every finished command readable
        # (no fsync: that guards against a power cut, at ~5-10 ms a line)
        atomic_write(os.path.join(self.dir, "commands", f"{cmd.n:06d}.json"),
                     json.dumps(asdict(cmd)).encode(), fsync=False)
        self.commands.append(cmd)
        self._changes = self._mut = None

    def set_head(self, n: int) -> None:
        self.head = n
        self.save_meta()

    def next_number(self) -> int:
        return (self.commands[-1].n + 1) if self.commands else 1

    # -- reading ---------------------------------------------------------------------------
    def get(self, n: int) -> Command | None:
        for c in self.commands:
            if c.n == n:
                return c
        return None

    def mutations(self) -> list[Command]:
        return [c for c in self.commands if c.kind == "mutate"]

    def chain(self, n: int | None = None) -> list[Command]:
        """The mutations whose effects make up the state after ``n`` (default: the head), oldest first."""
        n = self.head if n is None else n
        by_n = self._by_n()
        out = []
        while n and n in by_n:
            c = by_n[n]
            out.append(c)
            n = c.parent
        return out[::-1]

    def chain_set(self, n: int | None = None) -> frozenset[int]:
        return frozenset(c.n for c in self.chain(n))

    def state(self, path: str, n: int | None = None,
              chain: frozenset[int] | None = None) -> str | None:
        """``path``'s content after mutation ``n`` (default: the head): sha256, None or UNKNOWN.

        ``chain`` (:meth:`chain_set` of ``n``) may be passed when asking about many paths.
        """
        entries = self._index().get(path)
        if not entries:
            return UNKNOWN
        on = chain if chain is not None else self.chain_set(n)
        for cn, ch in reversed(entries):
            if cn in on:
                return ch.after
        return entries[0][1].before

    def base_state(self, path: str) -> str | None:
        """``path`` before the session first changed it (UNKNOWN when never touched)."""
        entries = self._index().get(path)
        return entries[0][1].before if entries else UNKNOWN

    def known(self, path: str) -> bool:
        return path in self._index()

    def changes_of(self, path: str) -> list[tuple[int, Change]]:
        """Every recorded change of ``path``, oldest first, with its command's number."""
        return list(self._index().get(path, []))

    # the index over changes: path -> [(command, change)], kept up to date by add()
    def _index(self) -> dict[str, list[tuple[int, Change]]]:
        if self._changes is None:
            self._changes = {}
            for c in self.mutations():
                for ch in c.changes:
                    self._changes.setdefault(ch.path, []).append((c.n, ch))
        return self._changes

    def _by_n(self) -> dict[int, Command]:
        if self._mut is None:
            self._mut = {c.n: c for c in self.mutations()}
        return self._mut
