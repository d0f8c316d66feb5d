"""The environment that turns capture on in every Python process below a command.

``run_main``, ``sharklib env`` and the runner all build it here, so there is
exactly one definition of "a captured child".
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from sharklib.config import ENV_CAPTURE


def bootstrap_dir() -> str:
    """The directory holding the ``sitecustomize.py`` that turns capture on in a child.

    It is ``sharklib/_bootstrap`` inside the package, so an editable install, a
    wheel and an sdist all have it at the same place (a top-level
    ``sitecustomize/`` beside the package existed only in a source checkout,
    and a wheel install silently captured no child at all).
    """
    import sharklib

    return os.path.join(os.path.dirname(os.path.abspath(sharklib.__file__)), "_bootstrap")


def require_bootstrap_dir() -> str:
    """:func:`bootstrap_dir`, or a one-line :class:`SharkError` when it is not installed.

    Without it every Python child would run unrecorded and the run would end
    with "recorded no outputs"; refusing up front names the real cause.
    """
    boot = bootstrap_dir()
    if not os.path.isfile(os.path.join(boot, "sitecustomize.py")):
        from sharklib.errors import SharkError

        raise SharkError(f"capture bootstrap missing: {boot}/sitecustomize.py; reinstall "
                         "sharklib (without it no Python child process would be captured)")
    return boot


def capture_environ(base_env: Mapping[str, str]) -> dict[str, str]:
    """``base_env`` plus the bootstrap on ``PYTHONPATH`` (first) and ``SHARKLIB_CAPTURE=1``.

    Idempotent: the bootstrap directory appears once however often this runs.
    Raises :class:`SharkError` when the bootstrap is not installed.
    Session and parent run are left to the caller, who owns them.
    """
    env = dict(base_env)
    boot = require_bootstrap_dir()
    parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != boot]
    env["PYTHONPATH"] = os.pathsep.join([boot, *parts])
    env[ENV_CAPTURE] = "1"
    return env


def shell_exports(env: Mapping[str, str]) -> str:
    """``export`` lines for ``eval "$(sharklib env --shell)"``."""
    import shlex

    keys = ("PYTHONPATH", ENV_CAPTURE)
    return "".join(f"export {k}={shlex.quote(env[k])}\n" for k in keys if k in env)
