"""A scripted session ends with the status bash would end with for the same lines."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from shellkit import run_shell, shell_env


@pytest.mark.timeout(300)
@pytest.mark.parametrize("script", ["echo a\nexit 3\necho after\n", "false\nexit\n",
                                    "exit 300\n", "exit abc\n", "true\n", "false\n"])
def test_exit_status_is_bashs(traced: None, tmp_path: Path, script: str) -> None:
    ws = tmp_path / "project"
    ws.mkdir()
    env = shell_env()
    plain = subprocess.run(["bash"], input=script, capture_output=True, text=True, cwd=ws,
                           env=env, timeout=60, check=False)
    res = run_shell(ws, script, env)
    assert res.returncode == plain.returncode, res.stderr
    assert res.stdout == plain.stdout
