"""``python -m sharklib env [-q] [--] CMD ARGS...`` without importing click.

``sharklib env -- make`` is typed before every build, and on a make with nothing
to do the interpreter's start and imports are most of its cost: click and the
command group are ~20 ms quiet (~120 ms on a loaded machine), as much as make's
own no-op of a few hundred targets. This path reads ``-q``/``--quiet`` by hand
and calls the same :func:`sharklib.capture.envcmd.env_main` as the click
command, :mod:`sharklib.cli.env`. Anything else (``--shell``, ``--explain``,
``--help``, an unknown option, no command) goes to the click CLI, so messages
and exit codes are the same either way.
"""

from __future__ import annotations

import os
import sys

#: option → the click parameter it sets (to True); tests/cli/test_fast_paths.py checks that
#: these tables and the click command declare the same options
FLAGS = {"-q": "quiet", "--quiet": "quiet"}
#: options left to click: they run nothing, so there is no start-up to save
TO_CLICK = {"--shell": "shell", "--explain": "explain"}


def parse(args: list[str]) -> dict[str, object] | None:
    """``{"quiet": bool, "argv": [...]}`` as the click command gets them, or None for click."""
    quiet = False
    i = 0
    while i < len(args):
        a = args[i]
        if a in FLAGS:
            quiet = True
        elif a == "--":
            i += 1
            break
        elif a.startswith("-"):
            return None
        else:
            break
        i += 1
    argv = args[i:]
    if not argv:
        return None
    return {"quiet": quiet, "argv": argv}


def env_main(args: list[str]) -> int:
    parsed = parse(args)
    if parsed is None:
        from sharklib.cli import main as cli_main

        return cli_main(["env", *args])
    argv = parsed["argv"]
    assert isinstance(argv, list)
    from sharklib.capture.envcmd import env_main as run_env
    from sharklib.errors import SharkError

    try:
        return run_env(argv, quiet=bool(parsed["quiet"]))
    except SharkError as exc:
        sys.stderr.write(f"sharklib: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("Aborted.\n")
        return 130
    except Exception as exc:  # a bug of sharklib's: one line, as the click group says it
        from sharklib.config import ENV_DEBUG

        if os.environ.get(ENV_DEBUG, "") not in ("", "0"):
            raise
        sys.stderr.write(f"sharklib: error: env failed: {type(exc).__name__}: {exc} "
                         f"({ENV_DEBUG}=1 shows the traceback; please report it)\n")
        return 1
