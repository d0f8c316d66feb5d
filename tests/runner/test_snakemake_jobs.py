"""``sharklib env -- snakemake ...``: each job is a step with its own record and reuse decision
(issue 16, item 5), and Snakemake's own state is nobody's input, output or sidecar location.

Real Snakemake (test extra). Executions are counted through a line each job script appends to
a file in sharklib's own home (never recorded as data). ``--forceall`` makes Snakemake start
every job every time, so what is counted is sharklib's decision alone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from stepcount import executed, step_env

SNAKEFILE = """\
SAMPLES = ["a", "b"]
rule all:
    input: "summary.txt"
rule count:
    input: "data/{s}.txt"
    output: "counts/{s}.txt"
    shell: "python count.py {input} {output}"
rule collate:
    input: expand("counts/{s}.txt", s=SAMPLES)
    output: "summary.txt"
    shell: "python collate.py {input} {output}"
"""

SCRIPTS = {
    "helper.py": "def words(text):\n    return len(text.split())\n",
    "count.py": ("import os, sys\nfrom helper import words\n"
                 "open(os.environ['COUNT_FILE'], 'a').write(sys.argv[2] + '\\n')\n"
                 "open(sys.argv[2], 'w').write(str(words(open(sys.argv[1]).read())) + '\\n')\n"),
    "collate.py": ("import os, sys\n"
                   "open(os.environ['COUNT_FILE'], 'a').write(sys.argv[-1] + '\\n')\n"
                   "total = sum(int(open(p).read()) for p in sys.argv[1:-1])\n"
                   "open(sys.argv[-1], 'w').write(f'{total}\\n')\n"),
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    if shutil.which("snakemake", path=os.path.dirname(sys.executable)) is None:
        pytest.skip("snakemake is not installed in this venv (it is in the test extra)")
    proj = tmp_path / "proj"
    (proj / "data").mkdir(parents=True)
    (proj / ".git").mkdir()
    (proj / "Snakefile").write_text(SNAKEFILE)
    for name, text in SCRIPTS.items():
        (proj / name).write_text(text)
    (proj / "data" / "a.txt").write_text("one two three\n")
    (proj / "data" / "b.txt").write_text("four five\n")
    return proj


def snakemake(project: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    bin_dir = os.path.dirname(sys.executable)
    env = step_env(PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""))
    proc = subprocess.run([os.path.join(bin_dir, "sharklib"), "env", "--", "snakemake",
                           "--cores", "2", "--forceall", *extra], cwd=project, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc




def test_each_job_is_a_step_reused_on_its_own(project: Path) -> None:
    snakemake(project)
    assert executed() == ["counts/a.txt", "counts/b.txt", "summary.txt"]
    assert (project / "summary.txt").read_text() == "5\n"

    snakemake(project)
    assert executed() == [], "every job is reused"

    (project / "data" / "b.txt").write_text("four five six\n")
    snakemake(project)
    assert executed() == ["counts/b.txt", "summary.txt"]
    assert (project / "summary.txt").read_text() == "6\n"

    (project / "helper.py").write_text(SCRIPTS["helper.py"] + "# note\n")  # undeclared
    snakemake(project)
    assert executed() == ["counts/a.txt", "counts/b.txt"]

    # each output's lineage is its own job's, and Snakemake's state holds no sidecar
    assert not list((project / ".snakemake").rglob("*.intoto.jsonl"))
    why = subprocess.run([os.path.join(os.path.dirname(sys.executable), "sharklib"), "why",
                          "counts/a.txt"], cwd=project, capture_output=True, text=True,
                         timeout=120).stdout
    assert "data/a.txt" in why and "data/b.txt" not in why, why
