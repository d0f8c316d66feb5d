"""What the shell keeps and refuses to lose: crashes, files changed behind its back, outside writes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from shellkit import Counter, run_shell, shell_env


@pytest.mark.timeout(300)
def test_crash_loses_only_the_running_command(traced: None, workspace: Path) -> None:
    env = shell_env()
    proc = subprocess.Popen([sys.executable, "-m", "sharklib", "shell"], cwd=workspace, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    assert proc.stdin is not None
    proc.stdin.write("echo one > one.txt\ncd data\nsleep 60\n")
    proc.stdin.flush()
    started = workspace / ".sharklib" / "shell"
    deadline = time.time() + 120
    while time.time() < deadline:  # wait until the first two commands are on disk
        done = list(started.glob("*/commands/*.json"))
        if len(done) >= 2:
            break
        time.sleep(0.2)
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)  # the terminal is gone, mid-command: all of it dies
    proc.communicate(timeout=30)

    again = run_shell(workspace, ":history --all\npwd\n:undo\n", env)
    assert again.returncode == 0, again.stderr
    assert "echo one > one.txt" in again.stdout and "cd data" in again.stdout
    assert "sleep 60" not in again.stdout
    assert again.stdout.rstrip().splitlines()[-2].endswith("/data")  # the cwd survived too
    assert "undid [1]" in again.stdout and not (workspace / "one.txt").exists()


@pytest.mark.timeout(300)
def test_undo_never_loses_bytes(traced: None, workspace: Path) -> None:
    env = shell_env()
    raw = workspace / "data" / "raw.csv"
    before = raw.read_text()
    # the file is not named on the line (a variable holds it): nothing kept it before
    run_shell(workspace, "f=data/raw; echo extra >> $f.csv\necho v1 > out.txt\n", env)
    # out.txt edited outside the shell (an editor): :undo keeps that content in the store
    (workspace / "out.txt").write_text("hand edit\n")
    res = run_shell(workspace, ":undo\n:undo\n:history\n", env)
    assert "undid [2]" in res.stdout and not (workspace / "out.txt").exists()
    assert "out.txt had been changed outside the shell; that content is kept" in res.stdout
    # raw.csv existed before the session and was changed in place: its old bytes were never
    # recorded, so it is named and left as it is, never replaced by a guess
    assert "never recorded), left as they are: data/raw.csv" in res.stdout
    assert "echo extra >> $f.csv  [partly undone (1 file could not be restored: " \
           "data/raw.csv)]" in res.stdout
    assert raw.read_text() == before + "extra\n"


@pytest.mark.timeout(300)
def test_outside_writes_said_once(traced: None, workspace: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = shell_env()
    res = run_shell(workspace, f"echo a > {elsewhere}/a.txt\necho b > {elsewhere}/b.txt\n"
                               ":history --all\n", env)
    assert res.stderr.count("wrote outside the workspace") == 1, res.stderr
    assert f"{elsewhere}/a.txt" in res.stderr
    assert os.path.exists(elsewhere / "b.txt")
    assert "[inspect]" in res.stdout  # nothing in the workspace changed


@pytest.mark.timeout(300)
def test_one_shell_across_lines(traced: None, workspace: Path) -> None:
    env = shell_env()
    script = ("alias ll='echo LL'\n"
              "greet() { echo \"hi $1\"; }\n"
              "x=3; export P=1\n"
              "unset P\n"
              "ll; greet you; echo \"${P-unset} $x\"\n"
              "for i in 1 2; do\n  echo \"n$i\"\ndone\n"
              "echo one \\\n  two\n"
              "export PYTHONPATH=/opt/mine\n"
              "echo full > t.txt\n:>t.txt\nwc -c < t.txt\n"
              "python -c 'import os; print(os.environ[\"PYTHONPATH\"].split(os.pathsep)[-1])'\n")
    res = run_shell(workspace, script, env)
    assert res.returncode == 0, res.stderr
    assert "LL\nhi you\nunset 3\n" in res.stdout
    assert "n1\nn2\n" in res.stdout and "one two\n" in res.stdout
    assert "/opt/mine\n" in res.stdout
    assert "\n0\n" in res.stdout  # `:>t.txt` is bash's no-op truncating, not a meta-command
    # and in the next session too
    again = run_shell(workspace, "ll; greet again; echo \"$x\"\n", env)
    assert "LL\nhi again\n3\n" in again.stdout


@pytest.mark.timeout(300)
def test_variables_are_part_of_the_key(traced: None, workspace: Path, counter: Counter) -> None:
    (workspace / "gen.py").write_text(
        "import os, socket\n"
        "socket.create_connection(('127.0.0.1', int(os.environ['SHELL_TEST_PORT']))).close()\n"
        "print(os.environ.get('N', '-'))\n")
    env = shell_env(counter)
    res = run_shell(workspace, "export N=5\npython gen.py > n.txt\nexport N=6\n"
                               "python gen.py > n.txt\nexport N=5\npython gen.py > n.txt\n"
                               "cat <<EOF > here.txt\nline $N\nEOF\n"
                               ":export n.md n.txt\n", env)
    assert res.returncode == 0, res.stderr
    assert (workspace / "n.txt").read_text() == "5\n"
    assert counter.count == 2  # N=6 ran again; back at N=5 the first run was reused
    assert "[6] reused" in res.stderr
    assert (workspace / "here.txt").read_text() == "line 5\n"  # a here-document, read whole
    # the exported pipeline runs the step with the variable it ran with at the prompt
    assert "export N=5; python gen.py > n.txt" in (workspace / "n.md").read_text()


@pytest.mark.timeout(300)
def test_graph_html_and_errors(traced: None, workspace: Path) -> None:
    env = shell_env()
    res = run_shell(workspace, "sort data/raw.csv > sorted.csv\n:graph --html g.html\n"
                               ":diff 99\n:bogus\n:checkout x\n:export only.md\n", env)
    assert res.returncode == 0, res.stderr
    assert "wrote g.html (lineage of sorted.csv)" in res.stdout
    assert "<html" in (workspace / "g.html").read_text().lower()
    for line in ("no command [99] in this session", "unknown meta-command :bogus",
                 ":checkout takes one command number", ":export takes FILE TARGET"):
        assert line in res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.timeout(300)
def test_second_shell_in_the_folder_gets_its_own_session(traced: None, workspace: Path) -> None:
    env = shell_env()
    first = subprocess.Popen([sys.executable, "-m", "sharklib", "shell"], cwd=workspace, env=env,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    assert first.stdin is not None
    first.stdin.write("echo a > a.txt\n")
    first.stdin.flush()
    base = workspace / ".sharklib" / "shell"
    deadline = time.time() + 120
    while time.time() < deadline and not list(base.glob("*/commands/*.json")):
        time.sleep(0.2)
    second = run_shell(workspace, "echo b > b.txt\n:history\n", env)
    out, _err = first.communicate("echo c > c.txt\n:history\n", timeout=120)
    assert "is open in another sharklib shell here; starting a new one" in second.stderr
    assert "b.txt" in second.stdout and "a.txt" not in second.stdout
    assert "a.txt" in out and "c.txt" in out and "b.txt" not in out
    assert len(list(base.glob("*/session.json"))) == 2


@pytest.mark.timeout(300)
def test_file_made_and_removed_within_a_line_is_no_change(traced: None, workspace: Path) -> None:
    env = shell_env()
    res = run_shell(workspace, "python -c \"open('t.txt', 'w').write('x')\"; rm t.txt\n"
                               "echo keep > k.txt\nrm k.txt\n:history --all\n", env)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].endswith("rm t.txt  [inspect]"), lines
    assert "- k.txt" in res.stdout and "t.txt\n" not in res.stdout.replace("rm t.txt", "")


@pytest.mark.timeout(300)
def test_the_last_exit_status_reaches_the_next_line(traced: None, workspace: Path) -> None:
    """``false`` then ``echo $?`` prints 1 as in bash; a reuse never replays another status."""
    env = shell_env()
    script = ("false\necho rc=$?\nbash -c 'exit 7'\necho rc=$?\necho rc=$?\n"
              "f() { echo in=$?; }\n(exit 4)\nf\nfalse\necho rc=$?\ntrue\necho rc=$?\n")
    res = run_shell(workspace, script, env)
    assert res.returncode == 0, res.stderr
    plain = subprocess.run(["bash", "-c", script], cwd=workspace, capture_output=True, text=True)
    assert res.stdout.splitlines() == plain.stdout.splitlines()
    assert res.stdout.splitlines() == ["rc=1", "rc=7", "rc=0", "in=4", "rc=1", "rc=0"]
