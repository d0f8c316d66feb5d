"""Environment variables the user's own code reads are inputs of the run.

A SLURM array script ``files[int(os.environ["SLURM_ARRAY_TASK_ID"])]`` run for tasks 0, 1, 2
was served task 0's result for tasks 1 and 2 (wrong print, missing files): only an
allow-list of variables was in the key. Plain Python is the reference. A library reading
``HOME`` while it is imported must not change the key (teammates' machines differ there), and
a credential-like variable is never recorded in clear nor as a plain sha256.
Executions are counted through a line each script appends to a file in sharklib's home.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from stepcount import executed, step_env

TASK = """\
import os
files = ["f0.txt", "f1.txt", "f2.txt"]
i = int(os.environ["SLURM_ARRAY_TASK_ID"])
with open(os.environ["COUNT_FILE"], "a") as c:
    c.write(f"task{i}\\n")
data = open(files[i]).read()
print("task", i, data.strip())
os.makedirs("res", exist_ok=True)
with open(f"res/task{i}.txt", "w") as out:
    out.write(data.upper())
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / ".git").mkdir()
    for i in range(3):
        (proj / f"f{i}.txt").write_text(f"data{i}\n")
    (proj / "task.py").write_text(TASK)
    return proj


def _run(project: Path, script: str, **env: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "sharklib", "run", script], cwd=project,
                          env=step_env(**env), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_slurm_array_tasks_each_run_and_a_repeated_task_is_reused(project: Path) -> None:
    for i in (0, 1, 2):
        proc = _run(project, "task.py", SLURM_ARRAY_TASK_ID=str(i))
        assert proc.stdout == f"task {i} data{i}\n"
        assert (project / "res" / f"task{i}.txt").read_text() == f"DATA{i}\n"
    assert executed() == ["task0", "task1", "task2"]
    proc = _run(project, "task.py", SLURM_ARRAY_TASK_ID="1")
    assert proc.stdout == "task 1 data1\n"
    assert executed() == []  # the same value as a recorded run: reused
    explain = subprocess.run([sys.executable, "-m", "sharklib", "run", "--explain", "task.py"],
                             cwd=project, env=step_env(SLURM_ARRAY_TASK_ID="7"),
                             capture_output=True, text=True, timeout=120)
    assert "SLURM_ARRAY_TASK_ID" in explain.stdout + explain.stderr


HOMELIB = """\
import os
HOME = os.environ.get("HOME")
USER = os.getenv("USER")
SEEN = "PATH" in os.environ
"""

USES_LIB = """\
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "venv", "lib",
                                "python3", "site-packages"))
import homelib
with open(os.environ["COUNT_FILE"], "a") as c:
    c.write("uses\\n")
print("done")
"""


def test_a_library_reading_home_during_import_does_not_change_the_key(project: Path) -> None:
    """A project-local venv's library: its reads are the library's, not the script's."""
    lib = project / "venv" / "lib" / "python3" / "site-packages"
    lib.mkdir(parents=True)
    (lib / "homelib.py").write_text(HOMELIB)
    (project / "uses.py").write_text(USES_LIB)
    assert _run(project, "uses.py", HOME="/home/ann", USER="ann").stdout == "done\n"
    assert _run(project, "uses.py", HOME="/home/bob", USER="bob").stdout == "done\n"
    assert executed() == ["uses"]


SECRET = """\
import os
with open(os.environ["COUNT_FILE"], "a") as c:
    c.write("secret\\n")
token = os.environ.get("MY_API_TOKEN", "")
print("token length", len(token))
"""


def test_a_credential_like_variable_is_an_input_but_never_recorded_readably(
        project: Path) -> None:
    (project / "secret.py").write_text(SECRET)
    value = "hunter2-tok"
    assert _run(project, "secret.py", MY_API_TOKEN=value).stdout == "token length 11\n"
    assert _run(project, "secret.py", MY_API_TOKEN=value).stdout == "token length 11\n"
    assert executed() == ["secret"]
    assert _run(project, "secret.py", MY_API_TOKEN="other").stdout == "token length 5\n"
    assert executed() == ["secret"]
    plain = hashlib.sha256(value.encode()).hexdigest()
    home = Path(os.environ["SHARKLIB_HOME"])
    seen = 0
    for folder in (home, project):
        for f in folder.rglob("*"):
            if not f.is_file() or f.name in ("env-hmac.key",) or f.suffix == ".pem":
                continue
            data = f.read_bytes()
            if f.suffix == ".zst":
                import zstandard

                data = zstandard.ZstdDecompressor().decompress(data, max_output_size=1 << 26)
            assert value.encode() not in data, f
            assert plain.encode() not in data, f
            seen += b"MY_API_TOKEN" in data
    assert seen, "the variable is recorded by name"
    key = home / "config" / "env-hmac.key"
    assert key.stat().st_mode & 0o777 == 0o600


def test_a_variable_the_script_sets_itself_is_not_an_input(project: Path) -> None:
    (project / "sets.py").write_text(
        "import os\nos.environ['STAGE'] = 'x'\nprint(os.environ['STAGE'])\n"
        "with open(os.environ['COUNT_FILE'], 'a') as c:\n    c.write('sets\\n')\n")
    assert _run(project, "sets.py", STAGE="a").stdout == "x\n"
    assert _run(project, "sets.py", STAGE="b").stdout == "x\n"
    assert executed() == ["sets"]


def _pipeline(project: Path, verb: str, task: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "sharklib", "pipeline", verb, "m.md"],
                          cwd=project, env=step_env(SLURM_ARRAY_TASK_ID=task, COLUMNS="250"),
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_a_pipeline_stage_reading_a_variable_is_planned_and_run_again_when_it_changes(
        project: Path) -> None:
    """The planner (and a no-op re-run, which trusts the plan) used to skip the variables:
    task 1 after task 0 was "reuse" and left task 0's result in place."""
    (project / "m.md").write_text("```shark-run:host\npython task.py > log.txt\n```\n")
    for task, plans in (("0", "run"), ("0", "reuse"), ("0", "reuse"), ("1", "run"),
                        ("1", "reuse"), ("0", "reuse"), ("2", "run")):
        plan = _pipeline(project, "plan", task)
        row = next(line for line in plan.splitlines() if "python task.py" in line)
        assert [c.strip() for c in row.split("│")][3] == plans, plan
        if plans == "run" and task != "0":
            assert "SLURM_ARRAY_TASK_ID" in row, row
        _pipeline(project, "run", task)
        assert executed() == ([f"task{task}"] if plans == "run" else [])
        # plain Python's result: this task's line, whichever run was reused
        assert (project / "log.txt").read_text() == f"task {task} data{task}\n"
