"""A shared remote: one user's recorded run saves another user's compute.

Remotes are real: a ``file://`` directory, and an S3 API (moto's server mode on loopback)
reached through s3fs exactly as a real bucket would be.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import zstandard

from sharklib.cache import maintenance
from sharklib.cache.runcache import RunCache
from sharklib.runner.reuse import check, record


@pytest.fixture(params=["file", "s3"])
def remote_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "file":
        return (tmp_path / "shared-remote").as_uri()
    bucket = request.getfixturevalue("s3_bucket")
    return f"s3://{bucket}/team-cache"


def _user_project(base: Path, write) -> Path:  # type: ignore[no-untyped-def]
    root = base / "project"
    write(root / "data" / "in.txt", "hello sharks\n")
    write(root / "helpers.py", "X = 1\n")
    return root


def test_second_user_reuses_first_users_run(tmp_path, write, make_run, key_for, remote_url):  # type: ignore[no-untyped-def]
    alice = _user_project(tmp_path / "alice", write)
    bob = _user_project(tmp_path / "bob", write)
    out = write(alice / "out" / "map.tif", b"\x00\x01 expensive raster " * 5000)
    run = make_run(alice, ["step.py", "data/in.txt"], [alice / "data" / "in.txt"], [out],
                   modules=[alice / "helpers.py"], duration=3600.0)
    with RunCache(tmp_path / "alice-cache", remote=remote_url) as cache_a:
        assert record(run, root=str(alice), cache=cache_a, stdout=b"done\n") is not None

    warnings: list[str] = []
    with RunCache(tmp_path / "bob-cache", remote=remote_url) as cache_b:
        assert cache_b.index.count() == 0
        d = check(key_for(["step.py", "data/in.txt"], bob), cwd=str(bob), root=str(bob),
                  cache=cache_b, warn=warnings.append)
        assert warnings == []
        assert d is not None, "bob's run should be reused from alice's remote record"
        assert (bob / "out" / "map.tif").read_bytes() == out.read_bytes()
        assert d.stdout == b"done\n"
        assert d.saved > 3500
        assert cache_b.index.count() == 1  # pulled through into bob's local index
        # a later check is served locally even if the remote disappears
        (bob / "out" / "map.tif").unlink()
        cache_b.remote = None
        assert check(key_for(["step.py", "data/in.txt"], bob), cwd=str(bob), root=str(bob),
                     cache=cache_b) is not None


def test_changed_input_on_second_machine_is_not_reused(tmp_path, write, make_run, key_for,  # type: ignore[no-untyped-def]
                                                       remote_url):
    alice = _user_project(tmp_path / "alice", write)
    bob = _user_project(tmp_path / "bob", write)
    (bob / "data" / "in.txt").write_text("bob's own data\n")
    out = write(alice / "out.txt", "x")
    run = make_run(alice, ["step.py", "data/in.txt"], [alice / "data" / "in.txt"], [out])
    with RunCache(tmp_path / "a", remote=remote_url) as ca:
        record(run, root=str(alice), cache=ca)
    with RunCache(tmp_path / "b", remote=remote_url) as cb:
        assert check(key_for(["step.py", "data/in.txt"], bob), cwd=str(bob), root=str(bob),
                     cache=cb) is None
        assert not (bob / "out.txt").exists()


def test_push_pull_commands(tmp_path, write, make_run, remote_url):  # type: ignore[no-untyped-def]
    root = _user_project(tmp_path / "u", write)
    out = write(root / "o.bin", b"payload" * 100)
    run = make_run(root, ["s.py"], [root / "data" / "in.txt"], [out])
    with RunCache(tmp_path / "local", remote=remote_url, push=False) as c:
        record(run, root=str(root), cache=c)
        assert c.remote is not None and c.remote.entry_paths() == []
        rep = maintenance.push(c)
        assert (rep.entries, rep.problems) == (1, [])
        assert maintenance.push(c).skipped == 1
    with RunCache(tmp_path / "other", remote=remote_url) as c2:
        rep = maintenance.pull(c2)
        assert (rep.entries, rep.problems) == (1, [])
        assert c2.index.count() == 1
        assert maintenance.verify(c2).ok


def test_hostile_remote_entries_are_refused(tmp_path, write, make_run, key_for):  # type: ignore[no-untyped-def]
    url = (tmp_path / "remote").as_uri()
    root = _user_project(tmp_path / "u", write)
    out = write(root / "o.txt", "x")
    run = make_run(root, ["s.py"], [root / "data" / "in.txt"], [out])
    with RunCache(tmp_path / "a", remote=url) as ca:
        entry = record(run, root=str(root), cache=ca)
        assert entry is not None and ca.remote is not None
        [path] = ca.remote.entry_paths(entry.key)
    # garbage in place of the entry
    Path(path).write_bytes(zstandard.ZstdCompressor().compress(b"{not json"))
    warnings: list[str] = []
    with RunCache(tmp_path / "b", remote=url) as cb:
        assert check(key_for(["s.py"], root), cwd=str(root), root=str(root), cache=cb,
                     warn=warnings.append) is None
    assert len(warnings) == 1 and "not JSON" in warnings[0] and path in warnings[0]


def test_remote_object_with_wrong_bytes_is_refused(tmp_path, write, make_run, key_for):  # type: ignore[no-untyped-def]
    url = (tmp_path / "remote").as_uri()
    alice = _user_project(tmp_path / "alice", write)
    bob = _user_project(tmp_path / "bob", write)
    out = write(alice / "o.txt", "true result")
    run = make_run(alice, ["s.py"], [alice / "data" / "in.txt"], [out])
    with RunCache(tmp_path / "a", remote=url) as ca:
        entry = record(run, root=str(alice), cache=ca)
        assert entry is not None and ca.remote is not None
        obj = Path(ca.remote._obj(entry.outputs()[0].sha256))
    obj.write_bytes(zstandard.ZstdCompressor().compress(b"forged result"))
    warnings: list[str] = []
    with RunCache(tmp_path / "b", remote=url) as cb:
        assert check(key_for(["s.py"], bob), cwd=str(bob), root=str(bob), cache=cb,
                     warn=warnings.append) is None
    assert not (bob / "o.txt").exists()
    assert len(warnings) == 1 and "does not match its digest" in warnings[0]
    assert url.removeprefix("file://") in warnings[0]
    assert not obj.exists()  # quarantined on the remote


def test_env_url_selects_remote(tmp_path, monkeypatch, s3_bucket):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SHARKLIB_CACHE", f"s3://{s3_bucket}/p")
    with RunCache.from_env(str(tmp_path)) as c:
        assert c.remote is not None and c.remote.url == f"s3://{s3_bucket}/p"
        info = c.remote.put_bytes(b"hi")
        assert c.remote.read(info.sha256) == b"hi"
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_remote_object_that_is_not_zstd_is_quarantined_there(tmp_path, write, make_run, key_for,  # type: ignore[no-untyped-def]
                                                             remote_url):
    import fsspec

    alice = _user_project(tmp_path / "alice", write)
    bob = _user_project(tmp_path / "bob", write)
    out = write(alice / "out.bin", b"expensive result " * 1000)
    run = make_run(alice, ["step.py"], [alice / "data" / "in.txt"], [out])
    with RunCache(tmp_path / "a", remote=remote_url) as ca:
        entry = record(run, root=str(alice), cache=ca)
    assert entry is not None
    [obj] = entry.outputs()
    fs, base = fsspec.core.url_to_fs(remote_url)
    bad = f"{base}/objects/{obj.sha256[:2]}/{obj.sha256}.zst"
    with fs.open(bad, "wb") as fh:
        fh.write(b"not zstd at all")
    warnings: list[str] = []
    with RunCache(tmp_path / "b", remote=remote_url) as cb:
        assert check(key_for(["step.py"], bob), cwd=str(bob), root=str(bob), cache=cb,
                     warn=warnings.append) is None
    [line] = warnings
    assert line.startswith(f"{remote_url}: object {obj.sha256} is not valid zstd")
    assert "quarantined" in line and "missing" not in line
    assert not fs.exists(bad)
    assert fs.exists(f"{base}/quarantine/{obj.sha256}.zst")
    assert not (bob / "out.bin").exists()
