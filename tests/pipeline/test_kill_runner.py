"""A killed ``pipeline run`` takes its running stages with it, SIGKILL included.

As a careless user would: start a pipeline whose stage runs ``sleep 300`` (in the
background of its shell, so it is a grandchild of the runner), then kill the
runner. Stages used to stay alive (5 of 25 SIGTERM trials, 10 of 33 SIGKILL).
The bound below is generous (a loaded machine), not a speed assertion.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pipekit import write

pytestmark = pytest.mark.timeout(180)

DOC = ("```shark-run:host\n"
       "sh -c 'sleep 300 & echo $! > sleep.pid; echo $$ > sh.pid; wait' > out.txt\n"
       "echo other > other.txt\n"
       "```\n")


def _alive(pid: int, name: str) -> bool:
    """``pid`` is still the process we started (not a zombie, not a reused pid)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmd = fh.read()
    except OSError:
        return False
    return state != "Z" and name.encode() in cmd


def _wait_for(path: Path, seconds: float) -> int:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            text = path.read_text().strip()
            if text:
                return int(text)
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"{path.name} never appeared")


@pytest.mark.parametrize("pool", ["threads", "processes"])
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_runner_leaves_no_stage_behind(project: Path, sig: signal.Signals,
                                              pool: str) -> None:
    write(project / "m.md", DOC)
    env = {**os.environ, "SHARKLIB_LOCAL_POOL": pool}
    runner = subprocess.Popen([sys.executable, "-m", "sharklib", "pipeline", "run", "m.md",
                               "-j", "2"], cwd=project, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL,
                              start_new_session=True)  # so only the runner gets the signal
    sleeper = sh = None
    try:
        sleeper = _wait_for(project / "sleep.pid", 120)
        sh = _wait_for(project / "sh.pid", 30)
        assert _alive(sleeper, "sleep")
        runner.send_signal(sig)
        runner.wait(timeout=60)
        end = time.monotonic() + 20
        while time.monotonic() < end and (_alive(sleeper, "sleep") or _alive(sh, "sh")):
            time.sleep(0.1)
        assert not _alive(sleeper, "sleep"), f"stage child {sleeper} outlived the runner"
        assert not _alive(sh, "sh"), f"stage shell {sh} outlived the runner"
    finally:
        runner.kill()
        runner.wait()
        for pid in (sleeper, sh):
            if pid and _alive(pid, "sleep" if pid == sleeper else "sh"):
                os.kill(pid, signal.SIGKILL)


def test_a_finished_run_leaves_what_a_stage_started_on_purpose(project: Path) -> None:
    """A normal end is not a kill: a daemon a stage started keeps running (as before)."""
    write(project / "m.md", "```shark-run:host\n"
          "sh -c 'nohup sleep 30 >/dev/null 2>&1 & echo $! > d.pid' > out.txt\n```\n")
    proc = subprocess.run([sys.executable, "-m", "sharklib", "pipeline", "run", "m.md"],
                          cwd=project, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    pid = _wait_for(project / "d.pid", 10)
    try:
        time.sleep(1)
        assert _alive(pid, "sleep")
    finally:
        if _alive(pid, "sleep"):
            os.kill(pid, signal.SIGKILL)
