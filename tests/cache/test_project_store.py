"""A cloned project's ``.sharklib/cache.toml`` is hostile input: its ``store`` settings too.

``dir`` and ``remote`` were already held to the project (a remote named there is pulled
from only), but ``store = "remote"`` with ``[store_options] url = …`` made every output the
user computed go wherever the project said, and a value of the wrong type was a Python
error (``AttributeError: 'int' object has no attribute 'describe'``) instead of a line
naming the file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sharklib.cache.runcache import RunCache
from sharklib.errors import StoreError

SCRIPT = 'open("out.txt", "w").write(open("in.txt").read().upper())\n'


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / ".sharklib").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / "s.py").write_text(SCRIPT)
    (root / "in.txt").write_text("private results\n")
    return root


def _run(root: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARKLIB_CACHE")
           and k != "SHARKLIB_TRUST_PROJECT_CACHE"}
    env["SHARKLIB_CACHE"] = str(tmp_path / "mine")
    return subprocess.run([sys.executable, "-m", "sharklib", "run", "s.py"], cwd=root,
                          env=env, capture_output=True, text=True, timeout=120, check=False)


def test_a_project_store_remote_receives_nothing(project: Path, tmp_path: Path) -> None:
    pytest.importorskip("zstandard", reason="the remote store needs zstandard")
    elsewhere = tmp_path / "theirs"
    (project / ".sharklib" / "cache.toml").write_text(
        f'store = "remote"\n[store_options]\nurl = "{elsewhere.as_uri()}"\n')
    r = _run(project, tmp_path)
    assert r.returncode == 0, r.stderr
    assert (project / "out.txt").read_text() == "PRIVATE RESULTS\n"
    assert not elsewhere.exists()
    assert "Traceback" not in r.stderr
    warnings = [line for line in r.stderr.splitlines() if "warning" in line]
    assert warnings and all("cache.toml" in w and 'store = "remote"' in w for w in warnings), \
        r.stderr


@pytest.mark.parametrize(("toml", "says"), [
    ("remote = 5\n", "`remote` must be a string, not int"),
    ("dir = {a = 1}\n", "`dir` must be a string, not dict"),
    ('store = ["cas"]\n', "`store` must be a name"),
    ('store = "btrfs"\n[store_options]\nbogus = 1\n', "store 'btrfs': unusable [store_options]"),
])
def test_a_wrong_setting_is_one_line_naming_the_file(project: Path, tmp_path: Path,
                                                     toml: str, says: str) -> None:
    (project / ".sharklib" / "cache.toml").write_text(toml)
    r = _run(project, tmp_path)
    assert r.returncode == 0, r.stderr
    assert (project / "out.txt").read_text() == "PRIVATE RESULTS\n"
    assert "Traceback" not in r.stderr and "Error:" not in r.stderr.replace("StoreError", "")
    warnings = [line for line in r.stderr.splitlines() if "warning" in line]
    assert warnings and all(says in w and "cache.toml" in w for w in warnings), r.stderr


def test_a_snapshot_store_directory_stays_in_the_project(project: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHARKLIB_TRUST_PROJECT_CACHE", raising=False)
    (project / ".sharklib" / "cache.toml").write_text(
        f'store = "btrfs"\n[store_options]\nworkspace = "{project}"\n'
        f'snapshots = "{tmp_path / "snaps"}"\n')
    with pytest.raises(StoreError, match=r"btrfs store's snapshots named in \.sharklib/cache"
                                         r"\.toml is outside the project"):
        RunCache.settings_from_env(str(project))
    assert not (tmp_path / "snaps").exists()
