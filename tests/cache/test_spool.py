"""One read of a large output for its digest and its stored copy (``ContentStore.spool``).

The copy waits in the store's ``tmp/`` and ``put`` of the same path and digest renames it into
place, only while the file still has the signature it had when it was copied; otherwise the
store works as without it. Real files, a real appending process, a real CLI run.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sharklib.cache import cas
from sharklib.cache.cas import ContentStore, discard_spooled
from sharklib.errors import StoreError


def _fs_reflinks(d: Path) -> bool:
    from sharklib.cache.links import reflink

    (d / ".probe").write_bytes(b"x")
    try:
        reflink(str(d / ".probe"), str(d / ".probe2"))
        return True
    except OSError:
        return False
    finally:
        for n in (".probe", ".probe2"):
            (d / n).unlink(missing_ok=True)


def _tmp_files(store: ContentStore) -> list[str]:
    return os.listdir(store.tmp)


def test_spooled_copy_is_committed_by_put(tmp_path: Path) -> None:
    data = os.urandom(3 << 20) + b"tail"
    out = tmp_path / "out.bin"
    out.write_bytes(data)
    store = ContentStore(tmp_path / "store")
    sha = hashlib.sha256(data).hexdigest()
    assert store.spool(str(out)) == (sha, len(data))
    assert len(_tmp_files(store)) == 1  # the copy, waiting
    info = store.put(str(out), sha)
    assert (info.sha256, info.size) == (sha, len(data))
    assert store.path(sha).read_bytes() == data
    assert _tmp_files(store) == []
    assert os.stat(store.path(sha)).st_mode & 0o777 == 0o444
    assert store.verify(sha, full=True)


def test_a_file_changed_after_spooling_is_not_stored_from_the_stale_copy(tmp_path: Path) -> None:
    out = tmp_path / "out.bin"
    out.write_bytes(b"first version " * 1000)
    store = ContentStore(tmp_path / "store")
    sha, _ = store.spool(str(out)) or ("", 0)
    out.write_bytes(b"second version, other size " * 1000)
    # the record says `sha`; the file now holds other bytes: as without the spool, refused
    with pytest.raises(StoreError, match="changed since it was recorded"):
        store.put(str(out), sha)
    assert not store.has(sha)
    assert _tmp_files(store) == []
    # without a recorded digest the current bytes are stored
    info = store.put(str(out))
    assert store.path(info.sha256).read_bytes() == out.read_bytes()


def test_same_mtime_different_size_does_not_use_the_copy(tmp_path: Path) -> None:
    out = tmp_path / "out.bin"
    out.write_bytes(b"a" * 5000)
    old = time.time() - 3600
    os.utime(out, (old, old))
    store = ContentStore(tmp_path / "store")
    sha, _ = store.spool(str(out)) or ("", 0)
    out.write_bytes(b"b" * 7000)
    os.utime(out, (old, old))
    with pytest.raises(StoreError):
        store.put(str(out), sha)
    assert not store.has(sha)


def test_a_file_that_changes_while_copied_is_not_spooled(tmp_path: Path) -> None:
    big = tmp_path / "grow.bin"
    big.write_bytes(os.urandom(48 << 20))
    writer = subprocess.Popen([sys.executable, "-c",
                               "import time, sys\n"
                               "with open(sys.argv[1], 'ab', buffering=0) as f:\n"
                               "    while True:\n"
                               "        f.write(b'x')\n", str(big)])
    store = ContentStore(tmp_path / "store")
    try:
        _wait_until_growing(big)
        got = store.spool(str(big))
    finally:
        writer.kill()
        writer.wait()
    assert got is None
    assert _tmp_files(store) == []


def test_unused_copies_are_discarded(tmp_path: Path) -> None:
    out = tmp_path / "out.bin"
    out.write_bytes(b"x" * 100_000)
    store = ContentStore(tmp_path / "store")
    assert store.spool(str(out)) is not None
    discard_spooled()
    assert _tmp_files(store) == []
    assert cas._SPOOLED == {}


def test_spool_falls_back_to_a_copy_without_reflinks(tmp_path: Path) -> None:
    if _fs_reflinks(tmp_path):
        pytest.skip("this filesystem reflinks; the copy fallback is not exercised here")
    data = os.urandom(1 << 20)
    out = tmp_path / "out.bin"
    out.write_bytes(data)
    store = ContentStore(tmp_path / "store")
    assert store.spool(str(out)) == (hashlib.sha256(data).hexdigest(), len(data))
    assert os.stat(out).st_dev in store._no_reflink  # tried once per device, then copied
    info = store.put(str(out), hashlib.sha256(data).hexdigest())
    assert store.path(info.sha256).read_bytes() == data
    assert os.stat(store.path(info.sha256)).st_ino != os.stat(out).st_ino


def test_spool_reflinks_on_btrfs(btrfs_mount: Path) -> None:
    base = btrfs_mount / "spool-reflink"
    base.mkdir(exist_ok=True)
    data = os.urandom(2 << 20)
    (base / "out.bin").write_bytes(data)
    store = ContentStore(base / "store")
    sha = hashlib.sha256(data).hexdigest()
    assert store.spool(str(base / "out.bin")) == (sha, len(data))
    assert os.stat(base / "out.bin").st_dev not in store._no_reflink
    store.put(str(base / "out.bin"), sha)
    assert store.path(sha).read_bytes() == data


STEP = ("import os, sys\n"
        "with open(os.environ['COUNT_FILE'], 'a') as c:\n"
        "    c.write('ran\\n')\n"
        "with open('src.bin', 'rb') as i, open(sys.argv[1], 'wb') as o:\n"
        "    o.write(i.read())\n")


def test_a_large_output_is_recorded_in_one_pass_and_restored(tmp_path: Path) -> None:
    """End to end: the stored object is the output's bytes, nothing is left in tmp/, and a
    reuse with the output deleted or overwritten puts the recorded bytes back."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "runner"))
    from stepcount import executed, step_env

    root = tmp_path / "project"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    data = os.urandom(9 << 20)
    (root / "src.bin").write_bytes(data)
    (root / "make_big.py").write_text(STEP)
    env = step_env()
    cmd = [sys.executable, "-m", "sharklib", "run", "make_big.py", "big.bin"]

    def run() -> None:
        done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True,
                              timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        assert "warning" not in done.stderr, done.stderr

    run()
    assert executed() == ["ran"]
    sha = hashlib.sha256(data).hexdigest()
    cache = Path(env["SHARKLIB_HOME"]) / "cache"
    assert (cache / "objects" / sha[:2] / sha).read_bytes() == data
    assert os.listdir(cache / "tmp") == []
    (root / "big.bin").unlink()
    run()
    assert executed() == []
    assert (root / "big.bin").read_bytes() == data
    (root / "big.bin").write_bytes(b"edited by hand")  # restore onto an existing file
    run()
    assert executed() == []
    assert (root / "big.bin").read_bytes() == data


