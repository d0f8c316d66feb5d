"""Native tracer overhead: traced/plain wall-time ratios per backend, beside plain ``strace -f``.

    .venv/bin/python benchmarks/bench_trace.py [--quick]

Every workload runs plain, under ``sharklib trace`` (eBPF), under ``sharklib
trace --backend ptrace`` (strace --seccomp-bpf) and under ``strace -f -o FILE``
(the classic tracer, as a reference), interleaved, after one warm-up of each,
``--runs`` times (default 5); the table shows medians and ratios to the plain
median of the same run. Two ratios are given for sharklib:

* ``cmd``: the command's own wall time as the tracer saw it (fork to exit),
  over the same fork-to-exit time of an untraced run from the same kind of
  harness process — what tracing costs the running program;
* ``e2e``: the whole ``python -m sharklib trace`` process, including the
  interpreter's start, loading the programs, hashing, signing and writing
  sidecars — what the user waits for.

The benchmark processes run with ``PYTHONUNBUFFERED`` and
``PYTHONDONTWRITEBYTECODE`` removed from their environment (unbuffered output
makes every printed row a ``write`` call and inflates tracer cost), and with
the Python capture off (``--no-python-capture``) so only the tracer is measured.
Also reported: start-up before the command runs, and the tracer's peak RSS
for a run of one million events.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from trace_make_pipeline import write as write_make  # noqa: E402

PY = sys.executable
ENV = {k: v for k, v in os.environ.items()
       if k not in ("PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE")}

TIMED = (
    "import json, subprocess, sys, time\n"
    "if sys.argv[1] == 'none':\n"
    "    t = time.perf_counter()\n"
    "    subprocess.run(sys.argv[2:], stdout=subprocess.DEVNULL)\n"
    "    print(json.dumps({'cmd': time.perf_counter() - t, 'dropped': 0}), file=sys.stderr)\n"
    "    raise SystemExit(0)\n"
    "from sharklib.trace import trace_command\n"
    "r = trace_command(sys.argv[2:], sys.argv[1], python_capture=False,\n"
    "                  stdout=subprocess.DEVNULL)\n"
    "print(json.dumps({'cmd': r.command_seconds, 'start': r.startup_seconds,\n"
    "                  'rec': r.record_seconds, 'dropped': r.dropped, 'exit': r.exit_status,\n"
    "                  'events': r.events}), file=sys.stderr)\n"
)


def workloads(root: Path, quick: bool) -> dict[str, tuple[list[str], Path, bool]]:
    """name -> (argv, cwd, syscall-heavy?)"""
    files = root / "files"
    files.mkdir()
    n_files = 5000 if quick else 20000
    for i in range(n_files):
        (files / f"f{i:05d}.txt").write_text(f"{i}\n")
    opener = root / "open_files.py"
    opener.write_text("import os\nfor n in sorted(os.listdir('files')):\n"
                      "    with open('files/' + n) as f:\n        f.read()\n")
    n_procs = 300 if quick else 1000
    words = root / "words.txt"
    words.write_text(("shark ray reef kelp tide salt wave coral fin gill\n") * 200_000)
    compute = root / "compute.py"
    loops = 3_000_000 if quick else 12_000_000
    compute.write_text(f"s = 0\nfor i in range({loops}):\n    s += i * i % 7\nprint(s)\n")
    write_make(root / "make", PY)
    return {
        f"open+read {n_files} files": ([PY, str(opener)], root, True),
        f"{n_procs} short processes": (["sh", "-c", f"for i in $(seq {n_procs}); do /bin/true; done"],
                                       root, True),
        "shell pipeline": (["sh", "-c", "tr -s ' ' '\\n' < words.txt | sort | uniq -c | sort -rn "
                                        "> counts.txt"], root, True),
        "compute-bound (Python)": ([PY, str(compute)], root, False),
        "make, 22 steps": (["sh", "-c", "make -s clean >/dev/null; make -s all"], root / "make",
                           False),
    }


def run_plain(argv: list[str], cwd: Path) -> float:
    t = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=ENV, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t


def run_strace(argv: list[str], cwd: Path, out: Path) -> float:
    t = time.perf_counter()
    subprocess.run(["strace", "-f", "-o", str(out), *argv], cwd=cwd, env=ENV,
                   stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t


def run_traced(argv: list[str], cwd: Path, backend: str) -> tuple[float, dict[str, float]]:
    t = time.perf_counter()
    proc = subprocess.run([PY, "-c", TIMED, backend, *argv], cwd=cwd, env=ENV,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True)
    e2e = time.perf_counter() - t
    info = json.loads(proc.stderr.strip().splitlines()[-1])
    if info["dropped"]:
        raise SystemExit(f"tracer dropped {info['dropped']} events on {argv}")
    return e2e, info


def startup(backend: str, cwd: Path) -> float:
    """Wall time from launching ``python -m sharklib trace`` to the command's first instruction."""
    t0 = time.time()
    proc = subprocess.run([PY, "-m", "sharklib", "trace", "--backend", backend,
                           "--no-python-capture", "--", "date", "+%s.%N"], cwd=cwd, env=ENV,
                          capture_output=True, text=True, check=True)
    return float(proc.stdout.strip()) - t0


