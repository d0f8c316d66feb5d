"""``sharklib trace`` of a scheduler: each job is a step with its own record (issue 16, item 5).

The first process below a scheduler (make, Snakemake, xargs, GNU parallel, the traced shell
script itself) is a step root: each output's record lists what its own job read, not what the
whole tree read; scheduler-private state (``.snakemake/``, ``.git/``) is never an input, an
output or a sidecar location. Real Snakemake (test extra), real xargs and bash.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sharklib.attest import read_bundle


def _bin(name: str) -> str:
    return os.path.join(os.path.dirname(sys.executable), name)


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARKLIB_")}
    env.pop("PYTHONPATH", None)
    env["SHARKLIB_HOME"] = str(home)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env["PATH"]
    return env


def trace(project: Path, backend: str, *argv: str,
          **extra: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([_bin("sharklib"), "trace", "--backend", backend, "--", *argv],
                          cwd=project, env={**_env(project.parent / "home"), **extra},
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def read_by(project: Path, output: str) -> set[str]:
    """What the record of ``output`` says the step that made it read (inputs and code)."""
    statement = read_bundle(str(project / (output + ".intoto.jsonl"))).head.statement
    deps = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    root = project.as_uri() + "/"
    return {d["uri"][len(root):] if d["uri"].startswith(root) else d["uri"] for d in deps}


def verified(project: Path, *outputs: str) -> None:
    for name in outputs:
        proc = subprocess.run([_bin("sharklib"), "verify", name], cwd=project,
                              env=_env(project.parent / "home"), capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0, f"verify {name}: {proc.stdout}{proc.stderr}"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    proj = tmp_path / "proj"
    (proj / "raw").mkdir(parents=True)
    (proj / ".git").mkdir()
    (proj / "nums.txt").write_text("3\n1\n2\n1\n")
    (proj / "words.txt").write_text("b\na\n")
    (proj / "raw" / "a.csv").write_text("x,1\n")
    (proj / "summarize.sh").write_text('n=$(wc -l < "$1")\necho "lines: $n"\n')
    return proj


SNAKEFILE = """\
rule all:
    input: "report.txt", "data.tar", "w.txt"
rule sorted:
    input: "nums.txt"
    output: "sorted.txt"
    shell: "sort -n {input} > {output}"
rule report:
    input: "sorted.txt"
    output: "report.txt"
    shell: "bash summarize.sh {input} > {output}"
rule words:
    input: "words.txt"
    output: "w.txt"
    shell: "sort {input} > {output}"
rule copy:
    input: "raw"
    output: directory("copy")
    shell: "cp -r {input} {output}"
rule tar:
    input: "copy"
    output: "data.tar"
    shell: "tar --sort=name --mtime=@0 -cf {output} {input}"
"""


def test_each_snakemake_job_is_its_own_step(project: Path, backend: str) -> None:
    if shutil.which("snakemake", path=os.path.dirname(sys.executable)) is None:
        pytest.skip("snakemake is not installed in this venv (it is in the test extra)")
    (project / "Snakefile").write_text(SNAKEFILE)
    trace(project, backend, _bin("snakemake"), "--cores", "2", "-q")
    assert read_by(project, "sorted.txt") == {"nums.txt"}
    assert read_by(project, "report.txt") == {"sorted.txt", "summarize.sh"}
    assert read_by(project, "w.txt") == {"words.txt"}
    assert {"copy/a.csv", "copy/"} <= read_by(project, "data.tar")  # what it archived
    assert "nums.txt" not in read_by(project, "data.tar")
    assert not list((project / ".snakemake").rglob("*.intoto.jsonl"))
    assert not list(project.rglob(".snakemake_timestamp.intoto.jsonl"))
    verified(project, "sorted.txt", "report.txt", "w.txt", "data.tar")


def test_each_command_of_a_traced_shell_script_is_a_step(project: Path, backend: str) -> None:
    (project / "run.sh").write_text(
        "#!/bin/bash\nset -e\n"
        "sort -n nums.txt | uniq > u.txt\n"   # a pipeline: one step, both stages
        "cp u.txt v.txt\n"
        "bash summarize.sh words.txt > n.txt\n"
        "tr a-z A-Z < words.txt > W.txt\n"
        "seq 3 > s.txt\n")  # reads no file: taken as the reader of a pipe from the step before
    os.chmod(project / "run.sh", 0o755)
    out = trace(project, backend, "./run.sh")
    assert read_by(project, "u.txt") == {"nums.txt"}
    assert read_by(project, "v.txt") == {"u.txt"}
    assert read_by(project, "n.txt") == {"words.txt", "summarize.sh"}
    assert read_by(project, "W.txt") == {"words.txt"}
    assert read_by(project, "s.txt") == {"words.txt"}  # a larger step, never a lost input
    verified(project, "u.txt", "v.txt", "n.txt", "W.txt")
    assert "5 run(s)" in out.stderr, out.stderr  # the script and four steps


def test_what_a_traced_script_prints_carries_what_its_commands_read(
        project: Path, backend: str) -> None:
    # `bash summarize.sh nums.txt > n.txt`: the shell writes n.txt from what `wc` read
    trace(project, backend, "sh", "-c", "exec bash summarize.sh nums.txt > n.txt")
    assert (project / "n.txt").read_text().startswith("lines: ")
    assert read_by(project, "n.txt") == {"nums.txt", "summarize.sh"}
    verified(project, "n.txt")


def test_each_command_xargs_starts_is_a_step(project: Path, backend: str) -> None:
    (project / "a.txt").write_text("alpha\n")
    (project / "b.txt").write_text("beta\n")
    (project / "names").write_text("a\nb\n")
    trace(project, backend, "sh", "-c",
          "xargs -n1 sh -c 'tr a-z A-Z < \"$0.txt\" > \"$0.up\"' < names")
    assert read_by(project, "a.up") == {"a.txt"}
    assert read_by(project, "b.up") == {"b.txt"}
    verified(project, "a.up", "b.up")


def test_each_command_gnu_parallel_starts_is_a_step(project: Path, backend: str) -> None:
    if shutil.which("parallel") is None:
        pytest.skip("GNU parallel is not installed (scripts/apt-packages.txt lists it)")
    (project / "a.txt").write_text("alpha\n")
    (project / "b.txt").write_text("beta\n")
    state = project / ".parallel"  # its own state, fresh: it writes there on its first run
    trace(project, backend, "parallel", "tr a-z A-Z < {}.txt > {}.up", ":::", "a", "b",
          PARALLEL_HOME=str(state))
    assert read_by(project, "a.up") == {"a.txt"}
    assert read_by(project, "b.up") == {"b.txt"}
    assert state.is_dir()
    assert not list(state.rglob("*.intoto.jsonl")), "parallel's own state is nobody's output"
    verified(project, "a.up", "b.up")
