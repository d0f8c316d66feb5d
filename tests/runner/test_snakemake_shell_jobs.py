"""Snakemake ``shell:`` jobs that run other programs than Python under ``sharklib env``
(issue 16, items 4 and 5): each job goes through the one Step path (keyed, reused when provably
done, else traced and recorded), as make's recipes do; Python jobs keep their own capture.

Real Snakemake (test extra). Each job appends a line to a file in sharklib's own home (never
recorded as data); ``--forceall`` makes Snakemake start every job every time, so what is counted
is sharklib's decision alone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from stepcount import executed, step_env

SNAKEFILE = """\
rule all:
    input: "report.txt", "data.tar", "py.txt"
rule sorted:
    input: "nums.txt"
    output: "sorted.txt"
    shell: "echo sorted >> $COUNT_FILE; sort -n {input} > {output}"
rule report:
    input: "sorted.txt"
    output: "report.txt"
    shell: "bash summarize.sh {input} > {output}"
rule copy:
    input: "raw"
    output: directory("copy")
    shell: "echo copy >> $COUNT_FILE; cp -r {input} {output}"
rule tar:
    input: "copy"
    output: "data.tar"
    shell: "echo tar >> $COUNT_FILE; tar --sort=name --mtime=@0 --owner=0 --group=0 \\
            --exclude='*.intoto.jsonl' --exclude=.snakemake_timestamp -cf {output} {input}"
rule py:
    input: "nums.txt"
    output: "py.txt"
    shell: "python count.py {input} {output}"
"""

SUMMARIZE = '#!/bin/bash\necho report >> "$COUNT_FILE"\nn=$(wc -l < "$1")\necho "lines: ${n// /}"\n'
HELPER = "def words(text):\n    return len(text.split())\n"
COUNT = ("import os, sys\nfrom helper import words\n"
         "open(os.environ['COUNT_FILE'], 'a').write('py\\n')\n"
         "open(sys.argv[2], 'w').write(str(words(open(sys.argv[1]).read())) + '\\n')\n")
OUTPUTS = ("sorted.txt", "report.txt", "py.txt", "data.tar")


def _bin(name: str) -> str:
    return os.path.join(os.path.dirname(sys.executable), name)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    if shutil.which("snakemake", path=os.path.dirname(sys.executable)) is None:
        pytest.skip("snakemake is not installed in this venv (it is in the test extra)")
    try:
        from sharklib.trace.session import choose_backend

        choose_backend("auto")
    except Exception as exc:
        pytest.skip(f"no native tracer may run here ({exc}); shell jobs then run untraced")
    proj = tmp_path / "proj"
    (proj / "raw").mkdir(parents=True)
    (proj / ".git").mkdir()
    (proj / "Snakefile").write_text(SNAKEFILE)
    (proj / "summarize.sh").write_text(SUMMARIZE)
    (proj / "helper.py").write_text(HELPER)
    (proj / "count.py").write_text(COUNT)
    (proj / "nums.txt").write_text("3\n1\n2\n")
    (proj / "raw" / "a.csv").write_text("x,1\n")
    return proj


def _env() -> dict[str, str]:
    return step_env(PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])


def snakemake(project: Path, *, plain: bool = False,
              natural: bool = False) -> subprocess.CompletedProcess[str]:
    cmd = [_bin("snakemake"), "--cores", "2", *([] if natural else ["--forceall"])]
    if not plain:
        cmd = [_bin("sharklib"), "env", "--", *cmd]
    proc = subprocess.run(cmd, cwd=project, env=_env(), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def _members(tar: Path) -> dict[str, bytes]:
    with tarfile.open(tar) as tf:
        return {m.name: tf.extractfile(m).read() for m in tf.getmembers()  # type: ignore[union-attr]
                if m.isfile()}


def _same_as_plain(project: Path, tmp_path: Path) -> None:
    """Every output equals a plain Snakemake run's on a copy of the sources."""
    plain = tmp_path / "plain"
    shutil.rmtree(plain, ignore_errors=True)
    shutil.copytree(project, plain, ignore=shutil.ignore_patterns(
        *OUTPUTS, "copy", "*.intoto.jsonl", ".snakemake"))
    snakemake(plain, plain=True)
    executed()  # the plain run's own lines
    for name in ("sorted.txt", "report.txt", "py.txt"):
        assert (plain / name).read_bytes() == (project / name).read_bytes(), name
    assert _members(plain / "data.tar") == _members(project / "data.tar")


