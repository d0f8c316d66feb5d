"""``sharklib demo`` (what ``bash scripts/demo.sh`` runs), twice in a row as a newcomer would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _demo(cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-m", "sharklib", "demo"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_a_second_demo_does_not_claim_every_step_executes(tmp_path: Path) -> None:
    first = _demo(tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    again = _demo(tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    # the cache outlives the demo directory: the second demo's first pass is reused too
    reused = [line for line in again.stderr.splitlines() if line.startswith("sharklib: reused run")]
    assert len(reused) >= 6, again.stderr
    assert "every step executes" not in again.stdout
    # what the quick start (docs/index.md) and the demo's closing lines name exists
    for name in ("python-pipeline/report.md", "method/results/report.md"):
        assert (tmp_path / "shark-demo" / name).is_file()
        assert (tmp_path / "shark-demo" / f"{name}.intoto.jsonl").is_file()
    show = subprocess.run([sys.executable, "-m", "sharklib", "show",
                           "shark-demo/python-pipeline/report.md"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert show.returncode == 0, show.stderr
