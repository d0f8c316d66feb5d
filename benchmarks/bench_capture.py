"""Capture overhead: start-up, a pandas/numpy script over a few hundred files, peak RSS,
and noWorkflow / recipy on the same script.

The headline rows time ``python -m sharklib run SCRIPT`` as the user types it, in the
default mode (cache on), end to end: *cold* (the cache emptied before every run: the
run executes and fills the store), *recording, warm cache* (a new key each run, e.g.
another output directory, so the step executes and records into a store that already
holds its objects) and *reused* (the same command again: nothing executes). Rows
that use ``-q --no-cache`` say so in their label: they time capture alone.

    .venv/bin/python benchmarks/bench_capture.py [--files 300] [--rows 3000] [--runs 5] [--no-others]

Every figure is a median of >= 5 runs after a warm-up, plain and captured
runs interleaved so machine noise hits both alike, and compared within this
run. Subprocesses run with PYTHONUNBUFFERED and PYTHONDONTWRITEBYTECODE
*unset* (the shell here exports both; they distort the numbers).
noWorkflow and recipy are installed into their own virtual environments under
``$SHARKLIB_BENCH_VENVS`` (default ``~/.cache/sharklib-bench/venvs``): noWorkflow
pins an old SQLAlchemy. When one cannot install or run, the table says why.
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
from _rows import emit, within  # noqa: E402

PY = sys.executable
SCRIPT = HERE / "capture_ds_script.py"
MAKE_DATA = HERE / "capture_make_data.py"
FLOOR = HERE / "capture_floor.py"  # sharklib run without its end-of-run work
# 60 ms of CPU in another process, started with the script (what a helper process would cost it)
BURST = "import time\nt = time.perf_counter()\nwhile time.perf_counter() - t < 0.06:\n    pass\n"


def bench_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARKLIB_")}
    for k in ("PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "PYTHONPATH"):
        env.pop(k, None)
    env["SHARKLIB_HOME"] = str(home)
    return env


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, int, float]:
    """Wall seconds, peak RSS (KiB) and CPU seconds (user + system) of the command's process.

    stderr is a pipe drained by a thread, not a file: a standard stream redirected to a
    regular file is an *output* under capture (it would be hashed and signed), which is
    not what a terminal or a pipeline stage sees.
    """
    import threading

    chunks: list[bytes] = []
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    reader = threading.Thread(target=lambda: chunks.append(proc.stderr.read()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    reader.join()
    proc.stderr.close()
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    if code != 0:
        lines = b"".join(chunks).decode(errors="replace").strip().splitlines() or ["no message"]
        raise RuntimeError(f"exit {code}: {lines[-1][:100]}")
    return wall, usage.ru_maxrss, usage.ru_utime + usage.ru_stime


def interleaved(cmds: dict[str, list[str]], cwd: Path, env: dict[str, str], runs: int,
                warmup: int = 1, before: object = None) -> dict[str, tuple[list[float], list[int], list[float]]]:
    """Runs of each command, interleaved: (walls, peak RSS, CPU seconds) per command."""
    out: dict[str, tuple[list[float], list[int], list[float]]] = {k: ([], [], []) for k in cmds}
    for i in range(warmup + runs):
        for name, cmd in cmds.items():
            if callable(before):
                before()
            wall, rss, cpu = timed(cmd, cwd, env)
            if i >= warmup:
                out[name][0].append(wall)
                out[name][1].append(rss)
                out[name][2].append(cpu)
    return out


def imported_modules(cmd: list[str], cwd: Path, env: dict[str, str]) -> int | None:
    """How many modules the command imports (lines of ``python -X importtime``)."""
    proc = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], cwd=cwd, env=env,
                          capture_output=True, text=True, check=True)
    return sum(line.startswith("import time:") and "| imported package" not in line
               for line in proc.stderr.splitlines())


def sync_calls(cmd: list[str], cwd: Path, env: dict[str, str]) -> int | None:
    """How many fsync/fdatasync calls the command's process tree makes (None: no strace)."""
    strace = shutil.which("strace")
    if strace is None:
        return None
    with tempfile.NamedTemporaryFile(prefix="sharklib-bench-strace-") as log:
        proc = subprocess.run([strace, "-f", "-qq", "-e", "trace=fsync,fdatasync", "-o", log.name,
                               *cmd], cwd=cwd, env=env, capture_output=True)
        if proc.returncode != 0:
            return None
        return sum(1 for line in Path(log.name).read_text().splitlines()
                   if "fsync(" in line or "fdatasync(" in line)


