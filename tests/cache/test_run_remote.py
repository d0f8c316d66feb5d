"""``sharklib run`` end to end with a remote: real subprocesses, the real loopback S3 server.

The capture records a run at interpreter exit, after ``threading`` has shut down;
these tests prove a new run still reaches the remote from there, and that a
remote which cannot be reached or written costs one warning line, never the run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sharklib.cache.runcache import RunCache

SCRIPT = 'open("out.txt", "w").write(open("in.txt").read().upper())\nprint("done")\n'


def _project(base: Path, config: str | None = None) -> Path:
    root = base / "project"
    root.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "in.txt").write_text("hello sharks\n")
    (root / "s.py").write_text(SCRIPT)
    if config is not None:
        (root / ".sharklib").mkdir()
        (root / ".sharklib" / "cache.toml").write_text(config)
    return root


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARKLIB_")}
    env.update(SHARKLIB_HOME=str(home), **extra)
    return env


def _run(root: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sharklib", "run", "s.py"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def trust_for_reuse(teammate: Path, user: Path, name: str = "alice") -> None:
    """``user`` imports ``teammate``'s public key and trusts it for reuse (docs/trust.md):
    by default only one's own signed runs are reused."""
    pub = teammate.parent / f"{name}.pub.pem"
    for home, args in ((teammate, ["keys", "export", "-o", str(pub)]),
                       (user, ["keys", "import", str(pub), "--name", name])):
        done = subprocess.run([sys.executable, "-m", "sharklib", *args], env=_env(home),
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
    (user / "config").mkdir(parents=True, exist_ok=True)
    (user / "config" / "trust.toml").write_text(f'[reuse]\ntrusted = ["{name}"]\n')


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "warning" in line]


def _local_runs(home: Path) -> int:
    with RunCache(home / "cache") as cache:
        return cache.index.count()


def test_new_run_is_pushed_to_s3_at_exit(tmp_path: Path, s3_env: dict[str, str],
                                          s3_bucket: str) -> None:
    import s3fs

    url = f"s3://{s3_bucket}/cache"
    alice = _project(tmp_path / "alice")
    r = _run(alice, _env(tmp_path / "ha", SHARKLIB_CACHE=url, **s3_env))
    assert r.returncode == 0, r.stderr
    assert _warnings(r.stderr) == []
    fs = s3fs.S3FileSystem(skip_instance_cache=True,
                           client_kwargs={"endpoint_url": s3_env["AWS_ENDPOINT_URL"]})
    stored = fs.find(f"{s3_bucket}/cache")
    assert any("/runs/" in p for p in stored) and any("/objects/" in p for p in stored)
    assert _local_runs(tmp_path / "ha") == 1
    # another user, another home, who trusts alice's key for reuse: the run comes from the
    # bucket, not recomputed
    trust_for_reuse(tmp_path / "ha", tmp_path / "hb")
    bob = _project(tmp_path / "bob")
    r = _run(bob, _env(tmp_path / "hb", SHARKLIB_CACHE=url, **s3_env))
    assert r.returncode == 0, r.stderr
    assert "reused run" in r.stderr, r.stderr
    assert (bob / "out.txt").read_text() == "HELLO SHARKS\n"
    assert r.stdout == "done\n"


def test_failed_push_is_one_warning_and_the_run_stays_local(tmp_path: Path,
                                                            s3_env: dict[str, str]) -> None:
    root = _project(tmp_path)
    r = _run(root, _env(tmp_path / "h", SHARKLIB_CACHE="s3://no-such-bucket-sharklib/cache",
                        **s3_env))
    assert r.returncode == 0, r.stderr
    [line] = _warnings(r.stderr)
    assert "pushing the run to s3://no-such-bucket-sharklib/cache failed" in line
    assert line.endswith("kept locally")
    assert "Traceback" not in r.stderr
    assert _local_runs(tmp_path / "h") == 1


