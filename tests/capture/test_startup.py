"""What capture costs a script that does little: no heavy imports, no needless records.

Start-up is measured by ``benchmarks/bench_capture.py``; these tests pin the
reasons it is small (which modules a captured no-op run never imports, what
it does not write), so a change that brings a cost back fails here, without
any timing assertion.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

#: modules a quiet captured run that writes nothing must not import (each costs milliseconds)
HEAVY = {"typing", "json", "hashlib", "_hashlib", "dataclasses", "inspect", "threading",
         "sqlite3", "cryptography", "git", "tempfile", "signal", "weakref",
         "sharklib.model.run", "sharklib.attest"}


def _imported(argv: list[str], cwd: Path, env: dict[str, str]) -> set[str]:
    p = subprocess.run([sys.executable, "-X", "importtime", *argv], cwd=cwd, env=env,
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    names = set()
    for line in p.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    return names


def test_quiet_run_without_outputs_imports_nothing_heavy(tmp_path: Path, capture_env) -> None:
    (tmp_path / "noop.py").write_text("pass\n")
    env = capture_env({"TMPDIR": str(tmp_path)})
    plain = _imported(["noop.py"], tmp_path, env)
    for extra, allowed in (([], {"json"}), (["--no-cache"], set())):
        # with the cache on, the run key is digested before the body runs (canonical JSON)
        captured = _imported(["-m", "sharklib", "run", "-q", *extra, "noop.py"], tmp_path, env)
        assert "sharklib.capture.hooks" in captured
        assert (captured - plain) & HEAVY == allowed, extra
    assert not list(tmp_path.glob("sharklib-session-*")), "the session is removed"


def test_script_digest_is_of_the_bytes_that_ran(tmp_path: Path, run_captured) -> None:
    """A script that edits itself is recorded as it ran, not as it was left."""
    source = ("import sys\nopen('out.txt', 'w').write('o')\n"
              "open(sys.argv[0], 'a').write('# edited while running\\n')\n")
    (tmp_path / "s.py").write_text(source)
    r = run_captured(["s.py"])
    assert r.returncode == 0, r.stderr
    script = r.top()["code"]["script"]
    assert script["sha256"] == hashlib.sha256(source.encode()).hexdigest()
    assert script["size"] == len(source.encode())
    assert (tmp_path / "s.py").read_text() != source


def test_child_script_digest_is_of_the_bytes_that_ran(tmp_path: Path, run_captured) -> None:
    child = "import sys\nopen('c.txt', 'w').write('c')\nopen(sys.argv[0], 'a').write('#\\n')\n"
    (tmp_path / "child.py").write_text(child)
    (tmp_path / "s.py").write_text("import subprocess, sys\n"
                                   "subprocess.run([sys.executable, 'child.py'], check=True)\n")
    r = run_captured(["s.py"])
    assert r.returncode == 0, r.stderr
    run = r.run_with_output("c.txt")
    assert run["code"]["script"]["sha256"] == hashlib.sha256(child.encode()).hexdigest()


def test_no_cache_keeps_no_stream_copies(tmp_path: Path, run_captured) -> None:
    """The copies of stdout/stderr only serve replaying a reused run."""
    (tmp_path / "s.py").write_text("print('hello')\n")
    r = run_captured(["--no-cache", "s.py"])
    assert (r.returncode, r.stdout) == (0, "hello\n"), r.stderr
    session = tmp_path / "session1"
    assert not (session / "stdout").exists()
    r = run_captured(["s.py"])
    assert (tmp_path / "session2" / "stdout").read_text() == "hello\n"


@pytest.mark.parametrize("keep", [False, True])
def test_own_session_record_only_when_someone_reads_it(keep: bool, tmp_path: Path,
                                                       capture_env) -> None:
    """A run that removes its own session does not write its record there first."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    (tmp_path / "s.py").write_text("open('out.txt', 'w').write('x')\n")
    extra = {"TMPDIR": str(tmpdir), **({"SHARKLIB_KEEP_SESSION": "1"} if keep else {})}
    p = subprocess.run([sys.executable, "-m", "sharklib", "run", "-q", "--no-cache", "s.py"],
                       cwd=tmp_path, capture_output=True, text=True, env=capture_env(extra))
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "out.txt.intoto.jsonl").is_file()
    sessions = list(tmpdir.glob("sharklib-session-*"))
    if keep:
        (session,) = sessions
        assert len(list((session / "runs").glob("*.json"))) == 1
    else:
        assert sessions == []


def test_small_data_is_hashed_without_the_stat_cache(tmp_path: Path, run_captured,
                                                      shark_home: Path) -> None:
    """Opening SQLite costs more than hashing a few megabytes: small runs hash directly."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "in.txt").write_text("i" * 1000)
    (tmp_path / "s.py").write_text("import os\nnames = os.listdir('data')\n"
                                   "open('out.txt', 'w').write(open('data/in.txt').read())\n")
    r = run_captured(["--no-cache", "s.py"])
    assert r.returncode == 0, r.stderr
    top = r.top()
    assert {Path(a["path"]).name for a in top["inputs"]} == {"data", "in.txt"}  # listing too
    assert top["outputs"][0]["sha256"] == hashlib.sha256(b"i" * 1000).hexdigest()
    assert not (shark_home / "cache" / "statcache.sqlite").exists()
