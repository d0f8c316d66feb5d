"""Files changed in place (appended, ``r+``, ``os.open`` without ``O_TRUNC``, SQLite) under reuse.

Plain Python is the reference: the same script is run the same number of times plainly in
one directory and through ``sharklib run`` in another, with the same edits between runs,
and the files and printed lines must be the same. A reuse that restored the recorded file
over the current one lost what was appended since (issue 15, item 2).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.capture.conftest import clean_env

APPEND = """\
with open("log.txt", "a") as f:
    f.write("line\\n")
print("appended")
"""

SQLITE = """\
import sqlite3
c = sqlite3.connect("count.db")
c.execute("create table if not exists t(n)")
c.execute("insert into t values (1)")
c.commit()
print(c.execute("select count(*) from t").fetchone())
c.close()
"""

COUNTER = """\
try:
    n = int(open("n.txt").read())
except FileNotFoundError:
    n = 0
open("n.txt", "w").write(str(n + 1))
print(n + 1)
"""

UPDATE = """\
import os
with open("data.bin", "r+b") as f:
    first = f.read(1)
    f.seek(0, 2)
    f.write(first)
fd = os.open("data.bin", os.O_RDWR)
os.lseek(fd, 0, os.SEEK_END)
os.write(fd, b"+")
os.close(fd)
print(open("data.bin", "rb").read())
"""


def _run(where: Path, captured: bool) -> str:
    cmd = [sys.executable, *(["-m", "sharklib", "run", "-q"] if captured else []), "step.py"]
    p = subprocess.run(cmd, cwd=where, capture_output=True, text=True, env=clean_env(),
                       timeout=120)
    assert p.returncode == 0, p.stderr
    return p.stdout


def _both(tmp_path: Path, script: str) -> tuple[Path, Path]:
    plain, captured = tmp_path / "plain", tmp_path / "captured"
    for d in (plain, captured):
        (d / ".git").mkdir(parents=True, exist_ok=True)
        (d / "step.py").write_text(script)
    return plain, captured


def _same_runs(tmp_path: Path, script: str, files: list[str],
               between: list[Callable[[Path], None]]) -> list[str]:
    """Run plainly and captured, with ``between[i]`` applied to both dirs before run i+1."""
    plain, captured = _both(tmp_path, script)
    printed = []
    for i in range(len(between) + 1):
        if i:
            between[i - 1](plain)
            between[i - 1](captured)
        out = _run(plain, captured=False)
        assert _run(captured, captured=True) == out, f"run {i + 1}"
        printed.append(out)
        for name in files:
            p, c = plain / name, captured / name
            assert p.exists() == c.exists(), (name, i + 1)
            if p.exists():
                assert c.read_bytes() == p.read_bytes(), (name, i + 1)
    return printed


def _nothing(d: Path) -> None:
    pass


def test_an_appending_script_run_three_times_appends_three_times(tmp_path: Path) -> None:
    printed = _same_runs(tmp_path, APPEND, ["log.txt"], [_nothing, _nothing])
    assert printed == ["appended\n"] * 3
    assert (tmp_path / "captured" / "log.txt").read_text() == "line\n" * 3


@pytest.mark.parametrize("edit", ["delete", "rewrite", "restore-earlier"])
def test_the_log_edited_between_runs_gives_plain_pythons_file(tmp_path: Path, edit: str) -> None:
    def change(d: Path) -> None:
        log = d / "log.txt"
        if edit == "delete":
            log.unlink()
        elif edit == "rewrite":
            log.write_text("kept by hand\n")
        else:  # back to what an earlier run started from: a reuse may serve this, correctly
            log.write_text("line\n")

    _same_runs(tmp_path, APPEND, ["log.txt"], [_nothing, change, _nothing])


def test_a_sqlite_counter_counts_like_plain_python(tmp_path: Path) -> None:
    printed = _same_runs(tmp_path, SQLITE, [], [_nothing, _nothing])
    assert printed == ["(1,)\n", "(2,)\n", "(3,)\n"]


def test_a_counter_file_read_then_rewritten_counts_like_plain_python(tmp_path: Path) -> None:
    printed = _same_runs(tmp_path, COUNTER, ["n.txt"], [_nothing, _nothing,
                                                         lambda d: (d / "n.txt").unlink()])
    assert printed == ["1\n", "2\n", "3\n", "1\n"]


def test_r_plus_and_os_open_rdwr_updates_are_not_lost(tmp_path: Path) -> None:
    def seed(d: Path) -> None:
        (d / "data.bin").write_bytes(b"0000")

    for d in (tmp_path / "plain", tmp_path / "captured"):
        d.mkdir()
        seed(d)
    printed = _same_runs(tmp_path, UPDATE, ["data.bin"], [_nothing, seed, _nothing])
    assert printed == [b.decode() for b in (b"b'00000+'\n", b"b'00000+0+'\n",
                                            b"b'00000+'\n", b"b'00000+0+'\n")]


def test_the_old_content_is_an_input_of_the_record(tmp_path: Path) -> None:
    """The prior content is recorded as read (its digest before the run), the new as written."""
    import json

    (tmp_path / ".git").mkdir()
    (tmp_path / "step.py").write_text(APPEND)
    (tmp_path / "log.txt").write_text("before\n")
    session = tmp_path / "session"
    (session / "runs").mkdir(parents=True)
    subprocess.run([sys.executable, "-m", "sharklib", "run", "-q", "step.py"], cwd=tmp_path,
                   check=True, env=clean_env({"SHARKLIB_SESSION": str(session)}), timeout=120)
    (run,) = [json.loads(p.read_text()) for p in (session / "runs").glob("*.json")]
    import hashlib

    log = str(tmp_path / "log.txt")
    assert [(a["path"], a["sha256"]) for a in run["inputs"]] == [
        (log, hashlib.sha256(b"before\n").hexdigest())]
    (out,) = [o for o in run["outputs"] if o["path"] == log]
    assert out["sha256"] == hashlib.sha256(b"before\nline\n").hexdigest()
    assert os.path.exists(log + ".intoto.jsonl")


def test_a_log_appended_by_three_runs_verifies(tmp_path: Path) -> None:
    """Each run's record names the log as it found it: those versions are gone by design."""
    _, captured = _both(tmp_path, APPEND)
    for _ in range(3):
        _run(captured, captured=True)
    v = subprocess.run([sys.executable, "-m", "sharklib", "verify", "log.txt"], cwd=captured,
                       capture_output=True, text=True, env=clean_env(), timeout=120)
    assert v.returncode == 0, v.stdout + v.stderr
    assert "3 attestations" in v.stdout, v.stdout
