"""The runner: the one path from a command to an attested, cached result.

``sharklib run``, ``sharklib trace``, pipeline stages and shell commands all
call :func:`run_command`. It decides reuse (run key + recorded input digests),
restores and replays on a hit, and otherwise executes the command under
capture (the Python bootstrap for Python processes, the native tracer for
everything else), then attests and records the result.
"""

from sharklib.runner.command import RunResult, run_command

__all__ = ["RunResult", "run_command"]
