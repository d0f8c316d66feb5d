"""Imported files get the mode a plain ``cp``/``curl -o``/``git clone`` would give them.

They were written to mkstemp/mkdtemp temporaries (0600/0700) and moved into place
as they were: a reference table imported for the lab was unreadable to its group.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from pipekit import Served, write
from test_imports import _git


def _run_with_umask(project: Path, umask: str) -> subprocess.CompletedProcess[str]:
    cmd = f"umask {umask}; exec \"$0\" -m sharklib pipeline run m.md"
    return subprocess.run(["sh", "-c", cmd, sys.executable], cwd=project, capture_output=True,
                          text=True, timeout=240, env={**os.environ, "COLUMNS": "200"})


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.mark.parametrize("umask, file_mode, dir_mode", [("022", 0o644, 0o755),
                                                         ("027", 0o640, 0o750)])
def test_imports_get_the_usual_mode(project: Path, tmp_path: Path, http_server: Served,
                                    umask: str, file_mode: int, dir_mode: int) -> None:
    http_server.files["/t.csv"] = b"a,b\n1,2\n"
    write(project / "vendor" / "ref.csv", "ref\n")
    repo = tmp_path / "upstream"
    repo.mkdir()
    _git("init", "-q", "-b", "main", cwd=repo)
    write(repo / "model.py", "VERSION = 1\n")
    _git("add", ".", cwd=repo)
    _git("commit", "-q", "-m", "v1", cwd=repo)
    commit = _git("rev-parse", "HEAD", cwd=repo)
    write(project / "m.md", "```shark-import\n"
          f"{http_server.base}/t.csv data/t.csv\n"
          "file:vendor/ref.csv data/ref.csv\n"
          f"git+file://{repo}@{commit} vendor/model\n```\n")
    proc = _run_with_umask(project, umask)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _mode(project / "data" / "t.csv") == file_mode
    assert _mode(project / "data" / "ref.csv") == file_mode
    assert _mode(project / "vendor" / "model") == dir_mode
    assert _mode(project / "vendor" / "model" / "model.py") == file_mode
