"""Hashing benchmark: is the hash function, not sharklib, the limit?

Prints one table comparing, in the same run:
* ``hashlib.sha256`` over bytes already in memory (the ceiling),
* :func:`sharklib.hashing.sha256_file` on the same bytes from a file in the page cache,
* blake3 (single thread and threaded) for the cache-internal digest question,
* hashing many tiny files (a few bytes each, what a traced command opens) and many
  medium files (256 KiB) with a plain serial loop (``hashlib.sha256(f.read())``) vs
  :func:`hash_files`, interleaved,
* a :class:`StatCache` re-check of unchanged files (bytes hashed must be 0).

Run: ``.venv/bin/python benchmarks/bench_hashing.py [--size-mb 1024] [--repeat 5]``
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sharklib.hashing import StatCache, hash_files, sha256_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _rows import emit


def median_time(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def interleaved(fns: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Median seconds of each function, run in turns (one warm-up round first)."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for i in range(repeat + 1):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            if i:
                times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def plain_loop(paths: list[str]) -> dict[str, tuple[str, int]]:
    """What a user would write: read each file, hash it, one after the other."""
    out = {}
    for p in paths:
        with open(p, "rb") as fh:
            data = fh.read()
        out[p] = (hashlib.sha256(data).hexdigest(), len(data))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--files", type=int, default=2000, help="medium files (256 KiB)")
    ap.add_argument("--tiny", type=int, default=20000, help="tiny files (a few bytes)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="256 MiB, 500 medium and 5,000 tiny files")
    args = ap.parse_args()
    if args.quick:
        args.size_mb, args.files, args.tiny = min(args.size_mb, 256), min(args.files, 500), min(args.tiny, 5000)

    with tempfile.TemporaryDirectory(prefix="sharklib-bench-hash-") as tmp:
        big = Path(tmp) / "big.bin"
        block = os.urandom(1 << 20)
        with open(big, "wb") as fh:
            for _ in range(args.size_mb):
                fh.write(block)
            # written back now, not by the kernel while the rows below are timed
            fh.flush()
            os.fsync(fh.fileno())
        data = big.read_bytes()
        size = len(data)
        rows: list[tuple[str, str, str]] = []

        t = interleaved({"mem": lambda: hashlib.sha256(data).hexdigest(),
                         "file": lambda: sha256_file(big)}, args.repeat)
        t_mem, t_file = t["mem"], t["file"]
        rows.append(("sha256 of bytes in memory (hashlib)", f"{size / t_mem / 1e9:.2f} GB/s", "1.00 (baseline)"))
        rows.append(("sha256_file, page cache", f"{size / t_file / 1e9:.2f} GB/s",
                     f"{t_mem / t_file:.2f} of baseline (target >= 0.95)"))
        emit(f"sha256_file(one {args.size_mb} MiB file, page cache)", "in process",
             "hashlib.sha256(bytes in memory)", t_mem, t_file, ">= 0.95x the speed",
             t_mem / t_file >= 0.95, value=f"{size / t_file / 1e9:.2f} GB/s",
             base=f"{size / t_mem / 1e9:.2f} GB/s")
        try:
            import blake3

            t_b3 = median_time(lambda: blake3.blake3(data).hexdigest(), args.repeat)
            t_b3m = median_time(lambda: blake3.blake3(data, max_threads=blake3.blake3.AUTO).hexdigest(),
                                args.repeat)
            rows.append(("blake3 in memory, 1 thread", f"{size / t_b3 / 1e9:.2f} GB/s", f"{t_mem / t_b3:.2f}x sha256"))
            rows.append(("blake3 in memory, all threads", f"{size / t_b3m / 1e9:.2f} GB/s", f"{t_mem / t_b3m:.2f}x sha256"))
        except ImportError:
            rows.append(("blake3", "not installed", "-"))
        data = b""  # free the GiB before the many-files part

        tiny_dir = Path(tmp) / "tiny"
        tiny_dir.mkdir()
        tiny = []
        for i in range(args.tiny):
            p = tiny_dir / f"t{i:05d}"
            p.write_bytes(f"{i}\n".encode())
            tiny.append(str(p))
        t = interleaved({"loop": lambda: plain_loop(tiny), "hf": lambda: hash_files(tiny)}, args.repeat)
        rows.append((f"{args.tiny} tiny files (a few bytes), plain serial loop", f"{t['loop'] * 1000:.0f} ms", "1.00"))
        rows.append((f"{args.tiny} tiny files, hash_files", f"{t['hf'] * 1000:.0f} ms",
                     f"{t['loop'] / t['hf']:.2f}x the loop (target >= 1.00)"))
        emit(f"hash_files({args.tiny} tiny files)", "in process", "plain serial loop",
             t["loop"], t["hf"], "no slower than the loop", t["hf"] <= t["loop"])

        small_dir = Path(tmp) / "many"
        small_dir.mkdir()
        paths = []
        per = 256 << 10
        for i in range(args.files):
            p = small_dir / f"f{i:05d}"
            p.write_bytes(os.urandom(per))
            paths.append(str(p))
        total = per * len(paths)
        t = interleaved({"loop": lambda: plain_loop(paths), "hf": lambda: hash_files(paths)}, args.repeat)
        t_serial, t_par = t["loop"], t["hf"]
        rows.append((f"{args.files} files x {per // 1024} KiB, plain serial loop", f"{total / t_serial / 1e9:.2f} GB/s", "1.00"))
        rows.append((f"{args.files} files x {per // 1024} KiB, hash_files on {os.cpu_count()} cores",
                     f"{total / t_par / 1e9:.2f} GB/s", f"{t_serial / t_par:.2f}x the loop (target >= 1.6)"))
        emit(f"hash_files({args.files} files x 256 KiB)", f"{os.cpu_count()} cores",
             "plain serial loop", t_serial, t_par, ">= 1.6x faster", t_serial / t_par >= 1.6)

        old = time.time() - 3600
        for p in paths:
            os.utime(p, (old, old))
        db = Path(tmp) / "stat.sqlite"
        StatCache(db).digests(paths)

        def recheck() -> int:
            c = StatCache(db)
            c.digests(paths)
            return c.hashed_bytes

        t_re = median_time(recheck, args.repeat)
        rows.append((f"StatCache re-check of {args.files} unchanged files",
                     f"{t_re * 1000:.1f} ms", f"{t_par / t_re:.1f}x faster than hashing; hashed bytes: {recheck()}"))

    w = max(len(r[0]) for r in rows)
    print(f"\nHashing ({args.size_mb} MiB, medians of {args.repeat} interleaved runs after a warm-up; "
          f"Python {sys.version.split()[0]}; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores)")
    print(f"{'measurement':<{w}}  {'result':>12}  ratio")
    print("-" * (w + 40))
    for name, val, ratio in rows:
        print(f"{name:<{w}}  {val:>12}  {ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
