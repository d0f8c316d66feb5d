"""ls, du, gc, verify, push and pull: the library functions and the ``sharklib cache`` CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sharklib.cache import maintenance
from sharklib.cache.runcache import RunCache
from sharklib.runner.reuse import record
from tests.cache.conftest import tamper_object


def _record(root: Path, cache: RunCache, write, make_run, name: str, data: bytes):  # type: ignore[no-untyped-def]
    out = write(root / "out" / name, data)
    entry = record(make_run(root, [name], [root / "data" / "in.txt"], [out]), root=str(root),
                   cache=cache)
    assert entry is not None
    return entry


def test_gc_by_age_and_size_keeps_shared_objects(project, cache, write, make_run):  # type: ignore[no-untyped-def]
    a = _record(project, cache, write, make_run, "a", b"A" * 1000)
    b = _record(project, cache, write, make_run, "b", b"B" * 1000)
    c = _record(project, cache, write, make_run, "c", b"A" * 1000)  # same bytes as a
    now = time.time()
    # nothing is old enough
    assert maintenance.gc(cache, max_age=3600, now=now).runs_removed == []
    # dry run says what would go without removing it
    dry = maintenance.gc(cache, max_size=1000, dry_run=True, now=now)
    assert len(dry.runs_removed) >= 1 and cache.index.count() == 3
    # a 1000-byte budget keeps the most recently used runs that fit
    cache.index.mark_used(c.run_id, 1.0)
    rep = maintenance.gc(cache, max_size=1000, now=now)
    assert set(rep.runs_removed) == {a.run_id, b.run_id}
    assert rep.objects_removed == 1 and rep.bytes_freed == 1000  # B; A is still held by c
    assert cache.store.has(c.outputs()[0].sha256)
    assert not cache.store.has(b.outputs()[0].sha256)
    assert maintenance.verify(cache).ok


def test_verify_quarantines_bad_objects(project, cache, write, make_run):  # type: ignore[no-untyped-def]
    e = _record(project, cache, write, make_run, "a", b"good bytes")
    assert maintenance.verify(cache).ok
    tamper_object(cache.store, e.outputs()[0].sha256, b"flipped")
    rep = maintenance.verify(cache)
    assert rep.bad == [e.outputs()[0].sha256]
    assert rep.dangling == [(e.run_id, e.outputs()[0].sha256)]
    assert not rep.ok


def test_usage_and_listing(project, cache, write, make_run):  # type: ignore[no-untyped-def]
    _record(project, cache, write, make_run, "a", b"x" * 100)
    u = maintenance.disk_usage(cache)
    assert (u.runs, u.objects, u.stored_bytes, u.unreferenced_objects) == (1, 1, 100, 0)
    [row] = maintenance.list_runs(cache)
    assert row.argv == ["a"] and row.bytes == 100 and row.exit_status == 0


def test_parse_sizes_and_ages() -> None:
    assert maintenance.parse_size("10G") == 10 << 30
    assert maintenance.parse_size("500MiB") == 500 << 20
    assert maintenance.parse_age("30d") == 30 * 86400
    with pytest.raises(Exception, match="not a size"):
        maintenance.parse_size("lots")


# -- the CLI, as a user runs it --------------------------------------------------------------
def _cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sharklib", "cache", *args], env=env,
                          cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def test_cli_commands(project, tmp_path, write, make_run):  # type: ignore[no-untyped-def]
    env = dict(os.environ, SHARKLIB_CACHE=str(tmp_path / "c"),
               SHARKLIB_CACHE_REMOTE=(tmp_path / "remote").as_uri(), SHARKLIB_CACHE_PUSH="0",
               COLUMNS="200")
    with RunCache(tmp_path / "c") as cache:
        e = _record(project, cache, write, make_run, "habitat.py", b"raster" * 100)
    r = _cli("ls", env=env, cwd=project)
    assert r.returncode == 0 and e.run_id[:12] in r.stdout and "habitat.py" in r.stdout
    r = _cli("du", env=env, cwd=project)
    assert r.returncode == 0 and "1 runs, 1 objects, 600 B stored" in r.stdout
    r = _cli("verify", env=env, cwd=project)
    assert r.returncode == 0 and "1 objects checked: all good" in r.stdout
    r = _cli("push", env=env, cwd=project)
    assert r.returncode == 0 and "pushed 1 of 1 runs" in r.stdout
    other = dict(env, SHARKLIB_CACHE=str(tmp_path / "c2"))
    r = _cli("pull", env=other, cwd=project)
    assert r.returncode == 0 and "pulled 1 of 1 runs" in r.stdout
    r = _cli("gc", "--max-size", "0", env=env, cwd=project)
    assert r.returncode == 0 and "removed 1 runs and 1 objects (600 B)" in r.stdout
    r = _cli("gc", "--max-age", "soon", env=env, cwd=project)
    assert r.returncode == 2 and r.stderr.startswith("sharklib: error: not an age")


def test_cli_verify_fails_on_corruption(project, tmp_path, write, make_run):  # type: ignore[no-untyped-def]
    env = dict(os.environ, SHARKLIB_CACHE=str(tmp_path / "c"))
    with RunCache(tmp_path / "c") as cache:
        e = _record(project, cache, write, make_run, "a", b"payload")
        tamper_object(cache.store, e.outputs()[0].sha256, b"tampered")
    r = _cli("verify", env=env, cwd=project)
    assert r.returncode == 1
    assert f"bad object {e.outputs()[0].sha256} (quarantined)" in r.stderr
    assert (tmp_path / "c" / "quarantine" / e.outputs()[0].sha256).exists()


_HOLDER = """
import sys
from sharklib.cache.runcache import RunCache
from sharklib.cache.entry import IndexEntry, StoredObject
from sharklib.model import Run
cache = RunCache(sys.argv[1])
with cache.shared():
    info = cache.store.put_bytes(b"written by a live run")
    print("ready", info.sha256, flush=True)
    sys.stdin.readline()
    run = Run(run_id="live", argv=["x"], cwd="/", started=0.0, ended=1.0, exit_status=0,
              run_key="sha256:" + "0" * 64)
    cache.index.add(IndexEntry(key=run.run_key, run=run, root="/",
                               objects=[StoredObject("stdout", "", info.sha256, info.size)]))
