"""Environment variables read by the user's own code are inputs of the run.

``files[int(os.environ["SLURM_ARRAY_TASK_ID"])]``: tasks 1 and 2 of an array job were served
task 0's result, since only an allow-list of variables was in the run key. Every read of
``os.environ`` (``[...]``, ``.get``, ``os.getenv``, ``in``: all go through
``os._Environ.__getitem__``) is looked at; one made from a frame whose file is inside the
project (not a library: site-packages, dist-packages, sharklib) records the variable's name with
a digest of its value (:func:`sharklib.common.envread.value_digest`), and a reuse requires the
same value now. Reads by libraries (``HOME``, ``PATH``, ``USER`` while importing) are not
recorded: they differ between teammates' machines and would make keys unshareable, and a
library's answer is covered by its version. A variable the script set itself before reading
it is not an input. Iterating over ``os.environ`` or copying it is not seen.

Cost: a read from outside the project pays one frame look-up and one dict look-up (the verdict
is cached per code object).
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_installed = False


def _skipped_files() -> frozenset[str]:
    """Files whose frames are the plumbing of a read (``os.getenv``, ``Mapping.get``)."""
    import _collections_abc

    return frozenset({os.getenv.__code__.co_filename,
                      _collections_abc.Mapping.get.__code__.co_filename})


def install(project: str, code_text: bool = False) -> None:
    """Record on the current recorder (``env_read(name, value)``) the reads of ``os.environ``
    by code under ``project``; ``code_text``: the program is ``python -c`` (``<string>`` frames).
    """
    global _installed
    if _installed:
        return
    from sharklib.capture import recorder as _rec
    cls = type(os.environ)
    original_get = cls.__getitem__
    original_set = cls.__setitem__
    original_del = cls.__delitem__
    environ = os.environ
    prefix = project.rstrip("/") + "/"
    own = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + "/"
    skipped = _skipped_files()
    verdicts: dict[Any, bool] = {}
    getframe = sys._getframe

    def users(filename: str) -> bool:
        if code_text and filename == "<string>":
            return True
        return (filename.startswith(prefix) and not filename.startswith(own)
                and "/site-packages/" not in filename and "/dist-packages/" not in filename)

    def getitem(self: Any, key: Any) -> Any:
        try:
            value = original_get(self, key)
        except KeyError:
            value = None
        if self is environ:
            try:
                f: Any = getframe(1)
                while f is not None and f.f_code.co_filename in skipped:
                    f = f.f_back
                if f is not None:
                    code = f.f_code
                    mine = verdicts.get(code)
                    if mine is None:
                        mine = verdicts[code] = users(code.co_filename)
                    if mine:
                        rec = _rec._current
                        if rec is not None and rec.active:
                            rec.env_read(key, value)
            except Exception:  # never let capture change what the script sees
                pass
        if value is None:
            raise KeyError(key) from None
        return value

    def setitem(self: Any, key: Any, value: Any) -> None:
        original_set(self, key, value)
        rec = _rec._current
        if self is environ and rec is not None:
            rec.env_written(key)

    def delitem(self: Any, key: Any) -> None:
        original_del(self, key)
        rec = _rec._current
        if self is environ and rec is not None:
            rec.env_written(key)

    cls.__getitem__ = getitem  # type: ignore[method-assign]
    cls.__setitem__ = setitem  # type: ignore[method-assign]
    cls.__delitem__ = delitem  # type: ignore[method-assign]
    _installed = True
