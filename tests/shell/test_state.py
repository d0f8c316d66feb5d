"""What the shell keeps and refuses to lose: crashes, files changed behind its back, outside writes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from shellkit import run_shell, shell_env


@pytest.mark.timeout(300)
def test_crash_loses_only_the_running_command(traced: None, workspace: Path) -> None:
    env = shell_env()
    proc = subprocess.Popen([sys.executable, "-m", "sharklib", "shell"], cwd=workspace, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    assert proc.stdin is not None
    proc.stdin.write("echo one > one.txt\ncd data\nsleep 60\n")
    proc.stdin.flush()
    started = workspace / ".sharklib" / "shell"
    deadline = time.time() + 120
    while time.time() < deadline:  # wait until the first two commands are on disk
        done = list(started.glob("*/commands/*.json"))
        if len(done) >= 2:
            break
        time.sleep(0.2)
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)  # the terminal is gone, mid-command: all of it dies
    proc.communicate(timeout=30)

    again = run_shell(workspace, ":history --all\npwd\n:undo\n", env)
    assert again.returncode == 0, again.stderr
    assert "echo one > one.txt" in again.stdout and "cd data" in again.stdout
    assert "sleep 60" not in again.stdout
    assert again.stdout.rstrip().splitlines()[-2].endswith("/data")  # the cwd survived too
    assert "undid [1]" in again.stdout and not (workspace / "one.txt").exists()


@pytest.mark.timeout(300)
def test_undo_never_loses_bytes(traced: None, workspace: Path) -> None:
    env = shell_env()
    raw = workspace / "data" / "raw.csv"
    before = raw.read_text()
    run_shell(workspace, "echo extra >> data/raw.csv\necho v1 > out.txt\n", env)
    # out.txt edited outside the shell (an editor): :undo keeps that content in the store
    (workspace / "out.txt").write_text("hand edit\n")
    res = run_shell(workspace, ":undo\n:undo\n:history\n", env)
    assert "undid [2]" in res.stdout and not (workspace / "out.txt").exists()
    assert "out.txt had been changed outside the shell; that content is kept" in res.stdout
    # raw.csv existed before the session and was changed in place: its old bytes were never
    # recorded, so it is named and left as it is, never replaced by a guess
    assert "never recorded): data/raw.csv" in res.stdout
    assert raw.read_text() == before + "extra\n"


@pytest.mark.timeout(300)
def test_outside_writes_said_once(traced: None, workspace: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = shell_env()
    res = run_shell(workspace, f"echo a > {elsewhere}/a.txt\necho b > {elsewhere}/b.txt\n"
                               ":history --all\n", env)
    assert res.stderr.count("wrote outside the workspace") == 1, res.stderr
    assert f"{elsewhere}/a.txt" in res.stderr
    assert os.path.exists(elsewhere / "b.txt")
    assert "[inspect]" in res.stdout  # nothing in the workspace changed
