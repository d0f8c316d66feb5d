"""Snakemake ``script:`` jobs under ``sharklib env -- snakemake`` (issue 16, item 5).

Snakemake runs such a job as ``python .snakemake/scripts/tmpXXXXXXXX.plot.py``: a copy of the
user's script behind a preamble holding the job (a pickled ``snakemake`` object), under a new
random name every run. The job is reused when the user's script, its inputs, params and
environment are unchanged, and runs again when any of them changes; its record names the
user's script, and Snakemake's state holds no record.

Real Snakemake (test extra). Executions are counted through a line the script appends to a file
in sharklib's own home (never recorded as data); ``--forceall`` makes Snakemake start every job
every time, so what is counted is sharklib's decision alone.
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
FACTOR = {factor}
rule all:
    input: expand("out/{{s}}.txt", s=SAMPLES)
rule plot:
    input: "data/{{s}}.txt"
    output: "out/{{s}}.txt"
    params: factor=FACTOR
    script: "scripts/plot.py"
"""

PLOT = ("import os\n"
        "open(os.environ['COUNT_FILE'], 'a').write(snakemake.output[0] + '\\n')\n"
        "n = len(open(snakemake.input[0]).read().split())\n"
        "open(snakemake.output[0], 'w').write(f'{snakemake.wildcards.s} {n * snakemake.params.factor}\\n')\n")


def _bin(name: str) -> str:
    return os.path.join(os.path.dirname(sys.executable), name)


def _write(proj: Path, factor: int = 3, plot: str = PLOT) -> None:
    (proj / "Snakefile").write_text(SNAKEFILE.format(factor=factor))
    (proj / "scripts" / "plot.py").write_text(plot)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    if shutil.which("snakemake", path=os.path.dirname(sys.executable)) is None:
        pytest.skip("snakemake is not installed in this venv (it is in the test extra)")
    proj = tmp_path / "proj"
    (proj / "data").mkdir(parents=True)
    (proj / "scripts").mkdir()
    (proj / ".git").mkdir()
    _write(proj)
    (proj / "data" / "a.txt").write_text("one two three\n")
    (proj / "data" / "b.txt").write_text("four five\n")
    return proj


def _run(project: Path, *command: str) -> subprocess.CompletedProcess[str]:
    # a wide terminal: `show` wraps long paths at the width it is given (80 with no terminal)
    env = step_env(PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
                   COLUMNS="400")
    proc = subprocess.run(list(command), cwd=project, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def snakemake(project: Path) -> None:
    _run(project, _bin("sharklib"), "env", "--", "snakemake", "-c1", "--forceall")


def outputs(project: Path) -> dict[str, str]:
    return {p: (project / "out" / p).read_text() for p in ("a.txt", "b.txt")}


def plain_outputs(project: Path, tmp_path: Path) -> dict[str, str]:
    """The same project run by plain Snakemake, without sharklib."""
    plain = tmp_path / "plain"
    shutil.rmtree(plain, ignore_errors=True)
    shutil.copytree(project, plain, ignore=shutil.ignore_patterns(
        "out", ".snakemake", "*.intoto.jsonl"))
    _run(plain, _bin("snakemake"), "-c1", "--forceall")
    executed()  # plain Snakemake's executions are not sharklib's
    return outputs(plain)


def test_script_job_is_reused_until_its_script_params_or_input_change(
        project: Path, tmp_path: Path) -> None:
    snakemake(project)
    assert executed() == ["out/a.txt", "out/b.txt"]
    assert outputs(project) == {"a.txt": "a 9\n", "b.txt": "b 6\n"}

    snakemake(project)
    assert executed() == [], "an unchanged script: job is reused"
    assert outputs(project) == {"a.txt": "a 9\n", "b.txt": "b 6\n"}

    _write(project, plot=PLOT.replace("n * ", "1 + n * "))  # the user's script
    snakemake(project)
    assert executed() == ["out/a.txt", "out/b.txt"]
    assert outputs(project) == {"a.txt": "a 10\n", "b.txt": "b 7\n"}
    snakemake(project)
    assert executed() == []

    _write(project, factor=5, plot=PLOT.replace("n * ", "1 + n * "))  # a param
    snakemake(project)
    assert executed() == ["out/a.txt", "out/b.txt"]
    assert outputs(project) == {"a.txt": "a 16\n", "b.txt": "b 11\n"}
    snakemake(project)
    assert executed() == []

    (project / "data" / "b.txt").write_text("four five six\n")  # one job's input
    snakemake(project)
    assert executed() == ["out/b.txt"]
    assert outputs(project) == {"a.txt": "a 16\n", "b.txt": "b 16\n"}
    assert outputs(project) == plain_outputs(project, tmp_path)

    # Snakemake's state is no one's record, and lineage names the user's script
    smk = project / ".snakemake"
    assert not list(smk.rglob("*.intoto.jsonl"))
    show = _run(project, _bin("sharklib"), "show", "out/b.txt").stdout
    assert "scripts/plot.py" in show and ".snakemake" not in show, show
    assert "data/b.txt" in show and "data/a.txt" not in show, show
    for out in ("out/a.txt", "out/b.txt"):
        _run(project, _bin("sharklib"), "verify", out)  # the user's script checks out
