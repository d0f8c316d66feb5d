"""Run a script, a module or a code string as ``__main__``, exactly as ``python`` would.

Modelled on coverage.py's ``execfile.py``: a fresh ``__main__`` module with
the globals Python gives it, ``sys.argv`` and ``sys.path[0]`` as Python sets
them, compiled with the script's absolute path as filename so tracebacks
name the same file, and errors printed through ``sys.excepthook`` with
sharklib's own frames removed, so the user sees Python's output and no trace
of sharklib.
"""

from __future__ import annotations

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
    try:
        with io.open_code(abspath) as fh:
            source = fh.read()
    except OSError as exc:
        prog = (getattr(sys, "orig_argv", None) or [sys.executable])[0]
        raise NoScript(f"{prog}: can't open file {abspath!r}: [Errno {exc.errno}] "
                       f"{exc.strerror}") from None
    return abspath, compile(source, abspath, "exec", dont_inherit=True), source


def run_script(abspath: str, code: Any, argv: list[str]) -> None:
    """``python script.py ARGS``."""
    main = _fresh_main()
    main.__file__ = abspath
    main.__cached__ = None  # type: ignore[attr-defined]
    main.__loader__ = SourceFileLoader("__main__", abspath)
    main.__spec__ = None
    main.__package__ = None
    sys.argv = list(argv)
    path0 = os.path.dirname(os.path.realpath(abspath))
    if sys.path:
        sys.path[0] = path0
    else:
        sys.path.insert(0, path0)
    exec(code, main.__dict__)


def run_code(source: str, argv: list[str]) -> None:
    """``python -c CODE ARGS``."""
    main = _fresh_main()
    main.__loader__ = BuiltinImporter  # type: ignore[assignment]
    main.__spec__ = None
    main.__package__ = None
    main.__dict__["__annotations__"] = {}  # noqa: RUF063 - setting what python -c has
    sys.argv = ["-c", *argv]
    if sys.path:
        sys.path[0] = ""
    code = compile(source, "<string>", "exec", dont_inherit=True)
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

