"""fsspec: remote reads and writes recorded by URL with a digest of the bytes moved.

``memory://`` is fsspec's own in-process filesystem; ``s3://`` goes through
s3fs to moto's S3 server on loopback. ``file://`` must land on the same
canonical path as a plain ``open()``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from capture_libs_support import ETAG, LAST_MODIFIED, PAYLOAD, file_sha256, run_captured, sha256

DATA = b"species,count\n" + b"".join(b"s%d,%d\n" % (i, i * 3) for i in range(5000))


def test_memory_read_write_text_partial_and_local(tmp_path: Path) -> None:
    local = tmp_path / "local.csv"
    local.write_bytes(DATA)
    c = run_captured(tmp_path, f"""
        import fsspec, hashlib
        data = {DATA!r}
        with fsspec.open("memory://shark/in.csv", "wb") as f:
            f.write(data[:1000])
            f.write(memoryview(data)[1000:])
        with fsspec.open("memory://shark/in.csv", "rb") as f:
            got = f.read()
        print("read=" + hashlib.sha256(got).hexdigest())
        with fsspec.open("memory://shark/in.csv", "rt") as f:
            rows = f.readlines()
        print("rows=%d" % len(rows))
        fs = fsspec.filesystem("memory")
        with fs.open("/shark/in.csv", "rb") as f:
            head = f.read(10)
        print("head=" + hashlib.sha256(head).hexdigest())
        with fs.open("/shark/in.csv", "rb") as f:
            f.seek(100)
            f.read(10)
        with fsspec.open("file://{local}", "rb") as f:
            f.read()
        with open("{local}", "rb") as f:
            f.read()
    """)
    assert c.proc.returncode == 0, c.proc.stderr
    printed = dict(line.split("=", 1) for line in c.proc.stdout.split())
    url = "memory:///shark/in.csv"
    dls = [d for d in c.run.downloads if d.url == url]
    assert dls, (c.run.downloads, c.proc.stderr)
    puts = [d for d in dls if d.method == "PUT"]
    gets = [d for d in dls if d.method == "GET"]
    assert len(puts) == 1 and puts[0].sha256 == sha256(DATA) and puts[0].size == len(DATA)
    full = [d for d in gets if d.size == len(DATA)]
    # binary read, and the text-mode read beneath TextIOWrapper: both the whole object
    assert len(full) == 2 and all(d.sha256 == sha256(DATA) for d in full)
    assert printed["read"] == sha256(DATA)
    assert int(printed["rows"]) == 5001
    (head,) = [d for d in gets if d.size == 10 and d.sha256 is not None]
    assert head.sha256 == printed["head"] == sha256(DATA[:10])
    (skipped,) = [d for d in gets if d.sha256 is None]
    assert skipped.size == 10  # read after a seek: no prefix, so no digest
    assert len(dls) == 5
    # file:// is the same canonical file as open(), recorded once, and not as a download
    assert str(local) in c.inputs() and c.inputs()[str(local)] == file_sha256(local)
    assert not any(d.url.startswith("file:") for d in c.run.downloads)


def test_s3_through_s3fs_and_moto(tmp_path: Path, s3_env: str) -> None:
    if importlib.util.find_spec("s3fs") is None:
        pytest.skip("s3fs is not installed")
    import s3fs

    bucket = f"shark-{uuid.uuid4().hex[:12]}"
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_env})
    fs.mkdir(bucket)
    fs.pipe(f"{bucket}/in.csv", DATA)
    etag = fs.info(f"{bucket}/in.csv")["ETag"]
    c = run_captured(tmp_path, f"""
        import fsspec, hashlib
        with fsspec.open("s3://{bucket}/in.csv", "rb") as f:
            data = f.read()
        summary = b"rows=%d\\n" % data.count(b"\\n")
        with fsspec.open("s3://{bucket}/out.txt", "wb") as f:
            f.write(summary)
        print("got=" + hashlib.sha256(data).hexdigest())
        print("wrote=" + hashlib.sha256(summary).hexdigest())
    """)
    assert c.proc.returncode == 0, c.proc.stderr
    printed = dict(line.split("=", 1) for line in c.proc.stdout.split())
    (get,) = [d for d in c.run.downloads if d.url == f"s3://{bucket}/in.csv"]
    assert get.method == "GET" and get.sha256 == sha256(DATA) == printed["got"]
    assert get.size == len(DATA) and get.etag == etag
    (put,) = [d for d in c.run.downloads if d.url == f"s3://{bucket}/out.txt"]
    assert put.method == "PUT" and put.sha256 == printed["wrote"]
    assert hashlib.sha256(fs.cat(f"{bucket}/out.txt")).hexdigest() == put.sha256


@pytest.mark.parametrize("block_size", [None, 0], ids=["HTTPFile", "HTTPStreamFile"])
def test_an_http_download_through_fsspec_is_revalidated_and_reused(
        tmp_path: Path, http_server: str, block_size: int | None) -> None:
    """The loopback server sends an ETag: the second run is reused, the step does not run again.

    Before, fsspec's HTTP files kept only the size of the response, so the download
    had no validator and the run was never reused.
    """
    if importlib.util.find_spec("aiohttp") is None:
        pytest.skip("aiohttp (fsspec's HTTP backend) is not installed")
    (tmp_path / ".git").mkdir()
    (tmp_path / "step.py").write_text(textwrap.dedent(f"""
        import fsspec, os
        # counts executions where capture does not look (sharklib's home): a file the step
        # appends to is an input of the step, whose change makes it run again
        open(os.path.join(os.environ["SHARKLIB_HOME"], "ran.log"), "a").write("ran\\n")
        with fsspec.open("{http_server}/data.bin", "rb", block_size={block_size!r}) as f:
            data = f.read()
        open("out.bin", "wb").write(data)
    """))
    env = {k: v for k, v in os.environ.items() if k not in ("SHARKLIB_SESSION", "PYTHONPATH")}
    for _ in range(2):
        proc = subprocess.run([sys.executable, "-m", "sharklib", "run", "step.py"], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out.bin").read_bytes() == PAYLOAD
    assert (Path(os.environ["SHARKLIB_HOME"]) / "ran.log").read_text() == "ran\n", proc.stderr

    (tmp_path / "rec").mkdir()
    c = run_captured(tmp_path / "rec", f"""
        import fsspec
        with fsspec.open("{http_server}/data.bin", "rb", block_size={block_size!r}) as f:
            f.read()
    """)
    assert c.proc.returncode == 0, c.proc.stderr
    (dl,) = c.run.downloads
    assert (dl.url, dl.sha256, dl.etag, dl.last_modified) == (
        f"{http_server}/data.bin", sha256(PAYLOAD), ETAG, LAST_MODIFIED)
