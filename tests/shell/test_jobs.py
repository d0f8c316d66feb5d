"""Job control across lines: ``cmd &`` gives the prompt back with ``[N] PID``; ``jobs``, ``fg``,
``wait`` and ``kill %N`` act on it; its end is announced before the next prompt and the line is
recorded as a step of the session (its outputs snapshotted like any mutation's)."""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import pytest
from shellkit import run_shell, shell_env
from test_pty import PROMPT, _wait_for_process

pexpect = pytest.importorskip("pexpect", reason="pexpect is in the test extra: pip install -e '.[test]'")


def _has_the_terminal(pid: int) -> bool:
    """Is ``pid``'s process group the foreground group of its terminal (``tpgid == pgrp``)?"""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return False
    return fields[2] == fields[5]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


@pytest.mark.timeout(300)
def test_jobs_in_a_scripted_session(traced: None, workspace: Path) -> None:
    ws = workspace
    env = shell_env()
    script = ("(sleep 1; echo \"$$-bg\" | wc -c > bg.txt; echo ran >> count.txt) &\n"
              "jobs\n"
              "sleep 60 &\n"
              "jobs -l\n"
              "kill %2\n"
              "echo fg > fg.txt\n"
              "wait\n"
              "jobs\n"
              "fg\n"
              "sleep 30 &\n"
              ":history --all\n")  # the last job is waited for before the session ends
    res = run_shell(ws, script, env)
    assert res.returncode == 0, res.stderr
    err, out = res.stderr, res.stdout
    assert re.search(r"^\[1\] \d+$", err, re.M) and re.search(r"^\[2\] \d+$", err, re.M), err
    assert "[1]+  Running                 (sleep 1; echo \"$$-bg\" | wc -c > bg.txt; " \
           "echo ran >> count.txt) &\n" in out
    assert re.search(r"^\[2\]\+ \d+ Running +sleep 60 &$", out, re.M), out
    assert re.search(r"^\[2\][-+ ]  Terminated +sleep 60$", err, re.M), err
    assert re.search(r"^\[1\][-+ ]  Done +\(sleep 1; ", err, re.M), err
    assert "fg: current: no such job" in err
    # the job ran once, in the background, and its output is a recorded mutation
    assert (ws / "count.txt").read_text() == "ran\n"
    assert (ws / "bg.txt").exists() and (ws / "fg.txt").read_text() == "fg\n"
    hist = out[out.index("   [1] "):]
    assert re.search(r"\(sleep 1; echo \"\$\$-bg\" \| wc -c > bg.txt; echo ran >> count.txt\)"
                     r"  \[background job\]\n +\+ bg\.txt  \+ count\.txt", hist), hist
    assert "sleep 60  [" in hist and "exit 143" in hist
    # the `sleep 30 &` left running at the end of the script was waited for, then recorded
    again = run_shell(ws, ":history --all\n", env)
    assert "sleep 30  [inspect; background job]" in again.stdout


@pytest.mark.timeout(300)
def test_jobs_at_a_terminal(traced: None, workspace: Path) -> None:
    env = shell_env()
    env["TERM"] = "dumb"
    child = pexpect.spawn(sys.executable, ["-m", "sharklib", "shell"], cwd=str(workspace),
                          env=env, encoding="utf-8", timeout=60, dimensions=(40, 200))
    try:
        child.expect(PROMPT)
        # the prompt comes back at once: the next line runs while the job sleeps
        child.sendline("sleep 77 &")
        child.expect(r"\[1\] (\d+)\r\n")
        pid = int(child.match.group(1))
        child.expect(PROMPT)
        _wait_for_process(b"sleep\x0077\x00")
        child.sendline("echo still here")
        child.expect("still here")
        child.expect(PROMPT)
        child.sendline("jobs")
        child.expect(r"\[1\]\+  Running +sleep 77 &")
        child.expect(PROMPT)
        # Ctrl-C at the prompt does not reach the job (its own process group)
        child.sendintr()
        child.expect(PROMPT)
        assert _alive(pid)
        # fg gives it the terminal: Ctrl-C stops it and not the shell
        child.sendline("fg %1")
        child.expect("sleep 77\r\n")
        # Ctrl-C before the job holds the terminal would reach the shell, which ignores it
        deadline = time.time() + 60
        while not _has_the_terminal(pid) and time.time() < deadline:
            time.sleep(0.05)
        assert _has_the_terminal(pid)
        child.sendintr()
        child.expect(PROMPT, timeout=30)
        deadline = time.time() + 10
        while _alive(pid) and time.time() < deadline:
            time.sleep(0.1)
        assert not _alive(pid)
        # a job that ends by itself is announced before the next prompt
        child.sendline("sleep 1 && echo done > late.txt &")
        child.expect(r"\[1\] \d+")
        child.expect(PROMPT)
        child.sendline("wait")
        child.expect(r"\[1\]\+  Done +sleep 1 && echo done > late\.txt\r\n")
        child.expect(PROMPT)
        child.sendline(":history --all")
        child.expect(PROMPT)
        listing = child.before
        assert re.search(r"sleep 77  \[inspect; background job; exit 130\]", listing), listing
        assert "sleep 1 && echo done > late.txt  [background job]" in listing
        assert "+ late.txt" in listing
        child.sendeof()
        child.expect(pexpect.EOF, timeout=30)
    finally:
        child.close()
    assert (workspace / "late.txt").read_text() == "done\n"
    assert not os.path.exists(f"/proc/{pid}")
