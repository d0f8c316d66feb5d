"""``sharklib cache push`` says what happened: pushed, already there, or refused, and why.

Real runs recorded by the CLI into a real cache, pushed to ``file://`` remotes: one that
refuses (its ``objects`` is a file, as a broken or hostile share can be), one whose entries
are there but whose objects were lost (a remote pruned by hand): "already there" is said
only of a run the remote can serve.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


def _env(home: Path, remote: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARKLIB_")}
    env.update(SHARKLIB_HOME=str(home), SHARKLIB_CACHE_REMOTE=remote.as_uri(),
               SHARKLIB_CACHE_PUSH="0", COLUMNS="200")
    return env


def _shark(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sharklib", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_push_says_what_happened(tmp_path: Path) -> None:
    project, remote = tmp_path / "p", tmp_path / "remote"
    (project / ".git").mkdir(parents=True)
    remote.mkdir()
    env = _env(tmp_path / "home", remote)
    for name in ("a", "b"):
        (project / f"{name}.py").write_text(f"open('{name}.txt', 'w').write('{name}' * 1000)\n")
        r = _shark(project, env, "run", "-q", f"{name}.py")
        assert r.returncode == 0, r.stderr

    (remote / "objects").write_text("not a directory")  # the remote refuses every upload
    r = _shark(project, env, "cache", "push")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "already there" not in r.stdout, r.stdout
    assert "pushed 0 of 2 runs" in r.stdout and "2 refused" in r.stdout, r.stdout
    problems = r.stderr.strip().splitlines()
    assert len(problems) == 1 and "objects" in problems[0] and remote.as_uri() in problems[0], \
        problems  # said once, not once per run

    (remote / "objects").unlink()
    r = _shark(project, env, "cache", "push")
    assert r.returncode == 0 and "pushed 2 of 2 runs" in r.stdout, r.stdout + r.stderr
    r = _shark(project, env, "cache", "push")
    assert r.returncode == 0 and "pushed 0 of 2 runs; 2 already there" in r.stdout, r.stdout

    shutil.rmtree(remote / "objects")  # entries left, their objects lost
    r = _shark(project, env, "cache", "push")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "already there" not in r.stdout and "2 completed" in r.stdout, r.stdout
    assert len(list((remote / "objects").rglob("*.zst"))) >= 2


def test_a_remote_folder_that_cannot_be_made_is_one_line_and_runs_go_on(tmp_path: Path) -> None:
    project = tmp_path / "p"
    (project / ".git").mkdir(parents=True)
    (tmp_path / "a-file").write_text("a file where the share's folder belongs\n")
    env = _env(tmp_path / "home", tmp_path / "a-file" / "remote")
    (project / "a.py").write_text("open('a.txt', 'w').write('a')\n")
    r = _shark(project, env, "run", "-q", "a.py")  # the step runs; the remote is only a miss
    assert r.returncode == 0 and (project / "a.txt").read_text() == "a", r.stderr
    for verb in ("push", "pull"):
        r = _shark(project, env, "cache", verb)
        assert r.returncode != 0, r
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "cannot be used: Not a directory" in lines[0], r.stderr
        assert "please report it" not in r.stderr
