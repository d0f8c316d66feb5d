"""Benchmark ``sharklib uses`` / ``impact`` / ``log`` / ``report`` over 100,000 recorded runs.

    .venv/bin/python benchmarks/bench_queries.py [--runs 100000] [--repeat 5]

Setup (untimed, reported): a run index holding N synthetic runs, indexed
through :meth:`RunIndex.add` exactly as ``record()`` indexes a run (so the
ledger rows are written by the same hook). The runs form pipelines of 13
steps: ``prep.py`` reads ``data/raw-K.csv`` and imports ``helper.py``; ten map
steps read its output; a gather reads the ten; a report reads the gather. One
prep in 100 also reads ``data/shared.csv``, so asking about it reaches ~1% of
every pipeline (about 1,000 steps at N = 100,000).

Timed: the CLI end to end (``python -m sharklib uses PATH --format json``, a
fresh interpreter each time), beside ``python -c pass`` and
``python -m sharklib --version`` in the same run, interleaved, medians of
``--repeat`` runs after one warm-up. Target: ``uses``/``impact`` <= 1 s.

Size: the index file per run, and the ledger's share of it (the same index
with the ledger tables dropped and vacuumed).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sharklib.cache.entry import IndexEntry, StoredObject  # noqa: E402
from sharklib.cache.index import RunIndex  # noqa: E402
from sharklib.hashing import sha256_bytes  # noqa: E402
from sharklib.model import Artifact, CodeIdentity, Output, Run  # noqa: E402

PER_PIPELINE = 13


def sha(text: str) -> str:
    return sha256_bytes(text.encode())


def make_run(i: int, root: str, argv: list[str], reads: list[str], writes: list[str],
             started: float, modules: list[str] = ()) -> IndexEntry:  # type: ignore[assignment]
    run = Run(run_id=f"{i:032x}", argv=["/usr/bin/python3", *argv], cwd=root, started=started,
              ended=started + 1.0 + (i % 7), exit_status=0, user=f"user{i % 3}", host="bench",
              code=CodeIdentity(script=Artifact(f"{root}/{argv[0]}", sha(argv[0])),
                                modules=[Artifact(f"{root}/{m}", sha(m)) for m in modules]),
              inputs=[Artifact(f"{root}/{p}", sha(p)) for p in reads],
              outputs=[Output(f"{root}/{p}", sha(p), 10) for p in writes])
    run.run_key = "sha256:" + sha(f"key{i}")
    objects = [StoredObject("output", p, sha(p), 10) for p in writes]
    return IndexEntry(run.run_key, run, root, objects,
                      inputs=[(p, sha(p)) for p in reads],
                      modules=[(m, sha(m)) for m in modules])


def build(cache: Path, root: str, n: int) -> float:
    """Index ``n`` runs in pipelines of 13; returns the seconds it took."""
    idx = RunIndex(cache / "index.sqlite")
    t0 = time.perf_counter()
    i = 0
    k = 0
    base = time.time() - n * 10
    while i < n:
        raw = [f"data/raw-{k}.csv"] + (["data/shared.csv"] if k % 100 == 0 else [])
        steps: list[tuple[list[str], list[str], list[str], list[str]]] = [
            (["prep.py", raw[0], f"work/{k}/prep.csv"], raw, [f"work/{k}/prep.csv"], ["helper.py"])]
        for j in range(10):
            steps.append((["map.py", f"work/{k}/prep.csv", str(j)], [f"work/{k}/prep.csv"],
                          [f"work/{k}/m{j}.csv"], []))
        steps.append((["gather.py", f"work/{k}"], [f"work/{k}/m{j}.csv" for j in range(10)],
                      [f"work/{k}/all.csv"], []))
        steps.append((["report.py", f"work/{k}/all.csv"], [f"work/{k}/all.csv"],
                      [f"results/{k}.txt"], []))
        # a write and the next step's read of it have the same digest (sha of the path): linked
        for argv, reads, writes, mods in steps:
            if i >= n:
                break
            idx.add(make_run(i, root, argv, reads, writes, base + i * 10, mods))
            i += 1
        k += 1
    idx.close()
    return time.perf_counter() - t0


def ledger_bytes(db_path: Path) -> tuple[int, int]:
    """(whole index, index without the ledger) in bytes, both vacuumed."""
    tmp = db_path.with_name("copy.sqlite")
    shutil.copy(db_path, tmp)
    db = sqlite3.connect(tmp)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.execute("PRAGMA journal_mode=DELETE")
    db.execute("VACUUM")
    whole = tmp.stat().st_size
    for t in ("ledger_runs", "ledger_reads", "ledger_writes", "ledger_reuses", "ledger_missing"):
        db.execute(f"DROP TABLE IF EXISTS {t}")
    db.execute("VACUUM")
    db.close()
    without = tmp.stat().st_size
    tmp.unlink()
    return whole, without


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--keep", metavar="DIR",
                    help="build the index in DIR and keep it; reuse it if already built there")
    args = ap.parse_args()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-queries-"))
    try:
        home = work / "home"
        root = work / "proj"
        cache = home / "cache"
        done_marker = work / f"built-{args.runs}"
        if done_marker.exists():
            took = float(done_marker.read_text())
        else:
            shutil.rmtree(work, ignore_errors=True)
            root.mkdir(parents=True)
            cache.mkdir(parents=True)
            took = build(cache, str(root), args.runs)
            done_marker.write_text(str(took))
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHARKLIB_")}
        env.update(SHARKLIB_HOME=str(home), PYTHONPATH=str(REPO))
        py = sys.executable
        # the first query back-fills nothing (the hook wrote the ledger) but warms the page cache
        cmds = {
            "python -c pass (baseline)": [py, "-c", "pass"],
            "sharklib --version (CLI start-up)": [py, "-m", "sharklib", "--version"],
            "uses data/raw-17.csv (13 steps)": [py, "-m", "sharklib", "uses", "data/raw-17.csv",
                                                "--format", "json"],
            "uses data/shared.csv (~1% of runs)": [py, "-m", "sharklib", "uses", "data/shared.csv",
                                                   "--format", "json"],
            "uses helper.py (every prep step)": [py, "-m", "sharklib", "uses", "helper.py",
                                                 "--depth", "0", "--format", "json"],
            "impact data/raw-17.csv": [py, "-m", "sharklib", "impact", "data/raw-17.csv",
                                       "--format", "json"],
            "impact data/shared.csv": [py, "-m", "sharklib", "impact", "data/shared.csv",
                                       "--format", "json"],
            "log -n 50 (table)": [py, "-m", "sharklib", "log", "-n", "50"],
            "report": [py, "-m", "sharklib", "report", "--format", "json"],
        }
        times: dict[str, list[float]] = {k: [] for k in cmds}
        sizes: dict[str, int] = {}
        for rnd in range(args.repeat + 1):
            for name, argv in cmds.items():
                t0 = time.perf_counter()
                done = subprocess.run(argv, cwd=root, env=env, capture_output=True)
                dt = time.perf_counter() - t0
                if done.returncode != 0:
                    raise SystemExit(f"{name}: {done.stderr.decode()[-2000:]}")
                sizes[name] = len(done.stdout)
                if rnd > 0:
                    times[name].append(dt)
        db = cache / "index.sqlite"
        whole, without = ledger_bytes(db)  # vacuumed copies: the index itself is untouched
        n = args.runs
        print(f"setup: indexed {n:,} runs through RunIndex.add in {took:.1f} s "
              f"({took / n * 1000:.2f} ms per run, ledger rows included)")
        print(f"{'command (end to end, fresh interpreter)':46} {'median':>9} {'min':>9} "
              f"{'over baseline':>14} {'JSON bytes':>11}")
        base = statistics.median(times["python -c pass (baseline)"])
        for name, ts in times.items():
            med = statistics.median(ts)
            print(f"{name:46} {med:8.3f}s {min(ts):8.3f}s {med - base:+13.3f}s {sizes[name]:11,}")
        print(f"index: {whole / n:,.0f} bytes per run ({whole / 2**20:,.1f} MiB for {n:,} runs); "
              f"ledger tables and their indexes: {(whole - without) / n:,.0f} bytes per run "
              f"({(whole - without) / 2**20:,.1f} MiB)")
        print(f"medians of {args.repeat} interleaved runs after one warm-up; load average "
              f"{os.getloadavg()[0]:.1f} at the end")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
