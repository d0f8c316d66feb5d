"""Counting a step's executions through a side effect sharklib never records.

Each step under test appends a line to ``$COUNT_FILE``, a file in the test's own sharklib home
(sharklib's own state is never a run's data), so what is counted is what actually ran, not
what sharklib said about it.
"""

from __future__ import annotations

import os
from pathlib import Path


def count_file() -> Path:
    return Path(os.environ["SHARKLIB_HOME"]) / "count"


def step_env(**extra: str) -> dict[str, str]:
    """The user's environment for a command under test: no inherited sharklib state."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARKLIB_")
           or k == "SHARKLIB_HOME"}
    for name in ("PYTHONPATH", "MAKEFILES"):
        env.pop(name, None)
    env["COUNT_FILE"] = str(count_file())
    env.update(extra)
    return env


def executed() -> list[str]:
    """The lines appended since the last call, sorted; the count starts again at zero."""
    count = count_file()
    lines = count.read_text().splitlines() if count.exists() else []
    count.unlink(missing_ok=True)
    return sorted(lines)