cache.close()
"""


def _blocked_lock_waiters() -> int:
    with open("/proc/locks") as fh:
        return sum(1 for line in fh if "->" in line)


def test_gc_never_removes_what_a_live_run_holds(tmp_path: Path) -> None:
    env = dict(os.environ, SHARKLIB_CACHE=str(tmp_path / "c"))
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(tmp_path / "c")], env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdin is not None
    ready, sha = holder.stdout.readline().split()
    assert ready == "ready"
    waiters_before = _blocked_lock_waiters()
    gc = subprocess.Popen([sys.executable, "-m", "sharklib", "cache", "gc"], env=env,
                          stdout=subprocess.PIPE, text=True)
    # wait until the kernel shows gc blocked on the lock the live run holds
    for _ in range(600):
        if _blocked_lock_waiters() > waiters_before or gc.poll() is not None:
            break
        time.sleep(0.05)
    assert gc.poll() is None, "gc finished while a live run held the cache"
    holder.stdin.write("go\n")
    holder.stdin.flush()
    assert holder.wait(60) == 0
    out, _ = gc.communicate(timeout=60)
    assert "removed 0 runs and 0 objects" in out
    with RunCache(tmp_path / "c") as cache:
        assert cache.store.has(sha) and cache.index.count() == 1
        assert maintenance.verify(cache).ok


def test_project_settings_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "proj"
    (root / ".sharklib").mkdir(parents=True)
    team = (tmp_path / "team").as_uri()
    (root / ".sharklib" / "cache.toml").write_text(
        f'[cache]\ndir = "local-cache"\nremote = "{team}"\npush = false\nread_only = true\n')
    with RunCache.from_env(str(root)) as c:
        assert c.directory == root / "local-cache"
        assert c.remote is not None and c.remote.url.endswith("/team")
        assert c.push_new is False and c.read_only is True
    monkeypatch.setenv("SHARKLIB_CACHE", str(tmp_path / "env-cache"))
    monkeypatch.setenv("SHARKLIB_CACHE_PUSH", "1")
    with RunCache.from_env(str(root)) as c:  # the environment wins over the project file
        assert c.directory == tmp_path / "env-cache" and c.push_new is True
    (root / ".sharklib" / "cache.toml").write_text("[cache\n")
    with pytest.raises(Exception, match="unreadable cache settings"):
        RunCache.from_env(str(root))


def test_corrupt_index_is_one_line(project, tmp_path, key_for, monkeypatch):  # type: ignore[no-untyped-def]
    from sharklib.runner.reuse import check

    (tmp_path / "c").mkdir()
    index = tmp_path / "c" / "index.sqlite"
    index.write_bytes(b"this is not a database" * 100)
    env = dict(os.environ, SHARKLIB_CACHE=str(tmp_path / "c"))
    r = _cli("ls", env=env, cwd=project)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and str(index) in r.stderr and "run index unreadable" in r.stderr
    warnings: list[str] = []
    monkeypatch.setenv("SHARKLIB_CACHE", str(tmp_path / "c"))
    assert check(key_for(["s.py"], project), cwd=str(project), root=str(project),
                 warn=warnings.append) is None
    assert len(warnings) == 1 and str(index) in warnings[0]


def test_ls_shows_whole_commands_on_a_narrow_terminal(project, tmp_path, write, make_run):  # type: ignore[no-untyped-def]
    """On 80 columns the figures stay on one line each and the command wraps, losing nothing."""
    out = write(project / "out" / "habitat.csv", b"x")
    argv = ["/usr/bin/python3", "-m", "habitat", "--region", "north-reef", "out/habitat.csv"]
    with RunCache(tmp_path / "c") as cache:
        assert record(make_run(project, argv, [project / "data" / "in.txt"], [out]),
                      root=str(project), cache=cache) is not None
    env = dict(os.environ, SHARKLIB_CACHE=str(tmp_path / "c"), COLUMNS="80")
    r = _cli("ls", env=env, cwd=project)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), r.stdout
    column = lines[0].index("command")  # the command column, read top to bottom
    shown = "".join(line[column:] for line in lines[1:])
    assert "".join(shown.split()) == "python3-mhabitat--regionnorth-reefout/habitat.csv", r.stdout
    r = _cli("ls", env=dict(env, COLUMNS="200"), cwd=project)
    assert "python3 -m habitat --region north-reef out/habitat.csv" in r.stdout, r.stdout


@pytest.mark.parametrize("args", [("--max-size", "-5G"), ("--max-age", "-1d"),
                                  ("--max-size", "nan"), ("--max-age", "-inf")])
def test_gc_refuses_negative_budgets(project, tmp_path, write, make_run, args):  # type: ignore[no-untyped-def]
    env = dict(os.environ, SHARKLIB_CACHE=str(tmp_path / "c"))
    with RunCache(tmp_path / "c") as cache:
        _record(project, cache, write, make_run, "habitat.py", b"raster" * 100)
    r = _cli("gc", *args, env=env, cwd=project)
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.startswith("sharklib: error: not a"), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    with RunCache(tmp_path / "c") as cache:
        assert cache.index.count() == 1  # nothing removed


@pytest.mark.parametrize("command", [("push",), ("pull",), ("pull", "--index-only")])
def test_push_pull_with_the_remote_down_is_one_line(project, tmp_path, write, make_run,  # type: ignore[no-untyped-def]
                                                     command):
    import socket

    with socket.socket() as s:  # a port nothing listens on: connection refused
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    env = dict(os.environ, SHARKLIB_CACHE=str(tmp_path / "c"),
               SHARKLIB_CACHE_REMOTE="s3://sharkbucket/cache", AWS_ACCESS_KEY_ID="testing",
               AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1",
               AWS_ENDPOINT_URL=dead, AWS_ENDPOINT_URL_S3=dead)
    with RunCache(tmp_path / "c") as cache:
        _record(project, cache, write, make_run, "habitat.py", b"raster" * 100)
    r = _cli(*command, env=env, cwd=project)
    assert r.returncode == 2, r.stdout + r.stderr
    [line] = r.stderr.strip().splitlines()
    assert line.startswith("sharklib: error: remote s3://sharkbucket/cache unreachable: "), line
    assert "please report" not in line and "Traceback" not in r.stderr


def test_verify_after_index_only_pull_counts_remote_objects(project, tmp_path, write, make_run):  # type: ignore[no-untyped-def]
    remote = (tmp_path / "remote").as_uri()
    env = dict(os.environ, SHARKLIB_CACHE=str(tmp_path / "c"), SHARKLIB_CACHE_REMOTE=remote)
    with RunCache(tmp_path / "c") as cache:
        _record(project, cache, write, make_run, "habitat.py", b"raster" * 100)
    assert _cli("push", env=env, cwd=project).returncode == 0
    other = dict(env, SHARKLIB_CACHE=str(tmp_path / "c2"))
    r = _cli("pull", "--index-only", env=other, cwd=project)
    assert r.returncode == 0 and "pulled 1 of 1 runs" in r.stdout, r.stdout + r.stderr
    r = _cli("verify", env=other, cwd=project)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 objects checked: all good; 1 more on the remote only" in r.stdout
    # an object gone from the remote too is dangling, as before
    for f in (tmp_path / "remote" / "objects").rglob("*.zst"):
        f.unlink()
    r = _cli("verify", env=other, cwd=project)
    assert r.returncode == 1 and "1 dangling references" in r.stderr


def test_gc_racing_a_restore_is_said_as_such(project, tmp_path, write, make_run, key_for):  # type: ignore[no-untyped-def]
    from sharklib.runner.reuse import check

    env = dict(os.environ, SHARKLIB_CACHE=str(tmp_path / "c"))
    out = write(project / "out.bin", b"result" * 100)
    run = make_run(project, ["step.py"], [project / "data" / "in.txt"], [out])
    warnings: list[str] = []
    with RunCache(tmp_path / "c") as cache:
        assert record(run, root=str(project), cache=cache) is not None
        out.unlink()
        found = cache.candidates

        def gc_lands_after_the_lookup(key: str):  # type: ignore[no-untyped-def]
            entries = found(key)
            r = _cli("gc", "--max-size", "0", env=env, cwd=project)  # a real gc, in between
            assert r.returncode == 0 and "removed 1 runs" in r.stdout, r.stdout + r.stderr
            return entries

        cache.candidates = gc_lands_after_the_lookup  # type: ignore[method-assign]
        assert check(key_for(["step.py"], project), cwd=str(project), root=str(project),
                     cache=cache, warn=warnings.append) is None
    [line] = warnings
    assert "was removed by a concurrent `sharklib cache gc`; running the step instead" in line
    assert "missing" not in line
    assert not out.exists()
