"""A background line's own process: ``python -m sharklib.shell.jobrun SPEC``.

The shell starts one per ``cmd &`` line, in a process group of its own (the job's: what
``fg`` gives the terminal to and ``kill %N`` signals). It runs the line through the runner
exactly as the shell runs a foreground line (traced, recorded, signed, cached), and leaves
the result beside the spec as JSON for the shell, which records the step when the job ends.

SIGINT, SIGTERM, SIGHUP and SIGQUIT reach the whole group: here they are caught and
ignored (a Python handler, so the line's processes still get the default action), so
that the line dies as in bash and its record is still written.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from typing import Any

#: the signals the job's process group may get (``kill %N``, Ctrl-C after ``fg``)
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)

#: the first signal that came before the line was started (it then never starts)
_early: list[int] = []


def _ignore(signum: int, frame: Any) -> None:
    """The job's processes got the signal too; this process stays to record them."""
    _early.append(signum)


def block_signals() -> None:
    """In the shell's child before exec: hold :data:`SIGNALS` until :func:`main` can catch them
    (a ``kill %1`` typed at once must not kill the recorder before it started)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)


def main(argv: list[str]) -> int:
    from sharklib.hashing.atomic import atomic_write

    for sig in SIGNALS:
        signal.signal(sig, _ignore)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)  # held ones arrive now, caught
    with open(argv[1], encoding="utf-8", errors="surrogateescape") as f:
        spec = json.load(f)
    if _early:  # killed before it began: it never runs, as bash's job would have died at once
        out: dict[str, Any] = {"exit_status": 128 + _early[0], "reused": False,
                               "saved_seconds": 0.0, "message": "", "backend": "none",
                               "run_id": None, "run_outputs": [], "runs": []}
    else:
        _early.clear()
        from sharklib.runner import run_command

        result = run_command(spec["argv"], cwd=spec["cwd"], env=spec["env"],
                             env_tag=spec["tag"], capture=spec["capture"], quiet=True,
                             rerun=spec["rerun"],
                             stdin=subprocess.DEVNULL if spec["devnull"] else None)
        out = {"exit_status": result.exit_status, "reused": result.reused,
               "saved_seconds": result.saved_seconds, "message": result.message,
               "backend": result.backend, "run_id": result.run_id,
               "run_outputs": result.run_outputs, "runs": [r.to_dict() for r in result.runs]}
    try:
        atomic_write(spec["result"], json.dumps(out).encode("utf-8", "surrogateescape"),
                     fsync=False)
    except OSError:  # the shell left (a second `exit`): the run is in the cache, not the session
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
