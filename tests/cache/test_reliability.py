"""Crash and concurrency safety with real processes: SIGKILL at random points, 8 at once.

Workers are forked from the test process (after sharklib is imported, so each costs
milliseconds) and talk to the cache exactly as a captured script does: ``check`` before
the step, write the output, ``record`` after. They run through a small set of steps whose
correct output is a pure function of (step, input variant), so any restored file can be
checked byte for byte.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from sharklib.cache import maintenance
from sharklib.cache.runcache import RunCache
from sharklib.model import Artifact, Output, Run, run_key_parts
from sharklib.runner.reuse import check, record

STEPS = 4
VARIANTS = 3


def expected(step: int, variant: int) -> bytes:
    """The step's true output: up to ~1.5 MB, so kills land inside writes and copies."""
    seed = hashlib.sha256(f"{step}/{variant}".encode()).digest()
    size = 20_000 + int.from_bytes(seed[:4], "big") % 1_500_000
    return (seed * (size // 32 + 1))[:size]


def key(step: int, root: Path):  # type: ignore[no-untyped-def]
    return run_key_parts([f"step{step}.py"], str(root), str(root), {"step.py": "0" * 64}, {})


def one_iteration(root: Path, cache: RunCache, rng: random.Random, violations: Path) -> str:
    step, variant = rng.randrange(STEPS), rng.randrange(VARIANTS)
    inp, out = root / f"in{step}.txt", root / f"out{step}.bin"
    tmp = root / f".in{step}.{os.getpid()}"
    tmp.write_bytes(f"variant {variant}\n".encode())
    os.replace(tmp, inp)
    d = check(key(step, root), cwd=str(root), root=str(root), cache=cache, warn=lambda m: None)
    want = expected(step, variant)
    if d is not None:
        if out.read_bytes() != want or d.stdout != f"step {step} variant {variant}\n".encode():
            with open(violations, "a") as fh:
                fh.write(f"{os.getpid()} restored wrong bytes for step {step} variant {variant}\n")
        return "reused"
    started = time.time()
    with open(out, "wb") as fh:  # the "script" writes its output in pieces
        for i in range(0, len(want), 65536):
            fh.write(want[i:i + 65536])
    digest_in = hashlib.sha256(inp.read_bytes()).hexdigest()
    run = Run(run_id=uuid.uuid4().hex, argv=[f"step{step}.py"], cwd=str(root), started=started,
              ended=time.time(), exit_status=0,
              inputs=[Artifact(str(inp), digest_in, inp.stat().st_size)],
              outputs=[Output(str(out), hashlib.sha256(want).hexdigest(), len(want))],
              run_key=key(step, root).digest())
    entry = record(run, root=str(root), cache=cache, warn=lambda m: None,
                   stdout=f"step {step} variant {variant}\n".encode())
    if entry is None:
        return "not recorded"
    with open(violations.with_name(f"recorded-{os.getpid()}"), "a") as fh:
        fh.write(entry.run_id + "\n")
    return "recorded"


def _child(root: Path, cache_dir: Path, seed: int, violations: Path, iterations: int) -> None:
    code = 1
    try:
        rng = random.Random(seed)
        cache = RunCache(cache_dir)
        for _ in range(iterations):
            one_iteration(root, cache, rng, violations)
        cache.close()
        code = 0
    finally:
        os._exit(code)


def _final_audit(root: Path, cache_dir: Path) -> int:
    """Nothing dangling or wrong; every (step, variant) the cache claims restores exactly."""
    hits = 0
    with RunCache(cache_dir) as cache:
        rep = maintenance.verify(cache)
        assert rep.ok, (rep.bad, rep.dangling, rep.problems)
        for entry in cache.index.entries():
            for obj in entry.objects:
                assert cache.store.verify(obj.sha256, full=True)
        for step in range(STEPS):
            for variant in range(VARIANTS):
                (root / f"in{step}.txt").write_bytes(f"variant {variant}\n".encode())
                (root / f"out{step}.bin").unlink(missing_ok=True)
                d = check(key(step, root), cwd=str(root), root=str(root), cache=cache)
                if d is not None:
                    hits += 1
                    assert (root / f"out{step}.bin").read_bytes() == expected(step, variant)
    cli = subprocess.run([sys.executable, "-m", "sharklib", "cache", "verify"],
                         env=dict(os.environ, SHARKLIB_CACHE=str(cache_dir)),
                         capture_output=True, text=True, timeout=120, check=False)
    assert cli.returncode == 0, cli.stdout + cli.stderr
    return hits


@pytest.mark.slow
def test_sigkill_at_random_points(tmp_path: Path) -> None:
    root, cache_dir, violations = tmp_path / "ws", tmp_path / "cache", tmp_path / "violations"
    root.mkdir()
    rng = random.Random(20261125)
    # kills land anywhere in a worker's first iterations: the window is a few times what one
    # recorded iteration takes here (60 ms on a quiet machine; a loaded one needs more, or
    # every worker dies before it records anything and nothing is tested)
    (tmp_path / "probe").mkdir()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        _child(tmp_path / "probe", tmp_path / "probe-cache", 1, tmp_path / "probe" / "v",
               iterations=1)
    os.waitpid(pid, 0)
    window = max(0.06, 3 * (time.monotonic() - started))
    kills = 0
    while kills < 220:
        pid = os.fork()
        if pid == 0:
            _child(root, cache_dir, rng.randrange(1 << 30), violations, iterations=1000)
        time.sleep(rng.uniform(0.0, window))
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status):
            kills += 1
        else:
            assert os.WEXITSTATUS(status) == 0
    assert not violations.exists(), violations.read_text()
    hits = _final_audit(root, cache_dir)
    assert hits > 0
    with RunCache(cache_dir) as cache:
        assert cache.index.count() > 0
    # every run a worker saw recorded (before it was killed) is in the index
    recorded = {line for f in tmp_path.glob("recorded-*") for line in f.read_text().split()}
    with RunCache(cache_dir) as cache:
        assert recorded <= {e.run_id for e in cache.index.entries()}


@pytest.mark.slow
def test_eight_processes_at_once(tmp_path: Path) -> None:
    cache_dir, violations = tmp_path / "cache", tmp_path / "violations"
    roots = [tmp_path / f"user{i}" for i in range(8)]
    pids = []
    for i, root in enumerate(roots):
        root.mkdir()
        pid = os.fork()
        if pid == 0:
            _child(root, cache_dir, 1000 + i, violations, iterations=25)
        pids.append(pid)
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert not violations.exists(), violations.read_text()
    recorded = {line for f in tmp_path.glob("recorded-*") for line in f.read_text().split()}
    with RunCache(cache_dir) as cache:
        indexed = {e.run_id for e in cache.index.entries()}
        keys = {e.key for e in cache.index.entries()}
    assert recorded and recorded == indexed  # no lost entries, nothing unexpected
    assert len(keys) == STEPS
    for root in roots:
        assert _final_audit(root, cache_dir) == STEPS * VARIANTS  # every variant was recorded
