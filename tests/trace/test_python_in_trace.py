"""Python processes inside a traced command: recorded once, signed once, streams not inputs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from trace_support import run_traced

SCRIPT = "open('out.txt', 'w').write(open('in.txt').read().upper())\nprint('done')\n"


def test_python_step_with_redirected_stdout(tmp_path: Path, backend: str) -> None:
    (tmp_path / "s.py").write_text(SCRIPT)
    (tmp_path / "in.txt").write_text("hello\n")
    with open(tmp_path / "log.txt", "wb") as log, open(tmp_path / "err.txt", "wb") as err:
        res = run_traced([sys.executable, "s.py"], backend, tmp_path, stdout=log, stderr=err)
    assert res.exit_status == 0, res.messages
    assert (tmp_path / "log.txt").read_text() == "done\n"
    assert (tmp_path / "err.txt").read_text() == ""  # no warning from the Python capture
    names = {os.path.basename(a.path) for r in res.runs for a in r.inputs}
    # the Python process hashes its own stdout file at exit: reading it back is no input
    assert names == {"in.txt"}, names
    outs = {os.path.basename(o.path) for r in res.runs for o in r.outputs}
    assert {"out.txt", "log.txt"} <= outs
    for f in ("out.txt", "log.txt"):
        proc = subprocess.run([sys.executable, "-m", "sharklib", "verify", f], cwd=tmp_path,
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    shown = subprocess.run([sys.executable, "-m", "sharklib", "show", "out.txt"], cwd=tmp_path,
                           capture_output=True, text=True, check=True).stdout
    assert "script sha256:" in shown and "in.txt" in shown, shown


def test_sharklibs_own_git_processes_are_not_traced_as_the_steps_reads(
        tmp_path: Path, backend: str) -> None:
    # the Python capture asks `git` for the commit at exit; the tracer sees that process too.
    # Its reads (.git/*, ~/.gitconfig, every tracked file for the dirty check) are not the step's
    (tmp_path / "s.py").write_text(SCRIPT)
    (tmp_path / "in.txt").write_text("hello\n")
    (tmp_path / "other.txt").write_text("tracked, never read by the script\n")
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q", "."], cwd=tmp_path, check=True)
    subprocess.run([*git, "add", "."], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "x"], cwd=tmp_path, check=True)
    res = run_traced(["sh", "-c", f"{sys.executable} s.py > log.txt"], backend, tmp_path)
    assert res.exit_status == 0, res.messages
    names = {os.path.relpath(a.path, tmp_path) for r in res.runs for a in r.inputs}
    assert names == {"in.txt"}, names
    assert any(r.code.git and r.code.git.commit for r in res.runs)  # git was still asked
    execs = [" ".join(e.argv[:2]) for r in res.runs for e in r.execs]
    assert not [e for e in execs if e.startswith("git")], execs


def test_inputs_a_python_process_hashed_when_it_read_them_are_not_read_again(
        tmp_path: Path, backend: str) -> None:
    """The Python record's read-time digest wins in the merge: the tracer does not hash those
    files again after the command (a file only `cat` read still is hashed by the tracer)."""
    import hashlib

    from sharklib.trace import session

    data = tmp_path / "data"
    data.mkdir()
    for i in range(30):
        (data / f"f{i:02d}.txt").write_text(f"{i}\n")
    (tmp_path / "side.txt").write_text("read by cat only\n")
    (tmp_path / "s.py").write_text(
        "import os\n"
        "n = sum(len(open('data/' + f).read()) for f in sorted(os.listdir('data')))\n"
        "open('out.txt', 'w').write(str(n))\n")
    cache = session._stat_cache()
    before = cache.hashed_files
    res = run_traced(["sh", "-c", f"{sys.executable} s.py; cat side.txt > copy.txt"],
                     backend, tmp_path)
    assert res.exit_status == 0, res.messages
    digests = {os.path.relpath(a.path, tmp_path): a.sha256 for r in res.runs for a in r.inputs}
    assert digests["data/f07.txt"] == hashlib.sha256(b"7\n").hexdigest()
    assert digests["side.txt"] == hashlib.sha256(b"read by cat only\n").hexdigest()
    assert len([p for p in digests if p.startswith("data/f")]) == 30
    # hashed by the tracer: side.txt, out.txt, copy.txt and the script; none of the 30 inputs
    assert session._stat_cache().hashed_files - before <= 6
