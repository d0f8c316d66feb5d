"""Overhead of the download patch: ``requests.get`` of a 50 MB loopback body, patched vs plain.

A ``python -m http.server`` process on 127.0.0.1 serves a 50 MB file. Each
measurement is a fresh interpreter that times only the download itself (the
``requests.get(...).content`` call, and a streamed ``iter_content`` loop);
the patched interpreter has a live recorder and ``sharklib.capture.libs``
installed, so every byte also passes through the streaming sha256. One warm-up
run each, then at least 5 runs alternating plain/patched; the table shows
medians and the patched/plain ratio. Run with ``PYTHONUNBUFFERED`` and
``PYTHONDONTWRITEBYTECODE`` unset (``benchmarks/run.py`` does this; so does
this script for its children).

    .venv/bin/python benchmarks/bench_capture_libs.py [--quick] [--runs N]
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZE = 50 * 1024 * 1024

CHILD = r"""
import sys, time
mode, url, how = sys.argv[1], sys.argv[2], sys.argv[3]
if mode == "patched":
    from sharklib.capture.recorder import Recorder, set_current
    set_current(Recorder(sys.argv))
    import sharklib.capture.libs as libs
    libs.install()
import requests
session = requests.Session()
session.get(url.rsplit("/", 1)[0] + "/small.bin").content  # connection and imports warm
start = time.perf_counter()
if how == "content":
    n = len(session.get(url).content)
else:
    n = 0
    with session.get(url, stream=True) as r:
        for chunk in r.iter_content(chunk_size=1 << 20):
            n += len(chunk)
elapsed = time.perf_counter() - start
if mode == "patched":
    from sharklib.capture.recorder import current
    libs.flush()
    assert [d.size for d in current().downloads if d.url == url] == [n], "download not recorded"
print(elapsed)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if k not in ("PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE") and not k.startswith("SHARKLIB_")}


def _once(mode: str, url: str, how: str, script: Path) -> float:
    out = subprocess.run([sys.executable, str(script), mode, url, how], env=_env(),
                         capture_output=True, text=True, check=True, timeout=300)
    return float(out.stdout.strip().splitlines()[-1])


def _sha256_floor() -> float:
    """The least any digest-as-it-streams can add: hashing the same bytes already in memory."""
    import hashlib

    data = os.urandom(SIZE)
    times = []
    for _ in range(6):
        start = time.perf_counter()
        h = hashlib.sha256()
        view = memoryview(data)
        for i in range(0, SIZE, 1 << 20):
            h.update(view[i:i + (1 << 20)])
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def main(argv: list[str]) -> int:
    runs = 5
    if "--runs" in argv:
        runs = max(5, int(argv[argv.index("--runs") + 1]))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "body.bin").write_bytes(os.urandom(SIZE))
        (root / "small.bin").write_bytes(b"x" * 1024)
        script = root / "child.py"
        script.write_text(CHILD)
        port = _free_port()
        server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind",
                                   "127.0.0.1", "--directory", str(root)], env=_env(),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), 0.2).close()
                    break
                except OSError:
                    time.sleep(0.05)
            url = f"http://127.0.0.1:{port}/body.bin"
            rows = []
            for how in ("content", "iter_content"):
                _once("plain", url, how, script)
                _once("patched", url, how, script)
                times: dict[str, list[float]] = {"plain": [], "patched": []}
                for _ in range(runs):
                    for mode in ("plain", "patched"):
                        times[mode].append(_once(mode, url, how, script))
                plain = statistics.median(times["plain"])
                patched = statistics.median(times["patched"])
                rows.append((f"requests.get 50 MB ({how})", plain, patched, patched / plain))
        finally:
            server.terminate()
            server.wait(10)
    print(f"{'case':<36} {'plain s':>9} {'patched s':>10} {'added s':>8} {'ratio':>7}"
          f"   (medians of {runs})")
    for name, plain, patched, ratio in rows:
        print(f"{name:<36} {plain:>9.3f} {patched:>10.3f} {patched - plain:>8.3f} {ratio:>7.3f}")
    print(f"{'floor: sha256 of 50 MB in memory':<36} {'':>9} {'':>10} {_sha256_floor():>8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
