"""The natural command: ``sharklib env -- make all``, with a Makefile that declares only part of
what its steps read (issue 16, items 2, 3 and 8).

The Makefile names each script but not the helper module ``count.py`` imports, nor the
``labels.cfg`` that ``collate.py`` reads. sharklib keeps what each step was observed to read
and hands it to make through ``MAKEFILES``, so make re-runs exactly what an edit reaches.
Executions are counted through a line each script appends to a file in sharklib's own home
(a place sharklib never records as data), never through sharklib's messages.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from stepcount import executed, step_env

MAKEFILE = """\
all: summary.txt
%.count: %.txt count.py
\tpython count.py $< $@
summary.txt: a.count b.count
\tpython collate.py $^ $@
"""

SCRIPTS = {
    "helper.py": "def words(text):\n    return len(text.split())\n",
    "count.py": ("import os, sys\nfrom helper import words\n"
                 "open(os.environ['COUNT_FILE'], 'a').write(sys.argv[2] + '\\n')\n"
                 "open(sys.argv[2], 'w').write(str(words(open(sys.argv[1]).read())) + '\\n')\n"),
    "collate.py": ("import os, sys\n"
                   "open(os.environ['COUNT_FILE'], 'a').write(sys.argv[-1] + '\\n')\n"
                   "label = open('labels.cfg').read().strip()\n"
                   "total = sum(int(open(p).read()) for p in sys.argv[1:-1])\n"
                   "open(sys.argv[-1], 'w').write(f'{label}: {total}\\n')\n"),
    "labels.cfg": "words\n",
    "a.txt": "one two three\n",
    "b.txt": "four five\n",
}


def _env(bin_dir: str) -> dict[str, str]:
    return step_env(PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    if shutil.which("make") is None:
        pytest.skip("make is not installed (scripts/apt-packages.txt lists it)")
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / ".git").mkdir()
    (proj / "Makefile").write_text(MAKEFILE)
    for name, text in SCRIPTS.items():
        (proj / name).write_text(text)
    return proj


def make(project: Path) -> subprocess.CompletedProcess[str]:
    """``sharklib env -- make all`` exactly as a user types it (python is the venv's)."""
    bin_dir = os.path.dirname(sys.executable)
    proc = subprocess.run([os.path.join(bin_dir, "sharklib"), "env", "--", "make", "all"],
                          cwd=project, env=_env(bin_dir), capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc




EDITS = [
    # (what the user does, the steps that must execute)
    ("nothing", lambda p: None, []),
    ("touch an input", lambda p: os.utime(p / "a.txt"), []),
    ("change an input", lambda p: (p / "a.txt").write_text("one two three four\n"),
     ["a.count", "summary.txt"]),
    ("comment-only edit of the undeclared helper",
     lambda p: (p / "helper.py").write_text(SCRIPTS["helper.py"] + "# faster some day\n"),
     ["a.count", "b.count"]),
    ("edit of the helper that changes results",
     lambda p: (p / "helper.py").write_text("def words(text):\n    return 2 * len(text.split())\n"),
     ["a.count", "b.count", "summary.txt"]),
    ("edit of the undeclared config", lambda p: (p / "labels.cfg").write_text("tokens\n"),
     ["summary.txt"]),
    ("edit of an undeclared script (the recipe gets $^ as the Makefile says)",
     lambda p: (p / "collate.py").write_text(SCRIPTS["collate.py"] + "# reviewed\n"),
     ["summary.txt"]),
]


def test_make_reruns_exactly_what_an_edit_reaches(project: Path, tmp_path: Path) -> None:
    make(project)
    assert executed() == ["a.count", "b.count", "summary.txt"]
    table = []
    for what, edit, expected in EDITS:
        edit(project)
        make(project)
        got = executed()
        table.append((what, expected, got))
        # and a second make after it is make's own no-op: nothing left looks stale
        again = make(project)
        assert executed() == [], f"after {what}: {again.stdout}{again.stderr}"
        assert "Nothing to be done" in again.stdout, again.stdout
    assert all(e == g for _, e, g in table), table

    # the results are plain make's: a copy built from scratch without sharklib agrees
    plain = tmp_path / "plain"
    shutil.copytree(project, plain, ignore=shutil.ignore_patterns(
        "*.count", "summary.txt", "*.intoto.jsonl", ".sharklib"))
    subprocess.run(["make", "-s", "all"], cwd=plain, env=_env(os.path.dirname(sys.executable)),
                   check=True, timeout=120)
    for name in ("a.count", "b.count", "summary.txt"):
        assert (plain / name).read_bytes() == (project / name).read_bytes(), name


def test_the_reuse_line_names_the_step(project: Path) -> None:
    make(project)
    executed()
    os.utime(project / "b.txt")
    out = make(project)
    assert executed() == []
    assert "reused run of" in out.stderr and "count.py b.txt b.count" in out.stderr, out.stderr


def test_a_deleted_dependency_reruns_its_dependants_instead_of_stopping_make(
        project: Path) -> None:
    make(project)
    executed()
    (project / "labels.cfg").unlink()
    bin_dir = os.path.dirname(sys.executable)
    proc = subprocess.run([os.path.join(bin_dir, "sharklib"), "env", "--", "make", "all"],
                          cwd=project, env=_env(bin_dir), capture_output=True, text=True,
                          timeout=240)
    # plain make would run collate.py too (it has no rule for labels.cfg to stop on): the
    # script's own FileNotFoundError is what the user sees, not "No rule to make target"
    assert "No rule to make target" not in proc.stderr, proc.stderr
    assert "FileNotFoundError" in proc.stderr and "labels.cfg" in proc.stderr
