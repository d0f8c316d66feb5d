"""Run a script, a module or a code string as ``__main__``, exactly as ``python`` would.

Modelled on coverage.py's ``execfile.py``: a fresh ``__main__`` module with
the globals Python gives it, ``sys.argv`` and ``sys.path[0]`` as Python sets
them, compiled with the script's absolute path as filename so tracebacks
name the same file, and errors printed through ``sys.excepthook`` with
sharklib's own frames removed, so the user sees Python's output and no trace
of sharklib.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import types
from importlib.machinery import BuiltinImporter, SourceFileLoader

# ``typing`` is not imported at run time: it costs every captured script ~2.5 ms of start-up
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class NoScript(Exception):
    """The script cannot be opened; the message is Python's own."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _fresh_main() -> types.ModuleType:
    main = types.ModuleType("__main__")
    main.__dict__["__builtins__"] = sys.modules["builtins"]
    sys.modules["__main__"] = main
    return main


def read_script(path: str) -> tuple[str, Any, bytes]:
    """Absolute path, code object and source bytes of a script (SyntaxError propagates, as in Python).

    The bytes are what the run key and the code identity digest: the script as it ran.
    """
    abspath = os.path.abspath(path)
    # what Python names the script (``__file__``, tracebacks): joined to the working directory,
    # never normalised (``python ../s.py`` shows ``/w/sub/../s.py``); keys use ``abspath``
    shown = path if os.path.isabs(path) else os.path.join(os.getcwd(), path)
    try:
        with io.open_code(abspath) as fh:
            source = fh.read()
    except OSError as exc:
        prog = (getattr(sys, "orig_argv", None) or [sys.executable])[0]
        raise NoScript(f"{prog}: can't open file {shown!r}: [Errno {exc.errno}] "
                       f"{exc.strerror}") from None
    return abspath, compile(source, shown, "exec", dont_inherit=True), source


def _interpreter_options() -> list[str]:
    """``sys.orig_argv`` up to where sharklib's own command line starts.

    ``python -X dev -m sharklib run s.py`` → ``[python, -X, dev]``; the console script
    (``…/bin/python3 …/bin/sharklib run s.py``) → ``[…/bin/python3]``.
    """
    orig = list(getattr(sys, "orig_argv", None) or [sys.executable])
    for i in range(1, len(orig)):
        a = orig[i]
        if a == "-m" and i + 1 < len(orig) and orig[i + 1] in ("sharklib", "sharklib.__main__"):
            return orig[:i]
        if not a.startswith("-") and os.path.basename(a) in ("sharklib", "__main__.py"):
            return orig[:i]
    return orig[:1]


def _as_python(tail: list[str], exec_here: bool = True) -> None:
    """Look to the script as ``python TAIL`` would: ``sys.orig_argv`` and the recursion budget.

    ``sys.orig_argv`` is what the interpreter was given; a script (or a library such as
    ``multiprocessing``'s helpers, or a CLI framework re-executing itself) reading it must
    see its own command, not ``-m sharklib run -q``. sharklib's frames below the script
    (runpy, the command, this module) would cost it recursion depth plain Python gives it:
    the limit is raised by that many frames, and ``sys.getrecursionlimit``/
    ``sys.setrecursionlimit`` read and set it without them, so the script sees the numbers
    plain Python shows and recurses exactly as deep. CPython also counts each entry into
    the evaluation loop from Python (``exec``: of sharklib's ``__main__`` by runpy, and of
    the script when ``exec_here``; plain ``python script.py`` enters it from C).
    """
    with contextlib.suppress(Exception):
        sys.orig_argv = [*_interpreter_options(), *tail]
    try:
        depth = 1 if exec_here else 0
        frame: Any = sys._getframe(1)  # the frame that will exec the script, and its callers
        while frame is not None:
            depth += 1
            if frame.f_code.co_name == "<module>" and frame.f_back is not None:
                depth += 1  # a module run by exec() from Python code (runpy)
            frame = frame.f_back
        if getattr(sys.getrecursionlimit, "_sharklib_offset", None) is not None:
            return
        real_get, real_set = sys.getrecursionlimit, sys.setrecursionlimit
        real_set(real_get() + depth)

        def getrecursionlimit() -> int:
            return real_get() - depth

        def setrecursionlimit(limit: int, /) -> None:
            if limit.__class__ is not int or limit < 1:
                real_set(limit)  # the same TypeError/ValueError as Python's
            real_set(limit + depth)

        getrecursionlimit.__doc__ = real_get.__doc__
        setrecursionlimit.__doc__ = real_set.__doc__
        getrecursionlimit._sharklib_offset = depth  # type: ignore[attr-defined]
        sys.getrecursionlimit = getrecursionlimit
        sys.setrecursionlimit = setrecursionlimit
    except Exception:
        pass


def run_script(abspath: str, code: Any, argv: list[str]) -> None:
    """``python script.py ARGS``."""
    main = _fresh_main()
    shown = getattr(code, "co_filename", None) or abspath
    main.__file__ = shown
    main.__cached__ = None  # type: ignore[attr-defined]
    main.__loader__ = SourceFileLoader("__main__", shown)
    main.__spec__ = None
    main.__package__ = None
    sys.argv = list(argv)
    path0 = os.path.dirname(os.path.realpath(abspath))
    if sys.path:
        sys.path[0] = path0
    else:
        sys.path.insert(0, path0)
    _as_python(list(argv))
    exec(code, main.__dict__)


def run_code(source: str, argv: list[str]) -> None:
    """``python -c CODE ARGS``."""
    main = _fresh_main()
    main.__loader__ = BuiltinImporter
    main.__spec__ = None
    main.__package__ = None
    main.__dict__["__annotations__"] = {}  # noqa: RUF063 - setting what python -c has
    sys.argv = ["-c", *argv]
    if sys.path:
        sys.path[0] = ""
    code = compile(source, "<string>", "exec", dont_inherit=True)
    _as_python(["-c", source, *argv])
    exec(code, main.__dict__)


def run_module(name: str, argv: list[str]) -> None:
    """``python -m MODULE ARGS`` (runpy's frames show in tracebacks, as with python -m)."""
    import runpy

    _fresh_main()
    sys.argv = [name, *argv]
    cwd = os.getcwd()
    if sys.path:
        sys.path[0] = cwd
    else:
        sys.path.insert(0, cwd)
    # runpy adds two frames of its own, as it does under `python -m`
    _as_python(["-m", name, *argv], exec_here=False)
    runpy._run_module_as_main(name, alter_argv=True)  # type: ignore[attr-defined]


def print_exception(exc: BaseException) -> None:
    """Print an uncaught exception as the interpreter would (``sys.excepthook``)."""
    from sharklib.capture.hooks import drop_own_frames

    tb = drop_own_frames(exc)
    sys.last_type, sys.last_value, sys.last_traceback = type(exc), exc, tb
    try:
        sys.excepthook(type(exc), exc, tb)
    except Exception:
        sys.__excepthook__(type(exc), exc, tb)

