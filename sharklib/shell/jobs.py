"""Job control across lines: ``cmd &``, ``jobs``, ``fg``, ``bg``, ``wait``, ``kill %N``.

Each line is its own ``bash -c``, so bash's own job table ends with the line. A line
ending in ``&`` is therefore run by the shell front end as a *job*: its own process
(:mod:`sharklib.shell.jobrun`, in a process group of its own, as bash puts a job)
running the line through the runner like any line. The prompt comes back at once with
``[N] PID``; the job's completion is announced before the next prompt (``[N]+  Done …``)
and the line is then recorded as a step of the session like a foreground one. ``jobs``,
``fg``, ``bg``, ``wait`` and ``kill`` with ``%N`` arguments are answered here from that
table (``fg`` hands the terminal to the job's process group, so Ctrl-C reaches it and not
the shell).
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

#: job-control lines answered by the shell itself (the rest of a line goes to bash)
BUILTINS = ("jobs", "fg", "bg", "wait", "kill")


@dataclass
class Job:
    """One background line while it runs."""

    number: int
    proc: subprocess.Popen[bytes]
    line: str  # as typed, without the trailing ``&``
    started: float
    coarse: float
    cwd: str
    env_before: dict[str, str]
    workdir: str  # its spec, result and bash state (a sharklib-session-* directory)
    pre: Any = None  # the snapshot state before it started (Snapshots.detach)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def stopped(self) -> bool:
        """Whether a process of the job is stopped (it read the terminal in the background)."""
        try:
            for name in os.listdir("/proc"):
                if not name.isdigit():
                    continue
                with contextlib.suppress(OSError), open(f"/proc/{name}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
                    if int(fields[2]) == self.pid and fields[0] in (b"T", b"t"):
                        return True
        except OSError:
            pass
        return False


def background(text: str) -> str | None:
    """The command of a line that ends with a lone ``&`` (a job), else None.

    ``a && b``, ``cmd >&2``, ``cmd |& tee`` and an ``&`` inside quotes are no job.
    """
    s = text.rstrip()
    if not s.endswith("&") or re.search(r"(&&|\\&|[|<>]&)$", s):
        return None
    body = s[:-1].rstrip()
    bare = re.sub(r"\\.", "", body)
    if not body or bare.count("'") % 2 or bare.count('"') % 2 or body.endswith((";", "&", "|")):
        return None
    return body


def builtin(text: str) -> list[str] | None:
    """The words of a job-control line the shell answers itself, else None.

    Only simple lines (``fg %2``, ``kill -9 %1``): anything with a pipe, a list, a
    substitution or a redirection goes to bash. ``kill`` without a ``%`` job is bash's.
    """
    if re.search(r"[;&|<>()`$]", text):
        return None
    try:
        words = shlex.split(text)
    except ValueError:
        return None
    if not words or words[0] not in BUILTINS:
        return None
    if words[0] == "kill" and not any(w.startswith("%") for w in words[1:]):
        return None
    return words


def status_word(returncode: int | None) -> str:
    """``Done``, ``Exit 3``, ``Terminated``…: what bash prints for a finished job."""
    if returncode is None:
        return "Running"
    if returncode == 0:
        return "Done"
    if returncode > 128 and returncode - 128 in _SIGNAMES:
        return _SIGNAMES[returncode - 128]
    if returncode < 0 and -returncode in _SIGNAMES:
        return _SIGNAMES[-returncode]
    return f"Exit {returncode}"


_SIGNAMES: dict[int, str] = {signal.SIGINT: "Interrupt", signal.SIGTERM: "Terminated", signal.SIGKILL: "Killed",
             signal.SIGHUP: "Hangup", signal.SIGQUIT: "Quit", signal.SIGPIPE: "Broken pipe",
             signal.SIGABRT: "Aborted", signal.SIGSEGV: "Segmentation fault",
             signal.SIGUSR1: "User defined signal 1", signal.SIGUSR2: "User defined signal 2"}


def job_line(job: Job, mark: str, word: str) -> str:
    """``[1]+  Running                 sleep 30 &``, as bash's ``jobs`` lays it out."""
    tail = " &" if word in ("Running", "Stopped") else ""
    return f"[{job.number}]{mark}  {word:<24}{job.line}{tail}"


def parse_signal(word: str) -> int:
    """``-9``, ``-KILL``, ``-SIGKILL`` -> the number (ValueError otherwise)."""
    name = word.lstrip("-").upper()
    if name.isdigit():
        return int(name)
    return int(getattr(signal, name if name.startswith("SIG") else "SIG" + name))


def give_terminal(pgid: int) -> tuple[int, Any] | None:
    """Make ``pgid`` the terminal's foreground process group; what to give back (None: no tty):
    the previous group and the terminal's modes (a job may leave them raw, as bash knows)."""
    import termios

    try:
        fd = sys.stdin.fileno()
        if not os.isatty(fd):
            return None
        old = (os.tcgetpgrp(fd), termios.tcgetattr(fd))
    except (OSError, ValueError, termios.error):
        return None
    handler = signal.signal(signal.SIGTTOU, signal.SIG_IGN)  # we may be in the background now
    try:
        os.tcsetpgrp(fd, pgid)
    except OSError:
        return None
    finally:
        signal.signal(signal.SIGTTOU, handler)
    return old


def take_terminal(old: tuple[int, Any] | None) -> None:
    """Take the terminal back (what :func:`give_terminal` returned), with its modes."""
    import termios

    if old is None:
        return
    handler = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        with contextlib.suppress(OSError, ValueError, termios.error):
            os.tcsetpgrp(sys.stdin.fileno(), old[0])
            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, old[1])
    finally:
        signal.signal(signal.SIGTTOU, handler)
