"""What a restore from the cache must keep (issue 17 item 5).

* A countersignature added after the run was recorded (an institution signs the result
  before publishing) survives the output being deleted and restored from the cache.
* ``read_only = true`` restores (hard links to the store's objects, whose mtime is pinned
  to 2001) look up to date to make, as a copied file would.

Real CLI runs in subprocesses, real make.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = 'open("out.txt", "w").write(open("in.txt").read().upper())\n'


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARKLIB_")}
    env["SHARKLIB_HOME"] = str(home)
    return env


def _sharklib(root: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "sharklib", *args], cwd=root, env=_env(home),
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "warning" not in done.stderr, done.stderr
    return done


def _project(tmp_path: Path, settings: str | None = None) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "in.txt").write_text("hello sharks\n")
    (root / "s.py").write_text(SCRIPT)
    if settings:
        (root / ".sharklib").mkdir()
        (root / ".sharklib" / "cache.toml").write_text(settings)
    return root


def _head_keyids(sidecar: Path) -> list[str]:
    head = json.loads(sidecar.read_text().splitlines()[0])
    return sorted(s["keyid"] for s in head["signatures"])


def test_countersignature_survives_a_restore(tmp_path: Path) -> None:
    home = tmp_path / "home"
    root = _project(tmp_path)
    _sharklib(root, home, "run", "s.py")
    sidecar = root / "out.txt.intoto.jsonl"
    [own] = _head_keyids(sidecar)
    _sharklib(root, home, "keys", "generate", "-o", str(tmp_path / "inst.pem"))
    _sharklib(root, home, "sign", "--countersign", "out.txt", "--key", str(tmp_path / "inst.pem"))
    signed = _head_keyids(sidecar)
    assert len(signed) == 2 and own in signed
    (root / "out.txt").unlink()
    r = _sharklib(root, home, "run", "s.py")
    assert "reused run" in r.stderr and "1 output restored" in r.stderr, r.stderr
    assert (root / "out.txt").read_text() == "HELLO SHARKS\n"
    assert _head_keyids(sidecar) == signed  # the institution's signature is still there
    # and the restored pair verifies, both signatures good
    pub = tmp_path / "inst.pub.pem"
    subprocess.run([sys.executable, "-c",
                    "import sys; from sharklib.attest.keys import load_signing_key; "
                    "open(sys.argv[2], 'wb').write(load_signing_key(sys.argv[1]).public_pem())",
                    str(tmp_path / "inst.pem"), str(pub)], check=True, env=_env(home))
    _sharklib(root, home, "keys", "import", str(pub), "--name", "institution")
    v = subprocess.run([sys.executable, "-m", "sharklib", "verify", "out.txt"], cwd=root,
                       env=_env(home), capture_output=True, text=True, timeout=120, check=False)
    assert v.returncode == 0, v.stdout + v.stderr


def test_read_only_restore_is_up_to_date_for_make(tmp_path: Path) -> None:
    if shutil.which("make") is None:
        pytest.skip("make is not installed (scripts/apt-packages.txt lists it)")
    home = tmp_path / "home"
    root = _project(tmp_path, "[cache]\nread_only = true\n")
    (root / "Makefile").write_text(f"out.txt: in.txt s.py\n\t{sys.executable} -m sharklib run s.py\n")
    made = subprocess.run(["make"], cwd=root, env=_env(home), capture_output=True, text=True,
                          timeout=120, check=False)
    assert made.returncode == 0, made.stderr
    (root / "out.txt").unlink()
    made = subprocess.run(["make"], cwd=root, env=_env(home), capture_output=True, text=True,
                          timeout=120, check=False)
    assert made.returncode == 0, made.stderr
    assert "reused run" in made.stderr and "1 output restored" in made.stderr, made.stderr
    assert (root / "out.txt").read_text() == "HELLO SHARKS\n"
    assert not os.access(root / "out.txt", os.W_OK) or os.geteuid() == 0  # read-only, as asked
    # make -q: exit 0 when the target is up to date (it was "older than in.txt": 2001)
    q = subprocess.run(["make", "-q", "out.txt"], cwd=root, env=_env(home), timeout=60,
                       check=False)
    assert q.returncode == 0, "make takes the restored out.txt for out of date"
