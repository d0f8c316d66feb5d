"""Non-Python recipes under ``sharklib env -- make`` (issue 16, item 4): each recipe line is a
step through the runner: traced, recorded, reused when provably done, and its observed
dependencies (a shell script the Makefile never names) reach make.

Executions are counted through a line each recipe appends to a file in sharklib's own home
(never recorded as data). The Makefile asks for bash (``SHELL := /bin/bash``) and uses a
bash-only expansion, which must keep working.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from stepcount import executed, step_env

MAKEFILE = """\
SHELL := /bin/bash
all: report.txt data.tar
sorted.txt: nums.txt
\techo sorted >> $$COUNT_FILE; sort -n nums.txt > sorted.txt
report.txt: sorted.txt
\techo report >> $$COUNT_FILE; bash summarize.sh sorted.txt > report.txt
copy: raw
\techo copy >> $$COUNT_FILE; rm -rf copy; cp -r raw copy
data.tar: copy
\techo tar >> $$COUNT_FILE; tar --sort=name --mtime=@0 --owner=0 --group=0 -cf data.tar copy
"""

SUMMARIZE = '#!/bin/bash\nn=$(wc -l < "$1")\necho "lines: ${n// /}"\n'


def _tracer_or_skip() -> None:
    if shutil.which("make") is None:
        pytest.skip("make is not installed (scripts/apt-packages.txt lists it)")
    try:
        from sharklib.trace.session import choose_backend

        choose_backend("auto")
    except Exception as exc:
        pytest.skip(f"no native tracer may run here ({exc}); such recipes run untraced")


def _env(**extra: str) -> dict[str, str]:
    return step_env(**extra)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    _tracer_or_skip()
    proj = tmp_path / "proj"
    (proj / "raw").mkdir(parents=True)
    (proj / ".git").mkdir()
    (proj / "Makefile").write_text(MAKEFILE)
    (proj / "summarize.sh").write_text(SUMMARIZE)
    (proj / "nums.txt").write_text("3\n1\n2\n")
    (proj / "raw" / "a.csv").write_text("x,1\n")
    return proj


def make(project: Path) -> subprocess.CompletedProcess[str]:
    sharklib = os.path.join(os.path.dirname(sys.executable), "sharklib")
    proc = subprocess.run([sharklib, "env", "--", "make", "all"], cwd=project, env=_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc




def test_shell_recipes_are_recorded_reused_and_rerun_by_what_they_read(
        project: Path, tmp_path: Path) -> None:
    make(project)
    assert executed() == ["copy", "report", "sorted", "tar"]
    assert (project / "report.txt").read_text() == "lines: 3\n"
    assert (project / "sorted.txt.intoto.jsonl").exists()

    # deleted outputs come back from the cache; the recipes do not execute
    (project / "sorted.txt").unlink()
    (project / "report.txt").unlink()
    out = make(project)
    assert executed() == [], out.stderr
    assert "reused run of" in out.stderr

    os.utime(project / "nums.txt")  # make re-invokes; sharklib proves it done
    make(project)
    assert executed() == []
    assert "Nothing to be done" in make(project).stdout

    os.utime(project / "raw")  # the target `copy` is a folder: after its reuse it is up to date
    make(project)
    assert executed() == []
    assert "Nothing to be done" in make(project).stdout

    (project / "summarize.sh").write_text(SUMMARIZE.replace("lines", "rows"))  # undeclared
    make(project)
    assert executed() == ["report"]
    assert (project / "report.txt").read_text() == "rows: 3\n"

    (project / "nums.txt").write_text("3\n1\n2\n4\n")
    make(project)
    assert executed() == ["report", "sorted"]

    # outputs equal plain make's from scratch
    plain = tmp_path / "plain"
    shutil.copytree(project, plain, ignore=shutil.ignore_patterns(
        "sorted.txt", "report.txt", "copy", "data.tar", "*.intoto.jsonl", ".sharklib"))
    subprocess.run(["make", "-s", "all"], cwd=plain, env=_env(), check=True, timeout=120)
    for name in ("sorted.txt", "report.txt"):
        assert (plain / name).read_bytes() == (project / name).read_bytes(), name
    assert _members(plain / "data.tar") == _members(project / "data.tar")


def _members(tar: Path) -> dict[str, bytes]:
    """The archive's files and their bytes, the sidecars of files in it aside.

    A sidecar is written beside every output, also inside a directory a later step archives
    (`copy/a.csv.intoto.jsonl` is in the archive): a known effect of sidecars beside outputs.
    """
    import tarfile

    with tarfile.open(tar) as tf:
        return {m.name: tf.extractfile(m).read() for m in tf.getmembers()  # type: ignore[union-attr]
                if m.isfile() and not m.name.endswith(".intoto.jsonl")}


def test_python_recipes_keep_their_own_capture(project: Path) -> None:
    (project / "Makefile").write_text(MAKEFILE + "py.txt: nums.txt\n\tpython -c \"import os; "
                                      "open(os.environ['COUNT_FILE'], 'a').write('py\\\\n'); "
                                      "open('py.txt', 'w').write('ok')\"\n")
    sharklib = os.path.join(os.path.dirname(sys.executable), "sharklib")
    env = _env()
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env["PATH"]
    for _ in range(2):
        subprocess.run([sharklib, "env", "--", "make", "-B", "py.txt"], cwd=project, env=env,
                       check=True, capture_output=True, timeout=120)
    assert executed() == ["py"], "the second make -B reused the Python step"


def test_a_step_whose_only_effect_no_trace_records_is_not_reused(project: Path) -> None:
    # `mkdir -p` leaves no output a cache could restore: reusing it would skip the mkdir
    (project / "Makefile").write_text(MAKEFILE + "dirs:\n\tmkdir -p made/deep\n")
    sharklib = os.path.join(os.path.dirname(sys.executable), "sharklib")
    for _ in range(2):
        shutil.rmtree(project / "made", ignore_errors=True)
        subprocess.run([sharklib, "env", "--", "make", "dirs"], cwd=project, env=_env(),
                       check=True, capture_output=True, timeout=120)
        assert (project / "made" / "deep").is_dir()


def test_a_step_that_only_prints_is_recorded_and_its_output_replayed(project: Path) -> None:
    (project / "Makefile").write_text(MAKEFILE + "show: sorted.txt\n"
                                      "\techo show >> $$COUNT_FILE; bash summarize.sh sorted.txt"
                                      "; echo done >&2\n")
    sharklib = os.path.join(os.path.dirname(sys.executable), "sharklib")
    outs = []
    for _ in range(2):
        proc = subprocess.run([sharklib, "env", "--", "make", "-s", "-B", "show"], cwd=project,
                              env=_env(), check=True, capture_output=True, text=True,
                              timeout=120)
        outs.append(proc)
    assert executed().count("show") == 1, "the second make -B reused the printing step"
    assert outs[0].stdout == outs[1].stdout == "lines: 3\n"
    assert "done" in outs[1].stderr


def test_stdout_and_stderr_to_one_place_keep_their_order_on_reuse(project: Path) -> None:
    (project / "sum.sh").write_text("echo sum\necho err >&2\necho more\n")
    (project / "Makefile").write_text(MAKEFILE + "order:\n\techo o >> $$COUNT_FILE; "
                                      "bash sum.sh\n")
    from sharklib.attest import load_signing_key

    load_signing_key()  # its one-time notice is not the step's output
    sharklib = os.path.join(os.path.dirname(sys.executable), "sharklib")
    outs = []
    for _ in range(2):
        proc = subprocess.run([sharklib, "env", "-q", "--", "make", "-s", "-B", "order"],
                              cwd=project, env=_env(), check=True, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=120)
        outs.append(proc.stdout)
    assert executed() == ["o"]
    plain = "sum\nerr\nmore\n"
    assert outs[0] == plain and outs[1].startswith(plain), outs


def test_a_recipe_appending_to_a_log_runs_as_plain_make_would(project: Path) -> None:
    (project / "in.txt").write_text("x\n")
    (project / "Makefile").write_text(MAKEFILE + "out.txt: in.txt\n"
                                      "\tcat in.txt > out.txt; echo built >> build.log\n")
    sharklib = os.path.join(os.path.dirname(sys.executable), "sharklib")
    for _ in range(3):
        os.utime(project / "in.txt")
        subprocess.run([sharklib, "env", "--", "make", "-s", "out.txt"], cwd=project,
                       env=_env(), check=True, capture_output=True, timeout=120)
    assert (project / "build.log").read_text() == "built\n" * 3


def test_a_python_line_chaining_other_commands_is_one_traced_step(project: Path) -> None:
    # the Python capture alone would record gen.py and let the `cp` escape every record
    (project / "gen.py").write_text("import os\nopen(os.environ['COUNT_FILE'], 'a')"
                                    ".write('gen\\n')\nopen('gen.txt', 'w').write('made\\n')\n")
    (project / "Makefile").write_text(MAKEFILE + "chain:\n\tpython gen.py && cp gen.txt "
                                      "chained.txt\n")
    sharklib = os.path.join(os.path.dirname(sys.executable), "sharklib")
    env = _env()
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env["PATH"]
    for _ in range(2):
        (project / "chained.txt").unlink(missing_ok=True)
        subprocess.run([sharklib, "env", "--", "make", "-B", "chain"], cwd=project, env=env,
                       check=True, capture_output=True, timeout=120)
        assert (project / "chained.txt").read_text() == "made\n"
    assert executed() == ["gen"], "the second make -B reused the whole line"
    assert (project / "chained.txt.intoto.jsonl").exists()
    proc = subprocess.run([sharklib, "why", "chained.txt"], cwd=project, env=env,
                          capture_output=True, text=True, timeout=120)
    assert "gen.py" in proc.stdout, proc.stdout  # made within the one step from gen.py


# one simple command from the allow-list, nothing that could write a file or hide a command
PLAIN_LINES = ["mkdir -p out", "mkdir out", "mkdir -p out/a 'b c'", "echo building",
               "echo 'done: all'", "true", ":", "printf 'done\\n'", "printf '%s\\n' x y",
               "set -euo pipefail; echo hi", "echo *"]
# everything else keeps the traced (recorded, reusable) path
TRACED_LINES = ["echo x > f", "echo x >> log", "printf x>f", "echo $(cat f)", "echo `cat f`",
                "echo $HOME", "echo ${X}", "FOO=1 echo x", "echo a; rm f", "echo a && cp a b",
                "echo a | tee f", "true || rm f", "mkdir -m 700 out", "mkdir -p", "/bin/echo x",
                "./mkdir -p out", "mkdir -p $(OUT)", "(echo a)", "{ echo a; }", "echo 'x",
                "echo a\nrm f", "cat <<EOF\nx\nEOF", "sort a > b", "cp -r a b", "touch x",
                "echo a & rm f", "mkdir --mode=700 d", "echo a # > f", "rm -rf out", ""]


def test_only_inert_lines_run_plainly() -> None:
    from sharklib.runner.recipe_shell import runs_plainly

    assert [ln for ln in PLAIN_LINES if not runs_plainly(ln)] == []
    assert [ln for ln in TRACED_LINES if runs_plainly(ln)] == []


def test_inert_lines_run_as_plain_make_runs_them_and_leave_no_record(project: Path) -> None:
    # before: each `@echo`/`@mkdir -p` was traced on every run and the echo recorded as a step
    (project / "Makefile").write_text(
        MAKEFILE + "made/x.txt: nums.txt\n\t@mkdir -p made\n\t@echo building\n\t@true\n"
        "\techo x >> $$COUNT_FILE; cp nums.txt made/x.txt\n")
    sharklib = os.path.join(os.path.dirname(sys.executable), "sharklib")
    outs = []
    for _ in range(2):
        shutil.rmtree(project / "made", ignore_errors=True)
        proc = subprocess.run([sharklib, "env", "--", "make", "-s", "made/x.txt"], cwd=project,
                              env=_env(), check=True, capture_output=True, text=True,
                              timeout=120)
        outs.append(proc.stdout)
        assert (project / "made" / "x.txt").read_text() == "3\n1\n2\n"
    assert executed() == ["x"], "the cp step was reused the second time"
    assert outs == ["building\n", "building\n"]
    ls = subprocess.run([sharklib, "cache", "ls"], cwd=project, env=_env(COLUMNS="400"), check=True,
                        capture_output=True, text=True, timeout=120).stdout
    assert "cp nums.txt" in ls and "echo building" not in ls and "mkdir" not in ls, ls
