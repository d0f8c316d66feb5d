"""An attacker with write access to a shared ``file://`` remote edits its run-index entries.

Issue 15 item 1: an entry (``runs/<key>/<id>.json.zst``) was believed as written, so
emptying its inputs served a stale result, repointing an output served another object, and
an added output wrote ``.git/hooks/pre-commit`` or overwrote the user's script. An entry is
now a hint: reuse restores only what an attestation signed by a key trusted for reuse names.

Every test runs the real CLI (``python -m sharklib run``) in subprocesses. The user is
``alice``; a "second machine" is alice with an empty local cache and the same remote. The
script's executions are counted through a side effect the script itself has: one line
written to an inherited descriptor (``COUNT_FD``), which no replay can produce.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

zstandard = pytest.importorskip("zstandard", reason="the remote cache needs zstandard")

SCRIPT = """\
import os
os.write(int(os.environ["COUNT_FD"]), b"ran\\n")
open("out.txt", "w").write(open("in.txt").read().upper())
print("done")
"""


class World:
    """Homes, a project, a shared remote and an execution counter."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.remote = base / "shared"
        self.project = base / "project"
        self.project.mkdir()
        subprocess.run(["git", "init", "-q", str(self.project)], check=True)
        (self.project / "in.txt").write_text("hello sharks\n")
        (self.project / "s.py").write_text(SCRIPT)
        self.counter = base / "executions"
        self.counter.touch()
        self.machines = 0

    def env(self, home: str, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHARKLIB_")}
        self.machines += 1  # every run on its own machine: an empty local cache
        env.update(SHARKLIB_HOME=str(self.base / home),
                   SHARKLIB_CACHE=str(self.base / f"local{self.machines}"),
                   SHARKLIB_CACHE_REMOTE=self.remote.as_uri(), **extra)
        return env

    def run(self, home: str = "alice") -> subprocess.CompletedProcess[str]:
        fd = os.open(self.counter, os.O_WRONLY | os.O_APPEND)
        try:
            return subprocess.run([sys.executable, "-m", "sharklib", "run", "s.py"],
                                  cwd=self.project, env={**self.env(home), "COUNT_FD": str(fd)},
                                  pass_fds=(fd,), capture_output=True, text=True, timeout=120,
                                  check=False)
        finally:
            os.close(fd)

    @property
    def executions(self) -> int:
        return self.counter.read_text().count("ran\n")

    def sharklib(self, home: str, *args: str) -> None:
        done = subprocess.run([sys.executable, "-m", "sharklib", *args],
                              env=self.env(home), capture_output=True, text=True, timeout=60,
                              check=False)
        assert done.returncode == 0, done.stderr

    # -- the attacker's tools ---------------------------------------------------------------
    def entry_file(self) -> Path:
        [path] = self.remote.glob("runs/*/*.json.zst")
        return path

    def read_entry(self) -> dict[str, Any]:
        return json.loads(zstandard.ZstdDecompressor().decompress(self.entry_file().read_bytes()))

    def write_entry(self, data: dict[str, Any]) -> None:
        raw = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
        self.entry_file().write_bytes(zstandard.ZstdCompressor().compress(raw))

    def plant_object(self, data: bytes) -> tuple[str, int]:
        """A valid object (named by its digest) in the remote: what the attacker serves."""
        import hashlib

        sha = hashlib.sha256(data).hexdigest()
        path = self.remote / "objects" / sha[:2] / f"{sha}.zst"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(zstandard.ZstdCompressor().compress(data))
        return sha, len(data)


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "warning" in line]


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = World(tmp_path)
    first = w.run()
    assert first.returncode == 0, first.stderr
    assert "Traceback" not in first.stderr
    assert w.executions == 1
    assert list(w.remote.glob("runs/*/*.json.zst")), "the run was not pushed"
    return w


def _executes_with_plain_result(world: World, forged_what: str) -> subprocess.CompletedProcess[str]:
    forged = world.entry_file()
    r = world.run()
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert world.executions == 2, r.stderr  # the step ran: nothing was served
    assert "reused run" not in r.stderr
    assert r.stdout == "done\n"
    expected = (world.project / "in.txt").read_text().upper()
    assert (world.project / "out.txt").read_text() == expected  # what plain Python writes
    [line] = _warnings(r.stderr)  # the forged entry is named, once
    assert "quarantined" in line and "running the step instead" in line, line
    assert world.remote.as_uri() in line and forged_what in line, line
    # taken out of use: the next machine neither warns again nor reuses it
    assert not forged.exists()
    assert list(world.remote.glob("quarantine/runs/*.json.zst"))
    return r


def test_emptied_inputs_do_not_serve_a_stale_result(world: World) -> None:
    data = world.read_entry()
    data["inputs"] = []
    data["modules"] = []
    world.write_entry(data)
    (world.project / "in.txt").write_text("changed input\n")
    _executes_with_plain_result(world, "recorded inputs")
    assert (world.project / "out.txt").read_text() == "CHANGED INPUT\n"


def test_signed_payload_edited_after_its_signature_was_verified_is_refused(world: World) -> None:
    """Alice's own sharklib remembers that this entry's signature verified (runner/proof.py);
    an attacker rewrites the signed statement itself (inputs emptied, hint to match) and keeps
    the signature: the memo names other bytes, so the signature is checked, and fails."""
    import base64

    memo = world.base / "alice" / "config" / "verified"
    assert [p for p in memo.rglob("*") if p.is_file() and p.name != "own-key"]
    data = world.read_entry()
    envelope = data["attestation"]
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["predicate"]["entry"]["inputs"] = []
    statement["predicate"]["entry"]["modules"] = []
    envelope["payload"] = base64.b64encode(
        json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()).decode()
    data["inputs"] = []
    data["modules"] = []
    world.write_entry(data)
    (world.project / "in.txt").write_text("changed input\n")
    _executes_with_plain_result(world, "signature does not verify")
    assert (world.project / "out.txt").read_text() == "CHANGED INPUT\n"


