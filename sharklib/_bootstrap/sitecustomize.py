"""sharklib's start-up hook, put first on PYTHONPATH by ``sharklib run`` / ``sharklib env``.

Free when ``SHARKLIB_CAPTURE`` is unset: no sharklib import, one environment
lookup. It always chains to the ``sitecustomize`` it shadows (the next one on
``sys.path``), so a site's or a distribution's own start-up code still runs.
"""

import os
import sys

#: ``sharklib.config.ENV_CAPTURE``, spelled out: this hook runs in every Python a step starts and
#: imports nothing of sharklib unless capture is on (tests/core/test_layers.py checks they agree)
_ENV_CAPTURE = "SHARKLIB_CAPTURE"

TYPE_CHECKING = False  # no ``typing`` here: this file runs in every Python a step starts
if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType


def _chain() -> None:
    """Execute the next ``sitecustomize`` on sys.path after this file's directory."""
    here = os.path.dirname(os.path.abspath(__file__))
    seen_self = False
    for entry in list(sys.path):
        try:
            directory = os.path.abspath(entry or os.getcwd())
        except OSError:
            continue
        if directory == here:
            seen_self = True
            continue
        if not seen_self:
            continue
        candidate = os.path.join(directory, "sitecustomize.py")
        if os.path.isfile(candidate):
            try:
                with open(candidate, "rb") as fh:
                    code = compile(fh.read(), candidate, "exec")
                exec(code, {"__name__": "sitecustomize", "__file__": candidate,
                            "__builtins__": __builtins__})
            except Exception as exc:
                sys.stderr.write(f"Error in sitecustomize; set PYTHONVERBOSE for traceback:\n"
                                 f"{type(exc).__name__}: {exc}\n")
            return


class _SharklibOnly:
    """Finds the ``sharklib`` package this bootstrap ships in, and nothing else.

    An interpreter that cannot import sharklib (a pipeline's own environment)
    must not see the rest of the directory sharklib lives in either: that is
    the runner's site-packages (or a source checkout), and putting it on
    ``sys.path`` would let the user's code import packages its environment
    does not have. Submodules resolve through the package's ``__path__``.
    """

    def __init__(self, root: str) -> None:
        self.root = root

    def find_spec(self, fullname: str, path: "Sequence[str] | None" = None,
                  target: "ModuleType | None" = None) -> "ModuleSpec | None":
        if fullname != "sharklib":
            return None
        from importlib.machinery import PathFinder

        return PathFinder.find_spec(fullname, [self.root])


def _start() -> None:
    try:
        from sharklib.capture.bootstrap import start
    except ImportError:
        sys.modules.pop("sharklib", None)
        # this file is sharklib/_bootstrap/sitecustomize.py: the directory holding sharklib/
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        sys.meta_path.append(_SharklibOnly(root))
        try:
            from sharklib.capture.bootstrap import start
        except Exception as exc:
            sys.stderr.write(f"sharklib: warning: capture not started: {exc}\n")
            return
    try:
        start()
    except Exception as exc:
        sys.stderr.write(f"sharklib: warning: capture not started: {exc}\n")


_chain()
if os.environ.get(_ENV_CAPTURE, "") not in ("", "0"):
    _start()
del _chain, _start
