"""The runner: the one path from a command to an attested, cached result.

``sharklib run``, ``sharklib trace``, pipeline stages and shell commands all
go through here. :func:`run_command` decides reuse (run key + recorded input
digests), restores on a hit, and otherwise executes the command under capture
(the native tracer where the machine allows it, else the Python bootstrap),
then records the result. :func:`plan_command` / :func:`plan_commands` answer
"would this be reused, and why not?" without running or restoring anything.
"""

from sharklib.runner.command import RunResult, run_command
from sharklib.runner.stage import Plan, StageSpec, plan_command, plan_commands

__all__ = ["Plan", "RunResult", "StageSpec", "plan_command", "plan_commands", "run_command"]
