"""The environment that turns capture on in every Python process below a command.

``run_main``, ``sharklib env`` and the runner all build it here, so there is
exactly one definition of "a captured child".
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from sharklib.config import ENV_CAPTURE


def bootstrap_dir() -> str:
    """The ``sitecustomize/`` directory shipped beside the package (editable install)."""
    import sharklib

    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(sharklib.__file__))),
                        "sitecustomize")


def capture_environ(base_env: Mapping[str, str]) -> dict[str, str]:
    """``base_env`` plus the bootstrap on ``PYTHONPATH`` (first) and ``SHARKLIB_CAPTURE=1``.

    Idempotent: the bootstrap directory appears once however often this runs.
    Session and parent run are left to the caller, who owns them.
    """
    env = dict(base_env)
    boot = bootstrap_dir()
    parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != boot]
    env["PYTHONPATH"] = os.pathsep.join([boot, *parts])
    env[ENV_CAPTURE] = "1"
    return env


def shell_exports(env: Mapping[str, str]) -> str:
    """``export`` lines for ``eval "$(sharklib env --shell)"``."""
    import shlex

    keys = ("PYTHONPATH", ENV_CAPTURE)
    return "".join(f"export {k}={shlex.quote(env[k])}\n" for k in keys if k in env)
