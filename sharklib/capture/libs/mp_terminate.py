"""multiprocessing: a worker sent SIGTERM is sent it again until it has ended.

Captured workers handle SIGTERM in Python (they save their record, then die of the
signal; ``Pool`` ends its workers that way). A Python-level handler only runs when the
interpreter checks for signals, and a SIGTERM that lands just before a worker blocks in
``sem_wait`` (waiting for the task queue's lock, which ``Pool.terminate`` holds) is not
acted on until another signal comes: uncaptured, the default action kills the worker; here
it waited forever, and ``Pool.__exit__`` with it. So the parent, waiting without a timeout
for a process it terminated, repeats the signal every half second. A worker already saving
ignores the repeats (see ``hooks.install_sigterm``).
"""

from __future__ import annotations

import signal
from typing import Any

from sharklib.capture.libs.recording import guarded

RESEND_EVERY = 0.5


def patch(module: Any) -> None:
    popen = module.Popen
    original_terminate = popen.terminate
    original_wait = popen.wait

    def terminate(self: Any) -> None:
        self._sharklib_terminated = True
        original_terminate(self)

    def wait(self: Any, timeout: float | None = None) -> Any:
        if timeout is not None or not getattr(self, "_sharklib_terminated", False):
            return original_wait(self, timeout)
        while True:
            result = original_wait(self, RESEND_EVERY)
            if result is not None:
                return result
            with guarded("resending SIGTERM to a worker"):
                self._send_signal(signal.SIGTERM)

    terminate.__doc__, wait.__doc__ = original_terminate.__doc__, original_wait.__doc__
    popen.terminate = terminate
    popen.wait = wait
