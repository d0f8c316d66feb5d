"""Machine-readable rows for ``benchmarks/run.py``'s summary table.

Every ``bench_*.py`` prints its own table and, for each row that is a command a
user types, calls :func:`emit`. When ``run.py`` starts a benchmark it sets
``SHARKLIB_BENCH_ROWS`` to a file; :func:`emit` appends one JSON object per row to
it (nothing happens when a benchmark runs alone), and ``run.py`` prints them all as
one table at the end.
"""

from __future__ import annotations

import json
import os

ROWS_ENV = "SHARKLIB_BENCH_ROWS"


def emit(command: str, mode: str, baseline: str, base_s: float | None, value_s: float | None,
         target: str, met: bool | None, *, value: str | None = None,
         base: str | None = None) -> None:
    """Record one row: ``command`` as the user types it, timed in ``mode``.

    ``baseline`` names the baseline command measured in the same run; ``base_s`` and
    ``value_s`` are their medians in seconds (``value``/``base`` override the printed
    figures for rows that are not times, e.g. GB/s). ``met`` is None when the row has
    no target or could not be judged. The load average is taken now.
    """
    where = os.environ.get(ROWS_ENV)
    if not where:
        return
    row = {"command": command, "mode": mode, "baseline": baseline, "base_s": base_s,
           "value_s": value_s, "target": target, "met": met, "value": value, "base": base,
           "load": round(os.getloadavg()[0], 2)}
    with open(where, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(row) + "\n")


def within(value_s: float, base_s: float, pct: float, floor_ms: float) -> bool:
    """``value_s`` adds at most max(pct % of ``base_s``, ``floor_ms``) to ``base_s``."""
    return value_s - base_s <= max(base_s * pct / 100, floor_ms / 1000)
