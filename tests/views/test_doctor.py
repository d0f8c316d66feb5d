"""``sharklib doctor``: one screen, every check named, what a missing piece costs, exit 0."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from viewkit import shark

NAMES = ("capture bootstrap", "eBPF tracer", "ptrace tracer", "tracefs", "copy-on-write restores",
         "cache on the project's filesystem", "snapshot store (btrfs/ZFS)",
         "shared remote cache", "signing key")


def _line(out: str, name: str) -> str:
    return next(line for line in out.splitlines() if f" {name} " in line)


def test_every_check_is_on_one_screen_and_it_changes_nothing(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    before = sorted(os.listdir(tmp_path))
    r = shark("doctor", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    for name in NAMES:
        assert _line(r.stdout, name), (name, r.stdout)
    assert _line(r.stdout, "capture bootstrap").lstrip().startswith("ok")
    assert len(r.stdout.splitlines()) <= 24  # one screen
    cow = _line(r.stdout, "copy-on-write restores")
    assert "reflink works" in cow or "→ a restore from the cache copies every byte" in r.stdout
    assert sorted(os.listdir(tmp_path)) == before  # the reflink probe left nothing behind
    # no key yet in this fresh home: not an error, and none is created by looking
    assert "none yet" in _line(r.stdout, "signing key")
    assert not (Path(os.environ["SHARKLIB_HOME"]) / "config" / "keys" / "default.pem").exists()


def test_a_key_readable_by_others_and_a_dead_remote_are_missing_pieces(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    key = tmp_path / "k.pem"
    assert shark("keys", "generate", "-o", str(key)).returncode == 0
    key.chmod(0o644)
    with socket.socket() as s:  # a port nothing listens on: connection refused
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    env = {"SHARKLIB_KEY": str(key), "SHARKLIB_CACHE_REMOTE": "s3://sharkbucket/cache",
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": dead,
           "AWS_ENDPOINT_URL_S3": dead}
    r = shark("doctor", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr  # informational: never a failure
    assert _line(r.stdout, "signing key").lstrip().startswith("NO")
    assert f"chmod 600 {key}" in r.stdout
    remote = _line(r.stdout, "shared remote cache")
    assert remote.lstrip().startswith("NO") and "unreachable" in remote, r.stdout


def test_a_reachable_remote_is_ok(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    remote = (tmp_path / "remote").as_uri()
    r = shark("doctor", cwd=tmp_path, env={"SHARKLIB_CACHE_REMOTE": remote})
    assert r.returncode == 0, r.stderr
    assert _line(r.stdout, "shared remote cache").lstrip().startswith("ok"), r.stdout


def test_a_project_setting_of_the_wrong_type_is_no_internal_error(tmp_path: Path) -> None:
    """A cloned project's ``.sharklib/cache.toml`` is anyone's text (``dir = 3`` was a
    ``TypeError`` ending in "please report it"); doctor stays informational."""
    (tmp_path / ".git").mkdir()
    (tmp_path / ".sharklib").mkdir()
    (tmp_path / ".sharklib" / "cache.toml").write_text("dir = 3\nremote = [1]\n")
    r = shark("doctor", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "Error" not in r.stdout + r.stderr
    assert _line(r.stdout, "shared remote cache")
