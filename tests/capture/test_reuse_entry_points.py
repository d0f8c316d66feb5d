"""Reuse of ``python -m MODULE`` and ``python -c CODE`` runs, through ``sharklib run`` and under
``sharklib env`` (the bootstrap): reused when provably done, re-run when their code changed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

STEP = "import sys\nopen(sys.argv[1], 'w').write('{v}')\nprint('ran {v}')\n"
BIN = os.path.dirname(sys.executable)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / ".git").mkdir()
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "step.py").write_text(STEP.format(v="v1"))
    return tmp_path


def shark(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # the console script, as a user types it: its sys.path[0] is the venv's bin, not the project
    proc = subprocess.run([os.path.join(BIN, "sharklib"), *args], cwd=project,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


VIA = {
    "run": lambda *a: ("run", *a),
    "env": lambda *a: ("env", "--", sys.executable, *a),
}


@pytest.mark.parametrize("via", sorted(VIA))
def test_a_module_run_is_reused_until_its_file_changes(project: Path, via: str) -> None:
    argv = VIA[via]("-m", "pkg.step", "out.txt")
    assert "ran v1" in shark(project, *argv).stdout
    again = shark(project, *argv)
    assert "sharklib: reused run" in again.stderr, again.stderr
    assert (project / "out.txt").read_text() == "v1"

    (project / "pkg" / "step.py").write_text(STEP.format(v="v2"))
    edited = shark(project, *argv)
    assert "reused" not in edited.stderr, edited.stderr
    assert "ran v2" in edited.stdout and (project / "out.txt").read_text() == "v2"
    assert "sharklib: reused run" in shark(project, *argv).stderr


def test_a_module_only_the_import_system_can_find_is_never_reused(project: Path) -> None:
    # a module in a zip archive on PYTHONPATH: its file cannot be digested before it runs
    import zipfile

    with zipfile.ZipFile(project / "lib.zip", "w") as zf:
        zf.writestr("zipped.py", "import sys\nopen(sys.argv[1], 'w').write('z')\nprint('ran z')\n")
    env = dict(os.environ, PYTHONPATH=str(project / "lib.zip"))
    for _ in range(2):
        proc = subprocess.run([os.path.join(BIN, "sharklib"), "run", "-m", "zipped", "out.txt"],
                              cwd=project, capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert "ran z" in proc.stdout and "reused" not in proc.stderr, proc.stderr


def test_code_run_with_c_under_env_is_reused(project: Path) -> None:
    code = "open('c.txt', 'w').write('c')"
    shark(project, "env", "--", sys.executable, "-c", code)
    assert "sharklib: reused run" in shark(project, "env", "--", sys.executable, "-c",
                                           code).stderr
    other = shark(project, "env", "--", sys.executable, "-c", code + "  # edited")
    assert "reused" not in other.stderr


def test_a_step_under_env_is_reused_with_what_its_children_wrote(
        project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))  # where sessions are made: none may be left behind
    # executions are counted where capture does not look (sharklib's own home): a file the
    # step appends to is an input of the step (its old content), and would make it run again
    ran = Path(os.environ["SHARKLIB_HOME"]) / "ran.log"
    (project / "parent.py").write_text(
        "import subprocess, sys\n"
        f"open({str(ran)!r}, 'a').write('parent\\n')\n"
        "subprocess.run([sys.executable, 'child.py'], check=True)\n"
        "open('p.txt', 'w').write('p')\n"
        "print('parent printed')\n")
    (project / "child.py").write_text("open('c.txt', 'w').write('from the child')\n")
    step = ("env", "--", sys.executable, "parent.py")
    first = shark(project, *step)
    assert first.stdout == "parent printed\n" and first.stderr == ""  # no summary per step
    (project / "c.txt").unlink()  # written by the child process, read by no one
    again = shark(project, *step)
    assert "sharklib: reused run" in again.stderr, again.stderr
    assert again.stdout == "parent printed\n"  # what the step printed is replayed
    assert (project / "c.txt").read_text() == "from the child"
    assert ran.read_text() == "parent\n"  # and nothing ran again
    assert os.listdir(tmp) == []


def test_a_run_that_writes_into_the_python_environment_is_not_cached(project: Path) -> None:
    # `pip install` in a step: the cache restores outputs, it could not redo an installation
    import sysconfig

    target = Path(sysconfig.get_paths()["purelib"]) / f"_sharklib_test_{os.getpid()}.pth"
    code = f"open({str(target)!r}, 'w').write(''); open('made.txt', 'w').write('m')"
    try:
        for _ in range(2):
            proc = shark(project, "run", "-c", code)
            assert "reused" not in proc.stderr
            assert f"run not cached: it wrote into the Python environment ({target})" \
                in proc.stderr, proc.stderr
            target.unlink()
    finally:
        target.unlink(missing_ok=True)


POOL = """import multiprocessing as mp, sys
def work(i):
    with open(f"part{i}.txt", "w") as fh:
        fh.write(str(i * i))
    return i
