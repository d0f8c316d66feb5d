"""Fixtures for the cache area: projects with real files, Runs made from them, backends."""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sharklib.cache.runcache import RunCache

# tests/cache/loopfs.py (the loop-mounted btrfs and zfs-fuse helpers) when tests/cache runs alone
sys.path.insert(0, str(Path(__file__).resolve().parent))
from sharklib.hashing import sha256_file
from sharklib.model import Artifact, Output, Run, RunKeyParts, run_key_parts


def build_key(argv: list[str], root: Path, script_sha: str = "0" * 64) -> RunKeyParts:
    return run_key_parts(argv, str(root), str(root), {"step.py": script_sha},
                         {"python": "3.11"})


def build_run(root: Path, argv: list[str], inputs: list[Path], outputs: list[Path], *,
             duration: float = 4.0, exit_status: int = 0, modules: list[Path] = (),
             key: RunKeyParts | None = None, **extra: object) -> Run:
    """A Run as capture would produce it, for files that exist on disk."""
    key = key or build_key(argv, root)
    now = time.time()

    def art(p: Path) -> Artifact:
        sha, size = sha256_file(p)
        return Artifact(path=str(p), sha256=sha, size=size)

    outs = []
    for p in outputs:
        sha, size = sha256_file(p)
        outs.append(Output(path=str(p), sha256=sha, size=size))
    run = Run(run_id=uuid.uuid4().hex, argv=argv, cwd=str(root), started=now - duration,
              ended=now, exit_status=exit_status, inputs=[art(p) for p in inputs],
              outputs=outs, run_key=key.digest(), **extra)  # type: ignore[arg-type]
    run.code.modules = [art(p) for p in modules]
    return run


@pytest.fixture(name="key_for")
def key_for_fixture() -> Callable[..., RunKeyParts]:
    """The run key a step with this argv has in a project (fixed code and environment)."""
    return build_key


@pytest.fixture(name="make_run")
def make_run_fixture() -> Callable[..., Run]:
    """Build a Run as capture would, from files on disk."""
    return build_run


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "data").mkdir()
    (root / "data" / "in.txt").write_text("hello sharks\n")
    return root


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[RunCache]:
    c = RunCache(tmp_path / "cache")
    yield c
    c.close()


@pytest.fixture
def write() -> Callable[[Path, str | bytes], Path]:
    def _write(p: Path, data: str | bytes) -> Path:
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            data = data.encode()
        p.write_bytes(data)
        return p
    return _write


def is_root() -> bool:
    return os.geteuid() == 0


# -- real backends -------------------------------------------------------------------------
import contextlib  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402


def _run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=check)


@pytest.fixture(scope="session")
def btrfs_mount(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A loop-mounted btrfs filesystem (root only); its subvolumes deleted, unmounted (for real)
    and detached afterwards (tests/cache/loopfs.py)."""
    from loopfs import btrfs_filesystem

    with btrfs_filesystem(tmp_path_factory.mktemp("btrfs"), 3 << 30) as mnt:
        yield mnt


_ws_counter = iter(range(1_000_000))


@pytest.fixture
def btrfs_workspace(btrfs_mount: Path) -> Iterator[Path]:
    """A fresh btrfs subvolume to use as a workspace."""
    from sharklib.cache.btrfs import create_workspace

    ws = btrfs_mount / f"ws{next(_ws_counter)}"
    create_workspace(str(ws))
    yield ws


@pytest.fixture(scope="session")
def zfs_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A zfs-fuse pool on a file: the daemon is started (unless one runs) and the pool destroyed
    (tests/cache/loopfs.py)."""
    from loopfs import zfs_pool as pool_on_file

    with pool_on_file(tmp_path_factory.mktemp("zfs")) as pool:
        yield pool


@pytest.fixture
def zfs_dataset(zfs_pool: str) -> str:
    ds = f"{zfs_pool}/ws{next(_ws_counter)}"
    _run("zfs", "create", ds)
    return ds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """A real S3 API (moto's server mode) on loopback; returns its endpoint URL."""
    exe = Path(sys.executable).parent / "moto_server"
    if not exe.exists():
        pytest.skip("moto[server] not installed")
    port = free_port()
    proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            time.sleep(0.05)
        else:
            pytest.skip("moto server did not start")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def s3_env(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Credentials and endpoint so that plain ``s3://`` URLs reach the moto server."""
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": moto_server,
           "AWS_ENDPOINT_URL_S3": moto_server}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


@pytest.fixture
def s3_bucket(s3_env: dict[str, str]) -> str:
    import s3fs

    name = f"shark{uuid.uuid4().hex[:12]}"
    fs = s3fs.S3FileSystem(skip_instance_cache=True,
                           client_kwargs={"endpoint_url": s3_env["AWS_ENDPOINT_URL"]})
    fs.mkdir(name)
    return name


def tamper_object(store: object, sha256: str, data: bytes) -> None:
    """Replace a stored object's bytes behind the store's back: the file, or its packed row."""
    import sqlite3
    import zlib

    path = store.path(sha256)  # type: ignore[attr-defined]
    if path.exists():
        os.chmod(path, 0o644)
        path.write_bytes(data)
        return
    db = sqlite3.connect(store.pack.path)  # type: ignore[attr-defined]
    try:
        with db:
            n = db.execute("UPDATE objects SET data=? WHERE sha256=?",
                           (zlib.compress(data), sha256)).rowcount
    finally:
        db.close()
    assert n == 1, f"object {sha256} is neither a file nor packed"
