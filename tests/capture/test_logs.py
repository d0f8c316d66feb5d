"""Logs out of the record (issue 17.3): a redirected stdout/stderr is a log, not the data.

``python -m sharklib run step.py > o.log 2> e.log`` (CI logs, nohup, SLURM ``-o``/``-e``):
inside the project both logs are signed outputs and stay verifiable (the summary line is
in ``e.log`` before it is signed, never appended after); outside the project they are
recorded by digest in the statement and no sidecar is written beside them; the hint of
the summary line names the data output, not a log.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from pathlib import Path

from tests.capture.conftest import clean_env
from tests.runner.stepcount import count_file, executed

STEP = """\
import sys
open("data.csv", "w").write("a,b\\n1,2\\n")
print("made data")
sys.stderr.write("a note\\n")
"""


def _run(project: Path, out: Path, err: Path, *opts: str) -> None:
    with open(out, "wb") as o, open(err, "wb") as e:
        p = subprocess.run([sys.executable, "-m", "sharklib", "run", *opts, "step.py"],
                           cwd=project, stdout=o, stderr=e, env=clean_env(), timeout=120)
    assert p.returncode == 0, err.read_text()


def _verify(project: Path, name: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sharklib", "verify", name], cwd=project,
                          capture_output=True, text=True, env=clean_env(), timeout=120)


def _project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    (project / "step.py").write_text(STEP)
    return project


def test_logs_inside_the_project_verify_with_the_summary_line_in_them(tmp_path: Path) -> None:
    project = _project(tmp_path)
    for opts in (("--no-cache",), ()):  # with the cache the line also says what was cached
        _run(project, project / "o.log", project / "e.log", *opts)
        err = (project / "e.log").read_text()
        assert err.startswith("a note\nsharklib: recorded 3 outputs"), err
        # the data output comes first, and is what the hint names
        assert "sidecars: data.csv.intoto.jsonl, " in err and "sharklib show data.csv" in err
        for name in ("e.log", "o.log", "data.csv"):
            v = _verify(project, name)
            assert v.returncode == 0, (name, v.stdout, v.stderr)
        assert (project / "o.log").read_text() == "made data\n"


def test_logs_outside_the_project_get_no_sidecar_and_are_signed_by_digest(tmp_path: Path) -> None:
    project = _project(tmp_path)
    logs = tmp_path / "var-log"
    logs.mkdir()
    _run(project, logs / "o.log", logs / "e.log", "--no-cache")
    assert sorted(p.name for p in logs.iterdir()) == ["e.log", "o.log"]
    err = (logs / "e.log").read_text()
    assert "sidecars: data.csv.intoto.jsonl — sharklib show data.csv" in err, err
    statements = b""
    for line in (project / "data.csv.intoto.jsonl").read_bytes().splitlines():
        env = json.loads(line)
        env = env.get("dsseEnvelope", env)
        statements += base64.b64decode(env["payload"])
    digest = hashlib.sha256((logs / "o.log").read_bytes()).hexdigest()
    assert digest.encode() in statements
    assert _verify(project, "data.csv").returncode == 0


PRINT_ONLY = """\
import os
with open(os.environ["COUNT_FILE"], "a") as fh:
    fh.write("ran\\n")
print("the summary")
"""


def test_a_print_only_step_logged_outside_the_project_is_reused(tmp_path: Path) -> None:
    """Its only outputs are logs that get no sidecar: that is no reason not to cache it."""
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    (project / "summary.py").write_text(PRINT_ONLY)
    env = clean_env({"COUNT_FILE": str(count_file())})
    logs = tmp_path / "var-log"
    logs.mkdir()
    argv = [sys.executable, "-m", "sharklib", "run", "summary.py"]
    for _ in range(2):  # nohup, cron, SLURM -o/-e, a CI log: both streams in files elsewhere
        with open(logs / "o.log", "wb") as o, open(logs / "e.log", "wb") as e:
            p = subprocess.run(argv, cwd=project, stdout=o, stderr=e, env=env, timeout=120)
        assert p.returncode == 0, (logs / "e.log").read_text()
        assert (logs / "o.log").read_bytes() == b"the summary\n"
    assert executed() == ["ran"]
    assert sorted(p.name for p in logs.iterdir()) == ["e.log", "o.log"]
    for _ in range(2):
        piped = subprocess.run(argv, cwd=project, capture_output=True, env=env, timeout=120)
        assert piped.returncode == 0 and piped.stdout == b"the summary\n", piped.stderr
    assert executed() == []
