"""A traced command that edits a file in place (``sed -i``, ``sort -o f f``, an ``O_RDWR``
update) read the file's earlier content, which the tracer cannot hash (inputs are hashed after
the command ended, when the file holds the new content). The file is recorded as an output
only, ``show``/``verify`` of it work (before: "lineage has a cycle"), and the run is never
reused: plain sed, sort and make redo the edit every time, and so does sharklib. Executions
are counted through the edited file itself (each run adds one ``+``); a file the tree wrote
first and then re-read or re-wrote is an ordinary output and still reused.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from sharklib.runner.step import Step

SHARKLIB = os.path.join(os.path.dirname(sys.executable), "sharklib")


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SHARKLIB, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def _project(tmp_path: Path) -> Path:
    (tmp_path / ".git").mkdir()
    (tmp_path / "notes.txt").write_text("a\n")
    return tmp_path


def _runs_every_time(argv: list[str], cwd: Path, backend: str) -> None:
    for _ in range(3):
        r = Step(argv, cwd=cwd, capture="trace", backend=backend).run()
        assert r.exit_status == 0 and not r.reused


def test_sed_i_runs_every_time_and_its_file_shows_and_verifies(backend: str,
                                                                 tmp_path: Path) -> None:
    proj = _project(tmp_path)
    _runs_every_time(["sed", "-i", "s/$/+/", "notes.txt"], proj, backend)
    assert (proj / "notes.txt").read_text() == "a+++\n"
    traced = _cli("trace", "--backend", backend, "--", "sed", "-i", "s/$/+/", "notes.txt",
                  cwd=proj)
    assert traced.returncode == 0, traced.stderr
    assert (proj / "notes.txt").read_text() == "a++++\n"
    for view in ("show", "verify", "why"):
        out = _cli(view, "notes.txt", cwd=proj)
        assert out.returncode == 0, f"{view}: {out.stdout}{out.stderr}"
        assert "cycle" not in out.stdout + out.stderr
    (proj / "notes.txt").write_text("forged\n")
    assert _cli("verify", "notes.txt", cwd=proj).returncode == 1


def test_sort_o_onto_its_input_runs_every_time(backend: str, tmp_path: Path) -> None:
    # GNU sort opens nums.txt for writing (no O_TRUNC) before it reads it, then truncates it
    # through the descriptor: the write-open keeps the content the read then sees
    proj = _project(tmp_path)
    (proj / "nums.txt").write_text("3\n1\n")
    _runs_every_time(["sort", "-n", "-o", "nums.txt", "nums.txt"], proj, backend)
    (proj / "nums.txt").write_text("9\n5\n")
    r = Step(["sort", "-n", "-o", "nums.txt", "nums.txt"], cwd=proj, capture="trace",
             backend=backend).run()
    assert not r.reused and (proj / "nums.txt").read_text() == "5\n9\n"
    out = _cli("show", "nums.txt", cwd=proj)
    assert out.returncode == 0 and "cycle" not in out.stdout + out.stderr, out.stderr


def test_an_o_rdwr_update_runs_every_time(backend: str, tmp_path: Path,
                                          cprog: Callable[[str], str]) -> None:
    proj = _project(tmp_path)
    prog = cprog("update")
    for i in range(2):
        (proj / "notes.txt").write_text(f"run {i}\n")
        r = Step([prog, "notes.txt"], cwd=proj, capture="trace", backend=backend).run()
        assert r.exit_status == 0 and not r.reused
        assert (proj / "notes.txt").read_text() == f"RUN {i}\n"
    (proj / "notes.txt").write_text("run 0\n")  # the content a first run saw: not reused
    r = Step([prog, "notes.txt"], cwd=proj, capture="trace", backend=backend).run()
    assert not r.reused and (proj / "notes.txt").read_text() == "RUN 0\n"
    out = _cli("show", "notes.txt", cwd=proj)
    assert out.returncode == 0 and "cycle" not in out.stdout + out.stderr, out.stderr


def test_a_file_the_tree_made_and_then_rewrites_is_an_ordinary_output(
        backend: str, tmp_path: Path, cprog: Callable[[str], str]) -> None:
    proj = _project(tmp_path)
    prog = cprog("update")
    line = (f"rm -f own.txt made.txt; {prog} made.txt new; {prog} made.txt; "
            "cat notes.txt > own.txt; sed -i s/a/b/ own.txt; sort -o own.txt own.txt")
    first = Step(["sh", "-c", line], cwd=proj, capture="trace", backend=backend).run()
    assert first.exit_status == 0 and not first.reused
    again = Step(["sh", "-c", line], cwd=proj, capture="trace", backend=backend).run()
    assert again.reused, "a file the tree wrote first is no input of its own"
    assert (proj / "own.txt").read_text() == "b\n" and (proj / "made.txt").read_text() == "NEW\n"


def test_sharklib_trace_says_why_it_is_not_cached(tmp_path: Path) -> None:
    proj = _project(tmp_path)
    for _ in range(2):
        proc = _cli("trace", "--", "sed", "-i", "s/$/+/", "notes.txt", cwd=proj)
        assert proc.returncode == 0, proc.stderr
    assert "rewrote its own input notes.txt" in proc.stderr, proc.stderr
    assert (proj / "notes.txt").read_text() == "a++\n"


def test_a_make_recipe_editing_in_place_runs_as_plain_make_would(tmp_path: Path) -> None:
    if shutil.which("make") is None:
        pytest.skip("make is not installed (scripts/apt-packages.txt lists it)")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runner"))
    from stepcount import executed, step_env

    proj = _project(tmp_path)
    (proj / "Makefile").write_text(".PHONY: edit\nedit:\n"
                                   "\techo edit >> $$COUNT_FILE; sed -i 's/$$/+/' notes.txt\n")
    for _ in range(3):
        proc = subprocess.run([SHARKLIB, "env", "--", "make", "-s", "edit"], cwd=proj,
                              env=step_env(), capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    assert executed() == ["edit"] * 3
    assert (proj / "notes.txt").read_text() == "a+++\n"
