"""A shared cache directory with symlinks planted by another user (issue 15 item 7).

``objects/ab -> elsewhere`` received an object, a planted ``tmp`` link received partial
writes, and ``gc`` emptied whatever ``tmp`` pointed at. The cache now refuses to follow a
link where it keeps its own directories and files, naming the link in one line; the run
itself happens as plain Python would, just not cached.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sharklib.cache.runcache import RunCache
from sharklib.errors import StoreError
from sharklib.hashing import sha256_bytes

SCRIPT = 'open("out.txt", "w").write("shark result\\n")\n'


def _run(root: Path, cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARKLIB_CACHE")}
    env["SHARKLIB_CACHE"] = str(cache)
    return subprocess.run([sys.executable, "-m", "sharklib", *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "s.py").write_text(SCRIPT)
    return root


def _shared_cache(tmp_path: Path) -> Path:
    shared = tmp_path / "shared-cache"
    RunCache(shared).close()  # made by a first user
    return shared


def test_planted_fanout_link_receives_nothing(project: Path, tmp_path: Path) -> None:
    shared = _shared_cache(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    fan = sha256_bytes(b"shark result\n")[:2]
    (shared / "objects" / fan).symlink_to(elsewhere)
    r = _run(project, shared, "run", "s.py")
    assert r.returncode == 0, r.stderr
    assert (project / "out.txt").read_text() == "shark result\n"
    assert list(elsewhere.iterdir()) == []
    [line] = [x for x in r.stderr.splitlines() if "warning" in x]
    assert f"symlink planted in the cache: objects/{fan} -> {elsewhere}" in line, line
    assert "Traceback" not in r.stderr


def test_planted_tmp_link_is_refused_and_gc_deletes_nothing_there(project: Path,
                                                                   tmp_path: Path) -> None:
    shared = _shared_cache(tmp_path)
    elsewhere = tmp_path / "precious"
    elsewhere.mkdir()
    (elsewhere / "thesis.tex").write_text("years of work\n")
    os.rmdir(shared / "tmp")
    (shared / "tmp").symlink_to(elsewhere)
    r = _run(project, shared, "run", "s.py")
    assert r.returncode == 0, r.stderr
    assert (project / "out.txt").read_text() == "shark result\n"
    [line] = [x for x in r.stderr.splitlines() if "warning" in x]
    assert f"symlink planted in the cache: tmp -> {elsewhere}" in line, line
    assert [p.name for p in elsewhere.iterdir()] == ["thesis.tex"]
    g = _run(project, shared, "cache", "gc")
    assert g.returncode == 2, g.stdout + g.stderr
    assert g.stderr.count("\n") == 1 and "tmp -> " in g.stderr, g.stderr
    assert (elsewhere / "thesis.tex").read_text() == "years of work\n"


def test_planted_index_link_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    target = tmp_path / "victim.sqlite"
    (shared / "index.sqlite").symlink_to(target)
    with pytest.raises(StoreError, match=r"index\.sqlite -> "):
        RunCache(shared)
    assert not target.exists()


def test_planted_link_in_a_file_remote_receives_nothing(project: Path, tmp_path: Path) -> None:
    pytest.importorskip("zstandard", reason="the remote cache needs zstandard")
    remote = tmp_path / "shared-remote"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    fan = sha256_bytes(b"shark result\n")[:2]
    (remote / "objects").mkdir(parents=True)
    (remote / "objects" / fan).symlink_to(elsewhere)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARKLIB_CACHE")}
    env.update(SHARKLIB_CACHE=str(tmp_path / "local"), SHARKLIB_CACHE_REMOTE=remote.as_uri())
    r = subprocess.run([sys.executable, "-m", "sharklib", "run", "s.py"], cwd=project, env=env,
                       capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    assert (project / "out.txt").read_text() == "shark result\n"
    assert list(elsewhere.iterdir()) == []
    [line] = [x for x in r.stderr.splitlines() if "warning" in x]
    assert f"symlink planted in the cache: objects/{fan} -> {elsewhere}" in line, line
    assert "kept locally" in line, line  # the run is cached locally all the same
    assert "Traceback" not in r.stderr


def _pushed_remote(project: Path, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A ``file://`` remote holding the run of ``s.py``, pushed by a first user."""
    remote = tmp_path / "shared-remote"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARKLIB_CACHE")}
    env.update(SHARKLIB_CACHE=str(tmp_path / "first"), SHARKLIB_CACHE_REMOTE=remote.as_uri())
    for args in (["run", "s.py"], ["cache", "push"]):
        r = subprocess.run([sys.executable, "-m", "sharklib", *args], cwd=project, env=env,
                           capture_output=True, text=True, timeout=120, check=False)
        assert r.returncode == 0, r.stderr
    env["SHARKLIB_CACHE"] = str(tmp_path / "second")
    return remote, env


@pytest.mark.parametrize("planted", ["entry", "object"])
def test_a_fifo_planted_in_a_file_remote_is_refused_not_waited_on(
        project: Path, tmp_path: Path, planted: str) -> None:
    """Opening a FIFO blocks until someone writes to it: ``cache pull`` and every pull-through
    reuse hung for ever on one planted in a share. Only regular files are opened."""
    pytest.importorskip("zstandard", reason="the remote cache needs zstandard")
    remote, env = _pushed_remote(project, tmp_path)
    if planted == "entry":
        [victim] = (remote / "runs").rglob("*.json.zst")
    else:
        victim = remote / "objects" / (h := sha256_bytes(b"shark result\n"))[:2] / f"{h}.zst"
    victim.unlink()
    os.mkfifo(victim)
    rel = victim.relative_to(remote).as_posix()
    r = subprocess.run([sys.executable, "-m", "sharklib", "cache", "pull"], cwd=project,
                       env=env, capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"refusing to open {rel}: not a regular file" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    (project / "out.txt").unlink()
    r = subprocess.run([sys.executable, "-m", "sharklib", "run", "s.py"], cwd=project,
                       env=env, capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    assert (project / "out.txt").read_text() == "shark result\n"
    assert "Traceback" not in r.stderr
