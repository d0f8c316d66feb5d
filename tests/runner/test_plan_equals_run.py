"""``sharklib pipeline plan`` predicts, for every stage, what ``sharklib pipeline run`` then does.

There is one reuse decision (sharklib.runner.decide with the proof of sharklib.runner.proof),
called by the planner and at run time. Over a corpus of situations a user meets (nothing
changed, an input edited, an entry recorded by an older sharklib without a signature, an entry
signed by a key not trusted for reuse, an output deleted or edited by hand), the plan's
reuse/run column of each stage is compared with whether the stage's command then executed,
counted through a side effect (tests/runner/stepcount.py), not through sharklib's messages.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from stepcount import executed, step_env

from sharklib.cache.compact import entry_value
from sharklib.config import cache_dir

STEP = """\
import os, sys
name, src, dst = sys.argv[1:4]
with open(os.environ["COUNT_FILE"], "a") as fh:
    fh.write(name + "\\n")
text = open(src).read()
open(dst, "w").write(text.upper())
"""

#: stage name -> (input, output); "down" reads what "edited" writes
STAGES = {"same": ("a.txt", "A.txt"), "input": ("b.txt", "B.txt"),
          "unsigned": ("c.txt", "C.txt"), "deleted": ("d.txt", "D.txt"),
          "edited": ("e.txt", "E.txt"), "down": ("E.txt", "F.txt")}


def _sharklib(project: Path, *args: str, key: Path | None = None) -> str:
    env = step_env(COLUMNS="250")
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    if key is not None:
        env["SHARKLIB_KEY"] = str(key)
    proc = subprocess.run([sys.executable, "-m", "sharklib", *args], cwd=project, env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _plan(project: Path, key: Path | None) -> dict[str, str]:
    """Stage name -> "reuse" or "run", read from the plan's table."""
    out = _sharklib(project, "pipeline", "plan", "m.md", key=key)
    plans: dict[str, str] = {}
    for line in out.splitlines():
        m = re.match(r"^│\s*\d+\s*│\s*python step\.py (\w+) .*?│\s*(reuse|run)\s*│", line)
        if m:
            plans[m.group(1)] = m.group(2)
    assert set(plans) == set(STAGES), out
    return plans


def _unsign(project: Path, stage: str) -> None:
    """Make the stage's entry what an older sharklib (no signatures) left in the index."""
    with sqlite3.connect(cache_dir() / "index.sqlite") as db:
        rows = db.execute("SELECT run_id, key, entry FROM runs").fetchall()
        hits = [(rid, key, entry_value(stored)) for rid, key, stored in rows
                if f"step.py {stage} " in " ".join(entry_value(stored)["run"]["argv"]) + " "]
        assert len(hits) == 1, [entry_value(t)["run"]["argv"] for _, _, t in rows]
        rid, key, entry = hits[0]
        entry.pop("attestation", None)
        db.execute("UPDATE runs SET entry=? WHERE run_id=?",
                   (json.dumps(entry, sort_keys=True, separators=(",", ":")), rid))
        db.execute("DELETE FROM run_facts WHERE run_id=?", (rid,))
        db.execute("INSERT OR IGNORE INTO facts_missing (run_id, key) VALUES (?, ?)", (rid, key))


def _nothing(project: Path) -> None:
    pass


def _edit_input(project: Path) -> None:
    (project / "b.txt").write_text("b edited\n")


def _unsigned(project: Path) -> None:
    _unsign(project, "unsigned")


def _delete_output(project: Path) -> None:
    (project / "D.txt").unlink()


def _edit_output(project: Path) -> None:
    (project / "E.txt").write_text("edited by hand\n")


SITUATIONS: dict[str, Callable[[Path], None]] = {
    "unchanged": _nothing, "input edited": _edit_input, "entry unsigned": _unsigned,
    "output deleted": _delete_output, "output hand-edited": _edit_output,
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "p"
    root.mkdir()
    (root / ".git").mkdir()
    (root / "step.py").write_text(STEP)
    for name, (src, _) in STAGES.items():
        if name != "down":
            (root / src).write_text(f"{name}\n")
    (root / "m.md").write_text("```shark-run:host\n" + "".join(
        f"python step.py {name} {src} {dst}\n" for name, (src, dst) in STAGES.items()) + "```\n")
    old = time.time() - 60  # outside the stat cache's racy window
    for p in root.iterdir():
        if p.is_file():
            os.utime(p, (old, old))
    return root


def _check(project: Path, key: Path | None = None) -> dict[str, str]:
    plans = _plan(project, key)
    executed()
    _sharklib(project, "pipeline", "run", "m.md", key=key)
    ran = set(executed())
    done = {name: "run" if name in ran else "reuse" for name in STAGES}
    assert plans == done, f"plan {plans} but run {done}"
    return plans


@pytest.mark.parametrize("situation", sorted(SITUATIONS))
def test_plan_predicts_the_run(project: Path, situation: str) -> None:
    _sharklib(project, "pipeline", "run", "m.md")
    assert executed() == sorted(STAGES)
    SITUATIONS[situation](project)
    plans = _check(project)
    expect = {"unchanged": set(), "input edited": {"input"}, "entry unsigned": {"unsigned"},
              "output deleted": set(), "output hand-edited": set()}[situation]
    assert {n for n, p in plans.items() if p == "run"} == expect, plans
    assert all(p == "reuse" for p in _check(project).values())  # and then all is done


def test_signer_not_trusted_for_reuse(project: Path, tmp_path: Path) -> None:
    """Runs recorded under another key (a colleague's, a key since replaced) are run again."""
    colleague = tmp_path / "colleague.pem"
    _sharklib(project, "keys", "generate", "--out", str(colleague))
    _sharklib(project, "pipeline", "run", "m.md", key=colleague)
    assert executed() == sorted(STAGES)
    plans = _check(project)
    assert set(plans.values()) == {"run"}, plans
    assert all(p == "reuse" for p in _check(project).values())
