"""The record of what each step was observed to read, as steps under ``make -j`` write it.

A recorded step appends its own dependencies to a journal under an ``flock``; whoever reads
the record folds the journal in first (issue 18: every recorded step used to import the
``filelock`` package and read and rewrite every target's record).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sharklib.model import Artifact, Output, Run
from sharklib.runner import makedeps

Z = "0" * 64


def _run(root: Path, target: str, *deps: str) -> Run:
    return Run("r-" + target, ["python", "x.py"], str(root), 0.0,
               inputs=[Artifact(str(root / d), Z) for d in deps],
               outputs=[Output(str(root / target), Z)])


def _remember_in_children(root: Path, n: int) -> None:
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "sys.path.insert(0, sys.argv[3])\n"
        "from test_make_deps_journal import _run\n"
        "from sharklib.runner import makedeps\n"
        "root = Path(sys.argv[1]); i = int(sys.argv[2])\n"
        "for j in range(20):\n"
        "    makedeps.remember(str(root), _run(root, f'out/{i}-{j}.count', f'data/{i}.txt'))\n"
    )
    here = os.path.dirname(os.path.abspath(__file__))
    procs = [subprocess.Popen([sys.executable, "-c", code, str(root), str(i), here])
             for i in range(n)]
    assert all(p.wait(timeout=120) == 0 for p in procs)


def test_steps_recording_at_once_all_land_and_the_fold_empties_the_journal(
        tmp_path: Path) -> None:
    makedeps.remember(str(tmp_path), _run(tmp_path, "out/old.count", "data/old.txt"))
    assert makedeps.recorded(str(tmp_path)) == {"out/old.count": ["data/old.txt"]}
    _remember_in_children(tmp_path, 6)
    deps = makedeps.recorded(str(tmp_path))
    assert len(deps) == 1 + 6 * 20
    assert deps["out/3-7.count"] == ["data/3.txt"]
    where = tmp_path / makedeps.DEPS_DIR
    assert (where / makedeps.JOURNAL_FILE).stat().st_size == 0
    assert json.loads((where / makedeps.DEPS_FILE).read_text()) == deps
    # a later record of a target replaces what was observed before
    makedeps.remember(str(tmp_path), _run(tmp_path, "out/old.count", "data/new.txt"))
    assert makedeps.recorded(str(tmp_path))["out/old.count"] == ["data/new.txt"]


def test_a_torn_journal_line_is_skipped(tmp_path: Path) -> None:
    makedeps.remember(str(tmp_path), _run(tmp_path, "a.out", "a.in"))
    journal = tmp_path / makedeps.DEPS_DIR / makedeps.JOURNAL_FILE
    with open(journal, "ab") as fh:
        fh.write(b'{"b.out": ["b.i')
    assert makedeps.recorded(str(tmp_path)) == {"a.out": ["a.in"]}


def test_the_fragment_make_reads_holds_what_steps_appended(tmp_path: Path) -> None:
    makedeps.remember(str(tmp_path), _run(tmp_path, "a.out", "a.in", "helper.py"))
    env: dict[str, str] = {}
    makedeps.makefiles_env(env, str(tmp_path), str(tmp_path))
    text = Path(env["MAKEFILES"]).read_text()
    assert "a.out: private .EXTRA_PREREQS += a.in helper.py" in text
    makedeps.remember(str(tmp_path), _run(tmp_path, "b.out", "b.in"))
    env = {}
    makedeps.makefiles_env(env, str(tmp_path), str(tmp_path))
    text = Path(env["MAKEFILES"]).read_text()
    assert "a.out: private" in text and "b.out: private .EXTRA_PREREQS += b.in" in text


def test_recording_a_step_imports_no_lock_package(tmp_path: Path) -> None:
    """What every recorded step pays: a lock package pulled in logging, inspect, traceback."""
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "sys.path.insert(0, sys.argv[2])\n"
        "from test_make_deps_journal import _run\n"
        "from sharklib.runner import makedeps\n"
        "before = set(sys.modules)\n"
        "makedeps.remember(sys.argv[1], _run(Path(sys.argv[1]), 'a.out', 'a.in'))\n"
        "print(' '.join(sorted(set(sys.modules) - before)))\n"
    )
    here = os.path.dirname(os.path.abspath(__file__))
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path), here], check=True,
                         capture_output=True, text=True, timeout=60).stdout.split()
    assert not [m for m in out if m.split(".")[0] in ("filelock", "logging", "inspect")], out
