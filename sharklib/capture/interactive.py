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
from sharklib.common.safety import describe, warn_once
from sharklib.config import ENV_PARENT_RUN, ENV_SESSION

_ipython: list[Any] = []


def enable(**options: object) -> None:
    """Start capturing this interpreter (no-op when already capturing).

    Inside IPython (a notebook's kernel, the ``ipython`` shell) this is ``%load_ext
    sharklib``: outputs are signed after every cell, each cell's own attestation, so a
    file one cell reads links to the attestation of the cell that wrote it.
    """
    ip = _running_ipython()
    if ip is not None and not _ipython:
        load_ipython_extension(ip)
        return
    _start()


def _running_ipython() -> Any:
    """The running IPython shell, if this interpreter is one (never imports IPython)."""
    if "IPython" not in sys.modules:
        return None
    try:
        return sys.modules["IPython"].get_ipython()
    except Exception:
        return None


def _start() -> None:
    if _rec.current() is not None:
        return
    try:
        argv = list(getattr(sys, "orig_argv", None) or [sys.executable])
        rec = _rec.Recorder(argv, parent=os.environ.get(ENV_PARENT_RUN) or None,
                            session=os.environ.get(ENV_SESSION) or None)
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


def flush(step: list[str] | None = None, code: str | None = None,
          status: int | None = None) -> list[str]:
    """Write sidecars for every output finished so far; returns their paths.

    ``step``/``code``/``status``: how the attestation names what produced them (a notebook
    cell: the notebook and the cell, its source, 0 or 1), instead of the interpreter's
    command line (``python -m ipykernel_launcher -f /tmp/…json``).
    """
    rec = _rec.current()
    if rec is None or not rec.active:
        return []
    argv, code_text = rec.argv, rec.code_text
    try:
        from sharklib.capture.finish import finish_closed_outputs

        if step is not None:
            rec.argv = step
        if code is not None:
            rec.code_text = code
        done = finish_closed_outputs(rec, status)
        return done.sidecars if done else []
    except Exception as exc:
        warn_once(f"sidecars not written: {describe(exc)}")
        return []
    finally:
        rec.argv, rec.code_text = argv, code_text


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


def notebook_name(ip: Any) -> str | None:
    """The notebook this kernel runs, when its front end says (Jupyter, VS Code)."""
    ns = getattr(ip, "user_ns", None) or {}
    for name in (ns.get("__session__"), ns.get("__vsc_ipynb_file__"),
                 os.environ.get("JPY_SESSION_NAME")):
        if isinstance(name, str) and name:
            try:
                rel = os.path.relpath(name)
            except ValueError:
                rel = name
            return name if rel.startswith("..") else rel
    return None


def _post_run_cell(result: Any = None) -> None:
    """After a cell: sign what it finished, as a step named by the notebook and the cell."""
    info = getattr(result, "info", None)
    count = getattr(result, "execution_count", None)
    cell = f"cell:{count}" if count is not None else "cell"
    cell_id = getattr(info, "cell_id", None)
    if cell_id:
        cell += f" (id {cell_id})"
    ip = _ipython[0] if _ipython else None
    name = notebook_name(ip) if ip is not None else None
    step = ["notebook", name, cell] if name else ["notebook", cell]
    source = getattr(info, "raw_cell", None)
    failed = getattr(result, "error_in_exec", None) or getattr(result, "error_before_exec", None)
    flush(step=step, code=source if isinstance(source, str) else None,
          status=1 if failed else 0)


def load_ipython_extension(ip: Any) -> None:
    """``%load_ext sharklib``: capture, and sign finished outputs after each cell."""
    _start()
    if _ipython:
        return  # already following the cells (enable() and %load_ext both called)
    try:
        ip.events.register("post_run_cell", _post_run_cell)
        _ipython.append(ip)
    except Exception as exc:
        warn_once(f"cannot follow notebook cells: {describe(exc)}")


def unload_ipython_extension(ip: Any) -> None:
    with contextlib.suppress(Exception):
        ip.events.unregister("post_run_cell", _post_run_cell)
    _ipython.clear()
    disable()
