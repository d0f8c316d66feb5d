"""A captured script has plain Python's recursion budget and ``sys.orig_argv`` (issue 15.13).

sharklib's own frames (runpy, the command, the code that executes the script) sit below
the script's; they used to cost it 5-8 frames of recursion, so a recursion that worked
under ``python script.py`` raised RecursionError under capture, and ``sys.orig_argv`` was
``[python, -m, sharklib, run, -q, script.py]``. Plain Python's output is the reference,
for a script, ``-m`` and ``-c``, through ``python -m sharklib`` and the console script.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.capture.conftest import clean_env

PROBE = """\
import json, sys

def deepest() -> int:
    def f(n):
        return 0 if n == 0 else 1 + f(n - 1)
    n = 1
    while True:
        try:
            f(n)
        except RecursionError:
            return n
        n += 1

first = deepest()
limit = sys.getrecursionlimit()
sys.setrecursionlimit(1500)
print(json.dumps({"deepest": first, "limit": limit, "raised": sys.getrecursionlimit(),
                  "deepest_raised": deepest(), "argv": sys.argv,
                  "orig_argv": sys.orig_argv[1:]}))
"""

FORMS = {
    "script": ["probe.py", "a", "-q"],
    "module": ["-m", "probe", "a"],
    "code": ["-c", "exec(open('probe.py').read())", "a"],
}
SHARKLIB = os.path.join(os.path.dirname(sys.executable), "sharklib")


@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("entry", ["python -m sharklib", "sharklib"])
def test_recursion_budget_and_orig_argv_are_plain_pythons(tmp_path: Path, form: str,
                                                          entry: str) -> None:
    (tmp_path / "probe.py").write_text(PROBE)
    args = FORMS[form]

    def run(cmd: list[str]) -> dict[str, object]:
        p = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True,
                           env=clean_env(), timeout=120)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)

    plain = run([sys.executable, *args])
    front = [sys.executable, "-m", "sharklib"] if entry != "sharklib" else [SHARKLIB]
    captured = run([*front, "run", "-q", "--no-cache", *args])
    assert captured == plain
    assert plain["deepest_raised"] > plain["deepest"]


def test_a_script_named_through_dotdot_keeps_plain_pythons_name(tmp_path: Path) -> None:
    """``python ../s.py``: ``__file__`` and the traceback say ``/w/sub/../s.py``, not a
    normalised path (a tool parsing tracebacks or building paths from __file__ sees the same)."""
    (tmp_path / ".git").mkdir()
    (tmp_path / "sub").mkdir()
    (tmp_path / "s.py").write_text("import sys\nprint(__file__, sys.argv[0])\nraise KeyError(1)\n")
    cwd = tmp_path / "sub"
    plain = subprocess.run([sys.executable, "../s.py"], cwd=cwd, capture_output=True, text=True)
    ours = subprocess.run([sys.executable, "-m", "sharklib", "run", "-q", "../s.py"], cwd=cwd,
                          capture_output=True, text=True, env=clean_env())
    assert "/sub/../s.py" in plain.stdout
    assert (ours.returncode, ours.stdout, ours.stderr) == \
        (plain.returncode, plain.stdout, plain.stderr)
