"""Run every benchmark (or those named) and print their tables.

Each ``bench_*.py`` measures sharklib against a baseline in the same run and
prints its own table. They run as separate processes with
``PYTHONUNBUFFERED`` and ``PYTHONDONTWRITEBYTECODE`` removed from the
environment, because unbuffered output turns every printed line into a
``write`` call and skews what tracers and capture cost.

    .venv/bin/python benchmarks/run.py                 # all
    .venv/bin/python benchmarks/run.py hashing cache   # bench_hashing.py, bench_cache.py
    .venv/bin/python benchmarks/run.py --quick         # passed on to every benchmark
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    passthrough = [a for a in argv if a.startswith("-")]
    names = [a for a in argv if not a.startswith("-")]
    scripts = sorted(HERE.glob("bench_*.py"))
    if names:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in names]
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE")}
    failed = []
    for script in scripts:
        print(f"\n=== {script.name} ===", flush=True)
        rc = subprocess.call([sys.executable, str(script), *passthrough], env=env)
        if rc:
            failed.append(script.name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
