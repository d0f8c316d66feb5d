"""The runner: the one path from a command to an attested, cached result.

``sharklib run``, ``sharklib trace``, pipeline stages and shell commands all
go through here. :func:`run_command` decides reuse (run key + recorded input
digests), restores on a hit, and otherwise executes the command under capture
(the native tracer where the machine allows it, else the Python bootstrap),
then records the result. :func:`plan_command` / :func:`plan_commands` answer
"would this be reused, and why not?" without running or restoring anything.
"""

from __future__ import annotations

from sharklib._lazy import lazy_attributes

TYPE_CHECKING = False  # no ``typing`` at run time

_WHERE = {"RunResult": "command", "run_command": "command", "Plan": "planner",
          "StageSpec": "planner", "plan_command": "planner", "plan_commands": "planner"}

__all__ = ["Plan", "RunResult", "StageSpec", "plan_command", "plan_commands", "run_command"]

if TYPE_CHECKING:
    from sharklib.runner.command import RunResult, run_command
    from sharklib.runner.planner import Plan, StageSpec, plan_command, plan_commands


# loaded on first use: a captured script's reuse check imports sharklib.runner.reuse only
__getattr__ = lazy_attributes(__name__, _WHERE)
