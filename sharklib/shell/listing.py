"""``sharklib shell --list`` and ``--delete NAME``: the sessions recorded in this folder."""

from __future__ import annotations

import contextlib
import os
import time

from sharklib.shell.store import SessionStore


def list_sessions(cwd: str | None = None) -> str:
    """One line per session: id, started, commands, mutations; ``*`` marks the one resumed."""
    from sharklib.shell.session import workspace_of

    workspace = os.path.realpath(workspace_of(cwd or os.getcwd()))
    sessions = SessionStore.listing(workspace)
    if not sessions:
        return f"no shell sessions in {workspace}\n"
    current = sessions[0].current_id()
    lines = []
    for s in sessions:
        mark = "*" if s.id == current else " "
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(s.created))
        last = s.commands[-1].line if s.commands else ""
        lines.append(f"{mark} {s.id}  started {when}  {len(s.commands)} commands, "
                     f"{len(s.mutations())} mutations  {last[:50]}")
    return "\n".join(lines) + "\n"


def delete_session(name: str, cwd: str | None = None) -> str:
    """``sharklib shell --delete NAME``: remove a session's record and what it alone kept.

    Its commands, history and bash state go; the objects it kept for ``:undo`` and
    ``:checkout`` stop being gc roots (``sharklib cache gc`` then removes those no run
    names) and its before-snapshots on a btrfs/ZFS workspace are destroyed. The files in
    the workspace stay as they are. A session open in a running shell is refused.
    """
    import shutil

    from sharklib.cache.roots import drop_roots
    from sharklib.errors import SharkError
    from sharklib.shell.session import workspace_of
    from sharklib.shell.snapshots import Snapshots

    workspace = os.path.realpath(workspace_of(cwd or os.getcwd()))
    try:
        session = SessionStore.load(workspace, name)
    except (OSError, ValueError, KeyError):
        raise SharkError(f"no shell session {name!r} here (sharklib shell --list lists them)",
                         workspace) from None
    if not session.lock():
        raise SharkError(f"session {name} is open in a running sharklib shell; leave it first",
                         workspace)
    snaps = Snapshots(workspace)
    try:
        dropped = snaps.forget(session.id)
        drop_roots(snaps.cache.directory, session.dir)
    finally:
        snaps.close()
    if session.current_id() == session.id:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(session.root, "current"))
    shutil.rmtree(session.dir)
    extra = f", {dropped} snapshot{'s' if dropped != 1 else ''} destroyed" if dropped else ""
    return (f"deleted session {session.id} ({len(session.commands)} commands{extra}); "
            "the states it kept are removed by the next `sharklib cache gc`\n")
