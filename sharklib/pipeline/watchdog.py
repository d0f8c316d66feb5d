"""Stages end with the pipeline that started them, even when it is killed with SIGKILL.

``sharklib pipeline run`` killed with SIGTERM or SIGKILL left its running stages
alive (5 of 25 and 10 of 33 trials): a stage is ``sh -c COMMAND`` (or a tracer and
its command) and its own children, which a dead parent cannot reap or signal, and
``PR_SET_PDEATHSIG`` reaches only a direct child (``sh``, not the ``sleep`` it
forked). So the runner starts this watchdog first: a separate process in its own
session (a signal to the runner's process group does not reach it), holding the
read end of a pipe whose write end only the runner has. Every process the runner
starts carries ``SHARKLIB_PIPELINE_TOKEN=<token>`` in its environment: the stages,
their children, the local worker processes. When the pipe closes without the
runner's "done" — the runner ended any way at all, SIGKILL included — the watchdog
sends SIGTERM to every process carrying the token, SIGKILL to those still there
after a grace period, and exits. A run that finishes normally says "done" first
and the watchdog leaves everything alone.

This file runs as a script (``python -I -S watchdog.py TOKEN``): stdlib only, no
sharklib import, so it costs a bare interpreter's start, and only when stages run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

GRACE_SECONDS = 3.0


def _carriers(entry: bytes) -> list[int]:
    """Pids of processes whose environment holds ``entry`` (``SHARKLIB_PIPELINE_TOKEN=token``)."""
    needle = entry + b"\0"
    me = os.getpid()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as fh:
                if needle in fh.read() + b"\0":
                    found.append(int(name))
        except OSError:
            continue  # gone, or not ours to read
    return found


def _end_all(token: bytes) -> None:
    """SIGTERM every carrier (new ones too, as they are forked), then SIGKILL what is left."""
    deadline = time.monotonic() + GRACE_SECONDS
    termed: set[int] = set()
    while True:
        pids = _carriers(token)
        if not pids:
            return
        late = time.monotonic() >= deadline
        for pid in pids:
            if late or pid not in termed:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL if late else signal.SIGTERM)
                termed.add(pid)
        if late and time.monotonic() > deadline + GRACE_SECONDS:
            return  # unkillable (D state) or refilling: give up rather than spin
        time.sleep(0.1)


def main(argv: list[str]) -> int:
    # the whole ``NAME=token`` entry comes on the command line: run as a bare script
    # (``-I -S``), this process cannot import sharklib, where the name is defined
    token = argv[1].encode()
    data = b""
    while True:
        try:
            chunk = os.read(0, 64)
        except InterruptedError:
            continue
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    if b"done" in data:
        return 0
    _end_all(token)
    return 0


def start() -> Callable[[], None]:
    """Start the watchdog and put the token in this process's environment (children inherit
    it); returns the function to call when the run ended normally."""
    from sharklib.config import ENV_PIPELINE_TOKEN

    token = os.urandom(12).hex()
    r, w = os.pipe()  # both ends non-inheritable: no stage can hold the pipe open
    env = {k: v for k, v in os.environ.items() if k != ENV_PIPELINE_TOKEN}
    try:
        subprocess.Popen([sys.executable, "-I", "-S", os.path.abspath(__file__),
                          f"{ENV_PIPELINE_TOKEN}={token}"],
                         stdin=r, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         env=env, start_new_session=True, close_fds=True)
    except OSError:
        os.close(r)
        os.close(w)
        return lambda: None  # no watchdog: stages run as before
    os.close(r)
    os.environ[ENV_PIPELINE_TOKEN] = token

    def done() -> None:
        with contextlib.suppress(OSError):
            os.write(w, b"done\n")
        with contextlib.suppress(OSError):
            os.close(w)
        if os.environ.get(ENV_PIPELINE_TOKEN) == token:
            del os.environ[ENV_PIPELINE_TOKEN]

    return done


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in the terminal is the runner's
    sys.exit(main(sys.argv))