def venv_tool(root: Path, name: str, packages: list[str]) -> tuple[Path | None, str]:
    """A venv with ``packages`` (created once); (python, "") or (None, why not)."""
    venv = root / name
    py = venv / "bin" / "python"
    marker = venv / ".ok"
    if marker.exists():
        return py, ""
    try:
        if not py.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
        r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                            *packages], capture_output=True, text=True, timeout=900)
        if r.returncode != 0:
            lines = [ln for ln in (r.stderr or r.stdout).splitlines() if "ERROR" in ln] or ["pip failed"]
            return None, f"install failed: {lines[-1][:80]}"
        marker.write_text("ok\n")
        return py, ""
    except (subprocess.SubprocessError, OSError) as exc:
        return None, f"install failed: {exc}"[:90]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=300)
    ap.add_argument("--rows", type=int, default=3000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--startup-runs", type=int, default=21)
    ap.add_argument("--small-files", type=int, default=20, help="data set for noWorkflow/recipy")
    ap.add_argument("--no-others", action="store_true", help="skip noWorkflow and recipy")
    ap.add_argument("--quick", action="store_true", help="fewer files and runs, no peers")
    args = ap.parse_args()
    if args.quick:
        args.files, args.startup_runs, args.no_others = min(args.files, 100), 11, True
    runs = max(5, args.runs)

    work = Path(tempfile.mkdtemp(prefix="sharklib-bench-capture-"))
    home = work / "home"
    env = bench_env(home)
    subprocess.run([PY, "-c", "from sharklib.attest import load_signing_key; load_signing_key()"],
                   env=env, check=True, capture_output=True)
    rows: list[tuple[str, str, str, str, str, str]] = []
    try:
        # 1. start-up, default mode: cold (empty cache every run) and reused. The step prints
        # one line and writes no file: a step that printed nothing and wrote nothing is not
        # cached at all (nothing to replay), so `run noop.py` would time a plain capture
        # every run, never the reuse path.
        (work / "noop.py").write_text("pass\n")
        (work / "step.py").write_text("print('done')\n")
        n_start = max(5, args.startup_runs)

        def empty_cache() -> None:
            shutil.rmtree(home / "cache", ignore_errors=True)

        cold = interleaved({"plain": [PY, "step.py"], "run": [PY, "-m", "sharklib", "run", "step.py"]},
                           work, env, n_start, warmup=3, before=empty_cache)
        subprocess.run([PY, "-m", "sharklib", "run", "step.py"], cwd=work, env=env, check=True,
                       capture_output=True)
        warm = interleaved({"plain": [PY, "step.py"], "run": [PY, "-m", "sharklib", "run", "step.py"],
                            "noop": [PY, "-m", "sharklib", "run", "noop.py"],
                            "nocache": [PY, "-m", "sharklib", "run", "-q", "--no-cache", "noop.py"]},
                           work, env, n_start, warmup=3)
        for label, res, target, ok_fn in (
                ("python -m sharklib run step.py, cold (prints one line, no outputs; empty cache: "
                 "runs, records and signs)", cold,
                 "<= +max(10 %, 60 ms)", lambda c, p: within(c, p, 10, 60)),
                ("python -m sharklib run step.py, reused (prints one line, no outputs; not executed, "
                 "its line replayed)", warm, "<= +15 ms", lambda c, p: c - p <= 0.015)):
            p, c = (statistics.median(res[k][0]) for k in ("plain", "run"))
            ok = ok_fn(c, p)
            rows.append((f"start-up: {label}", f"{p * 1000:.1f} ms", f"{c * 1000:.1f} ms",
                         f"+{(c - p) * 1000:.1f} ms", target, "yes" if ok else "NO"))
            emit("python -m sharklib run step.py", label.split(", ", 1)[1], "python step.py", p, c,
                 target, ok)
        p, c = (statistics.median(warm[k][0]) for k in ("plain", "noop"))
        rows.append(("start-up: python -m sharklib run noop.py (prints and writes nothing: executes, "
                     "nothing to cache)", f"{p * 1000:.1f} ms", f"{c * 1000:.1f} ms",
                     f"+{(c - p) * 1000:.1f} ms", "", ""))
        p, c = (statistics.median(warm[k][0]) for k in ("plain", "nocache"))
        rows.append(("start-up: python -m sharklib run -q --no-cache noop.py (executes, no cache)",
                     f"{p * 1000:.1f} ms", f"{c * 1000:.1f} ms", f"+{(c - p) * 1000:.1f} ms", "", ""))
        p, c = (statistics.median(warm[k][2]) for k in ("plain", "run"))
        rows.append(("start-up: CPU time, reused", f"{p * 1000:.1f} ms", f"{c * 1000:.1f} ms",
                     f"+{(c - p) * 1000:.1f} ms", "", ""))
        # what the reused run does, counted: the same on a loaded machine as on a quiet one
        for what, unit, count in (("modules imported (-X importtime)", "modules", imported_modules),
                                  ("fsync/fdatasync calls (strace -f)", "calls", sync_calls)):
            p_n, c_n = count([PY, "step.py"], work, env), count(
                [PY, "-m", "sharklib", "run", "step.py"], work, env)
            if p_n is None or c_n is None:
                rows.append((f"start-up, reused: {what}", "", "", "not measured (no strace)",
                             "", ""))
                continue
            rows.append((f"start-up, reused: {what}", f"{p_n} {unit}", f"{c_n} {unit}",
                         f"+{c_n - p_n}", "", ""))

        # 2. the per-open cost (worst case: a loop that only opens files)
        (work / "opens").mkdir()
        for i in range(100):
            (work / "opens" / f"f{i}.txt").write_text("x" * 100)
        (work / "read_loop.py").write_text(
            "import os\nfiles = [os.path.join('opens', f) for f in sorted(os.listdir('opens'))]\n"
            "for _ in range(1000):\n    for f in files:\n        with open(f) as fh:\n            fh.read()\n")
        (work / "write_loop.py").write_text(
            "import os\nos.makedirs('wout', exist_ok=True)\nsrc = open('opens/f0.txt').read()\n"
            "for i in range(4000):\n    with open(f'wout/w{i % 200}.txt', 'w') as fh:\n        fh.write(src)\n"
            "    open(f'opens/f{i % 100}.txt').read()\n")
        # existence questions (issue 18): outside the project they must cost nothing measurable
        (work / "stat_outside.py").write_text(
            "import os, sys\np = sys.prefix\nfor _ in range(200000):\n    os.stat(p)\n"
            "    os.path.exists(p + '/missing')\n")
        (work / "stat_inside.py").write_text(
            "import os\nfiles = [os.path.join('opens', f) for f in sorted(os.listdir('opens'))]\n"
            "for _ in range(200):\n    for f in files:\n        os.path.exists(f)\n")
        for name, what in (("read_loop.py", "100,000 reads (open+read+close)"),
                           ("write_loop.py", "4,000 write-opens + 4,000 reads"),
                           ("stat_outside.py", "400,000 os.stat/exists outside the project"),
                           ("stat_inside.py", "20,000 os.path.exists of project files")):
            res = interleaved({"plain": [PY, name], "captured": [PY, "-m", "sharklib", "run", "-q", "--no-cache", name]},
                              work, env, runs, warmup=1)
            p, c = (statistics.median(res[k][0]) for k in ("plain", "captured"))
            rows.append((f"hook cost (-q --no-cache), {what}", f"{p:.2f} s", f"{c:.2f} s", f"{c / p:.3f}x",
                         "(worst case)", ""))

        # 3. data-science script
        data = work / "data"
        subprocess.run([PY, str(MAKE_DATA), str(data), str(args.files), str(args.rows)], env=env,
                       check=True)

        def clean() -> None:
            for d in ("out_plain", "out_cap", "out_floor"):
                shutil.rmtree(work / d, ignore_errors=True)

        # default mode, end to end: cold (empty cache) and recording into a warm cache
        counter = iter(range(1_000_000))

        def clean_cold() -> None:
            clean()
            empty_cache()

        script_cmd = [PY, "-m", "sharklib", "run", str(SCRIPT), "data"]
        res = interleaved({"plain": [PY, str(SCRIPT), "data", "out_plain"],
                           "captured": [*script_cmd, "out_cap"]},
                          work, env, runs, warmup=1, before=clean_cold)
        p, c = (statistics.median(res[k][0]) for k in ("plain", "captured"))
        ok = within(c, p, 10, 60)
        label = f"pandas script, {args.files} files in / {args.files + 1} out"
        rows.append((f"{label}: sharklib run, cold (empty cache)", f"{p:.2f} s", f"{c:.2f} s",
                     f"{c / p:.3f}x", "<= +max(10 %, 60 ms)", "yes" if ok else "NO"))
        emit(f"python -m sharklib run {SCRIPT.name} data out", "cold: empty cache, runs and records",
             f"python {SCRIPT.name} data out", p, c, "<= +max(10 %, 60 ms)", ok)

        def clean_new_key() -> None:
            clean()
            for d in work.glob("out_new_*"):
                shutil.rmtree(d, ignore_errors=True)

        walls: dict[str, list[float]] = {"plain": [], "captured": []}
        for i in range(1 + runs):
            for name in walls:
                clean_new_key()
                cmd = ([PY, str(SCRIPT), "data", "out_plain"] if name == "plain"
                       else [*script_cmd, f"out_new_{next(counter)}"])
                wall, _, _ = timed(cmd, work, env)
                if i:
                    walls[name].append(wall)
        p, c = (statistics.median(walls[k]) for k in ("plain", "captured"))
        ok = within(c, p, 3, 30)
        rows.append((f"{label}: sharklib run, recording into a warm cache (new output dir each run)",
                     f"{p:.2f} s", f"{c:.2f} s", f"{c / p:.3f}x", "<= +max(3 %, 30 ms)",
                     "yes" if ok else "NO"))
        emit(f"python -m sharklib run {SCRIPT.name} data out_N",
             "recording: new key each run, warm cache", f"python {SCRIPT.name} data out", p, c,
             "<= +max(3 %, 30 ms)", ok)

        res = interleaved({"plain": [PY, str(SCRIPT), "data", "out_plain"],
                           "captured": [PY, "-m", "sharklib", "run", "-q", "--no-cache", str(SCRIPT), "data", "out_cap"],
                           "floor": [PY, str(FLOOR), "-q", "--no-cache", str(SCRIPT), "data", "out_floor"]},
                          work, env, runs, warmup=1, before=clean)
        p, c, f = (statistics.median(res[k][0]) for k in ("plain", "captured", "floor"))
        rows.append((f"{label}: sharklib run -q --no-cache (capture only)",
                     f"{p:.2f} s", f"{c:.2f} s", f"{c / p:.3f}x", "", ""))
        rows.append(("  of which end-of-run work (hash, sign, sidecars)", "", "",
                     f"+{(c - f) * 1000:.0f} ms (without it: {f / p:.3f}x)", "", ""))
        p, c = (statistics.median(res[k][2]) for k in ("plain", "captured"))
        rows.append(("same script, -q --no-cache, CPU time", f"{p:.2f} s", f"{c:.2f} s", f"{c / p:.3f}x", "", ""))
        rp, rc = (statistics.median(res[k][1]) / 1024 for k in ("plain", "captured"))
        rows.append(("peak RSS, same script, -q --no-cache", f"{rp:.1f} MiB", f"{rc:.1f} MiB", f"+{rc - rp:.1f} MiB",
                     "<= +30 MiB", "yes" if rc - rp <= 30 else "NO"))

        # 3a. why the end-of-run work is not moved to another core: the script already uses
        # it (numpy's OpenBLAS threads; see "CPU time" above), so CPU spent there slows it down
        walls: dict[str, list[float]] = {"alone": [], "beside": []}
        for i in range(1 + runs):
            for name, wall_list in walls.items():
                clean()
                side = subprocess.Popen([PY, "-S", "-c", BURST]) if name == "beside" else None
                wall, _, _ = timed([PY, str(SCRIPT), "data", "out_plain"], work, env)
                if side is not None:
                    side.wait()
                if i:
                    wall_list.append(wall)
        a, b = (statistics.median(walls[k]) for k in ("alone", "beside"))
        rows.append(("plain script, 60 ms of CPU work beside it", f"{a:.2f} s", f"{b:.2f} s",
                     f"+{(b - a) * 1000:.0f} ms (plain: alone / beside)", "", ""))

        # 3b. what the cache buys: the same captured run again, reused instead of recomputed
        reuse_cmd = [*script_cmd, "out_cap"]
        subprocess.run(reuse_cmd, cwd=work, env=env, capture_output=True, check=False)
        res = interleaved({"plain": [PY, str(SCRIPT), "data", "out_plain"], "captured": reuse_cmd},
                          work, env, runs, warmup=1, before=clean)
        p, c = (statistics.median(res[k][0]) for k in ("plain", "captured"))
        rows.append((f"{label}: sharklib run, warm (reused: outputs deleted, restored)", f"{p:.2f} s",
                     f"{c:.2f} s", f"{c / p:.3f}x", "", ""))
        emit(f"python -m sharklib run {SCRIPT.name} data out", "warm: reused, outputs deleted and restored",
             f"python {SCRIPT.name} data out", p, c, "(restore at copy speed: not judged here)", None)

        # 4. the same script on a small data set, beside noWorkflow and recipy
        small = work / "small"
        subprocess.run([PY, str(MAKE_DATA), str(small / "data"), str(args.small_files), str(args.rows)],
                       env=env, check=True)
        shutil.copy(SCRIPT, small / "script.py")

        def clean_small() -> None:
            for d in ("out", ".noworkflow"):
                shutil.rmtree(small / d, ignore_errors=True)

        res = interleaved({"plain": [PY, "script.py", "data", "out"],
                           "captured": [PY, "-m", "sharklib", "run", "-q", "--no-cache", "script.py", "data", "out"]},
                          small, env, runs, warmup=1, before=clean_small)
        base_small = statistics.median(res["plain"][0])
        cap_small = statistics.median(res["captured"][0])
        label = f"same script, {args.small_files} files"
        rows.append((f"{label}: sharklib run -q --no-cache", f"{base_small:.2f} s", f"{cap_small:.2f} s",
                     f"{cap_small / base_small:.2f}x", "", ""))
        if args.no_others:
            rows.append((f"{label}: noWorkflow", "", "", "skipped (--no-others)", "", ""))
            rows.append((f"{label}: recipy", "", "", "skipped (--no-others)", "", ""))
        else:
            root = Path(os.environ.get("SHARKLIB_BENCH_VENVS",
                                       Path.home() / ".cache" / "sharklib-bench" / "venvs"))
            root.mkdir(parents=True, exist_ok=True)
            for tool, pkgs, cmd in (
                ("noWorkflow", ["noworkflow", "numpy", "pandas"], ["-m", "noworkflow", "run", "script.py", "data", "out"]),
                # recipy 0.3.0 (2016) needs the TinyDB 3 API
                ("recipy", ["recipy", "tinydb<4", "tinydb-serialization<2", "numpy", "pandas"], ["-m", "recipy", "script.py", "data", "out"]),
            ):
                py, why = venv_tool(root, tool.lower(), pkgs)
                if py is None:
                    rows.append((f"{label}: {tool}", f"{base_small:.2f} s", "-", why, "", ""))
                    continue
                tenv = dict(env, HOME=str(work / f"home-{tool}"))
                Path(tenv["HOME"]).mkdir(exist_ok=True)
                try:
                    clean_small()
                    first, _, _ = timed([str(py), *cmd], small, tenv)
                    walls = [first]
                    # medians of 5 only when a run is short enough to repeat
                    if first < 30:
                        for _ in range(4):
                            clean_small()
                            walls.append(timed([str(py), *cmd], small, tenv)[0])
                    w = statistics.median(walls)
                    note = f"{w / base_small:.1f}x" + ("" if len(walls) >= 5 else f" ({len(walls)} run)")
                    rows.append((f"{label}: {tool}", f"{base_small:.2f} s", f"{w:.2f} s", note, "", ""))
                except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
                    rows.append((f"{label}: {tool}", f"{base_small:.2f} s", "-",
                                 f"cannot run it: {exc}", "", ""))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    head = ("measurement", "plain", "captured", "ratio / diff", "target", "met")
    # a cell with nothing after it in its row (a long "cannot run it" note) may overhang
    def sets_width(r: tuple[str, ...], i: int) -> bool:
        return any(r[i + 1:])

    widths = [max([len(h)] + [len(r[i]) for r in rows if sets_width(r, i)])
              for i, h in enumerate(head)]
    line = "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    print(f"\n(rows say their mode: default mode = cache on; -q --no-cache = every run executes and records, nothing stored; medians of {runs} interleaved runs after warm-up; start-up: {max(5, args.startup_runs)} runs; "
          f"PYTHONUNBUFFERED and PYTHONDONTWRITEBYTECODE unset for every subprocess; "
          f"load average at end {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
