"""The file on standard input is part of the run (a tester's wrong results on main).

``python -m sharklib run upper.py < A.txt`` then ``< B.txt`` served A's answer: the bytes on
stdin were in no key and in no recorded input a reuse checked. Plain Python is the reference:
each run below must print what ``python upper.py`` prints, and a step must execute exactly
when plain Python's answer could differ. Executions are counted through a line the script
appends to a file in sharklib's own home (stepcount), never through sharklib's messages.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from stepcount import executed, step_env

UPPER = """\
import os, sys
with open(os.environ["COUNT_FILE"], "a") as fh:
    fh.write("upper\\n")
sys.stdout.write("[" + sys.stdin.read().upper() + "]\\n")
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / ".git").mkdir()
    (proj / "upper.py").write_text(UPPER)
    (proj / "A.txt").write_text("apple\n")
    (proj / "B.txt").write_text("banana\n")
    return proj


def _run(project: Path, stdin: object) -> str:
    proc = subprocess.run([sys.executable, "-m", "sharklib", "run", "upper.py"], cwd=project,
                          env=step_env(), stdin=stdin, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _run_file(project: Path, name: str) -> str:
    with open(project / name, "rb") as fh:
        return _run(project, fh)


def test_another_file_on_stdin_runs_again_and_the_same_file_is_reused(project: Path) -> None:
    assert _run_file(project, "A.txt") == "[APPLE\n]\n"
    assert _run_file(project, "B.txt") == "[BANANA\n]\n"
    assert executed() == ["upper", "upper"]
    assert _run_file(project, "A.txt") == "[APPLE\n]\n"
    assert _run_file(project, "B.txt") == "[BANANA\n]\n"
    assert executed() == []  # both recorded, both unchanged: reused
    (project / "A.txt").write_text("apricot\n")
    assert _run_file(project, "A.txt") == "[APRICOT\n]\n"
    assert executed() == ["upper"]


def test_dev_null_is_a_fixed_identity(project: Path) -> None:
    assert _run_file(project, "A.txt") == "[APPLE\n]\n"
    assert _run(project, subprocess.DEVNULL) == "[]\n"
    assert executed() == ["upper", "upper"]
    assert _run(project, subprocess.DEVNULL) == "[]\n"
    assert executed() == []


def test_a_deleted_file_on_stdin_counts_by_its_content(project: Path, tmp_path: Path) -> None:
    """What a bash here-document or long here-string gives a command: an unlinked temporary."""
    def deleted(text: str) -> str:
        tmp = tmp_path / "here.tmp"
        tmp.write_text(text)
        with open(tmp, "rb") as fh:
            tmp.unlink()
            return _run(project, fh)

    assert deleted("one\n") == "[ONE\n]\n"
    assert deleted("two\n") == "[TWO\n]\n"
    assert executed() == ["upper", "upper"]
    assert deleted("two\n") == "[TWO\n]\n"
    assert executed() == []


def test_bash_here_strings(project: Path) -> None:
    """Short here-strings are pipes (never cached), long ones deleted files: never stale."""
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    assert _run_file(project, "A.txt") == "[APPLE\n]\n"  # recorded: no later run may get it
    long_x, long_y = "x" * 100_000, "y" * 100_000
    for word in ("x", "y", long_x, long_y):
        proc = subprocess.run(["bash", "-c", f'"$0" -m sharklib run upper.py <<< "{word}"',
                               sys.executable], cwd=project, env=step_env(),
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == "[" + word.upper() + "\n]\n"


MAKEFILE = """\
all: $(patsubst data/%.txt,out/%.up,$(wildcard data/*.txt)) \
$(patsubst data/%.txt,out/%.sorted,$(wildcard data/*.txt))
out/%.up: data/%.txt
\tpython upper.py < $< > $@
out/%.sorted: data/%.txt
\techo sort >> $$COUNT_FILE; sort < $< > $@
"""


def _tracer_or_skip() -> None:
    if shutil.which("make") is None:
        pytest.skip("make is not installed (scripts/apt-packages.txt lists it)")
    try:
        from sharklib.trace.session import choose_backend

        choose_backend("auto")
    except Exception as exc:
        pytest.skip(f"no native tracer may run here ({exc}); such recipes run untraced")


def _make(project: Path, *args: str, stdin: object = subprocess.DEVNULL) -> None:
    sharklib = os.path.join(os.path.dirname(sys.executable), "sharklib")
    env = step_env(PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    proc = subprocess.run([sharklib, "env", "--", "make", *args], cwd=project, env=env,
                          stdin=stdin, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_make_pattern_rules_reading_stdin(project: Path) -> None:
    _tracer_or_skip()
    (project / "data").mkdir()
    (project / "out").mkdir()
    for name in ("a", "b", "c"):
        (project / "data" / f"{name}.txt").write_text(f"{name} 2\n{name} 1\n")
    (project / "Makefile").write_text(MAKEFILE)
    _make(project)
    for name in ("a", "b", "c"):
        assert (project / "out" / f"{name}.up").read_text() == f"[{name.upper()} 2\n{name.upper()} 1\n]\n"
        assert (project / "out" / f"{name}.sorted").read_text() == f"{name} 1\n{name} 2\n"
    assert executed() == ["sort"] * 3 + ["upper"] * 3
    (project / "data" / "b.txt").write_text("b 9\nb 0\n")
    _make(project)
    assert (project / "out" / "b.up").read_text() == "[B 9\nB 0\n]\n"
    assert (project / "out" / "b.sorted").read_text() == "b 0\nb 9\n"
    assert executed() == ["sort", "upper"]


def test_a_native_recipe_reading_makes_stdin(project: Path) -> None:
    """``make < A.txt`` then ``< B.txt``: the ``sort`` recipe's input is make's standard input."""
    _tracer_or_skip()
    (project / "Makefile").write_text("all:\n\t@echo sort >> $$COUNT_FILE; sort\n")
    outs = []
    for name in ("A.txt", "B.txt", "B.txt"):
        with open(project / name, "rb") as fh:
            sharklib = os.path.join(os.path.dirname(sys.executable), "sharklib")
            proc = subprocess.run([sharklib, "env", "--", "make", "-s"], cwd=project,
                                  env=step_env(), stdin=fh, capture_output=True, text=True,
                                  timeout=300)
        assert proc.returncode == 0, proc.stderr
        outs.append(proc.stdout)
    assert outs == ["apple\n", "banana\n", "banana\n"]
    assert executed() == ["sort", "sort"]
