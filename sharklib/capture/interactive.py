"""Capture in a notebook or REPL: ``sharklib.enable()`` / ``%load_ext sharklib``.

There is no script and no clean exit to wait for, so sidecars are written as
outputs finish: after every IPython cell (``post_run_cell``), and in the plain
``python`` REPL after every statement (when its prompt is printed), for outputs
whose file object is closed and that the process no longer holds open; on
:func:`disable`, and at interpreter exit, for the rest.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any

from sharklib.capture import bootstrap
from sharklib.capture import recorder as _rec
from sharklib.capture.safety import describe, warn_once

_ipython: list[Any] = []


def enable(**options: object) -> None:
    """Start capturing this interpreter (no-op when already capturing)."""
    if _rec.current() is not None:
        return
    try:
        argv = list(getattr(sys, "orig_argv", None) or [sys.executable])
        rec = _rec.Recorder(argv, parent=os.environ.get("SHARKLIB_PARENT_RUN") or None,
                            session=os.environ.get("SHARKLIB_SESSION") or None)
        rec.code_text = None
        bootstrap.install(rec, script=False)
        rec.preload()
        _follow_prompt()
    except Exception as exc:
        warn_once(f"capture not started: {describe(exc)}")


class _Prompt:
    """The plain REPL's ``sys.ps1``: it is printed when a statement has finished."""

    def __init__(self, prompt: object) -> None:
        self.prompt = prompt

    def __str__(self) -> str:
        flush()
        return str(self.prompt)


def _follow_prompt() -> None:
    """In the plain interactive interpreter, sign finished outputs after each statement.

    IPython does not print ``sys.ps1``; it has its cell events instead.
    """
    ps1 = getattr(sys, "ps1", None)
    if ps1 is None or isinstance(ps1, _Prompt) or "IPython" in sys.modules:
        return
    sys.ps1 = _Prompt(ps1)


def _unfollow_prompt() -> None:
    ps1 = getattr(sys, "ps1", None)
    if isinstance(ps1, _Prompt):
        sys.ps1 = ps1.prompt


def flush() -> list[str]:
    """Write sidecars for every output finished so far; returns their paths."""
    rec = _rec.current()
    if rec is None or not rec.active:
        return []
    try:
        from sharklib.capture.finish import finish_closed_outputs

        done = finish_closed_outputs(rec)
        return done.sidecars if done else []
    except Exception as exc:
        warn_once(f"sidecars not written: {describe(exc)}")
        return []


def disable() -> None:
    """Stop capturing and write sidecars for every output (open ones are finished now)."""
    rec = _rec.current()
    if rec is None:
        return
    try:
        from sharklib.capture.finish import finish

        if rec.active:
            rec.flush_open_outputs()
            finish(rec, 0)
    except Exception as exc:
        warn_once(f"run not recorded: {describe(exc)}")
    finally:
        _unfollow_prompt()
        _rec.set_current(None)


def _post_run_cell(*args: Any) -> None:
    flush()


def load_ipython_extension(ip: Any) -> None:
    """``%load_ext sharklib``: capture, and sign finished outputs after each cell."""
    enable()
    try:
        ip.events.register("post_run_cell", _post_run_cell)
        _ipython.append(ip)
    except Exception as exc:
        warn_once(f"cannot follow notebook cells: {describe(exc)}")


def unload_ipython_extension(ip: Any) -> None:
    with contextlib.suppress(Exception):
        ip.events.unregister("post_run_cell", _post_run_cell)
    disable()
