"""What ``sharklib shell`` adds to a command line, beside plain bash in the same run.

    .venv/bin/python benchmarks/bench_shell.py [--rounds 15]

Two measurements, each interleaved (plain, shark, plain, shark, ...) after a
warm-up, medians reported, with ``PYTHONUNBUFFERED`` and
``PYTHONDONTWRITEBYTECODE`` removed from the environment:

1. **per line** (the limit in issue 19): the time from handing a line to the
   shell until it is ready for the next one. *plain*: one long-running ``bash``
   reading lines from a pipe, each followed by ``echo`` of a marker (a builtin,
   microseconds) that the harness waits for. *shark*: ``Shell.run_line`` of
   the shell front end, in this process, inside the session's services (the
   loaded tracer and open caches, as at the prompt): run key and reuse
   look-up, ``bash -c LINE`` under the eBPF tracer with the state restored and
   saved, classification, recording the run, snapshotting what changed, and the
   session record written. Command output goes to ``/dev/null`` in both.
   Inspect lines change nothing; mutate lines write a new small file each time
   (a different line each round, so nothing is reused).
2. **whole session**: ``sharklib shell < script`` against ``bash < script``
   for the same 20-line script in a fresh copy of the workspace each time:
   what a scripted session costs end to end, interpreter start and tracer load
   included.
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

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

INSPECT = ["ls", "cat data.txt", "wc -l data.txt", "grep -c a data.txt", "echo hello"]
MUTATE = ["seq 1 {i}000 > out.txt", "sort -r data.txt > sorted{i}.txt",
          "cp data.txt copy{i}.txt", "echo {i} >> log.txt"]


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE")}
    return env


def workspace(root: Path) -> Path:
    ws = root / "ws"
    ws.mkdir(parents=True)
    (ws / "data.txt").write_text("".join(f"line {i} alpha beta\n" for i in range(2000)))
    for d in range(20):
        (ws / f"file{d}.txt").write_text(f"{d}\n")
    return ws


class PlainBash:
    """One persistent bash fed lines through a pipe, as a terminal would feed it."""

    MARK = "__bench_done__"

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(["bash"], cwd=cwd, env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True, bufsize=1)

    def run(self, line: str) -> float:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        t = time.perf_counter()
        self.proc.stdin.write(f"{line} >/dev/null\necho {self.MARK}\n")
        self.proc.stdin.flush()
        while self.proc.stdout.readline().strip() != self.MARK:
            pass
        return time.perf_counter() - t

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait()


def per_line(rounds: int, warmup: int) -> dict[str, tuple[float, float]]:
    from sharklib.shell.session import Shell, _session_services

    tmp = Path(tempfile.mkdtemp(prefix="bench-shell-"))
    env = clean_env()
    env["SHARKLIB_HOME"] = str(tmp / "home")
    old_env = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    plain_ws, shark_ws = workspace(tmp / "plain"), workspace(tmp / "shark")
    os.chdir(shark_ws)
    bash = PlainBash(plain_ws, env)
    times: dict[str, tuple[list[float], list[float]]] = {"inspect": ([], []), "mutate": ([], [])}
    devnull = os.open(os.devnull, os.O_WRONLY)
    saved_out, saved_err = os.dup(1), os.dup(2)
    try:
        shell = Shell(str(shark_ws), new=True)
        with _session_services():
            for r in range(warmup + rounds):
                for kind, lines in (("inspect", INSPECT), ("mutate", MUTATE)):
                    for j, template in enumerate(lines):
                        line = template.format(i=r * 10 + j)
                        p = bash.run(line)
                        os.dup2(devnull, 1)
                        os.dup2(devnull, 2)  # a terminal at the prompt, not a file
                        try:
                            t = time.perf_counter()
                            shell.run_line(line)
                            s = time.perf_counter() - t
                        finally:
                            os.dup2(saved_out, 1)
                            os.dup2(saved_err, 2)
                        if r >= warmup:
                            times[kind][0].append(p)
                            times[kind][1].append(s)
        recorded = shell.session.commands
        shell.close()
    finally:
        os.close(devnull)
        os.close(saved_out)
        os.close(saved_err)
        bash.close()
        os.chdir(REPO)
        os.environ.clear()
        os.environ.update(old_env)
    kinds = {c.kind for c in recorded}
    print(f"(per-line session recorded {len(recorded)} commands, kinds: {sorted(kinds)}; "
          f"mutations: {sum(c.kind == 'mutate' for c in recorded)})")
    shutil.rmtree(tmp, ignore_errors=True)
    return {k: (statistics.median(p), statistics.median(s)) for k, (p, s) in times.items()}


SCRIPT = "\n".join([*INSPECT, "mkdir -p out", *[m.format(i=i) for i, m in enumerate(MUTATE)],
                    "cd out", "pwd", "cd ..", *INSPECT[:3], "seq 1 5 > five.txt",
                    "cat five.txt", "rm five.txt"]) + "\n"


def whole_session(rounds: int, warmup: int) -> tuple[float, float, int]:
    env = clean_env()
    plain_t, shark_t = [], []
    lines = len(SCRIPT.splitlines())
    for r in range(warmup + rounds):
        for which in ("plain", "shark"):
            tmp = Path(tempfile.mkdtemp(prefix="bench-shell-"))
            ws = workspace(tmp)
            e = dict(env, SHARKLIB_HOME=str(tmp / "home"))
            argv = ["bash"] if which == "plain" else [sys.executable, "-m", "sharklib", "shell"]
            t = time.perf_counter()
            subprocess.run(argv, cwd=ws, env=e, input=SCRIPT, text=True, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            dt = time.perf_counter() - t
            if r >= warmup:
                (plain_t if which == "plain" else shark_t).append(dt)
            shutil.rmtree(tmp, ignore_errors=True)
    return statistics.median(plain_t), statistics.median(shark_t), lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args()
    from sharklib.trace.session import choose_backend

    print(f"backend: {choose_backend('auto')}; {os.cpu_count()} cpus; load average "
          f"{os.getloadavg()[0]:.2f}")
    res = per_line(args.rounds, args.warmup)
    print(f"\nper line, median of {args.rounds} rounds x {len(INSPECT)} inspect / "
          f"{len(MUTATE)} mutate lines after {args.warmup} warm-up rounds")
    print(f"{'line kind':10} {'plain bash ms':>14} {'sharklib shell ms':>18} {'added ms':>9} "
          f"{'limit ms':>9}")
    for kind, limit in (("inspect", "50"), ("mutate", "100+hash")):
        p, s = res[kind]
        print(f"{kind:10} {p * 1e3:14.1f} {s * 1e3:18.1f} {(s - p) * 1e3:9.1f} {limit:>9}")
    rounds = max(3, args.rounds // 3)
    p, s, n = whole_session(rounds, 1)
    print(f"\nwhole scripted session ({n} lines, fresh workspace each time), median of {rounds} "
          "after 1 warm-up")
    print(f"bash < script: {p:.3f} s   sharklib shell < script: {s:.3f} s   "
          f"added per line: {(s - p) / n * 1e3:.1f} ms (interpreter start and tracer load "
          "included)")


if __name__ == "__main__":
    main()
