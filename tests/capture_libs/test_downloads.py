"""Downloads through requests, urllib and httpx, hashed as the bytes stream to the program.

A real HTTP/1.1 server on loopback serves fixed bytes with an ETag and a
Last-Modified date; unmodified scripts fetch them under ``python -m sharklib
run``; the Run must list each download with the URL, status, size, sha256,
ETag and Last-Modified of exactly what the program received, which the script
prints so the two can be compared.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from capture_libs_support import BIG, ETAG, LAST_MODIFIED, PAYLOAD, run_captured, sha256


def _need(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed in this environment")


def _by_url(captured, url: str):
    found = [d for d in captured.run.downloads if d.url == url]
    assert found, f"no download of {url} in {[d.url for d in captured.run.downloads]}\n{captured.proc.stderr}"
    return found


def _check(download, data: bytes, status: int = 200) -> None:
    assert download.sha256 == sha256(data)
    assert download.size == len(data)
    assert download.etag == ETAG
    assert download.last_modified == LAST_MODIFIED
    assert download.status == status


def _printed(captured) -> dict[str, str]:
    assert captured.proc.returncode == 0, captured.proc.stderr
    return dict(line.split("=", 1) for line in captured.proc.stdout.split())


def test_requests_content_stream_raw_and_partial(tmp_path: Path, http_server: str) -> None:
    _need("requests")
    c = run_captured(tmp_path, f"""
        import hashlib, shutil, requests
        base = "{http_server}"
        r = requests.get(base + "/data.bin")
        print("content=" + hashlib.sha256(r.content).hexdigest())
        h = hashlib.sha256()
        with requests.get(base + "/big.bin", stream=True) as r:
            for chunk in r.iter_content(chunk_size=10000):
                h.update(chunk)
        print("streamed=" + h.hexdigest())
        with requests.get(base + "/gzip.txt", stream=True) as r, open("saved.bin", "wb") as f:
            shutil.copyfileobj(r.raw, f)
        r = requests.get(base + "/data.bin", stream=True)
        part = r.raw.read(1000)
        r.close()
        print("partial=" + hashlib.sha256(part).hexdigest())
        r = requests.get(base + "/redirect")
        print("redirected=" + hashlib.sha256(r.content).hexdigest())
        requests.head(base + "/data.bin")
    """)
    printed = _printed(c)
    data_dl = _by_url(c, f"{http_server}/data.bin")
    # full body twice (plain and after the redirect), the partial read once; HEAD not recorded
    assert sorted(d.size for d in data_dl) == sorted([len(PAYLOAD), len(PAYLOAD), 1000])
    full = [d for d in data_dl if d.size == len(PAYLOAD)]
    for d in full:
        _check(d, PAYLOAD)
        assert d.method == "GET"
    assert printed["content"] == printed["redirected"] == sha256(PAYLOAD)
    partial = next(d for d in data_dl if d.size == 1000)
    assert partial.sha256 == sha256(PAYLOAD[:1000]) == printed["partial"]
    (big,) = _by_url(c, f"{http_server}/big.bin")
    _check(big, BIG)
    assert printed["streamed"] == sha256(BIG)
    # r.raw hands out the bytes as sent (gzip), and those are what was saved and hashed
    (gz,) = _by_url(c, f"{http_server}/gzip.txt")
    assert gz.sha256 == sha256((tmp_path / "saved.bin").read_bytes())
    assert not any(u.url.endswith("/redirect") for u in c.run.downloads)
    assert len(c.run.downloads) == 5


def test_urllib_urlopen_read_iterate_and_urlretrieve(tmp_path: Path, http_server: str) -> None:
    c = run_captured(tmp_path, f"""
        import hashlib, urllib.request
        base = "{http_server}"
        with urllib.request.urlopen(base + "/data.bin") as r:
            h = hashlib.sha256()
            while True:
                chunk = r.read(4096)
                if not chunk:
                    break
                h.update(chunk)
        print("chunks=" + h.hexdigest())
        body = urllib.request.urlopen(base + "/big.bin").read()
        print("whole=" + hashlib.sha256(body).hexdigest())
        urllib.request.urlretrieve(base + "/redirect", "fetched.bin")
        r = urllib.request.urlopen(base + "/data.bin")
        buf = bytearray(500)
        n = r.readinto(buf)
        r.close()
        print("partial=" + hashlib.sha256(bytes(buf[:n])).hexdigest())
    """)
    printed = _printed(c)
    assert printed["chunks"] == sha256(PAYLOAD)
    assert printed["whole"] == sha256(BIG)
    data_dl = _by_url(c, f"{http_server}/data.bin")
    assert sorted(d.size for d in data_dl) == [500, len(PAYLOAD), len(PAYLOAD)]
    for d in data_dl:
        if d.size == len(PAYLOAD):
            _check(d, PAYLOAD)
    assert next(d for d in data_dl if d.size == 500).sha256 == printed["partial"]
    (big,) = _by_url(c, f"{http_server}/big.bin")
    _check(big, BIG)
    assert (tmp_path / "fetched.bin").read_bytes() == PAYLOAD
    saved = [d for d in data_dl if d.saved_to]
    assert [d.saved_to for d in saved] == [str(tmp_path / "fetched.bin")]
    assert saved[0].sha256 == c.outputs()[str(tmp_path / "fetched.bin")]
    assert len(c.run.downloads) == 4
    # wrapt came with sharklib's patch of urllib, not with the script
    assert "wrapt" not in c.run.environment.distributions, c.run.environment.distributions


def test_httpx_sync_async_streaming_and_partial(tmp_path: Path, http_server: str) -> None:
    _need("httpx")
    c = run_captured(tmp_path, f"""
        import asyncio, hashlib, httpx
        base = "{http_server}"
        r = httpx.get(base + "/data.bin")
        print("content=" + hashlib.sha256(r.content).hexdigest())
        r.read()
        list(r.iter_bytes())  # served from memory: must not count again
        with httpx.Client(follow_redirects=True) as client:
            h = hashlib.sha256()
            with client.stream("GET", base + "/big.bin") as r:
                for chunk in r.iter_bytes(chunk_size=7000):
                    h.update(chunk)
            print("streamed=" + h.hexdigest())
            r = client.get(base + "/redirect")
            print("redirected=" + hashlib.sha256(r.content).hexdigest())
            r = client.get(base + "/gzip.txt")
            print("gunzipped=" + hashlib.sha256(r.content).hexdigest())
            with client.stream("GET", base + "/data.bin") as r:
                it = r.iter_raw(1000)
                part = next(it)
            print("partial=" + hashlib.sha256(part).hexdigest())

        async def main():
            async with httpx.AsyncClient() as client:
                h = hashlib.sha256()
                async with client.stream("GET", base + "/big.bin") as r:
                    async for chunk in r.aiter_bytes():
                        h.update(chunk)
                print("async=" + h.hexdigest())
                r = await client.get(base + "/data.bin")
                print("acontent=" + hashlib.sha256(r.content).hexdigest())
        asyncio.run(main())
    """)
    printed = _printed(c)
    assert printed["content"] == printed["redirected"] == printed["acontent"] == sha256(PAYLOAD)
    assert printed["streamed"] == printed["async"] == sha256(BIG)
    assert printed["gunzipped"] == sha256(PAYLOAD)
    data_dl = _by_url(c, f"{http_server}/data.bin")
    assert sorted(d.size for d in data_dl) == [1000, *[len(PAYLOAD)] * 3]
    for d in data_dl:
        if d.size == len(PAYLOAD):
            _check(d, PAYLOAD)
        else:
            assert d.sha256 == printed["partial"] == sha256(PAYLOAD[:1000])
    bigs = _by_url(c, f"{http_server}/big.bin")
    assert len(bigs) == 2
    for d in bigs:
        _check(d, BIG)
    # decoded bytes are what the program got from .content, so they are what is hashed
    (gz,) = _by_url(c, f"{http_server}/gzip.txt")
    assert gz.sha256 == sha256(PAYLOAD) and gz.size == len(PAYLOAD)
    assert len(c.run.downloads) == 7
