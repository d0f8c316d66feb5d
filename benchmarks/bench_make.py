"""``sharklib env -- make`` against plain ``make`` on the same Makefile, in the same run.

Rows (medians of interleaved runs after one warm-up; every command is the one a user types):
- no-op: ``make -s all`` with every target up to date, on a Makefile of N Python targets whose
  observed dependencies sharklib handed to make (``MAKEFILES``). Target: within 1.5x of plain.
- full run, cold: every output deleted and sharklib's cache empty: ``sharklib env -- make -j2``
  records (and signs) every step; plain make just runs them.
- full run, warm: every output deleted, the cache holding them: sharklib reuses every step.
The pipeline: N counting steps (a Python script importing an undeclared helper), each with an
``@mkdir -p out`` line (an inert line the recipe shell's sh front runs plainly), and a collate
step. Every recipe line goes through the recipe shell; no line is traced (none is a non-Python
command with data), so these rows time Python capture, reuse and recording under make.

    .venv/bin/python benchmarks/bench_make.py [--quick]
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = os.path.dirname(sys.executable)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _rows import emit  # noqa: E402


def write_project(root: Path, n: int) -> None:
    (root / ".git").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "helper.py").write_text("def words(t):\n    return len(t.split())\n")
    (root / "count.py").write_text(
        "import sys\nfrom helper import words\n"
        "open(sys.argv[2], 'w').write(str(words(open(sys.argv[1]).read())) + '\\n')\n")
    (root / "collate.py").write_text(
        "import sys\nopen(sys.argv[-1], 'w').write(str(sum(int(open(p).read()) "
        "for p in sys.argv[1:-1])) + '\\n')\n")
    for i in range(n):
        (root / "data" / f"s{i}.txt").write_text(" ".join(str(j) for j in range(i % 50)) + "\n")
    targets = " ".join(f"out/s{i}.count" for i in range(n))
    (root / "Makefile").write_text(
        f"all: summary.txt\n"
        f"out/%.count: data/%.txt count.py\n\t@mkdir -p out\n\tpython count.py $< $@\n"
        f"summary.txt: {targets}\n\tpython collate.py $^ $@\n")


def env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items()
         if not k.startswith("SHARKLIB_") and k not in ("PYTHONUNBUFFERED",
                                                        "PYTHONDONTWRITEBYTECODE", "MAKEFILES")}
    e["PATH"] = BIN + os.pathsep + e.get("PATH", "")
    return e


def timed(cmd: list[str], cwd: Path, e: dict[str, str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=e, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def clean(root: Path) -> None:
    shutil.rmtree(root / "out", ignore_errors=True)
    for p in [root / "summary.txt", *root.glob("summary.txt.*")]:
        p.unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    n_noop = 200 if quick else 1000
    n_full = 10 if quick else 30
    reps = 3 if quick else 7
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        e = env()
        e["SHARKLIB_HOME"] = str(home)
        make = ["make", "-s", "-j2", "all"]
        shark = [os.path.join(BIN, "sharklib"), "env", "--", *make]

        # no-op of N targets: build once under sharklib (records the observed dependencies)
        big = Path(tmp) / "big"
        write_project(big, n_noop)
        subprocess.run(shark, cwd=big, env=e, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        plain_t, shark_t = [], []
        timed(make, big, e)
        timed(shark, big, e)
        for _ in range(reps):
            plain_t.append(timed(make, big, e))
            shark_t.append(timed(shark, big, e))
        rows.append((f"no-op, {n_noop} targets up to date", statistics.median(plain_t),
                     statistics.median(shark_t), "<= 1.5x"))
        emit("sharklib env -- make -s -j2 all", f"no-op: {n_noop} targets up to date",
             "make -s -j2 all", rows[-1][1], rows[-1][2], "<= 1.5x",
             rows[-1][2] <= 1.5 * rows[-1][1])

        # full runs: cold (empty cache) and warm (every step reused)
        small = Path(tmp) / "small"
        write_project(small, n_full)
        cold_p, cold_s, warm_s = [], [], []
        for i in range(reps + 1):
            clean(small)
            p = timed(make, small, e)
            clean(small)
            shutil.rmtree(home / "cache", ignore_errors=True)
            s = timed(shark, small, e)
            clean(small)
            w = timed(shark, small, e)
            if i:  # the first round is the warm-up
                cold_p.append(p)
                cold_s.append(s)
                warm_s.append(w)
        rows.append((f"full run, {n_full} Python steps + collate, empty cache",
                     statistics.median(cold_p), statistics.median(cold_s), "(recording)"))
        rows.append((f"full run, {n_full} Python steps + collate, every step reused",
                     statistics.median(cold_p), statistics.median(warm_s), "(reuse)"))
        emit("sharklib env -- make -s -j2 all", f"cold: {n_full + 1} steps, outputs deleted, empty cache",
             "make -s -j2 all (same steps)", rows[-2][1], rows[-2][2], "(none in issue 18)", None)
        emit("sharklib env -- make -s -j2 all", f"warm: {n_full + 1} steps, outputs deleted, all reused",
             "make -s -j2 all (same steps)", rows[-1][1], rows[-1][2], "(none in issue 18)", None)

    print(f"{'measurement (sharklib env -- make -s -j2 all vs make -s -j2 all)':66} "
          f"{'plain':>8} {'sharklib':>9} {'ratio':>7}  target")
    print("-" * 100)
    for label, plain, sk, target in rows:
        print(f"{label:66} {plain:7.2f}s {sk:8.2f}s {sk / plain:6.2f}x  {target}")
    load = os.getloadavg()[0]
    print(f"\n(medians of {reps} interleaved runs after a warm-up; PYTHONUNBUFFERED and "
          f"PYTHONDONTWRITEBYTECODE unset; load average {load:.2f} on {os.cpu_count()} cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
