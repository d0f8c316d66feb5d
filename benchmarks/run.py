"""Run every benchmark (or those named), then print ONE table of the user's commands.

Each ``bench_*.py`` measures sharklib against a baseline in the same run and
prints its own table. They run as separate processes with
``PYTHONUNBUFFERED`` and ``PYTHONDONTWRITEBYTECODE`` removed from the
environment, because unbuffered output turns every printed line into a
``write`` call and skews what tracers and capture cost.

Each benchmark also appends one JSON line per user command to the file named by
``SHARKLIB_BENCH_ROWS`` (see ``_rows.py``); at the end this script prints them as
one table: the command a user types, the mode (cold: empty cache; warm: reused),
the baseline measured in the same run, both medians, the ratio, the target from
issue 18, whether it is met, and the load average when the row was measured.
Figures taken while the 1-minute load average exceeds the core count are marked
"under load". See docs/benchmarks.md.

    .venv/bin/python benchmarks/run.py                 # all
    .venv/bin/python benchmarks/run.py hashing cache   # bench_hashing.py, bench_cache.py
    .venv/bin/python benchmarks/run.py --quick         # passed on to every benchmark
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _rows import ROWS_ENV  # noqa: E402


def _fmt_s(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s * 1000:.0f} ms" if s < 1 else f"{s:.2f} s"


def _ratio(row: dict[str, object]) -> str:
    b, v = row.get("base_s"), row.get("value_s")
    if not isinstance(b, (int, float)) or not isinstance(v, (int, float)) or not b:
        return "-"
    return f"{v / b:.2f}x, {'+' if v >= b else '-'}{abs(v - b) * 1000:.0f} ms"


def table(rows: list[dict[str, object]]) -> str:
    head = ("command (what the user types)", "mode", "baseline (same run)", "baseline",
            "sharklib", "ratio / diff", "target", "met", "load")
    cells = []
    for r in rows:
        met = r.get("met")
        cells.append((str(r["command"]), str(r["mode"]), str(r["baseline"]),
                      str(r.get("base") or _fmt_s(r.get("base_s"))),  # type: ignore[arg-type]
                      str(r.get("value") or _fmt_s(r.get("value_s"))),  # type: ignore[arg-type]
                      _ratio(r), str(r["target"]),
                      "-" if met is None else ("yes" if met else "NO"), f"{r['load']:.1f}"))
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h)
              for i, h in enumerate(head)]
    out = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    out.append("-" * len(out[0]))
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(out)


def main(argv: list[str]) -> int:
    passthrough = [a for a in argv if a.startswith("-")]
    names = [a for a in argv if not a.startswith("-")]
    scripts = sorted(HERE.glob("bench_*.py"))
    if names:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in names]
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE")}
    failed = []
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="sharklib-bench-rows-") as tmp:
        rows_file = Path(tmp) / "rows.jsonl"
        rows_file.touch()
        env[ROWS_ENV] = str(rows_file)
        for script in scripts:
            print(f"\n=== {script.name} ===", flush=True)
            # a flag a benchmark does not know (bench_queries and bench_shell have no --quick)
            # is left out for it rather than ending it with a usage error
            source = script.read_text(encoding="utf-8")
            flags = [a for a in passthrough if a.split("=", 1)[0] in source]
            rc = subprocess.call([sys.executable, str(script), *flags], env=env)
            if rc:
                failed.append(script.name)
        rows = [json.loads(line) for line in rows_file.read_text().splitlines() if line.strip()]
    cores = os.cpu_count() or 1
    loaded = any(r["load"] > cores for r in rows)
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started))
    print(f"\n=== summary: the user's commands, end to end{' (UNDER LOAD)' if loaded else ''} ===")
    print(table(rows))
    met = [r for r in rows if r.get("met") is True]
    missed = [r for r in rows if r.get("met") is False]
    print(f"\n{len(met)} targets met, {len(missed)} missed, {len(rows) - len(met) - len(missed)} "
          f"rows without a target; started {when}; {cores} cores; load = 1-minute load average "
          f"when the row was measured{'; figures under load (load > cores) are not the quiet machine' if loaded else ''}. "
          "Medians of interleaved runs after a warm-up; PYTHONUNBUFFERED and "
          "PYTHONDONTWRITEBYTECODE unset.")
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
