"""Hashing benchmark: is the hash function, not sharklib, the limit?

Prints one table comparing, in the same run:
* ``hashlib.sha256`` over bytes already in memory (the ceiling),
* :func:`sharklib.hashing.sha256_file` on the same bytes from a file in the page cache,
* blake3 (single thread and threaded) for the cache-internal digest question,
* hashing many files serially vs :func:`hash_files` in parallel,
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


def median_time(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="256 MiB and 500 files")
    args = ap.parse_args()
    if args.quick:
        args.size_mb, args.files = min(args.size_mb, 256), min(args.files, 500)

    with tempfile.TemporaryDirectory(prefix="sharklib-bench-hash-") as tmp:
        big = Path(tmp) / "big.bin"
        block = os.urandom(1 << 20)
        with open(big, "wb") as fh:
            for _ in range(args.size_mb):
                fh.write(block)
        data = big.read_bytes()
        size = len(data)
        rows: list[tuple[str, str, str]] = []

        t_mem = median_time(lambda: hashlib.sha256(data).hexdigest(), args.repeat)
        rows.append(("sha256 of bytes in memory (hashlib)", f"{size / t_mem / 1e9:.2f} GB/s", "1.00 (baseline)"))
        t_file = median_time(lambda: sha256_file(big), args.repeat)
        rows.append(("sha256_file, page cache", f"{size / t_file / 1e9:.2f} GB/s",
                     f"{t_mem / t_file:.2f} of baseline (target >= 0.90)"))
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

        small_dir = Path(tmp) / "many"
        small_dir.mkdir()
        paths = []
        per = max(1, (args.size_mb << 20) // 4 // args.files)
        for i in range(args.files):
            p = small_dir / f"f{i:05d}"
            p.write_bytes(os.urandom(per))
            paths.append(str(p))
        total = per * len(paths)
        t_serial = median_time(lambda: [sha256_file(p) for p in paths], args.repeat)
        t_par = median_time(lambda: hash_files(paths), args.repeat)
        rows.append((f"{args.files} files x {per // 1024} KiB, serial", f"{total / t_serial / 1e9:.2f} GB/s", "1.00"))
        rows.append((f"{args.files} files, hash_files on {os.cpu_count()} cores",
                     f"{total / t_par / 1e9:.2f} GB/s", f"{t_serial / t_par:.2f}x serial"))

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
    print(f"\nHashing ({args.size_mb} MiB, median of {args.repeat} after a warm-up; Python {sys.version.split()[0]})")
    print(f"{'measurement':<{w}}  {'result':>12}  ratio")
    print("-" * (w + 40))
    for name, val, ratio in rows:
        print(f"{name:<{w}}  {val:>12}  {ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
