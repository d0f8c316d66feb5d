"""A traced step that appends to a file it did not write first (``echo built >> build.log``)
depends on what that file held, which no record holds: it is recorded and signed, but never
reused (issue 15, item 2, for native programs). Plain bash's result is the reference: three
runs leave three lines. Executions are counted through the lines themselves.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sharklib.runner.command import run_command
from sharklib.runner.step import Step


def test_an_appending_traced_command_runs_every_time(backend: str, tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "in.txt").write_text("x\n")
    line = "cat in.txt > out.txt; echo built >> build.log"
    for _ in range(3):
        r = Step(["sh", "-c", line], cwd=tmp_path, capture="trace", backend=backend).run()
        assert r.exit_status == 0 and not r.reused
    assert (tmp_path / "build.log").read_text() == "built\n" * 3
    (tmp_path / "build.log").write_text("my note\n")
    Step(["sh", "-c", line], cwd=tmp_path, capture="trace", backend=backend).run()
    assert (tmp_path / "build.log").read_text() == "my note\nbuilt\n", "nothing is lost"


def test_a_file_the_step_writes_whole_first_may_then_be_appended(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    line = "echo a > log.txt; echo b >> log.txt"
    first = run_command(["sh", "-c", line], cwd=tmp_path, capture="trace")
    again = run_command(["sh", "-c", line], cwd=tmp_path, capture="trace")
    assert first.recorded and again.reused
    assert (tmp_path / "log.txt").read_text() == "a\nb\n"


def test_sharklib_trace_says_why_it_is_not_cached(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    cmd = [os.path.join(os.path.dirname(sys.executable), "sharklib"), "trace", "--", "sh",
           "-c", "echo built >> build.log"]
    for _ in range(2):
        proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
    assert "appended to build.log" in proc.stderr, proc.stderr
    assert (tmp_path / "build.log").read_text() == "built\nbuilt\n"