def test_remote_in_project_settings_only_is_cached_and_pushed(tmp_path: Path) -> None:
    remote = tmp_path / "shared"
    root = _project(tmp_path, f'[cache]\nremote = "{remote.as_uri()}"\n')
    r = _run(root, _env(tmp_path / "h", SHARKLIB_TRUST_PROJECT_CACHE="1"))
    assert r.returncode == 0, r.stderr
    assert _warnings(r.stderr) == [], r.stderr
    assert _local_runs(tmp_path / "h") == 1
    assert list((remote / "runs").glob("*/*.json.zst"))
    assert list((remote / "objects").glob("*/*.zst"))


@pytest.mark.parametrize("push", ["0"])
def test_push_off_leaves_the_remote_alone(tmp_path: Path, push: str) -> None:
    remote = tmp_path / "shared"
    root = _project(tmp_path, f'[cache]\nremote = "{remote.as_uri()}"\n')
    r = _run(root, _env(tmp_path / "h", SHARKLIB_CACHE_PUSH=push))
    assert r.returncode == 0 and _warnings(r.stderr) == [], r.stderr
    assert _local_runs(tmp_path / "h") == 1
    assert not (remote / "runs").exists()


def test_shared_dir_in_project_settings_is_consulted_from_a_new_home(tmp_path: Path) -> None:
    shared = tmp_path / "shared-cache"
    root = _project(tmp_path, f'[cache]\ndir = "{shared}"\n')
    r = _run(root, _env(tmp_path / "alice", SHARKLIB_TRUST_PROJECT_CACHE="1"))
    assert r.returncode == 0 and _warnings(r.stderr) == [], r.stderr
    (root / "out.txt").unlink()
    # another user who trusts alice for reuse: an empty default cache, no key marker, no
    # cache variable
    trust_for_reuse(tmp_path / "alice", tmp_path / "bob")
    r = _run(root, _env(tmp_path / "bob", SHARKLIB_TRUST_PROJECT_CACHE="1"))
    assert r.returncode == 0, r.stderr
    assert "reused run" in r.stderr, r.stderr
    assert (root / "out.txt").read_text() == "HELLO SHARKS\n"
    assert r.stdout == "done\n"


