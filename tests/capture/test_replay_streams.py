"""A reused run prints what the run printed, byte for byte and in the same order (issue 15.3).

Plain ``python script.py`` is the reference. The script writes to both streams through
``print``, ``sys.stderr``, ``os.write(1|2, …)``, a Python child on the inherited descriptors,
a warning and an exception in a thread. Its output, as ``2>&1`` (one pipe for both) and as
two separate pipes, must be the same plainly, on the first captured run and on the reused
second one; executions are counted through a line the script appends to a file in sharklib's
home, where capture does not look.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.capture.conftest import clean_env

SCRIPT = """\
import os, subprocess, sys, threading, warnings
open(os.environ["COUNT_FILE"], "a").write("ran\\n")
print("out 1")
sys.stderr.write("err 1\\n")
os.write(1, b"raw out 1\\n")
sys.stdout.flush()
subprocess.run([sys.executable, "-c",
                "import os, sys; print('child out'); sys.stderr.write('child err\\\\n');"
                " sys.stdout.flush(); os.write(1, b'child raw\\\\n')"], check=True)
warnings.warn("careful")
def boom():
    raise ValueError("in a thread")
t = threading.Thread(target=boom)
t.start()
t.join()
print("out 2")
os.write(2, b"raw err 2\\n")
print("out 3", flush=True)
sys.stderr.write("err 3\\n")
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / ".git").mkdir(parents=True)
    (root / "script.py").write_text(SCRIPT)
    return root


def _run(project: Path, count: Path, captured: bool, merged: bool) -> tuple[bytes, bytes]:
    cmd = [sys.executable, *(["-m", "sharklib", "run", "-q"] if captured else []), "script.py"]
    p = subprocess.run(cmd, cwd=project, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT if merged else subprocess.PIPE,
                       env=clean_env({"COUNT_FILE": str(count)}), timeout=120)
    assert p.returncode == 0, p.stdout + (p.stderr or b"")
    return p.stdout, p.stderr or b""


@pytest.mark.parametrize("merged", [True, False], ids=["2>&1", "separate"])
def test_a_reused_run_replays_the_same_bytes_in_the_same_order(
        project: Path, tmp_path: Path, merged: bool) -> None:
    count = Path(os.environ["SHARKLIB_HOME"]) / "count"
    plain = _run(project, count, captured=False, merged=merged)
    assert b"child raw" in plain[0] and b"Exception in thread" in plain[0 if merged else 1]
    first = _run(project, count, captured=True, merged=merged)
    assert first == plain
    assert count.read_text() == "ran\n" * 2
    again = _run(project, count, captured=True, merged=merged)
    assert count.read_text() == "ran\n" * 2, "the second captured run was not reused"
    assert again == plain


def test_the_replay_follows_where_the_streams_go_now(project: Path, tmp_path: Path) -> None:
    """Recorded into one pipe, replayed into two (and back): each stream gets its own bytes."""
    count = Path(os.environ["SHARKLIB_HOME"]) / "count"
    separate = _run(project, count, captured=False, merged=False)
    merged = _run(project, count, captured=False, merged=True)
    _run(project, count, captured=True, merged=True)
    assert _run(project, count, captured=True, merged=False) == separate
    assert _run(project, count, captured=True, merged=True) == merged
    assert count.read_text() == "ran\n" * 3


def test_output_written_past_the_copy_is_not_cached_and_the_summary_says_why(
        project: Path, tmp_path: Path) -> None:
    (project / "script.py").write_text(
        "import os\n"
        "open(os.environ['COUNT_FILE'], 'a').write('ran\\n')\n"
        "f = open(1, 'w', closefd=False)\n"
        "f.write('through its own file object\\n')\n"
        "f.flush()\n")
    count = Path(os.environ["SHARKLIB_HOME"]) / "count"
    for _ in range(2):
        p = subprocess.run([sys.executable, "-m", "sharklib", "run", "script.py"], cwd=project,
                           capture_output=True, text=True, timeout=120,
                           env=clean_env({"COUNT_FILE": str(count)}))
        assert p.returncode == 0, p.stderr
        assert p.stdout == "through its own file object\n"
        assert "not cached: its output cannot be replayed: it wrote to stdout through its own " \
               "file object" in p.stderr, p.stderr
    assert count.read_text() == "ran\n" * 2
    assert not os.path.exists(project / "stdout")
