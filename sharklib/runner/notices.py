"""How the reuse path says something to the user, and what it learnt about remotes.

The run-time check (:mod:`sharklib.runner.reuse`) and the record
(:mod:`sharklib.runner.record`) run in the user's process, often inside a
captured script: a problem is one ``sharklib: warning: ...`` line, never an
exception, and a remote found unreachable by the lookup is not waited on
again by the record of the same process.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

Warn = Callable[[str], None]

#: remotes a lookup in this process found unreachable (and said so, once)
unreachable_remotes: set[str] = set()


def stderr_warn(message: str) -> None:
    """One warning line: through the capture's once-only warner when it is loaded."""
    from sharklib.errors import printable

    message = printable(message)  # it names recorded files: no terminal escapes
    try:
        from sharklib.capture.safety import warn_once  # type: ignore[import-not-found]
    except ImportError:
        sys.stderr.write(f"sharklib: warning: {message}\n")
        sys.stderr.flush()
    else:
        warn_once(message)