def _slow_s3(delay: float) -> tuple[str, object]:
    """An S3 endpoint on loopback that answers every request, after ``delay``, with NoSuchBucket."""
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    body = b"<Error><Code>NoSuchBucket</Code><Message>no such bucket</Message></Error>"

    class Slow(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            time.sleep(delay)
            self.send_response(404)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_HEAD = do_PUT = do_POST = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", server


def _s3_env(endpoint: str) -> dict[str, str]:
    return {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint,
            "AWS_ENDPOINT_URL_S3": endpoint}


def test_lookup_time_is_not_the_runs_duration(tmp_path: Path) -> None:
    # the lookup waits LOOKUP seconds on the remote; had that wait been counted, the recorded
    # duration would exceed it. The margin is wide so that load on the machine cannot decide
    # the outcome: this asserts where the time is counted, not how fast anything is
    lookup = 6.0
    endpoint, server = _slow_s3(lookup)
    try:
        root = _project(tmp_path)
        (root / "s.py").write_text("import time\ntime.sleep(0.2)\n" + SCRIPT)
        r = _run(root, _env(tmp_path / "h", SHARKLIB_CACHE="s3://slow/cache",
                            SHARKLIB_CACHE_PUSH="0", **_s3_env(endpoint)))
    finally:
        server.shutdown()  # type: ignore[attr-defined]
    assert r.returncode == 0, r.stderr
    with RunCache(tmp_path / "h" / "cache") as cache:
        [row] = cache.index.rows()
    assert 0.2 <= row.duration < lookup, f"recorded {row.duration:.2f} s for a 0.2 s script"


def test_unreachable_remote_during_lookup_is_one_warning(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # nothing listens: connection refused
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    root = _project(tmp_path)
    # what is asserted is behaviour (one line, the run happens, kept locally); how long a
    # dead remote costs is measured by benchmarks, not asserted here (it failed under load)
    r = _run(root, _env(tmp_path / "h", SHARKLIB_CACHE="s3://sharkbucket/cache", **_s3_env(dead)))
    assert r.returncode == 0, r.stderr
    [line] = _warnings(r.stderr)
    assert "remote s3://sharkbucket/cache unreachable" in line
    assert "running the step instead" in line and "kept locally" in line
    assert (root / "out.txt").read_text() == "HELLO SHARKS\n"
    assert _local_runs(tmp_path / "h") == 1


@pytest.fixture
def read_only_dir(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A directory on a read-only bind mount (0555 does not stop root; EROFS does)."""
    if os.geteuid() != 0:
        src = tmp_path / "ro-src"
        src.mkdir()
        src.chmod(0o555)
        yield src
        src.chmod(0o755)
        return
    src, dst = tmp_path / "ro-src", tmp_path / "ro"
    src.mkdir()
    dst.mkdir()
    if subprocess.run(["mount", "--bind", str(src), str(dst)], capture_output=True).returncode:
        pytest.skip("cannot bind-mount here")
    try:
        if subprocess.run(["mount", "-o", "remount,bind,ro", str(dst)],
                          capture_output=True).returncode:
            pytest.skip("cannot remount read-only here")
        yield dst
    finally:
        subprocess.run(["umount", "-l", str(dst)], capture_output=True)


def test_read_only_cache_directory_is_said_once_and_runs_still_work(tmp_path: Path,
                                                                     read_only_dir: Path) -> None:
    root = _project(tmp_path)
    env = _env(tmp_path / "h", SHARKLIB_CACHE=str(read_only_dir))
    r = _run(root, env)
    assert r.returncode == 0, r.stderr
    assert (root / "out.txt").read_text() == "HELLO SHARKS\n"
    [line] = _warnings(r.stderr)
    assert line == (f"sharklib: warning: {read_only_dir}: cache directory is read-only: runs are "
                    f"neither reused nor cached (make it writable, or set SHARKLIB_CACHE to "
                    f"another directory)")
    ls = subprocess.run([sys.executable, "-m", "sharklib", "cache", "ls"], cwd=root, env=env,
                        capture_output=True, text=True, timeout=60, check=False)
    assert ls.returncode == 2
    assert ls.stderr.startswith(f"sharklib: error: {read_only_dir}: cache directory is read-only")
    assert "unable to open database" not in ls.stderr


def test_a_cloned_project_cannot_send_your_results_elsewhere(tmp_path: Path) -> None:
    # an attacker's repository names their remote and a cache dir of theirs
    remote = tmp_path / "attacker-remote"
    root = _project(tmp_path, f'[cache]\nremote = "{remote.as_uri()}"\npush = true\n')
    r = _run(root, _env(tmp_path / "h"))
    assert r.returncode == 0, r.stderr
    assert not (remote / "objects").exists() and not (remote / "runs").exists()
    assert _local_runs(tmp_path / "h") == 1
    # nor by hand: `sharklib cache push` in the clone would upload every run of every project
    push = [sys.executable, "-m", "sharklib", "cache", "push"]
    p = subprocess.run(push, cwd=root, env=_env(tmp_path / "h"), capture_output=True, text=True,
                       timeout=120)
    assert p.returncode != 0 and "SHARKLIB_TRUST_PROJECT_CACHE=1" in p.stderr, p
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert not (remote / "runs").exists()
    p = subprocess.run(push, cwd=root, env=_env(tmp_path / "h", SHARKLIB_TRUST_PROJECT_CACHE="1"),
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and (remote / "runs").exists(), p

    elsewhere = tmp_path / "attacker-dir"
    (root / ".sharklib" / "cache.toml").write_text(f'[cache]\ndir = "{elsewhere}"\n')
    (root / "out.txt").unlink()
    r = _run(root, _env(tmp_path / "h"))
    assert r.returncode == 0 and (root / "out.txt").exists(), r.stderr
    assert not elsewhere.exists(), "no cache written where the project file says"
    assert "outside the project" in r.stderr, r.stderr
