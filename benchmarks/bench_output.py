"""Recording and restoring one large output: ``python -m sharklib run make_big.py`` end to end.

Rows (medians of interleaved runs after a warm-up, default mode, PYTHONUNBUFFERED and
PYTHONDONTWRITEBYTECODE unset):

* record: ``python -m sharklib run make_big.py big.bin`` into an empty cache (the step
  executes; its output is hashed and stored) against ``python make_big.py big.bin``.
  The empty cache holds no stat cache either, so the step's input ``src.bin`` (as large
  as the output) is hashed too: the row is "records one output, hashes one input".
  Target (issue 18): <= 1.3x the plain step on ext4, <= 1.05x with reflinks.
* restore: the same command again with ``big.bin`` deleted (reused: the output comes
  back from the store) against ``cp`` of a file of the same size. Target: <= 1.05x of
  ``cp`` without reflinks, <= 50 ms with them.

The step copies a source file of random bytes in 1 MiB blocks (the page cache holds
it: the figures are of sharklib's work, not the disk's).

    .venv/bin/python benchmarks/bench_output.py [--size-mb 1024] [--runs 5] [--quick]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _rows import emit  # noqa: E402

PY = sys.executable
STEP = ("import sys\n"
        "with open('src.bin', 'rb') as i, open(sys.argv[1], 'wb') as o:\n"
        "    while b := i.read(1 << 20):\n"
        "        o.write(b)\n")


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="256 MiB, 3 runs")
    args = ap.parse_args()
    if args.quick:
        args.size_mb, args.runs = min(args.size_mb, 256), min(args.runs, 3)
    with tempfile.TemporaryDirectory(prefix="sharklib-bench-output-", dir=os.getcwd()) as tmp:
        work = Path(tmp)
        home = work / "home"
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("SHARKLIB_") and k not in ("PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE")}
        env["SHARKLIB_HOME"] = str(home)
        (work / "make_big.py").write_text(STEP)
        block = os.urandom(1 << 20)
        with open(work / "src.bin", "wb") as fh:
            for _ in range(args.size_mb):
                fh.write(block)
        fs = subprocess.run(["stat", "-f", "-c", "%T", str(work)], capture_output=True,
                            text=True).stdout.strip().replace("ext2/ext3", "ext2/3/4") or "unknown"
        shark = [PY, "-m", "sharklib", "run", "make_big.py", "big.bin"]

        def gone(*names: str) -> None:
            for n in names:
                (work / n).unlink(missing_ok=True)
            for p in work.glob("big.bin*"):
                p.unlink()

        rec: dict[str, list[float]] = {"plain": [], "sharklib": []}
        res: dict[str, list[float]] = {"cp": [], "sharklib": []}
        for i in range(args.runs + 1):
            gone("plain.bin")
            p = timed([PY, "make_big.py", "plain.bin"], work, env)
            gone()
            shutil.rmtree(home / "cache", ignore_errors=True)
            s = timed(shark, work, env)
            gone("copy.bin")
            c = timed(["cp", "plain.bin", "copy.bin"], work, env)
            gone()
            r = timed(shark, work, env)
            if not (work / "big.bin").exists():
                raise SystemExit("the reused run did not restore big.bin")
            if i:
                rec["plain"].append(p)
                rec["sharklib"].append(s)
                res["cp"].append(c)
                res["sharklib"].append(r)
        p, s = statistics.median(rec["plain"]), statistics.median(rec["sharklib"])
        c, r = statistics.median(res["cp"]), statistics.median(res["sharklib"])
    size = f"{args.size_mb} MiB"
    print(f"one {size} output on {fs}: medians of {args.runs} interleaved runs after a warm-up; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"  record  python -m sharklib run make_big.py big.bin (empty cache: hashes the {size} input, "
          f"records the {size} output): {s:.2f} s vs plain step "
          f"{p:.2f} s = {s / p:.2f}x (target <= 1.3x without reflink)")
    print(f"  restore same command, big.bin deleted (reused): {r:.2f} s vs cp {c:.2f} s = {r / c:.2f}x "
          "(target <= 1.05x of cp without reflink)")
    emit("python -m sharklib run make_big.py big.bin", f"cold: empty cache, hashes one {size} input, records one {size} output ({fs})",
         "python make_big.py big.bin", p, s, "<= 1.3x (no reflink)", s <= 1.3 * p)
    emit("python -m sharklib run make_big.py big.bin", f"reused: restores one {size} output ({fs})",
         f"cp of {size}", c, r, "<= 1.05x of cp (no reflink)", r <= 1.05 * c)
    return 0


if __name__ == "__main__":
    sys.exit(main())
