"""Benchmarks for Markdown pipelines: ``python benchmarks/bench_pipeline.py [--quick]``.

1. Plan and no-op re-run of a generated 1,000- and 10,000-stage map (every stage reusable),
   against ``snakemake -n`` and a nothing-to-do ``snakemake`` on the equivalent
   Snakefile (snakemake lives in its own venv, ``benchmarks/.venvs/snakemake``,
   created on first use from PyPI).
2. Full first run of the map where each stage is a trivial ``cp``: stages/s at
   1,000 and 10,000, against running the same ``cp`` commands with a plain
   2-thread pool (no capture, no records) in the same run; then the cache's
   footprint per stage (files and directories, bytes: target <= 1 file, <= 2 KB).
3. Scheduling overhead per stage on the local pool and on Dask: sharklib's
   scheduler driving a no-op leaf, minus the engine's own per-task cost for
   the same no-op (ThreadPoolExecutor.submit / distributed Client.map).

Every figure is the median of at least 5 timed runs after one warm-up, and the
table prints ratios against a baseline measured in the same run. Subprocesses
run with PYTHONUNBUFFERED and PYTHONDONTWRITEBYTECODE unset (this machine's
shell exports both; they distort per-process costs).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SNAKE_VENV = HERE / ".venvs" / "snakemake"
SHARKLIB = [sys.executable, "-m", "sharklib"]
sys.path.insert(0, str(HERE))
from _rows import emit  # noqa: E402

#: --quick uses Snakemake only where it is already installed (no install in a smoke test)
INSTALL_SNAKEMAKE = True


def clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE")}
    env["SHARKLIB_HOME"] = str(home)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return env


def median_time(fn: Callable[[], object], runs: int, setup: Callable[[], object] | None = None) -> float:
    if setup:
        setup()
    fn()  # warm-up
    times = []
    for _ in range(runs):
        if setup:
            setup()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _child_cpu() -> float:
    """User + system seconds of every child waited for so far (subprocesses, pool workers)."""
    t = os.times()
    return t.children_user + t.children_system


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system


def make_project(root: Path, n: int) -> Path:
    if root.exists():
        shutil.rmtree(root)
    (root / "in").mkdir(parents=True)
    for i in range(n):
        (root / "in" / f"f{i:05d}.txt").write_text(f"{i}\n")
    (root / "m.md").write_text("# bench\n\n```shark-run:host\ncp in/* out/%{basename}\n```\n")
    (root / "Snakefile").write_text(
        'import os\nFILES = sorted(os.listdir("in"))\n\n'
        'rule all:\n    input: expand("out/{f}", f=FILES)\n\n'
        'rule copy:\n    input: "in/{f}"\n    output: "out/{f}"\n    shell: "cp {input} {output}"\n')
    return root


def snakemake() -> str | None:
    exe = SNAKE_VENV / "bin" / "snakemake"
    if exe.exists():
        return str(exe)
    if not INSTALL_SNAKEMAKE:
        print(f"snakemake: not installed in {SNAKE_VENV} (--quick does not install it)", file=sys.stderr)
        return None
    print(f"installing snakemake into {SNAKE_VENV} ...", file=sys.stderr)
    SNAKE_VENV.parent.mkdir(parents=True, exist_ok=True)
    (SNAKE_VENV.parent / ".gitignore").write_text("*\n")
    try:
        subprocess.run([sys.executable, "-m", "venv", str(SNAKE_VENV)], check=True)
        subprocess.run([str(SNAKE_VENV / "bin" / "pip"), "install", "-q", "snakemake"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"snakemake unavailable: {exc}", file=sys.stderr)
        return None
    return str(exe) if exe.exists() else None


def run(cmd: list[str], cwd: Path, env: dict[str, str], ok: bool = True) -> None:
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if ok and proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr.decode()[-2000:]}")


def planner_available() -> bool:
    import sharklib.runner

    return hasattr(sharklib.runner, "plan_command")


# -- 1. plan and no-op ------------------------------------------------------------------------------
def bench_noop(work: Path, n: int, runs: int, rows: list[tuple[str, str, str]]) -> None:
    proj = make_project(work / f"noop{n}", n)
    home = work / f"home-noop{n}"
    env = clean_env(home)
    # Outputs for snakemake's nothing-to-do case, made with later mtimes than the inputs.
    run([*SHARKLIB, "pipeline", "run", "-j", "2", "m.md"], proj, env)
    snake = snakemake()
    results: dict[str, float] = {}
    if snake:
        results["snakemake -n"] = median_time(
            lambda: run([snake, "-n", "-c1", "--quiet"], proj, env), runs)
        results["snakemake (nothing to do)"] = median_time(
            lambda: run([snake, "-c1", "--quiet"], proj, env), runs)
    results["sharklib pipeline plan"] = median_time(
        lambda: run([*SHARKLIB, "pipeline", "plan", "m.md"], proj, env), runs)
    from sharklib.pipeline.run import load_pipeline

    os.environ["SHARKLIB_HOME"] = str(home)
    results["  in-process: parse + stages + DAG + plan"] = median_time(lambda: load_pipeline(proj / "m.md"), runs)
    noop_ok = planner_available()
    if noop_ok:
        # interleaved with Snakemake's nothing-to-do run: the ratio is of the same moment
        cmds = {"sharklib pipeline run (no-op)": [*SHARKLIB, "pipeline", "run", "m.md"]}
        if snake:
            cmds["snakemake (nothing to do), interleaved"] = [snake, "-c1", "--quiet"]
        times: dict[str, list[float]] = {k: [] for k in cmds}
        cpu: dict[str, list[float]] = {k: [] for k in cmds}
        for i in range(runs + 1):
            for k, cmd in cmds.items():
                c0 = _child_cpu()
                t0 = time.perf_counter()
                run(cmd, proj, env)
                if i:
                    times[k].append(time.perf_counter() - t0)
                    cpu[k].append(_child_cpu() - c0)
        for k, v in times.items():
            results[k] = statistics.median(v)
        # CPU seconds (user + system of the command's process tree) hardly move with the load
        # other processes put on the machine; wall times do
        ours_cpu = statistics.median(cpu["sharklib pipeline run (no-op)"])
        snake_cpu = statistics.median(cpu[k]) if snake and (k := "snakemake (nothing to do), "
                                                            "interleaved") in cpu else None
        rows.append((f"{n:,}-stage map: no-op CPU seconds, sharklib", f"{ours_cpu:.3f} s",
                     f"{snake_cpu / ours_cpu:.1f}x less CPU than snakemake ({snake_cpu:.3f} s)"
                     if snake_cpu else "snakemake not installed"))
        ours = results["sharklib pipeline run (no-op)"]
        snake_t = results.get("snakemake (nothing to do), interleaved")
        emit("sharklib pipeline run m.md", f"no-op: {n:,} stages, all reusable",
             "snakemake -c1 (nothing to do)" if snake_t else "snakemake: not installed",
             snake_t, ours, ">= 15x faster than Snakemake",
             (snake_t / ours >= 15) if snake_t else None)
    base = results.get("snakemake -n")
    for name, t in results.items():
        ratio = f"{base / t:.1f}x faster than snakemake -n" if base and not name.startswith("snakemake") else ""
        rows.append((f"{n:,}-stage map: {name}", f"{t:.3f} s", ratio))
    if not noop_ok:
        rows.append((f"{n:,}-stage map: sharklib pipeline run (no-op)",
                     "not measured", "runner.plan_command not available yet: every stage would run"))


# -- 2. full first run ----------------------------------------------------------------------------
def plain_pool(proj: Path, n: int) -> None:
    out = proj / "out"
    out.mkdir(exist_ok=True)
    with cf.ThreadPoolExecutor(2) as ex:
        list(ex.map(lambda i: subprocess.run(f"cp in/f{i:05d}.txt out/f{i:05d}.txt", shell=True,
                                             cwd=proj, check=True), range(n)))


def bench_full(work: Path, n: int, runs: int, rows: list[tuple[str, str, str]]) -> None:
    proj = make_project(work / f"full{n}", n)
    home = work / f"home-full{n}"
    env = clean_env(home)

    def reset() -> None:
        shutil.rmtree(proj / "out", ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)

    base_cpu: list[float] = []
    ours_cpu: list[float] = []

    def timed_cpu(fn: Callable[[], object], into: list[float]) -> Callable[[], None]:
        def go() -> None:
            c0 = _child_cpu() + _own_cpu()
            fn()
            into.append(_child_cpu() + _own_cpu() - c0)
        return go

    base = median_time(timed_cpu(lambda: plain_pool(proj, n), base_cpu), runs, setup=reset)
    t = median_time(timed_cpu(lambda: run([*SHARKLIB, "pipeline", "run", "-j", "2", "m.md"], proj,
                                          env), ours_cpu), runs, setup=reset)
    bc, oc = statistics.median(base_cpu[1:]), statistics.median(ours_cpu[1:])
    rows.append((f"first run, {n:,} cp stages: CPU seconds (all processes)",
                 f"{oc:.2f} s", f"plain pool {bc:.2f} s: {oc / bc:.2f}x its CPU, "
                 f"{(oc - bc) / n * 1000:.2f} ms/stage extra"))
    rows.append((f"first run, {n:,} cp stages: plain 2-thread pool", f"{base:.2f} s", f"{n / base:,.0f} stages/s"))
    emit("sharklib pipeline run -j 2 m.md", f"cold: first run of {n:,} cp stages, empty cache",
         "plain 2-thread pool running the same cp commands", base, t, "<= 2x", t <= 2 * base)
    rows.append((f"first run, {n:,} cp stages: sharklib -j 2", f"{t:.2f} s",
                 f"{n / t:,.0f} stages/s, {t / base:.2f}x the plain pool, "
                 f"{(t - base) / n * 1000:.2f} ms/stage extra"))
    files, size = footprint(home / "cache")
    ok = files / n <= 1 and size / n <= 2048
    rows.append((f"cache footprint after the first run of {n:,} cp stages",
                 f"{size / n / 1024:.1f} KiB/stage",
                 f"{files / n:.2f} files/stage ({files:,} files, {size / 1e6:.1f} MB in all)"))
    emit("sharklib pipeline run -j 2 m.md", f"cache footprint of {n:,} cp stages",
         "none (absolute)", None, None, "<= 1 file and <= 2 KB per stage", ok,
         value=f"{files / n:.2f} files, {size / n / 1024:.1f} KiB per stage")


def footprint(cache: Path) -> tuple[int, int]:
    """Files (and directories) under the cache directory, and their bytes (apparent sizes).

    Everything counts: objects, packs, the index and its WAL, kept entries, stage logs;
    for n stages the few fixed files (the index, the packs, the lock) are amortised.
    """
    files = size = 0
    for dirpath, dirnames, filenames in os.walk(cache):
        files += len(filenames) + len(dirnames)
        for name in filenames:
            with contextlib.suppress(OSError):
                size += os.lstat(os.path.join(dirpath, name)).st_size
    return files, size


# -- 3. scheduling overhead -----------------------------------------------------------------------
def noop_leaf(job):  # type: ignore[no-untyped-def]
    from sharklib.pipeline.leaf import LeafResult

    return LeafResult(index=job.index, exit_status=0)


def bench_sched(n: int, runs: int, rows: list[tuple[str, str, str]]) -> None:
    from sharklib.pipeline.executors import schedule
    from sharklib.pipeline.executors.local import LocalPool
    from sharklib.pipeline.leaf import LeafJob

    jobs = {i: LeafJob(index=i, command="true", cwd="/", env_tag="host") for i in range(n)}
    deps: dict[int, set[int]] = {}

    def engine_local() -> None:
        with cf.ThreadPoolExecutor(2) as ex:
            for f in [ex.submit(noop_leaf, j) for j in jobs.values()]:
                f.result()

    def ours_local() -> None:
        pool = LocalPool(2, fn=noop_leaf)
        try:
            schedule(jobs, deps, pool)
        finally:
            pool.close()

    def engine_processes() -> None:
        import multiprocessing

        with cf.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as ex:
            for f in [ex.submit(noop_leaf, j) for j in jobs.values()]:
                f.result()

    def ours_processes() -> None:
        pool = LocalPool(2, fn=noop_leaf, kind="processes")
        try:
            schedule(jobs, deps, pool)
        finally:
            pool.close()

    a = median_time(engine_local, runs)
    b = median_time(ours_local, runs)
    rows.append((f"scheduling, local pool, {n:,} no-op stages: ThreadPoolExecutor", f"{a / n * 1e3:.3f} ms/task", ""))
    rows.append((f"scheduling, local pool, {n:,} no-op stages: sharklib", f"{b / n * 1e3:.3f} ms/task",
                 f"{(b - a) / n * 1e3:+.3f} ms/stage over the engine"))
    # large runs use worker processes (each keeps its tracer and caches): start-up included
    a = median_time(engine_processes, runs)
    b = median_time(ours_processes, runs)
    rows.append((f"scheduling, local worker processes, {n:,} no-op stages: ProcessPoolExecutor",
                 f"{a / n * 1e3:.3f} ms/task", ""))
    rows.append((f"scheduling, local worker processes, {n:,} no-op stages: sharklib",
                 f"{b / n * 1e3:.3f} ms/task", f"{(b - a) / n * 1e3:+.3f} ms/stage over the engine"))
    try:
        from distributed import Client, LocalCluster, wait
    except ImportError:
        rows.append(("scheduling, dask", "not measured", "distributed not installed"))
        return
    from sharklib.pipeline.executors.dask import DaskPool

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        addr = c.scheduler_address
        with Client(addr) as client:
            def engine_dask() -> None:
                futs = client.map(noop_leaf, list(jobs.values()), pure=False)
                wait(futs)
                client.gather(futs)

            a = median_time(engine_dask, runs)

        pool = DaskPool(addr, fn=noop_leaf)  # connected once, like the engine's client above
        try:
            b = median_time(lambda: schedule(jobs, deps, pool), runs)
        finally:
            pool.close()
    rows.append((f"scheduling, Dask (2 worker processes), {n:,} no-op stages: Client.map", f"{a / n * 1e3:.3f} ms/task", ""))
    rows.append((f"scheduling, Dask (2 worker processes), {n:,} no-op stages: sharklib", f"{b / n * 1e3:.3f} ms/task",
                 f"{(b - a) / n * 1e3:+.3f} ms/stage over the engine"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes (1,000 / 2,000), for a smoke test")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--only", choices=["noop", "full", "sched"], action="append")
    args = ap.parse_args()
    global INSTALL_SNAKEMAKE
    INSTALL_SNAKEMAKE = not args.quick
    runs = max(5, args.runs)
    only = set(args.only or ["noop", "full", "sched"])
    big = 2_000 if args.quick else 10_000
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="sharklib-bench-pipeline-") as tmp:
        work = Path(tmp)
        if "noop" in only:
            for n in (1_000, big):
                bench_noop(work, n, runs, rows)
        if "full" in only:
            for n in (1_000, big):
                bench_full(work, n, runs, rows)
        if "sched" in only:
            bench_sched(2_000, runs, rows)
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"sharklib pipeline benchmarks (median of {runs} runs after a warm-up)")
    table.add_column("case")
    table.add_column("time", justify="right")
    table.add_column("ratio / rate")
    for r in rows:
        table.add_row(*r)
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