def test_a_traced_large_output_is_recorded_in_one_pass_and_restored(tmp_path: Path) -> None:
    from sharklib.trace import ebpf, ptrace

    why = ebpf.unavailable_reason() and ptrace.unavailable_reason()
    if why:
        pytest.skip(f"no tracer backend can run here: {why}")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "runner"))
    from stepcount import executed, step_env

    root = tmp_path / "project"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    data = os.urandom(9 << 20)
    (root / "src.bin").write_bytes(data)
    env = step_env()
    cmd = [sys.executable, "-m", "sharklib", "trace", "--", "sh", "-c",
           'echo ran >> "$COUNT_FILE"; cat src.bin > big.bin']

    def run() -> str:
        done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True,
                              timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        assert "warning" not in done.stderr, done.stderr
        return done.stderr

    run()
    assert executed() == ["ran"]
    sha = hashlib.sha256(data).hexdigest()
    cache = Path(env["SHARKLIB_HOME"]) / "cache"
    assert (cache / "objects" / sha[:2] / sha).read_bytes() == data
    assert os.listdir(cache / "tmp") == []
    (root / "big.bin").write_bytes(b"edited by hand")  # restore onto an existing file
    assert "reused" in run()
    assert executed() == []
    assert (root / "big.bin").read_bytes() == data


def _wait_until_growing(path: Path) -> None:
    """Until the appending process has started writing (it may start late on a busy machine)."""
    size = path.stat().st_size
    deadline = time.monotonic() + 30
    while path.stat().st_size == size and time.monotonic() < deadline:
        time.sleep(0.01)
    assert path.stat().st_size > size, "the appending process never wrote"
