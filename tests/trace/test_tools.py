"""Real tools under the tracer: shell pipelines, tar, cp -r, make, odd file names, Python."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from trace_support import exec_paths, inputs, outputs, root, run_traced

from sharklib.attest import read_bundle, sidecar_path


def test_pipeline_with_redirections(tmp_path: Path, backend: str) -> None:
    (tmp_path / "a.txt").write_text("b\na\nb\n")
    res = run_traced(["sh", "-c", "sort < a.txt | uniq -c > counts.txt 2> err.log; "
                                  "cat counts.txt >> all.log"], backend, tmp_path)
    assert res.exit_status == 0
    run = root(res)
    assert inputs(run, tmp_path) == {"a.txt"}
    assert outputs(run, tmp_path) == {"counts.txt", "err.log", "all.log"}
    # the two sides of a pipe start concurrently: their order is the kernel's choice
    assert sorted(os.path.basename(p) for p in exec_paths(run)) == ["cat", "sh", "sort", "uniq"]
    assert os.path.basename(exec_paths(run)[0]) == "sh"


def test_input_rewritten_later_is_flagged(tmp_path: Path, backend: str) -> None:
    # what the run read of state.txt is in no record (it was hashed after "new" replaced it):
    # an output only, never an input carrying the later content's digest, and never reused
    (tmp_path / "state.txt").write_text("old\n")
    res = run_traced(["sh", "-c", "cat state.txt > copy.txt; echo new > state.txt"], backend,
                     tmp_path)
    run = root(res)
    assert inputs(run, tmp_path) == set()
    assert outputs(run, tmp_path) == {"copy.txt", "state.txt"}
    assert "rewrote its own input state.txt" in res.uncacheable, res.uncacheable


def test_a_file_written_read_and_written_again_is_flagged(tmp_path: Path, backend: str) -> None:
    res = run_traced(["sh", "-c", "echo old > state.txt; cat state.txt > copy.txt; "
                      "echo new > state.txt"], backend, tmp_path)
    run = root(res)
    assert not res.uncacheable, "the tree made state.txt itself"
    assert inputs(run, tmp_path) == set() and "state.txt" in outputs(run, tmp_path)


def test_stdout_redirected_to_a_file_is_an_output(tmp_path: Path, backend: str) -> None:
    (tmp_path / "in.txt").write_text("x\n")
    with open(tmp_path / "captured.out", "wb") as out:
        res = run_traced(["cat", "in.txt"], backend, tmp_path, stdout=out)
    run = root(res)
    streams = {os.path.basename(o.path): o.stream for o in run.outputs}
    assert streams == {"captured.out": "stdout"}
    assert (tmp_path / "captured.out.intoto.jsonl").exists()


@pytest.mark.skipif(not shutil.which("tar"), reason="tar is not installed")
def test_tar(tmp_path: Path, backend: str) -> None:
    src = tmp_path / "src"
    (src / "deep").mkdir(parents=True)
    for name in ("one.txt", "two.txt", "deep/three.txt"):
        (src / name).write_text(name)
    res = run_traced(["tar", "cf", "arch.tar", "src"], backend, tmp_path)
    assert res.exit_status == 0
    run = root(res)
    # tar lists the directories it archives: their listings are inputs too (a new file changes them)
    assert inputs(run, tmp_path) == {"src/one.txt", "src/two.txt", "src/deep/three.txt",
                                     "src/", "src/deep/"}
    assert outputs(run, tmp_path) == {"arch.tar"}


def test_cp_recursive(tmp_path: Path, backend: str) -> None:
    src = tmp_path / "src"
    (src / "deep").mkdir(parents=True)
    for name in ("one.txt", "deep/two.txt"):
        (src / name).write_text(name)
    res = run_traced(["cp", "-r", "src", "dst"], backend, tmp_path)
    assert res.exit_status == 0
    run = root(res)
    assert inputs(run, tmp_path) == {"src/one.txt", "src/deep/two.txt", "src/", "src/deep/"}
    assert outputs(run, tmp_path) == {"dst/one.txt", "dst/deep/two.txt"}


def test_paths_with_newlines_tabs_and_invalid_utf8(tmp_path: Path, backend: str) -> None:
    weird_in = os.fsdecode(b"in\nput\tname\xff.txt")
    weird_out = os.fsdecode(b"out \xfe\nx.txt")
    (tmp_path / weird_in).write_text("x\n")
    res = run_traced(["cp", weird_in, weird_out], backend, tmp_path)
    assert res.exit_status == 0
    run = root(res)
    assert inputs(run, tmp_path) == {weird_in}
    assert outputs(run, tmp_path) == {weird_out}
    assert run.execs[0].argv == ["cp", weird_in, weird_out]
    bundle = read_bundle(sidecar_path(str(tmp_path / weird_out)))
    deps = bundle.head.statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    from sharklib.model.run import decode_path

    assert [decode_path(d["uri"][len("file://"):]) for d in deps
            if d["annotations"]["role"] == "input"] == [str(tmp_path / weird_in)]


MAKEFILE = """\
all: report.txt