if __name__ == "__main__":
    with mp.get_context(sys.argv[1]).Pool(2) as pool:  # ends its workers with SIGTERM
        print(sum(pool.map(work, range(4))))
    open("done.txt", "w").write("ok")
"""


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_pool_workers_outputs_are_recorded_and_restored(project: Path, method: str) -> None:
    (project / "pool.py").write_text(POOL)
    for attempt in range(3):  # the workers race Pool.terminate: it must not matter, ever
        for f in project.glob("part*"):
            f.unlink()
        first = shark(project, "run", "--rerun", "pool.py", method)
        assert first.stdout == "6\n", first.stderr
        assert "warning" not in first.stderr, first.stderr
        for i in range(4):
            assert (project / f"part{i}.txt.intoto.jsonl").exists(), (attempt, first.stderr)
        verify = shark(project, "verify", f"part{attempt}.txt")
        assert verify.returncode == 0
    (project / "part2.txt").unlink()
    again = shark(project, "run", "pool.py", method)
    assert "sharklib: reused run" in again.stderr and "1 output restored" in again.stderr, \
        again.stderr
    assert again.stdout == "6\n" and (project / "part2.txt").read_text() == "4"


def test_the_reuse_line_counts_the_outputs_not_their_sidecars(project: Path) -> None:
    (project / "two.py").write_text("open('a.txt', 'w').write('a')\nopen('b.txt', 'w').write('b')\n")
    shark(project, "run", "two.py")
    for name in ("a.txt", "a.txt.intoto.jsonl"):  # what `make clean` does
        (project / name).unlink()
    again = shark(project, "run", "two.py")
    assert "1 output restored (1 already in place);" in again.stderr, again.stderr
    assert (project / "a.txt").read_text() == "a" and (project / "a.txt.intoto.jsonl").exists()


@pytest.mark.parametrize("listing", [
    "sum(len(f) for _, _, f in os.walk('shards'))",
    "sum(len(f) for _, _, f, _ in os.fwalk('shards'))",
    "len(glob.glob('shards/*.txt'))",
    "len(list(pathlib.Path('shards').rglob('*.txt')))",
    "len(list(os.scandir('shards')))",
])
def test_a_file_added_to_a_listed_directory_reruns_the_step(project: Path, listing: str) -> None:
    (project / "shards").mkdir()
    (project / "shards" / "a.txt").write_text("1")
    (project / "count.py").write_text(f"import glob, os, pathlib\nn = {listing}\n"
                                      "open('n.txt', 'w').write(str(n))\n")
    shark(project, "run", "count.py")
    assert "sharklib: reused run" in shark(project, "run", "count.py").stderr
    (project / "shards" / "b.txt").write_text("2")
    again = shark(project, "run", "count.py")
    assert "reused" not in again.stderr and (project / "n.txt").read_text() == "2", again.stderr


@pytest.mark.parametrize("ending", ["", "import os\nos._exit(0)\n"])
def test_a_file_left_open_is_signed_with_what_ends_up_on_disk(project: Path, ending: str) -> None:
    # Python flushes a file the script never closed after atexit; os._exit loses the buffer
    (project / "leak.py").write_text("f = open('o.txt', 'w')\nf.write('never closed\\n')\n"
                                     + ending)
    shark(project, "run", "leak.py")
    on_disk = (project / "o.txt").read_text()
    assert on_disk == ("" if ending else "never closed\n")
    assert shark(project, "verify", "o.txt").returncode == 0
    for name in ("o.txt", "o.txt.intoto.jsonl"):
        (project / name).unlink()
    again = shark(project, "run", "leak.py")
    assert (project / "o.txt").read_text() == on_disk, again.stderr


@pytest.mark.parametrize("via", sorted(VIA))
def test_another_pythonpath_is_another_run(project: Path, via: str) -> None:
    for version in ("1", "2"):
        (project / f"v{version}" / "mylib").mkdir(parents=True)
        (project / f"v{version}" / "mylib" / "__init__.py").write_text(f"FACTOR = {version}\n")
    (project / "s.py").write_text("import mylib\nopen('out.txt', 'w').write(str(mylib.FACTOR))\n")

    def run(path: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONPATH": path}
        proc = subprocess.run([os.path.join(BIN, "sharklib"), *VIA[via]("s.py")], cwd=project,
                              env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        return proc

    run("v1")
    assert "sharklib: reused run" in run("v1").stderr
    moved = run("v2")
    assert "reused" not in moved.stderr and (project / "out.txt").read_text() == "2", moved.stderr
    assert "sharklib: reused run" in run("v2").stderr


def test_a_run_that_started_a_program_capture_cannot_see_is_not_cached(project: Path) -> None:
    (project / "in.txt").write_text("hello")
    (project / "sp.py").write_text(
        "import subprocess\nout = subprocess.run(['cat', 'in.txt'], capture_output=True,"
        " text=True).stdout\nopen('o.txt', 'w').write(out.upper())\n")
    first = shark(project, "run", "sp.py")
    assert "not cached: it ran cat, whose reads Python capture cannot see" in first.stderr
    (project / "in.txt").write_text("bye")  # what cat read: in no record
    again = shark(project, "run", "sp.py")
    assert "reused" not in again.stderr and (project / "o.txt").read_text() == "BYE"
    # a Python child is captured itself: its reads are in the record, so this one is cached
    (project / "py.py").write_text(
        "import subprocess, sys\n"
        "subprocess.run([sys.executable, '-c', 'open(\"c.txt\", \"w\").write(open(\"in.txt\").read())'])\n")
    shark(project, "run", "py.py")
    assert "sharklib: reused run" in shark(project, "run", "py.py").stderr


def test_a_run_whose_sidecars_were_not_written_is_neither_cached_nor_announced(
        project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (project / "t.py").write_text("open('o.txt', 'w').write('x')\n")
    shark(project, "run", "t.py")  # leaves o.txt.intoto.jsonl for 'x'
    (project / "t.py").write_text("open('o.txt', 'w').write('y')\n")
    monkeypatch.setenv("SHARKLIB_KEY", str(project / "missing.pem"))
    for _ in range(2):
        failed = shark(project, "run", "t.py")
        assert "sidecars not written" in failed.stderr and "reused" not in failed.stderr
        assert "not cached: its sidecars were not written" in failed.stderr, failed.stderr
        assert "sidecars: o.txt.intoto.jsonl" not in failed.stderr, "the sidecar there is stale"


def test_a_reuse_replays_what_the_script_printed_not_sharklibs_warnings(
        project: Path, shark_home: Path) -> None:
    import hashlib

    (project / "w.py").write_text("import sys\nopen('o.txt', 'w').write('w')\n"
                                  "print('to stderr', file=sys.stderr)\n")
    shark(project, "run", "w.py")
    from sharklib.cache.runcache import RunCache
    from tests.cache.conftest import tamper_object

    digest = hashlib.sha256(b"w").hexdigest()
    with RunCache(shark_home / "cache") as cache:  # a file, or a row of the small-object pack
        tamper_object(cache.store, digest, b"corrupt")
    (project / "o.txt").unlink()
    recheck = shark(project, "run", "w.py")  # the object is quarantined, the script runs
    assert "does not match its digest" in recheck.stderr, recheck.stderr
    (project / "o.txt").unlink()
    again = shark(project, "run", "w.py")
    assert "sharklib: reused run" in again.stderr, again.stderr
    assert "to stderr" in again.stderr and "does not match" not in again.stderr, again.stderr


LOST_SIGTERM = """import multiprocessing as mp, os, signal, time
def target():
    missed = []
    def handler(signum, frame):
        if not missed:  # as a Python handler misses a SIGTERM that lands just before sem_wait
            missed.append(signum)
            return
        os._exit(7)
    signal.signal(signal.SIGTERM, handler)
    open('ready', 'w').close()
    while True:
        time.sleep(0.05)
if __name__ == '__main__':
    p = mp.get_context('fork').Process(target=target)
    p.start()
    while not os.path.exists('ready'):
        time.sleep(0.01)
    p.terminate()
    p.join()
    print(p.exitcode)
"""


def test_a_terminated_worker_that_missed_its_sigterm_is_sent_another(project: Path) -> None:
    # Pool.__exit__ terminates its workers and joins them; a captured worker handles SIGTERM in
    # Python, and one that lands just before it blocks on the task queue's lock is never acted
    # on: the script hung. The parent repeats the signal while it waits.
    (project / "lost.py").write_text(LOST_SIGTERM)
    proc = subprocess.run([os.path.join(BIN, "sharklib"), "run", "--no-cache", "lost.py"],
                          cwd=project, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout == "7\n", proc.stderr
