"""How the reuse path says something to the user, and what it learnt about remotes.

The run-time check (:mod:`sharklib.runner.reuse`) and the record
(:mod:`sharklib.runner.record`) run in the user's process, often inside a
captured script: a problem is one ``sharklib: warning: ...`` line, never an
exception, and a remote found unreachable by the lookup is not waited on
again by the record of the same process.
"""

from __future__ import annotations

from collections.abc import Callable

Warn = Callable[[str], None]

#: remotes a lookup in this process found unreachable (and said so, once)
unreachable_remotes: set[str] = set()


def stderr_warn(message: str) -> None:
    """One warning line, once per process (:func:`sharklib.common.safety.warn_once`)."""
    from sharklib.common.safety import warn_once
    from sharklib.errors import printable

    warn_once(printable(message))  # it names recorded files: no terminal escapes
