"""The ``sharklib`` command line: a thin skin over the library.

Each sub-command lives in its own module under :mod:`sharklib.cli` and is
imported only when invoked (the group and its table are :mod:`sharklib.cli.group`).
A command module exposes a ``click`` command named ``command``. ``run``, ``env``,
``trace`` and ``pipeline run|plan`` also have fast paths that read their
options without click (:mod:`~sharklib.cli.env_fast`, :mod:`~sharklib.cli.trace_fast`,
:mod:`~sharklib.cli.pipeline_fast`); that is why importing this package costs
nothing: click alone is ~20 ms. Nothing outside ``sharklib.cli`` imports it.
"""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    """Run the CLI: a SharkError becomes one line on stderr and exit 2 (see :mod:`.group`)."""
    from sharklib.cli.group import main as _main

    return _main(argv)
