"""Queries over a shared remote (``--remote``) show what the entries' attestations sign.

Anyone with write access to the remote can edit an entry's readable part: the command, the
user, what it read. ``log``/``uses`` must not show such an edit as "signed by" the key that
signed the run: the row is the entry as signed, and an edit is named in one warning.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
from pathlib import Path

import zstandard

STEP = """\
data = open("data/in.txt").read()
open("out.txt", "w").write(data.upper())
"""


def _sharklib(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sharklib", *args], cwd=root, env=env,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300,
                          check=False)


def test_an_edited_remote_entry_is_shown_as_signed(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    (root / "data").mkdir(parents=True)
    (root / "data" / "in.txt").write_text("hello\n")
    (root / "step.py").write_text(STEP)
    remote = tmp_path / "remote"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARKLIB_")}
    env.update(SHARKLIB_HOME=str(tmp_path / "home"), SHARKLIB_CACHE_REMOTE=remote.as_uri(),
               COLUMNS="200")
    assert _sharklib(root, env, "run", "step.py").returncode == 0
    entries = glob.glob(str(remote / "runs" / "*" / "*.json.zst"))
    assert len(entries) == 1
    with open(entries[0], "rb") as fh:
        entry = json.loads(zstandard.ZstdDecompressor().decompress(fh.read()))
    entry["run"]["argv"] = ["python", "innocent.py"]
    entry["run"]["user"] = "mallory"
    with open(entries[0], "wb") as fh:
        fh.write(zstandard.ZstdCompressor().compress(json.dumps(entry).encode()))

    done = _sharklib(root, env, "log", "--remote", "--format", "json")
    assert done.returncode == 0, done.stderr
    events = json.loads(done.stdout)["events"]
    assert [e["command"] for e in events] == ["python step.py"]
    assert events[0]["user"] != "mallory"
    assert events[0]["signed_by"]["state"] == "trusted"
    warnings = [line for line in done.stderr.splitlines() if "differs from what its" in line]
    assert len(warnings) == 1, done.stderr
    uses = _sharklib(root, env, "uses", "data/in.txt", "--remote", "--format", "json")
    assert [r["command"] for r in json.loads(uses.stdout)["readers"]] == ["python step.py"]


def test_an_edited_remote_entry_is_not_pulled(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    (root / "data").mkdir(parents=True)
    (root / "data" / "in.txt").write_text("hello\n")
    (root / "step.py").write_text(STEP)
    remote = tmp_path / "remote"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARKLIB_")}
    env.update(SHARKLIB_HOME=str(tmp_path / "home"), SHARKLIB_CACHE_REMOTE=remote.as_uri(),
               COLUMNS="200")
    assert _sharklib(root, env, "run", "step.py").returncode == 0
    entries = glob.glob(str(remote / "runs" / "*" / "*.json.zst"))
    with open(entries[0], "rb") as fh:
        entry = json.loads(zstandard.ZstdDecompressor().decompress(fh.read()))
    entry["run"]["argv"] = ["python", "innocent.py"]
    with open(entries[0], "wb") as fh:
        fh.write(zstandard.ZstdCompressor().compress(json.dumps(entry).encode()))

    other = {**env, "SHARKLIB_CACHE": str(tmp_path / "other-cache")}  # a second machine's
    pulled = _sharklib(root, other, "cache", "pull")
    assert "Traceback" not in pulled.stdout + pulled.stderr
    assert "differs from what its attestation signs" in pulled.stdout + pulled.stderr
    log = _sharklib(root, other, "log", "--format", "json")
    assert "innocent" not in log.stdout
