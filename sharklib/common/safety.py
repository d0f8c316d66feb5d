"""Failures inside sharklib never reach the user's script.

Capture runs inside someone else's program: anything that goes wrong in
sharklib (a read-only sidecar directory, a corrupt key, a bug) must become
one line on stderr and the program goes on exactly as it would have.
"""

from __future__ import annotations

import contextlib
import os
import sys

_warned: set[str] = set()


#: ``os.write`` before capture wraps it: a warning of sharklib's is not the run's output
_raw_write = os.write
#: stderr is a log this run has signed: nothing more may be written into it (verify would fail)
sealed = False


def warn_once(message: str) -> None:
    """Print ``sharklib: warning: message`` once per process; never raises."""
    try:
        line = message.splitlines()[0] if message else "internal error"
        if line in _warned or sealed:
            return
        _warned.add(line)
        notice(f"warning: {line}")
    except Exception:
        pass


def notice(text: str) -> None:
    """Print ``sharklib: text`` on stderr, past the copy of stderr a reuse would replay."""
    try:
        data = f"sharklib: {text}\n"
        stream = sys.stderr
        session = sys.modules.get("sharklib.capture.session")
        if stream is not None and session is not None and session.tee_active("stderr"):
            # past the copy kept for replay: a reuse replays the script's stderr, not a
            # warning about the run that recorded it (a cache miss, a quarantined object)
            with contextlib.suppress(Exception):
                stream.flush()
            stream = None
        if stream is not None:
            try:
                stream.write(data)
                stream.flush()
                return
            except Exception:
                pass
        _raw_write(2, data.encode("utf-8", "replace"))
    except Exception:
        pass


def describe(exc: BaseException) -> str:
    """A one-line description of an internal failure, naming the file when known."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, OSError) and exc.filename is not None and str(exc.filename) not in text:
        text = f"{exc.filename}: {text}"
    return text
