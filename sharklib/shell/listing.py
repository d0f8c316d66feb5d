"""``sharklib shell --list``: the sessions recorded in this folder."""

from __future__ import annotations

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