def peak_rss_million_events(cwd: Path) -> tuple[float, int]:
    """Peak RSS (MiB) of a tracer process recording 1,000,000 events (500,000 create+remove)."""
    src = REPO / "tests" / "trace" / "programs" / "flood.c"
    exe = cwd / "flood"
    subprocess.run(["gcc", "-O1", "-o", str(exe), str(src)], check=True)
    code = ("import resource, subprocess, sys\nfrom sharklib.trace import trace_command\n"
            "r = trace_command(sys.argv[1:], 'ebpf', python_capture=False)\n"
            "print(r.events, r.dropped, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n")
    out = subprocess.run([PY, "-c", code, str(exe), "t.tmp", "churn", "500000"], cwd=cwd,
                         env=ENV, capture_output=True, text=True, check=True).stdout.split()
    events, dropped, rss_kb = int(out[0]), int(out[1]), int(out[2])
    return rss_kb / 1024, events if not dropped else -dropped


def geomean(xs: list[float]) -> float:
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller workloads, 3 runs")
    ap.add_argument("--runs", type=int, default=None)
    args = ap.parse_args()
    runs = args.runs or (3 if args.quick else 5)
    from sharklib.trace import ebpf, ptrace

    backends = [b for b, why in (("ebpf", ebpf.unavailable_reason()),
                                 ("ptrace", ptrace.unavailable_reason())) if why is None]
    has_strace = shutil.which("strace") is not None
    with tempfile.TemporaryDirectory(prefix="bench-trace-") as tmp:
        root = Path(tmp)
        loads = workloads(root, args.quick)
        rows = []
        ratios: dict[str, dict[str, list[float]]] = {b: {"heavy": [], "compute": []}
                                                     for b in [*backends, "strace -f"]}
        for name, (argv, cwd, heavy) in loads.items():
            samples: dict[str, list[float]] = {"plain": []}
            cmd_samples: dict[str, list[float]] = {b: [] for b in ["none", *backends]}
            for b in backends:
                samples[b] = []
            if has_strace:
                samples["strace -f"] = []
            for i in range(runs + 1):  # the first round is the warm-up
                p = run_plain(argv, cwd)
                results = {"plain": p}
                _, base = run_traced(argv, cwd, "none")
                if i:
                    cmd_samples["none"].append(base["cmd"])
                for b in backends:
                    e2e, info = run_traced(argv, cwd, b)
                    results[b] = e2e
                    if i:
                        cmd_samples[b].append(info["cmd"])
                if has_strace:
                    results["strace -f"] = run_strace(argv, cwd, root / "strace.out")
                if i:
                    for k, v in results.items():
                        samples[k].append(v)
            plain = statistics.median(samples["plain"])
            plain_cmd = statistics.median(cmd_samples["none"])
            row = [name, f"{plain:.3f}"]
            for b in backends:
                cmd = statistics.median(cmd_samples[b]) / plain_cmd
                e2e = statistics.median(samples[b]) / plain
                ratios[b]["heavy" if heavy else "compute"].append(cmd)
                row += [f"{cmd:.2f}", f"{e2e:.2f}"]
            if has_strace:
                s = statistics.median(samples["strace -f"]) / plain
                ratios["strace -f"]["heavy" if heavy else "compute"].append(s)
                row.append(f"{s:.2f}")
            rows.append(row)
            print("  measured:", name, flush=True)
        header = ["workload", "plain s"]
        for b in backends:
            header += [f"{b} cmd", f"{b} e2e"]
        if has_strace:
            header.append("strace -f")
        widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
        print()
        print(f"median of {runs} runs after a warm-up; ratios = traced / plain "
              "(PYTHONUNBUFFERED, PYTHONDONTWRITEBYTECODE unset)")
        for r in [header, *rows]:
            print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))
        print()
        syscall_heavy = [n for n, (_, _, h) in loads.items() if h]
        for b, r in ratios.items():
            if r["heavy"]:
                print(f"{b}: geometric mean (cmd) over syscall-heavy "
                      f"({', '.join(syscall_heavy)}): {geomean(r['heavy']):.3f}")
        for b in backends:
            starts = sorted(startup(b, root) for _ in range(5))
            print(f"{b}: start-up before the command runs, median of 5: "
                  f"{1000 * statistics.median(starts):.0f} ms (python -m sharklib trace to first "
                  "instruction of the command)")
        if "ebpf" in backends and shutil.which("gcc"):
            rss, events = peak_rss_million_events(root)
            what = f"{events} events" if events >= 0 else f"DROPPED {-events} events"
            print(f"ebpf: tracer peak RSS for a 1,000,000-event run: {rss:.0f} MiB ({what})")
        print(f"(resource limits: {resource.getrlimit(resource.RLIMIT_NOFILE)[0]} fds; "
              f"{os.cpu_count()} cores)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