def test_output_pointed_at_another_valid_object_is_not_served(world: World) -> None:
    data = world.read_entry()
    sha, size = world.plant_object(b"FORGED RESULT\n")
    [out] = [o for o in data["objects"] if o["path"] == "out.txt"]
    out["sha256"], out["size"] = sha, size
    world.write_entry(data)
    (world.project / "out.txt").unlink()  # a fresh checkout: the output must come from somewhere
    _executes_with_plain_result(world, "outputs")
    assert (world.project / "out.txt").read_text() == "HELLO SHARKS\n"


def test_added_git_hook_is_never_written(world: World) -> None:
    data = world.read_entry()
    sha, size = world.plant_object(b"#!/bin/sh\necho pwned > /tmp/sharklib-pwned\n")
    data["objects"].append({"role": "output", "path": ".git/hooks/pre-commit", "sha256": sha,
                            "size": size, "mode": 0o755})
    world.write_entry(data)
    hook = world.project / ".git" / "hooks" / "pre-commit"
    _executes_with_plain_result(world, "outputs")
    assert not hook.exists()


def test_added_output_over_the_users_script_is_never_written(world: World) -> None:
    data = world.read_entry()
    sha, size = world.plant_object(b"import os\nos.system('echo pwned')\n")
    data["objects"].append({"role": "output", "path": "s.py", "sha256": sha, "size": size,
                            "mode": 0o644})
    world.write_entry(data)
    _executes_with_plain_result(world, "outputs")
    assert (world.project / "s.py").read_text() == SCRIPT


def test_entry_re_signed_by_an_untrusted_key_is_not_reused(world: World, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # the attacker forges a whole consistent entry (stale output) and signs it with their key
    from sharklib.attest.keys import generate_key
    from sharklib.cache.entry import IndexEntry
    from sharklib.runner import proof

    data = world.read_entry()
    sha, size = world.plant_object(b"FORGED RESULT\n")
    [out] = [o for o in data["objects"] if o["path"] == "out.txt"]
    out["sha256"], out["size"] = sha, size
    data.pop("attestation")
    entry = IndexEntry.from_dict(data)
    proof.attach(entry, generate_key(tmp_path / "mallory.pem"))
    world.write_entry(entry.to_dict())
    (world.project / "out.txt").unlink()
    r = world.run()
    assert r.returncode == 0, r.stderr
    assert world.executions == 2, r.stderr
    assert "reused run" not in r.stderr
    assert (world.project / "out.txt").read_text() == "HELLO SHARKS\n"
    # not alice's to judge: a run signed by a key she does not trust is passed over, quietly
    assert _warnings(r.stderr) == [], r.stderr


def test_honest_entry_of_an_untrusted_teammate_is_not_reused(world: World) -> None:
    # bob records his own run of the same step (a new input, so a new run in the remote)
    (world.project / "in.txt").write_text("bob's data\n")
    assert world.run("bob").returncode == 0
    assert world.executions == 2
    (world.project / "out.txt").unlink()
    # --explain says so, without running anything
    fd = os.open(world.counter, os.O_WRONLY | os.O_APPEND)
    try:
        why = subprocess.run([sys.executable, "-m", "sharklib", "run", "--explain", "s.py"],
                             cwd=world.project, env={**world.env("alice"), "COUNT_FD": str(fd)},
                             pass_fds=(fd,), capture_output=True, text=True, timeout=120,
                             check=False)
    finally:
        os.close(fd)
    assert "not trusted for reuse" in why.stdout + why.stderr, why.stdout + why.stderr
    assert world.executions == 2
    r = world.run("alice")  # alice has not said she trusts bob's key for reuse
    assert r.returncode == 0, r.stderr
    assert world.executions == 3, r.stderr
    assert (world.project / "out.txt").read_text() == "BOB'S DATA\n"
    assert _warnings(r.stderr) == [], r.stderr


def test_honest_entry_of_a_trusted_teammate_is_reused(world: World) -> None:
    (world.project / "in.txt").write_text("bob's data\n")
    assert world.run("bob").returncode == 0
    assert world.executions == 2
    pub = world.base / "bob.pub.pem"
    world.sharklib("bob", "keys", "export", "-o", str(pub))
    world.sharklib("alice", "keys", "import", str(pub), "--name", "bob")
    (world.base / "alice" / "config" / "trust.toml").write_text('[reuse]\ntrusted = ["bob"]\n')
    (world.project / "out.txt").unlink()
    r = world.run("alice")
    assert r.returncode == 0, r.stderr
    assert world.executions == 2, r.stderr  # bob's run stands in for it
    assert "reused run" in r.stderr, r.stderr
    assert r.stdout == "done\n"
    assert (world.project / "out.txt").read_text() == "BOB'S DATA\n"
    assert stat.S_ISREG((world.project / "out.txt").stat().st_mode)
    assert _warnings(r.stderr) == [], r.stderr


def test_unknown_name_in_the_reuse_rule_is_one_line(world: World) -> None:
    (world.base / "alice" / "config" / "trust.toml").write_text('[reuse]\ntrusted = ["carol"]\n')
    r = world.run("alice")
    assert r.returncode == 0, r.stderr
    assert world.executions == 2
    [line] = _warnings(r.stderr)
    assert "reuse.trusted names unknown key or group 'carol'" in line and "trust.toml" in line
