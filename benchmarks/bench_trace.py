"""``sharklib trace -- CMD`` end to end, beside the plain command and strace, in one batch.

The headline rows time the command the user types, ``sharklib trace -- CMD``, in the
default mode (cache on, Python capture on), end to end (interpreter start to exit,
with hashing, signing and the end-of-run record), interleaved with the plain
command and with ``strace --seccomp-bpf -f -o FILE`` (the ptrace peer):

* ``cold``: the cache emptied before each run (the step executes and records);
* ``warm``: ``SHARKLIB_RERUN=1`` (the step executes again over files seen before:
  the stat cache and the store are warm);
* ``reused``: the same command again (an unchanged traced command is a reused step).
  A command that leaves nothing to restore or replay (no output file, nothing printed)
  is never recorded, so "again" executes it: its row says so ("again, not reusable").
  The open+read workload writes the count of files it read to ``count.txt`` so that its
  second run is a real reuse (it wrote nothing before, and its "reused" row timed a rerun).

The older columns below them are kept and say what they time:

    .venv/bin/python benchmarks/bench_trace.py [--quick]

Every workload runs plain, under ``sharklib trace`` (eBPF), under ``sharklib
trace --backend ptrace`` (strace --seccomp-bpf) and under ``strace -f -o FILE``
(the classic tracer, as a reference), interleaved, after one warm-up of each,
``--runs`` times (default 5); the table shows medians and ratios to the plain
median of the same run. Two ratios are given for sharklib:

* ``cmd`` (fork-to-exit): the command's own wall time as the tracer saw it,
  over the same fork-to-exit time of an untraced run from the same kind of
  harness process — what tracing costs the running program;
* ``api e2e``: a Python process calling ``trace_command`` (no cache, no Python
  capture), including its start, loading the programs, hashing, signing and
  writing sidecars.

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

from _rows import emit  # noqa: E402
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
    opener.write_text("import os\nn = 0\nfor n, name in enumerate(sorted(os.listdir('files')), 1):\n"
                      "    with open('files/' + name) as f:\n        f.read()\n"
                      "with open('count.txt', 'w') as out:\n    out.write(f'{n}\\n')\n")
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


#: " ".join(argv) + " " + mode -> CPU seconds (user + system) of the whole process tree, per run:
#: the load-independent figure (wall time on a shared 2-core machine mostly measures the others)
CPU: dict[str, list[float]] = {}


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_plain(argv: list[str], cwd: Path) -> float:
    c = _children_cpu()
    t = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=ENV, stdout=subprocess.DEVNULL, check=True)
    took = time.perf_counter() - t
    CPU.setdefault(" ".join(argv) + " plain", []).append(_children_cpu() - c)
    return took


def run_strace(argv: list[str], cwd: Path, out: Path, seccomp: bool = False) -> float:
    # the peer traces the same syscalls as sharklib's ptrace backend (seccomp needs a list)
    from sharklib.trace.ptrace import SYSCALLS

    extra = ["--seccomp-bpf", "-e", f"trace={SYSCALLS}"] if seccomp else []
    t = time.perf_counter()
    subprocess.run(["strace", *extra, "-f", "-o", str(out), *argv],
                   cwd=cwd, env=ENV, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t


#: workload name -> whether every "reused" run of it really was a reuse (said by sharklib)
REUSED: dict[str, bool] = {}


def run_cli(argv: list[str], cwd: Path, home: Path, mode: str) -> float:
    """``sharklib trace -- argv`` as the user types it, end to end, in the default mode.

    ``cold``: the cache emptied first; ``warm``: SHARKLIB_RERUN=1 (executes again over
    files seen before); ``reused``: as is (the unchanged step is reused).
    """
    env = dict(ENV, SHARKLIB_HOME=str(home))
    env["PATH"] = os.path.dirname(PY) + os.pathsep + env.get("PATH", "")
    if mode == "cold":
        shutil.rmtree(home / "cache", ignore_errors=True)
    elif mode == "warm":
        env["SHARKLIB_RERUN"] = "1"
    c = _children_cpu()
    t = time.perf_counter()
    done = subprocess.run([os.path.join(os.path.dirname(PY), "sharklib"), "trace", "--", *argv],
                          cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          check=True)
    took = time.perf_counter() - t
    CPU.setdefault(" ".join(argv) + " " + mode, []).append(_children_cpu() - c)
    if mode == "reused":
        key = " ".join(argv)
        REUSED[key] = REUSED.get(key, True) and b"reused run of" in done.stderr
    return took


def serial_hash_seconds(files: Path) -> float:
    """A plain serial loop hashing every file of ``files`` (the cold-trace target's yardstick)."""
    import hashlib

    t = time.perf_counter()
    for p in sorted(files.iterdir()):
        with open(p, "rb") as fh:
            hashlib.sha256(fh.read()).hexdigest()
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
    # SHARKLIB_RERUN: with the cache on, an unchanged ``date`` would be reused, not run
    proc = subprocess.run([PY, "-m", "sharklib", "trace", "--backend", backend,
                           "--no-python-capture", "--", "date", "+%s.%N"], cwd=cwd,
                          env=dict(ENV, SHARKLIB_RERUN="1"),
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


TARGETS = {  # workload name prefix -> (target on warm, judge)
    "make": ("<= 1.10x", lambda r: r <= 1.10),
    "open+read": ("<= 1.5x (files seen before)", lambda r: r <= 1.5),
}


def end_to_end(name: str, argv: list[str], samples: dict[str, list[float]], plain: float,
               root: Path, has_strace: bool) -> list[str]:
    """One row of the end-to-end table; emits run.py's rows for it."""
    med = {k: statistics.median(v) for k, v in samples.items() if v}
    shown = ["python" if a == PY else a.replace(str(root) + "/", "") for a in argv]
    cmd = "sharklib trace -- " + " ".join(shown)
    if name.endswith("short processes"):
        target, judge = "<= 1.10x", (lambda r: r <= 1.10)
    else:
        target, judge = next((t for k, t in TARGETS.items() if name.startswith(k)), ("", None))
    ok = judge(med["warm"] / plain) if judge else None
    emit(cmd, f"warm: SHARKLIB_RERUN=1, executes over files seen before ({name})", "plain command",
         plain, med["warm"], target or "(none in issue 18)", ok)
    cold_target, cold_ok = "(none in issue 18)", None
    if name.startswith("open+read"):
        serial = statistics.median(serial_hash_seconds(root / "files") for _ in range(3))
        cold_target = f"<= plain + serial hash of the files ({serial * 1000:.0f} ms)"
        cold_ok = med["cold"] <= plain + serial
    emit(cmd, f"cold: empty cache ({name})", "plain command", plain, med["cold"], cold_target, cold_ok)
    again = "reused: same command again" if REUSED.get(" ".join(argv), False) else \
        "again, not reusable (nothing to restore or replay): executes again"
    emit(cmd, f"{again} ({name})", "plain command", plain, med["reused"],
         "(none in issue 18)", None)
    if has_strace:
        emit(f"strace --seccomp-bpf -f -e trace=<sharklib's set> -o FILE ({name}) (peer)", "ptrace peer", "plain command", plain,
             med["strace --seccomp-bpf -f"], "(peer, no target)", None)
    key = " ".join(argv)
    cpu = {m: statistics.median(CPU[f"{key} {m}"][1:] or CPU[f"{key} {m}"])  # after the warm-up
           for m in ("plain", "warm")}
    row = [name, f"{plain:.3f}", *(f"{med[m] / plain:.2f}x" for m in ("cold", "warm", "reused")),
           f"{cpu['warm'] / cpu['plain']:.2f}x" if cpu["plain"] else "-",
           f"{med['strace --seccomp-bpf -f'] / plain:.2f}x" if has_strace else "-",
           target, "-" if ok is None else ("yes" if ok else "NO")]
    return row


def bench_true(root: Path, home: Path, runs: int) -> None:
    """``sharklib trace -- /bin/true`` (executing, warm) against ``python -c pass``, end to end."""
    pas, tru = [], []
    for i in range(max(5, runs) + 1):
        t = time.perf_counter()
        subprocess.run([PY, "-c", "pass"], env=ENV, check=True)
        a = time.perf_counter() - t
        b = run_cli(["/bin/true"], root, home, "warm")
        if i:
            pas.append(a)
            tru.append(b)
    a, b = statistics.median(pas), statistics.median(tru)
    ok = b - a <= 0.100
    print(f"sharklib trace -- /bin/true (SHARKLIB_RERUN=1, end to end incl. teardown): {b * 1000:.0f} ms "
          f"vs python -c pass {a * 1000:.0f} ms: +{(b - a) * 1000:.0f} ms (target start-up <= +100 ms: "
          f"{'yes' if ok else 'NO'})")
    emit("sharklib trace -- /bin/true", "warm: SHARKLIB_RERUN=1, end to end (start-up + teardown)",
         "python -c pass", a, b, "start-up <= +100 ms", ok)


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
        home = root / "sharklib-home"
        home.mkdir()
        loads = workloads(root, args.quick)
        e2e_rows: list[list[str]] = []
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
                samples["strace --seccomp-bpf -f"] = []
            for mode in ("cold", "warm", "reused"):
                samples[mode] = []
            for i in range(runs + 1):  # the first round is the warm-up
                p = run_plain(argv, cwd)
                results = {"plain": p}
                for mode in ("cold", "warm", "reused"):
                    results[mode] = run_cli(argv, cwd, home, mode)
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
                    results["strace --seccomp-bpf -f"] = run_strace(argv, cwd, root / "strace.out",
                                                                    seccomp=True)
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
            e2e_rows.append(end_to_end(name, argv, samples, plain, root, has_strace))
            print("  measured:", name, flush=True)
        h = ["workload", "plain s", "trace cold", "trace warm", "trace reused", "warm CPU",
             "strace --seccomp-bpf -f", "target", "met"]
        widths = [max(len(str(r[i])) for r in [h, *e2e_rows]) for i in range(len(h))]
        print()
        print(f"sharklib trace -- CMD, end to end, default mode: median of {runs} interleaved runs after "
              "a warm-up; ratios to plain (cold: empty cache; warm: SHARKLIB_RERUN=1, files seen "
              "before; reused: same command again; warm CPU: user+system time of the whole process "
              f"tree, the load-independent figure); load average {os.getloadavg()[0]:.1f}")
        for r in [h, *e2e_rows]:
            print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))
        header = ["workload", "plain s"]
        for b in backends:
            header += [f"{b} cmd (fork-to-exit)", f"{b} api e2e"]
        if has_strace:
            header.append("strace -f")
        widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
        print()
        print(f"trace_command API (no cache, no Python capture): median of {runs} runs after a "
              "warm-up; ratios = traced / plain (PYTHONUNBUFFERED, PYTHONDONTWRITEBYTECODE unset)")
        for r in [header, *rows]:
            print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))
        print()
        syscall_heavy = [n for n, (_, _, h) in loads.items() if h]
        for b, r in ratios.items():
            if r["heavy"]:
                print(f"{b}: geometric mean (cmd, fork-to-exit, not end to end) over syscall-heavy "
                      f"({', '.join(syscall_heavy)}): {geomean(r['heavy']):.3f}")
        bench_true(root, home, runs)
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
