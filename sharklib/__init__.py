"""sharklib: lineage-first, frugal data science.

Records what every step read, wrote, downloaded and ran, signs that record
beside each output, and reuses what it can prove is already done.

In a notebook or REPL: ``import sharklib; sharklib.enable()`` or
``%load_ext sharklib``. Importing this package is cheap: nothing is hooked
until ``enable()`` is called.
"""

from __future__ import annotations

__version__ = "0.1.0"


def enable(**options: object) -> None:
    """Start capturing this interpreter (notebook / REPL use)."""
    from sharklib.capture.interactive import enable as _enable

    _enable(**options)


def disable() -> None:
    """Stop capturing and write sidecars for every finished output."""
    from sharklib.capture.interactive import disable as _disable

    _disable()


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext sharklib``."""
    from sharklib.capture.interactive import load_ipython_extension as _load

    _load(ipython)


def unload_ipython_extension(ipython: object) -> None:
    from sharklib.capture.interactive import unload_ipython_extension as _unload

    _unload(ipython)
