"""``sharklib impact`` in one project when the same command runs in another checkout.

A step is its command in its working directory in its project: keys are relocatable, so two
checkouts of one pipeline record the same ``python plot.py`` (same relative working
directory, same command). The newer run in the other checkout made this project's run of
the step "history", and the step vanished from ``impact`` here (the user edited the config
the plot reads and was told nothing depends on it).
"""

from __future__ import annotations

import json
from pathlib import Path

from viewkit import shark

STEP = ("import sys\n"
        "cfg = open('config.txt').read()\n"
        "open('plot.txt', 'w').write(cfg.upper())\n")


def _checkout(where: Path, colour: str) -> Path:
    where.mkdir(parents=True)
    (where / ".git").mkdir()
    (where / "plot.py").write_text(STEP)
    (where / "config.txt").write_text(colour)
    r = shark("run", "-q", "plot.py", cwd=where)
    assert r.returncode == 0, r.stderr
    return where


def test_a_newer_run_in_another_checkout_does_not_hide_this_ones(tmp_path: Path) -> None:
    mine = _checkout(tmp_path / "mine", "blue\n")
    # later, with another config (so it runs): the newest run of the same relative step
    _checkout(tmp_path / "theirs", "red\n")
    r = shark("impact", "config.txt", "--format", "json", cwd=mine)
    assert r.returncode == 0, r.stderr
    steps = json.loads(r.stdout)["steps"]
    assert [s["command"] for s in steps] == ["python plot.py"], steps
    [step] = steps
    assert [o["path"] for o in step["outputs"]] == ["plot.txt"]
    assert step["depth"] == 0 and step["root"] == str(mine)
