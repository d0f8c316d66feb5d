"""``sharklib cache gc`` keeps what a shell session needs for ``:undo``/``:checkout``; the objects
become collectable only when the session is deleted (``sharklib shell --delete``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from shellkit import run_shell, shell_env


def _sharklib(ws: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sharklib", *args], cwd=ws, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.timeout(600)
def test_gc_keeps_session_states_until_the_session_is_deleted(traced: None,
                                                              workspace: Path) -> None:
    env = shell_env()
    first = run_shell(workspace, "echo v1 > out.txt\necho v2 > out.txt\necho side > side.txt\n"
                                 "rm side.txt\n", env)
    assert first.returncode == 0, first.stderr
    sid = (workspace / ".sharklib" / "shell" / "current").read_text().strip()

    # every run is dropped: only the session still holds the earlier states
    gc = _sharklib(workspace, env, "cache", "gc", "--max-age", "0")
    assert gc.returncode == 0, gc.stderr
    assert gc.stdout.startswith("removed 3 runs and 0 objects"), gc.stdout

    back = run_shell(workspace, ":undo\n:undo\n:undo\n:checkout 3\n:history\n", env)
    assert back.returncode == 0, back.stderr
    assert "cannot restore" not in back.stderr, back.stderr
    assert (workspace / "out.txt").read_text() == "v2\n"
    assert (workspace / "side.txt").read_text() == "side\n"
    back = run_shell(workspace, ":checkout 1\n", env)
    assert back.returncode == 0 and "cannot restore" not in back.stderr, back.stderr
    assert (workspace / "out.txt").read_text() == "v1\n"
    assert not (workspace / "side.txt").exists()

    # deleting the session (not while it is open) releases its objects
    deleted = _sharklib(workspace, env, "shell", "--delete", sid)
    assert deleted.returncode == 0, deleted.stderr
    assert f"deleted session {sid}" in deleted.stdout
    assert not (workspace / ".sharklib" / "shell" / sid).exists()
    assert "no shell sessions" in _sharklib(workspace, env, "shell", "--list").stdout
    gc = _sharklib(workspace, env, "cache", "gc")
    assert gc.returncode == 0, gc.stderr
    removed = int(gc.stdout.split(" and ")[1].split()[0])
    assert removed >= 3, gc.stdout  # v1, v2, side (and their sidecars)
    missing = _sharklib(workspace, env, "shell", "--delete", sid)
    assert missing.returncode != 0 and "no shell session" in missing.stderr
    assert "Traceback" not in missing.stderr
