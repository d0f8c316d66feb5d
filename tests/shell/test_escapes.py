"""Names from the workspace are shown, not obeyed: a file named with a terminal escape does not
reach the terminal raw through :history (as the CLI's views already escape it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_history_escapes_control_characters(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    script = "echo x > \"$(printf '\\033[31mZ')\"\n:history\n"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARKLIB_")
           or k == "SHARKLIB_HOME"}
    proc = subprocess.run([sys.executable, "-m", "sharklib", "shell"], cwd=tmp_path,
                          input=script, capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout, repr(proc.stdout)
    assert "\\x1b[31mZ" in proc.stdout, proc.stdout