def _verified(project: Path) -> None:
    for name in OUTPUTS:
        proc = subprocess.run([_bin("sharklib"), "verify", name], cwd=project, env=_env(),
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f"verify {name}: {proc.stdout}{proc.stderr}"
    state = project / ".snakemake"
    assert not [p for p in state.rglob("*") if "intoto" in p.name or "sharklib" in p.name]


def test_shell_jobs_are_steps_recorded_and_reused(project: Path, tmp_path: Path) -> None:
    snakemake(project)
    assert executed() == ["copy", "py", "report", "sorted", "tar"]
    assert (project / "report.txt").read_text() == "lines: 3\n"
    _verified(project)
    _python_job_kept_its_own_capture(project)

    snakemake(project)
    assert executed() == [], "every job is reused"

    os.utime(project / "nums.txt")  # touched, same content
    snakemake(project)
    assert executed() == []

    (project / "nums.txt").write_text("3\n1\n2\n4\n")  # a declared input changes
    snakemake(project)
    assert executed() == ["py", "report", "sorted"]
    assert (project / "report.txt").read_text() == "lines: 4\n"

    (project / "summarize.sh").write_text(SUMMARIZE.replace("lines", "rows"))  # undeclared
    snakemake(project)
    assert executed() == ["report"]
    assert (project / "report.txt").read_text() == "rows: 4\n"

    (project / "helper.py").write_text(HELPER + "# a comment\n")  # undeclared, comment only
    snakemake(project)
    assert executed() == ["py"]

    (project / "raw" / "b.csv").write_text("y,2\n")  # the copied directory gains a file
    snakemake(project)
    assert executed() == ["copy", "tar"]
    assert "copy/b.csv" in _members(project / "data.tar")

    _verified(project)
    _same_as_plain(project, tmp_path)



def _python_job_kept_its_own_capture(project: Path) -> None:
    """The Python job is recorded by the Python capture (script and helper as code), once."""
    from sharklib.attest import read_bundle

    bundle = read_bundle(str(project / "py.txt.intoto.jsonl"))
    text = str(bundle.head.statement)
    assert "count.py" in text and "helper.py" in text
    assert "set -euo pipefail" not in text, "the job's bash line was recorded as well"


def test_the_natural_command_reruns_what_an_undeclared_edit_reaches(project: Path) -> None:
    """Without ``--forceall`` Snakemake decides first, from timestamps of declared inputs."""
    snakemake(project, natural=True)
    assert executed() == ["copy", "py", "report", "sorted", "tar"]

    (project / "summarize.sh").write_text(SUMMARIZE.replace("lines", "rows"))  # undeclared
    snakemake(project, natural=True)
    assert executed() == ["report"]
    assert (project / "report.txt").read_text() == "rows: 3\n"

    (project / "helper.py").write_text(HELPER + "# a comment\n")  # undeclared, comment only
    snakemake(project, natural=True)
    assert executed() == ["py"]

    os.utime(project / "nums.txt")  # Snakemake re-runs its dependants; sharklib reuses them
    snakemake(project, natural=True)
    assert executed() == []
    out = snakemake(project, natural=True)
    assert executed() == []
    assert "Nothing to be done" in out.stdout + out.stderr

    (project / "nums.txt").write_text("5\n")
    snakemake(project, natural=True)
    assert executed() == ["py", "report", "sorted"]
    _verified(project)
