"""The one launcher rule: what happens when the program of a step cannot be started.

``sharklib run -m``, ``sharklib env``, ``sharklib trace`` and pipeline stages
all say it the same way, as a shell does with its exit status: one line,
``sharklib: error: command not found: NAME`` and exit 127, or
``sharklib: error: permission denied: NAME`` and exit 126.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping

from sharklib.errors import SharkError

NOT_FOUND = 127
NOT_EXECUTABLE = 126


class LaunchError(SharkError):
    """The program of a step cannot be started; ``exit_status`` is the shell's for it."""

    def __init__(self, message: str, exit_status: int) -> None:
        super().__init__(message)
        self.exit_status = exit_status


def not_found(name: str) -> LaunchError:
    return LaunchError(f"command not found: {name}", NOT_FOUND)


def not_executable(name: str) -> LaunchError:
    return LaunchError(f"permission denied: {name}", NOT_EXECUTABLE)


def resolve_program(argv0: str, env: Mapping[str, str] | None = None,
                    cwd: str | None = None) -> str:
    """Find ``argv0`` as ``execvp`` would (``PATH`` of ``env``); raise :class:`LaunchError`."""
    env = os.environ if env is None else env
    if "/" in argv0:
        path = os.path.join(cwd or os.getcwd(), argv0)
        if not os.path.exists(path):
            raise not_found(argv0)
    else:
        found = shutil.which(argv0, path=env.get("PATH", os.defpath))
        if found is None:
            # on PATH but not executable: the shell says "permission denied"
            for d in env.get("PATH", os.defpath).split(os.pathsep):
                if os.path.isfile(os.path.join(d or ".", argv0)):
                    raise not_executable(argv0)
            raise not_found(argv0)
        path = found
    if os.path.isdir(path) or not os.access(path, os.X_OK):
        raise not_executable(argv0)
    return path


def from_os_error(argv0: str, exc: OSError) -> LaunchError:
    """What an ``exec`` failure (``FileNotFoundError``: also a script's missing interpreter) means."""
    import errno

    return not_found(argv0) if exc.errno == errno.ENOENT else not_executable(argv0)


def say(exc: LaunchError) -> int:
    """Print the one line on stderr; return the exit status."""
    sys.stderr.write(f"sharklib: error: {exc}\n")
    sys.stderr.flush()
    return exc.exit_status