words.txt: input.txt helper.sh
\tsh helper.sh < input.txt > words.txt 2>> side.log

counts.txt: words.txt
\tsort words.txt | uniq -c > counts.txt

report.txt: counts.txt
\t{python} report.py counts.txt > report.txt
"""


@pytest.mark.skipif(not shutil.which("make"), reason="make is not installed")
def test_make_pipeline_one_run_per_recipe(tmp_path: Path, backend: str) -> None:
    (tmp_path / "Makefile").write_text(MAKEFILE.format(python=sys.executable))
    (tmp_path / "helper.sh").write_text("cat settings.cfg > /dev/null\ntr -s ' ' '\\n'\n"
                                        "echo helper ran >&2\n")
    (tmp_path / "settings.cfg").write_text("sep=space\n")
    (tmp_path / "input.txt").write_text("a b c a b a\n")
    (tmp_path / "report.py").write_text(
        "import sys\nrows = open(sys.argv[1]).read().splitlines()\nprint(len(rows))\n")
    res = run_traced(["make", "all"], backend, tmp_path)
    assert res.exit_status == 0, res.messages
    top = root(res)
    assert top.argv == ["make", "all"]
    assert inputs(top, tmp_path) == {"Makefile"}
    steps = [r for r in res.runs if r.parent == top.run_id]
    assert len(steps) == 3 and set(top.children) == {r.run_id for r in steps}
    by_out = {frozenset(outputs(r, tmp_path)): r for r in steps}
    words = by_out[frozenset({"words.txt", "side.log"})]
    counts = by_out[frozenset({"counts.txt"})]
    report = by_out[frozenset({"report.txt"})]
    # undeclared reads: the helper script and the config file read from the working directory
    assert inputs(words, tmp_path) == {"input.txt", "helper.sh", "settings.cfg"}
    assert inputs(counts, tmp_path) == {"words.txt"}
    assert inputs(report, tmp_path) == {"counts.txt"}
    # the Python step carries the Python capture's record: its script is code, not data
    assert report.code.script is not None and report.code.script.path == str(tmp_path / "report.py")
    # upstream links: each step's input points at the attestation that produced it
    words_head = read_bundle(sidecar_path(str(tmp_path / "words.txt"))).head.digest
    assert next(a for a in counts.inputs if a.path.endswith("words.txt")).attestation == words_head
    final = read_bundle(sidecar_path(str(tmp_path / "report.txt")))
    names = [e.statement["subject"][0]["name"] for e in final.entries]
    assert names == ["report.txt", "counts.txt", "words.txt"]


def test_python_in_the_tree_is_merged_not_duplicated(tmp_path: Path, backend: str) -> None:
    (tmp_path / "in.csv").write_text("1,2\n")
    (tmp_path / "step.py").write_text(
        "import shutil, subprocess\n"
        "data = open('in.csv').read()\n"
        "open('py_out.txt', 'w').write(data)\n"
        "subprocess.run(['cp', 'in.csv', 'native_out.txt'], check=True)\n")
    res = run_traced(["sh", "-c", f"{sys.executable} step.py"], backend, tmp_path)
    assert res.exit_status == 0, res.messages
    run = root(res)
    if run.backend != "merged":
        pytest.fail(f"the Python record was not merged (warnings: {run.warnings})")
    assert run.code.script is not None and run.code.script.path == str(tmp_path / "step.py")
    assert inputs(run, tmp_path) == {"in.csv"}
    assert sorted(o.path for o in run.outputs if o.path.startswith(str(tmp_path))) == \
        sorted({str(tmp_path / "py_out.txt"), str(tmp_path / "native_out.txt")})
    assert [os.path.basename(e.path) for e in run.execs][-1] == "cp"


def test_cli_trace_exit_code_and_sidecars(tmp_path: Path, backend: str) -> None:
    (tmp_path / "in.txt").write_text("x\n")
    proc = subprocess.run([sys.executable, "-m", "sharklib", "trace", "--backend", backend, "--",
                           "sh", "-c", "cat in.txt > out.txt; exit 7"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert proc.returncode == 7, proc.stderr
    assert (tmp_path / "out.txt.intoto.jsonl").exists()
    assert f"traced ({backend}) 1 run(s), 1 input(s), 1 output(s), 1 sidecar(s) signed; exit 7" \
        in proc.stderr
    quiet = subprocess.run([sys.executable, "-m", "sharklib", "trace", "-q", "--backend", backend,
                            "--", "sh", "-c", "cat in.txt > out.txt; exit 7"], cwd=tmp_path,
                           capture_output=True, text=True)
    assert quiet.returncode == 7 and quiet.stderr == "", quiet.stderr
