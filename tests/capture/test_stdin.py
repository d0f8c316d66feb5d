"""Standard input: a redirected file is an input; a pipe or a terminal that was read makes the run
uncacheable (its bytes are in no record); a script reads it exactly as it would uncaptured."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

import pytest

BIN = os.path.dirname(sys.executable)
SUM = ("import sys\ntotal = sum(int(x) for x in sys.stdin)\n"
       "open('total.txt', 'w').write(str(total))\nprint(total)\n")


def shark(cwd: Path, *args: str, stdin: IO[Any] | int | None = None,
          text: str | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([os.path.join(BIN, "sharklib"), *args], cwd=cwd, input=text,
                          stdin=stdin if text is None else None,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_a_script_reading_a_pipe_is_never_reused(tmp_path: Path) -> None:
    (tmp_path / "sum.py").write_text(SUM)
    first = shark(tmp_path, "run", "sum.py", text="1\n2\n")
    assert first.stdout == "3\n"
    assert "not cached: it read standard input from a pipe" in first.stderr, first.stderr
    second = shark(tmp_path, "run", "sum.py", text="5\n5\n")
    assert "reused" not in second.stderr and second.stdout == "10\n", second.stderr
    assert (tmp_path / "total.txt").read_text() == "10"
    assert (tmp_path / "total.txt.intoto.jsonl").exists()  # still recorded, only not cached


def test_a_pipe_that_is_never_read_does_not_stop_reuse(tmp_path: Path) -> None:
    (tmp_path / "w.py").write_text("open('w.txt', 'w').write('w')\n")
    shark(tmp_path, "run", "w.py", text="ignored\n")
    again = shark(tmp_path, "run", "w.py", text="other\n")
    assert "sharklib: reused run" in again.stderr, again.stderr


def test_a_redirected_file_is_an_input_checked_on_reuse(tmp_path: Path) -> None:
    (tmp_path / "sum.py").write_text(SUM)
    numbers = tmp_path / "numbers.txt"
    numbers.write_text("1\n2\n")

    def run() -> subprocess.CompletedProcess[str]:
        with numbers.open() as fh:
            return shark(tmp_path, "run", "sum.py", stdin=fh)

    assert run().stdout == "3\n"
    show = shark(tmp_path, "show", "total.txt")
    assert "numbers.txt" in show.stdout, show.stdout
    again = run()
    assert "sharklib: reused run" in again.stderr and again.stdout == "3\n", again.stderr
    numbers.write_text("4\n4\n")
    changed = run()
    assert "reused" not in changed.stderr and changed.stdout == "8\n", changed.stderr


CHILD_INHERITS = """import subprocess, sys
subprocess.run([sys.executable, "-c", "import sys; open('c.txt', 'w').write(sys.stdin.read())"],
               check=True)
"""
CHILD_FED = """import subprocess, sys
subprocess.run([sys.executable, "-c", "import sys; open('c.txt', 'w').write(sys.stdin.read())"],
               input=b"from the parent", check=True)
"""


def test_a_child_reading_the_roots_pipe_stops_reuse_one_fed_by_its_parent_does_not(
        tmp_path: Path) -> None:
    (tmp_path / "inherits.py").write_text(CHILD_INHERITS)
    first = shark(tmp_path, "run", "inherits.py", text="one")
    assert "not cached: it read standard input" in first.stderr, first.stderr
    assert "reused" not in shark(tmp_path, "run", "inherits.py", text="two").stderr
    assert (tmp_path / "c.txt").read_text() == "two"

    (tmp_path / "fed.py").write_text(CHILD_FED)
    shark(tmp_path, "run", "fed.py", text="anything")
    again = shark(tmp_path, "run", "fed.py", text="anything else")
    assert "sharklib: reused run" in again.stderr, again.stderr


@pytest.mark.parametrize("how", ["open(0)", "open('/dev/stdin')", "input()"])
def test_every_way_of_reading_stdin_counts(tmp_path: Path, how: str) -> None:
    (tmp_path / "r.py").write_text(f"x = {how}\nx = x if isinstance(x, str) else x.read()\n"
                                   "open('r.txt', 'w').write(x)\n")
    first = shark(tmp_path, "run", "r.py", text="a\n")
    assert "not cached: it read standard input from a pipe" in first.stderr, first.stderr


def test_a_terminal_that_was_read_stops_reuse(tmp_path: Path) -> None:
    (tmp_path / "ask.py").write_text("name = input()\nopen('name.txt', 'w').write(name)\n")
    master, slave = pty.openpty()
    try:
        os.write(master, b"shark\n")
        proc = subprocess.run([os.path.join(BIN, "sharklib"), "run", "ask.py"], cwd=tmp_path,
                              stdin=slave, capture_output=True, text=True, timeout=120)
    finally:
        os.close(slave)
        os.close(master)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "name.txt").read_text() == "shark"
    assert "it read standard input from a terminal" in proc.stderr, proc.stderr


READER = """import sys
print(type(sys.stdin).__name__, sys.stdin.fileno(), sys.stdin.name, sys.stdin.encoding,
      sys.stdin.isatty(), sys.stdin.readable(), sys.stdin.mode, sys.stdin is sys.__stdin__)
print(repr(sys.stdin.readline()))
print(repr(sys.stdin.buffer.read(3)))
rest = sys.stdin.read()
print(repr(rest), sys.stdin.seekable())
if sys.stdin.seekable():
    sys.stdin.seek(0)
    print(repr(sys.stdin.read()))
"""


@pytest.mark.parametrize("source", ["pipe", "file"])
def test_the_script_reads_stdin_exactly_as_uncaptured(tmp_path: Path, source: str) -> None:
    (tmp_path / "reader.py").write_text(READER)
    data = tmp_path / "in.txt"
    data.write_text("first line\r\nsecond ünïcode\nthird")
    results = []
    for argv in ([sys.executable, "reader.py"],
                 [os.path.join(BIN, "sharklib"), "run", "-q", "--no-cache", "reader.py"]):
        with data.open("rb") as fh:
            kw: dict[str, Any] = ({"stdin": fh} if source == "file"
                                  else {"input": data.read_bytes()})
            proc = subprocess.run(argv, cwd=tmp_path, capture_output=True, timeout=120, **kw)
        results.append((proc.returncode, proc.stdout, proc.stderr))
    assert results[0] == results[1]
